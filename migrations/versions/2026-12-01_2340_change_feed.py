"""the change feed: every inquiry event, hand-over and escalation writes an inquiry_change row in
its own transaction (triggers), with the writing transaction's id, so a feed never skips a
change that committed late

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01 23:40:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = """
CREATE TABLE inquiry_change (
    id bigserial CONSTRAINT pk_inquiry_change PRIMARY KEY,
    -- The writing transaction: the feed orders by it and only hands out changes of
    -- transactions older than every one still in flight (pg_snapshot_xmin).
    xact xid8 NOT NULL DEFAULT pg_current_xact_id(),
    inquiry_id bigint NOT NULL
        CONSTRAINT fk_inquiry_change_inquiry_id REFERENCES inquiry (id) ON DELETE RESTRICT,
    -- Whose view it concerns: the holder then, or (left_view) the one it left, or the
    -- department an escalation gave read access to.
    department_id integer
        CONSTRAINT fk_inquiry_change_department_id REFERENCES department (id) ON DELETE RESTRICT,
    kind varchar(32) NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_inquiry_change_department_xact ON inquiry_change (department_id, xact, id);
CREATE INDEX ix_inquiry_change_xact ON inquiry_change (xact, id);
CREATE INDEX ix_inquiry_change_inquiry ON inquiry_change (inquiry_id, id);

CREATE FUNCTION govinbox_change_from_event() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO inquiry_change (inquiry_id, department_id, kind, at)
    SELECT NEW.inquiry_id, i.department_id, NEW.action, NEW.at
      FROM inquiry i WHERE i.id = NEW.inquiry_id;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER inquiry_event_change AFTER INSERT ON inquiry_event
    FOR EACH ROW EXECUTE FUNCTION govinbox_change_from_event();

CREATE FUNCTION govinbox_change_from_assignment() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF NEW.from_department_id IS NOT NULL AND NEW.from_department_id <> NEW.department_id THEN
        INSERT INTO inquiry_change (inquiry_id, department_id, kind, at)
        VALUES (NEW.inquiry_id, NEW.from_department_id, 'left_view', NEW.since);
    END IF;
    INSERT INTO inquiry_change (inquiry_id, department_id, kind, at)
    VALUES (NEW.inquiry_id, NEW.department_id, NEW.decision, NEW.since);
    RETURN NULL;
END
$fn$;
CREATE TRIGGER inquiry_assignment_change AFTER INSERT ON inquiry_assignment
    FOR EACH ROW EXECUTE FUNCTION govinbox_change_from_assignment();

CREATE FUNCTION govinbox_change_from_alert() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF NEW.kind = 'escalation' AND NEW.department_id IS NOT NULL THEN
        INSERT INTO inquiry_change (inquiry_id, department_id, kind, at)
        VALUES (NEW.inquiry_id, NEW.department_id, 'escalated_to_you', NEW.fired_at);
    END IF;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER deadline_alert_change AFTER INSERT ON deadline_alert
    FOR EACH ROW EXECUTE FUNCTION govinbox_change_from_alert();
"""

DOWNGRADE = """
DROP TRIGGER deadline_alert_change ON deadline_alert;
DROP FUNCTION govinbox_change_from_alert();
DROP TRIGGER inquiry_assignment_change ON inquiry_assignment;
DROP FUNCTION govinbox_change_from_assignment();
DROP TRIGGER inquiry_event_change ON inquiry_event;
DROP FUNCTION govinbox_change_from_event();
DROP TABLE inquiry_change;
"""


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute(DOWNGRADE)
