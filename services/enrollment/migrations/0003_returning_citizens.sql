-- Returning Citizens enrollments: the Add Customer form's facts beside the
-- enrollment. No SSN is ever stored here; offense data stays in this service
-- (it is in no event) and every view of it is audited.

CREATE TABLE returning_citizens (
    enrollment_id    uuid PRIMARY KEY REFERENCES enrollments (id),
    idoc_number      text NOT NULL CHECK (idoc_number ~ '^[A-Z][0-9]{5}$'),
    first_name       text NOT NULL,
    last_name        text NOT NULL,
    date_of_birth    date NOT NULL,
    institution      text NOT NULL,
    institution_kind text NOT NULL GENERATED ALWAYS AS ('institutions') STORED,
    counties         text[] NOT NULL CHECK (cardinality(counties) >= 1),
    msr_date         date NOT NULL,
    msr_county       text,
    msr_county_kind  text NOT NULL GENERATED ALWAYS AS ('counties') STORED,
    enrollment_date  date NOT NULL,
    added_by         uuid NOT NULL,
    -- false once the enrollment is exited: one IDOC number, one open enrollment
    open             boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (institution_kind, institution) REFERENCES reference_entries (kind, code),
    FOREIGN KEY (msr_county_kind, msr_county) REFERENCES reference_entries (kind, code)
);
CREATE UNIQUE INDEX returning_citizens_open_idoc ON returning_citizens (idoc_number) WHERE open;
CREATE INDEX returning_citizens_idoc ON returning_citizens (idoc_number);
CREATE INDEX returning_citizens_last_name
    ON returning_citizens (lower(last_name) text_pattern_ops);
CREATE INDEX returning_citizens_first_name
    ON returning_citizens (lower(first_name) text_pattern_ops);
CREATE INDEX returning_citizens_name_sort
    ON returning_citizens (lower(last_name), lower(first_name), enrollment_id);
CREATE INDEX returning_citizens_enrollment_date ON returning_citizens (enrollment_date, enrollment_id);
CREATE INDEX returning_citizens_msr_date ON returning_citizens (msr_date, enrollment_id);
CREATE INDEX returning_citizens_created ON returning_citizens (created_at, enrollment_id);

CREATE TABLE returning_citizen_offenses (
    enrollment_id uuid NOT NULL REFERENCES returning_citizens (enrollment_id),
    offense       text NOT NULL,
    offense_kind  text NOT NULL GENERATED ALWAYS AS ('offenses') STORED,
    position      integer NOT NULL,
    PRIMARY KEY (enrollment_id, offense),
    FOREIGN KEY (offense_kind, offense) REFERENCES reference_entries (kind, code)
);
