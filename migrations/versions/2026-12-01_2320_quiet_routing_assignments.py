"""routing waits a quiet period after the latest fragment (and checks urgency at once); the
hand-over history becomes first-class state (inquiry_assignment)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01 23:20:00+00:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A copy of migrations/sql/govinbox_intake.sql as this revision made it (the file holds the
# current source; a later change copies it again into its own migration, never reads it here).
# New: the argument p_quiet; check_urgent queued for the first message too; route_inquiry
# scheduled p_quiet after the latest fragment (at most ten quiet periods after the first, while
# unrouted), a waiting one moved back.
INTAKE_FUNCTION = r"""
CREATE FUNCTION govinbox_intake(
    p_account_id integer,
    p_platform text,
    p_dedupe_key text,
    p_sender_id text,
    p_msg_type text,
    p_event_type text,        -- normalised: 'subscribe', 'unsubscribe', or the platform's name
    p_sent_at timestamptz,
    p_payload text,
    p_content text,           -- NULL: nothing a citizen asked (an event, an unknown type)
    p_platform_msg_id text,
    p_channel text,
    p_now timestamptz,
    p_open_window interval,
    p_quiet interval,         -- routing waits this long after the latest fragment
    p_ack_template text,      -- NULL: answer plain success
    p_reply_timestamp text,
    p_reply_nonce text
) RETURNS TABLE (
    inbox_event_id bigint, duplicate boolean, inquiry_id bigint, reference text, opened boolean,
    ack_text text, reply_timestamp text, reply_nonce text
)
LANGUAGE plpgsql
-- A retry waits on the first delivery's row; past this it gets an error (503) and WeChat, whose
-- budget is 5 s, retries again rather than hanging.
SET lock_timeout = '3s'
AS $fn$
DECLARE
    v_event_id bigint;
    v_inquiry_id bigint;
    v_reference text;
    v_last timestamptz;
    v_seq integer;
    v_number bigint;
    v_previous bigint;
    v_ack text;
