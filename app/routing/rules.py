"""Matching rules against an inquiry: pure functions, shared by the routing job and preview."""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import re2

from app.inquiries.models import Channel, InquiryKind
from app.routing.models import KindRule, RoutingRule

MAX_PATTERN_LENGTH = 500
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a bad pattern is reported to the admin, not to stderr
_OPTIONS.max_mem = 1 << 20  # patterns stay small; a huge automaton is refused


class PatternError(ValueError):
    """A pattern RE2 cannot compile (backreferences and lookaround are not supported)."""


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Any:  # re2 ships no type hints
    """Compile with RE2: linear time, so no pattern can backtrack catastrophically."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(f"a pattern may have at most {MAX_PATTERN_LENGTH} characters")
    try:
        return re2.compile(pattern, options=_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise PatternError(f"not a valid RE2 pattern: {reason}") from exc


def _text_matches(text: str, keywords: Sequence[str], pattern: str | None) -> bool:
    """Any keyword, or the pattern; with neither given, everything matches."""
    if not keywords and pattern is None:
        return True
    if any(word in text for word in keywords):
        return True
    return pattern is not None and compile_pattern(pattern).search(text) is not None


@dataclass(frozen=True)
class Sample:
    """What rules look at: the citizen's words and where they came from."""

    text: str
    account_id: int
    channel: Channel
    region_code: str  # the account's owning department's division code


def classify(text: str, rules: Sequence[KindRule]) -> tuple[InquiryKind, KindRule | None]:
    """The kind of the first matching rule by priority; `other` when none matches."""
    for rule in sorted(rules, key=lambda r: (r.priority, r.id)):
        if rule.active and _text_matches(text, rule.keywords, rule.pattern):
            return rule.kind, rule
    return InquiryKind.other, None


def matches(rule: RoutingRule, sample: Sample, kind: InquiryKind) -> bool:
    """Every condition the rule sets holds for the sample."""
    return (
        rule.active
        and (rule.account_id is None or rule.account_id == sample.account_id)
        and (rule.channel is None or rule.channel == sample.channel)
        and (rule.kind is None or rule.kind == kind)
        and (rule.region_prefix is None or sample.region_code.startswith(rule.region_prefix))
        and _text_matches(sample.text, rule.keywords, rule.pattern)
    )


def matching(rules: Sequence[RoutingRule], sample: Sample, kind: InquiryKind) -> list[RoutingRule]:
    """Every rule that matches, in priority order: the first decides."""
    return [r for r in sorted(rules, key=lambda r: (r.priority, r.id)) if matches(r, sample, kind)]
