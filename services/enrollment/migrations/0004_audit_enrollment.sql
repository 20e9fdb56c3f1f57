-- An audit row about an enrollment names it beside the customer (the kit's subject_id).
ALTER TABLE audit_log ADD COLUMN enrollment_id uuid;
CREATE INDEX audit_log_enrollment ON audit_log (enrollment_id, at);