BEGIN
    INSERT INTO inbox_event AS e (account_id, platform, dedupe_key, sender_id, msg_type,
                                  event_type, sent_at, payload, received_at)
    VALUES (p_account_id, p_platform, p_dedupe_key, p_sender_id, p_msg_type,
            p_event_type, p_sent_at, p_payload, p_now)
    ON CONFLICT (account_id, dedupe_key) DO NOTHING
    RETURNING e.id INTO v_event_id;

    IF v_event_id IS NULL THEN
        -- A retry: the first delivery has committed (we waited on its row); answer the same.
        RETURN QUERY
            SELECT e.id, true, e.inquiry_id, i.reference::text, false,
                   e.ack_text, e.reply_timestamp::text, e.reply_nonce::text
            FROM inbox_event e LEFT JOIN inquiry i ON i.id = e.inquiry_id
            WHERE e.account_id = p_account_id AND e.dedupe_key = p_dedupe_key;
        RETURN;
    END IF;

    INSERT INTO follower AS f (account_id, citizen_id, subscribed_at, unsubscribed_at, last_message_at)
    VALUES (p_account_id, p_sender_id,
            CASE WHEN p_event_type = 'subscribe' THEN p_sent_at END,
            CASE WHEN p_event_type = 'unsubscribe' THEN p_sent_at END,
            CASE WHEN p_content IS NOT NULL THEN p_sent_at END)
    ON CONFLICT (account_id, citizen_id) DO UPDATE SET
        subscribed_at = GREATEST(f.subscribed_at, EXCLUDED.subscribed_at),
        unsubscribed_at = GREATEST(f.unsubscribed_at, EXCLUDED.unsubscribed_at),
        last_message_at = GREATEST(f.last_message_at, EXCLUDED.last_message_at);

    IF p_content IS NULL THEN
        RETURN QUERY SELECT v_event_id, false, NULL::bigint, NULL::text, false,
                            NULL::text, NULL::text, NULL::text;
        RETURN;
    END IF;

    -- The follower row just upserted stays locked until commit: it is the per-citizen lock that
    -- makes two messages of one citizen take turns here. The partial unique index on open
    -- inquiries is the invariant behind it.
    IF p_channel = 'private_message' THEN
        SELECT i.id, i.reference, i.last_message_at INTO v_inquiry_id, v_reference, v_last
          FROM inquiry i
         WHERE i.account_id = p_account_id AND i.citizen_id = p_sender_id AND i.accepts_messages
           FOR NO KEY UPDATE;
        IF v_inquiry_id IS NOT NULL AND v_last < p_now - p_open_window
           AND NOT EXISTS (SELECT 1 FROM deadline_pause p
                             JOIN inquiry q ON q.id = p.inquiry_id
                            WHERE p.inquiry_id = v_inquiry_id
                              AND p.reason = 'awaiting_citizen'
                              AND p.status = 'running'
                              AND q.status IN ('new', 'assigned')) THEN
            UPDATE inquiry SET accepts_messages = false, updated_at = p_now WHERE id = v_inquiry_id;
            INSERT INTO inquiry_event (inquiry_id, at, actor, action, reason, details)
            VALUES (v_inquiry_id, p_now, 'system:intake', 'conversation_closed',
                    'no message within the conversation window; the next one opens a new inquiry',
                    jsonb_build_object('last_message_at', v_last, 'inbox_event_id', v_event_id));
            v_inquiry_id := NULL;
        END IF;
    END IF;

    IF v_inquiry_id IS NULL THEN
        -- A sequence, not a counter row: a row every new inquiry updates would be held locked
        -- until each commit and serialise all intake (measured: bench/intake.py).
        v_number := nextval(CASE p_platform WHEN 'wechat' THEN 'inquiry_reference_wechat'
                                            ELSE 'inquiry_reference_weibo' END);
        v_reference := CASE p_platform WHEN 'wechat' THEN 'WX' ELSE 'WB' END
                       || to_char(p_now AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDD')
                       || '-' || lpad(v_number::text, greatest(6, length(v_number::text)), '0');

        SELECT i.id INTO v_previous FROM inquiry i
         WHERE i.account_id = p_account_id AND i.citizen_id = p_sender_id
         ORDER BY i.id DESC LIMIT 1;

        INSERT INTO inquiry (reference, account_id, platform, channel, citizen_id, received_at,
                             kind, status, accepts_messages, last_message_at, message_count,
                             previous_inquiry_id, urgent, created_at, updated_at)
        VALUES (v_reference, p_account_id, p_platform, p_channel, p_sender_id, p_now,
                'other', 'new', p_channel = 'private_message', p_now, 1,
                v_previous, false, p_now, p_now)
        RETURNING id INTO v_inquiry_id;
        INSERT INTO inquiry_message (inquiry_id, seq, platform_msg_id, inbox_event_id, msg_type, content, sent_at)
        VALUES (v_inquiry_id, 1, p_platform_msg_id, v_event_id, p_msg_type, p_content, p_sent_at);
        INSERT INTO inquiry_event (inquiry_id, at, actor, action, to_status, reason, details)
        VALUES (v_inquiry_id, p_now, 'system:intake', 'created', 'new', '',
                jsonb_build_object('inbox_event_id', v_event_id, 'previous_inquiry_id', v_previous));
        -- The life-and-safety check runs at once; routing waits for the citizen to finish
        -- (a later fragment moves it back: see below).
        PERFORM procrastinate_defer_jobs_v1(ARRAY[
            ROW('routing', 'check_urgent', 0, NULL, NULL,
                jsonb_build_object('inquiry_id', v_inquiry_id, 'seq', 1),
                NULL)::procrastinate_job_to_defer_v1,
            ROW('routing', 'route_inquiry', 0, NULL, NULL,
                jsonb_build_object('inquiry_id', v_inquiry_id),
                p_now + p_quiet)::procrastinate_job_to_defer_v1]);
        v_ack := replace(p_ack_template, '{reference}', v_reference);
        UPDATE inbox_event SET inquiry_id = v_inquiry_id, ack_text = v_ack,
               reply_timestamp = CASE WHEN v_ack IS NOT NULL THEN p_reply_timestamp END,
               reply_nonce = CASE WHEN v_ack IS NOT NULL THEN p_reply_nonce END
         WHERE id = v_event_id;
        RETURN QUERY SELECT v_event_id, false, v_inquiry_id, v_reference, true, v_ack,
                            CASE WHEN v_ack IS NOT NULL THEN p_reply_timestamp END,
                            CASE WHEN v_ack IS NOT NULL THEN p_reply_nonce END;
        RETURN;
    END IF;

    UPDATE inquiry SET message_count = message_count + 1,
                       last_message_at = GREATEST(last_message_at, p_now), updated_at = p_now
     WHERE id = v_inquiry_id
    RETURNING message_count INTO v_seq;
    INSERT INTO inquiry_message (inquiry_id, seq, platform_msg_id, inbox_event_id, msg_type, content, sent_at)
    VALUES (v_inquiry_id, v_seq, p_platform_msg_id, v_event_id, p_msg_type, p_content, p_sent_at);
    INSERT INTO inquiry_event (inquiry_id, at, actor, action, reason, details)
    VALUES (v_inquiry_id, p_now, 'system:intake', 'message_appended', '',
            jsonb_build_object('inbox_event_id', v_event_id, 'seq', v_seq));
    PERFORM procrastinate_defer_jobs_v1(ARRAY[ROW(
        'routing', 'check_urgent', 0, NULL, NULL,
        jsonb_build_object('inquiry_id', v_inquiry_id, 'seq', v_seq), NULL
    )::procrastinate_job_to_defer_v1]);
    -- Routing (or, once routed, the re-routing check) waits a quiet period after this fragment:
    -- a waiting job moves back (over ix_procrastinate_jobs_route_todo); without one, one is
    -- queued. No queueing lock: a job retried meanwhile only makes a second, harmless run
    -- (routing decides once, re-routing only on a change). An unrouted inquiry waits at most
    -- ten quiet periods after its first message, whatever the citizen keeps sending.
    UPDATE procrastinate_jobs j
       SET scheduled_at = CASE WHEN i.routed_at IS NULL
                               THEN LEAST(p_now + p_quiet, i.received_at + 10 * p_quiet)
                               ELSE p_now + p_quiet END
      FROM inquiry i
     WHERE i.id = v_inquiry_id
       AND j.task_name = 'route_inquiry' AND j.status = 'todo'
       AND j.args ->> 'inquiry_id' = v_inquiry_id::text;
    IF NOT FOUND THEN
        PERFORM procrastinate_defer_jobs_v1(ARRAY[ROW(
            'routing', 'route_inquiry', 0, NULL, NULL,
            jsonb_build_object('inquiry_id', v_inquiry_id), p_now + p_quiet
        )::procrastinate_job_to_defer_v1]);
    END IF;
    UPDATE inbox_event SET inquiry_id = v_inquiry_id WHERE id = v_event_id;
    RETURN QUERY SELECT v_event_id, false, v_inquiry_id, v_reference, false,
                        NULL::text, NULL::text, NULL::text;
END
$fn$;
"""

OLD_SIGNATURE = (
    "govinbox_intake(integer, text, text, text, text, text, timestamptz, text, text, text, text,"
    " timestamptz, interval, text, text, text)"
)
NEW_SIGNATURE = (
    "govinbox_intake(integer, text, text, text, text, text, timestamptz, text, text, text, text,"
    " timestamptz, interval, interval, text, text, text)"
)

# Every hand-over so far, from the audit trail (once, here: afterwards the table is the truth).
# A return disclaims; so does a transfer by anyone but the account's owner (who dispatches).
BACKFILL = """
INSERT INTO inquiry_assignment (inquiry_id, department_id, since, until, decision, disclaims,
                                from_department_id, decided_by, person_id, reason)
SELECT inquiry_id, department_id, at, lead(at) OVER w, action,
       action = 'returned'
       OR (action = 'transferred' AND lag(department_id) OVER w IS DISTINCT FROM owner_id),
       lag(department_id) OVER w, actor, person_id, reason
  FROM (SELECT e.id, e.inquiry_id, d.id AS department_id, e.at, e.action, e.actor,
               e.person_id, e.reason, a.department_id AS owner_id
          FROM inquiry_event e
          JOIN inquiry i ON i.id = e.inquiry_id
          JOIN account a ON a.id = i.account_id
          JOIN department d ON d.code = CASE e.action
                   WHEN 'routed' THEN e.details ->> 'department'
                   WHEN 'arbitrated' THEN e.details ->> 'decision'
                   ELSE e.details ->> 'to' END
         WHERE e.action IN ('routed', 'transferred', 'returned', 'arbitrated')
           -- an office's referral names an entry, not a department
           AND NOT (e.action = 'arbitrated' AND i.status = 'referred')) AS handed
WINDOW w AS (PARTITION BY inquiry_id ORDER BY id)
"""
# Where the trail and the inquiry disagree (older events without a target, say), the inquiry's
# department_id is the truth: it becomes the current row.
RECONCILE = [
    """
    UPDATE inquiry_assignment c SET until = now()
      FROM inquiry i
     WHERE c.inquiry_id = i.id AND c.until IS NULL
       AND c.department_id IS DISTINCT FROM i.department_id
    """,
    """
    INSERT INTO inquiry_assignment (inquiry_id, department_id, since, until, decision,
                                    disclaims, from_department_id, decided_by, person_id, reason)
    SELECT i.id, i.department_id, now(), NULL, 'backfilled', false,
           (SELECT department_id FROM inquiry_assignment l
             WHERE l.inquiry_id = i.id ORDER BY l.id DESC LIMIT 1),
           'system: migration 0017', NULL, 'the holder when the history began'
      FROM inquiry i
     WHERE i.department_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM inquiry_assignment c
                        WHERE c.inquiry_id = i.id AND c.until IS NULL)
    """,
]
# Instances still running the previous release call the old signature until they are replaced:
# for this release it stays, calling the new function with the default quiet period. A later
# migration drops it.
OLD_SIGNATURE_WRAPPER = """
CREATE FUNCTION govinbox_intake(
    p_account_id integer, p_platform text, p_dedupe_key text, p_sender_id text,
    p_msg_type text, p_event_type text, p_sent_at timestamptz, p_payload text, p_content text,
    p_platform_msg_id text, p_channel text, p_now timestamptz, p_open_window interval,
    p_ack_template text, p_reply_timestamp text, p_reply_nonce text
) RETURNS TABLE (
    inbox_event_id bigint, duplicate boolean, inquiry_id bigint, reference text, opened boolean,
    ack_text text, reply_timestamp text, reply_nonce text
)
LANGUAGE sql AS $fn$
    SELECT * FROM govinbox_intake(p_account_id, p_platform, p_dedupe_key, p_sender_id,
                                  p_msg_type, p_event_type, p_sent_at, p_payload, p_content,
                                  p_platform_msg_id, p_channel, p_now, p_open_window,
                                  interval '20 seconds', p_ack_template, p_reply_timestamp,
                                  p_reply_nonce)
