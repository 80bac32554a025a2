"""Who may do what to an inquiry: the action → role table, written once (README "Roles")."""

import enum
from collections.abc import Mapping
from types import MappingProxyType

from app.people.models import Role
from app.problems import Forbidden


class Action(enum.StrEnum):
    """Everything a key can do to an inquiry beyond reading it."""

    sign_for = "sign_for"  # 签收: a person takes it on
    hand_over = "hand_over"  # to a colleague of the same department
    reply = "reply"  # an interim reply or the answer (or one given by phone, letter, in person)
    note = "note"  # an internal note for colleagues
    merge = "merge"  # 并单, and its same-day undo
    correct_kind = "correct_kind"
    mark_routing_wrong = "mark_routing_wrong"
    refer = "refer"
    transfer = "transfer"
    return_ = "return"
    pause = "pause"
    resume = "resume"
    request_extension = "request_extension"
    record_first_response = "record_first_response"
    mark_invalid = "mark_invalid"
    close = "close"
    approve = "approve"  # a reviewer's check of a public reply before it goes out
    manage_templates = "manage_templates"  # the department's reply templates
    arbitrate = "arbitrate"
    decide_extension = "decide_extension"
    decide_pause = "decide_pause"


# An operator runs an account and does nothing to inquiries: no action needs that role.
REQUIRED_ROLE: Mapping[Action, Role] = MappingProxyType(
    {
        Action.sign_for: Role.responder,
        Action.hand_over: Role.responder,
        Action.reply: Role.responder,
        Action.note: Role.responder,
        Action.merge: Role.responder,
        Action.correct_kind: Role.responder,
        Action.mark_routing_wrong: Role.responder,
        Action.refer: Role.responder,
        Action.transfer: Role.responder,
        Action.return_: Role.responder,
        Action.pause: Role.responder,
        Action.resume: Role.responder,
        Action.request_extension: Role.responder,
        Action.record_first_response: Role.responder,
        Action.mark_invalid: Role.responder,
        Action.close: Role.responder,
        Action.approve: Role.reviewer,
        Action.manage_templates: Role.reviewer,
        Action.arbitrate: Role.supervisor,
        Action.decide_extension: Role.supervisor,
        Action.decide_pause: Role.supervisor,
    }
)


class RoleRequired(Forbidden):
    title = "Role required"
    slug = "role-required"
    example_detail = "decide_extension needs the supervisor role; this key has: operator."


def require(roles: frozenset[Role], action: Action) -> None:
    """Raise unless `roles` holds the role `action` needs."""
    needed = REQUIRED_ROLE[action]
    if needed not in roles:
        held = ", ".join(sorted(roles)) or "no role"
        raise RoleRequired(
            f"{action} needs the {needed} role; this key has: {held}.",
            required_role=needed.value,
            action=action.value,
        )
