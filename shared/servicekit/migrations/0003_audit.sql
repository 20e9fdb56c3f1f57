-- The append-only audit log every service writes through shared/servicekit/audit.py:
-- who (actor), did what (action), to whom or what (subject), under which request.
-- Created only where a service's own migrations did not already make one.
DO $$
BEGIN
    IF to_regclass('audit_log') IS NULL THEN
        CREATE TABLE audit_log (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at          timestamptz NOT NULL DEFAULT now(),
            actor_id    uuid,
            actor_kind  text NOT NULL CHECK (actor_kind IN ('customer', 'staff', 'system', 'client')),
            action      text NOT NULL,
            subject_id  uuid,
            request_id  text,
            details     jsonb NOT NULL DEFAULT '{}'
        );
        CREATE INDEX audit_log_subject ON audit_log (subject_id, at);
        CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $f$
        BEGIN
            RAISE EXCEPTION 'audit_log is append-only';
        END $f$;
        CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
            FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
    END IF;
END $$;