$fn$
"""
# Intake moves an inquiry's waiting routing job back on every fragment: find it by index.
ROUTE_TODO_INDEX = (
    "CREATE INDEX ix_procrastinate_jobs_route_todo ON procrastinate_jobs"
    " ((args ->> 'inquiry_id')) WHERE task_name = 'route_inquiry' AND status = 'todo'"
)


def _intake_function_of_0015() -> str:
    path = Path(__file__).with_name("2026-12-01_2300_deadline_clock.py")
    spec = importlib.util.spec_from_file_location("govinbox_migration_0015", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    landed: str = module._intake_function_of_0013()
    return landed.replace(module.WINDOW, module.WINDOW_UNLESS_AWAITED).replace(
        module.LOCK, module.LOCK_NO_KEY
    )


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_table(
        "inquiry_assignment",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("inquiry_id", sa.BigInteger(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision", sa.String(length=24), nullable=False),
        sa.Column("disclaims", sa.Boolean(), nullable=False),
        sa.Column("from_department_id", sa.Integer(), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["department.id"],
            name=op.f("fk_inquiry_assignment_department_id"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["from_department_id"],
            ["department.id"],
            name=op.f("fk_inquiry_assignment_from_department_id"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["inquiry_id"],
            ["inquiry.id"],
            name=op.f("fk_inquiry_assignment_inquiry_id"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_inquiry_assignment_person_id"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inquiry_assignment")),
    )
    op.create_index(op.f("ix_inquiry_assignment_inquiry_id"), "inquiry_assignment", ["inquiry_id"])
    op.create_index(
        "uq_inquiry_assignment_current",
        "inquiry_assignment",
        ["inquiry_id"],
        unique=True,
        postgresql_where=sa.text("until IS NULL"),
    )
    op.execute(BACKFILL)
    for statement in RECONCILE:
        op.execute(statement)
    op.execute(ROUTE_TODO_INDEX)
    op.execute(f"DROP FUNCTION {OLD_SIGNATURE}")
    op.execute(INTAKE_FUNCTION)
    op.execute(OLD_SIGNATURE_WRAPPER)


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute(f"DROP FUNCTION {OLD_SIGNATURE}")  # the wrapper
    op.execute(f"DROP FUNCTION {NEW_SIGNATURE}")
    op.execute("DROP INDEX ix_procrastinate_jobs_route_todo")
    op.execute(_intake_function_of_0015().replace("CREATE OR REPLACE FUNCTION", "CREATE FUNCTION"))
    op.drop_index("uq_inquiry_assignment_current", table_name="inquiry_assignment")
    op.drop_index(op.f("ix_inquiry_assignment_inquiry_id"), table_name="inquiry_assignment")
    op.drop_table("inquiry_assignment")
