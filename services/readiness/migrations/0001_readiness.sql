-- Reference data: the assessments and Employment 101 modules the portal offers
-- (admin-editable; a record for a code not in the catalogue is rejected with a reason).
CREATE TABLE catalogue_assessments (
    code        text PRIMARY KEY,
    name        text NOT NULL,
    description text,
    position    integer NOT NULL DEFAULT 0,
    active      boolean NOT NULL DEFAULT true,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE catalogue_modules (
    code        text PRIMARY KEY,
    name        text NOT NULL,
    description text,
    position    integer NOT NULL DEFAULT 0,
    active      boolean NOT NULL DEFAULT true,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO catalogue_assessments (code, name, description, position) VALUES
  ('career-cluster', 'Career Cluster Assessment',
   'Which of the 16 career clusters match the customer''s interests.', 1),
  ('work-interest', 'Work Interest Assessment',
   'The kinds of work activities the customer likes (interest profile).', 2),
  ('work-values', 'Work Values Assessment',
   'What matters most to the customer in a job (achievement, independence, support...).', 3),
  ('skills', 'Skills Assessment',
   'The customer''s rating of their own transferable skills.', 4);

-- Employment 101: the Essential Employability Skills modules (the four areas of the
-- Illinois Essential Employability Skills Framework).
INSERT INTO catalogue_modules (code, name, description, position) VALUES
  ('ees-personal-ethic', 'Essential Employability Skills: Personal Ethic',
   'Integrity, respect, perseverance, positive attitude.', 1),
  ('ees-work-ethic', 'Essential Employability Skills: Work Ethic',
   'Dependability, professionalism, accountability, initiative.', 2),
  ('ees-communication', 'Essential Employability Skills: Communication',
   'Active listening, speaking, writing, non-verbal communication.', 3),
  ('ees-teamwork', 'Essential Employability Skills: Teamwork',
   'Cooperation, conflict resolution, diversity, critical thinking in a team.', 4);

-- Every accepted record, of the four kinds; record_id is the producer's id, so a record
-- sent twice is stored once, and a newer version (later occurred_at) replaces an older.
-- account_id is where the record belongs now (merges move it); original_account_id is
-- the account the producer named (an unmerge moves it back).
CREATE TABLE readiness_records (
    record_id           text PRIMARY KEY,
    kind                text NOT NULL,
    account_id          uuid NOT NULL,
    original_account_id uuid NOT NULL,
    occurred_at         timestamptz NOT NULL,
    code                text,          -- assessment_code or module_code
    completed_at        timestamptz,   -- assessments, modules
    data                jsonb NOT NULL,
    source              text NOT NULL,
    received_at         timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 90);

CREATE INDEX readiness_records_account ON readiness_records (account_id, kind);
CREATE INDEX readiness_records_original ON readiness_records (original_account_id)
    WHERE original_account_id <> account_id;
-- the Assessment Dashboard: per member, which assessments and when
CREATE INDEX readiness_records_assessments ON readiness_records (account_id, code, completed_at)
    WHERE kind = 'assessment_completed';

-- Records that could not be accepted, with the reason (never stopping the rest).
CREATE TABLE rejected_records (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source      text NOT NULL,
    line        integer,
    record_id   text,
    kind        text,
    reason      text NOT NULL,
    raw         text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Groups and membership as groups' events tell them (the dashboard needs no call per member).
CREATE TABLE groups (
    group_id        uuid PRIMARY KEY,
    parent_group_id uuid,
    name            text
);
CREATE INDEX groups_parent ON groups (parent_group_id);

CREATE TABLE group_members (
    group_id    uuid NOT NULL,
    customer_id uuid NOT NULL,
    since       timestamptz NOT NULL,
    PRIMARY KEY (group_id, customer_id)
);
CREATE INDEX group_members_customer ON group_members (customer_id);

-- Names for the dashboard's people list (identity's account events).
CREATE TABLE customers (
    id         uuid PRIMARY KEY,
    first_name text,
    last_name  text
);

-- Merges: merged account -> the account it was merged into (into_id) and the surviving
-- account at the end of the chain (survivor_id), where its records are kept.
CREATE TABLE account_merges (
    merged_id   uuid PRIMARY KEY,
    into_id     uuid NOT NULL,
    survivor_id uuid NOT NULL,
    merged_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX account_merges_into ON account_merges (into_id);
CREATE INDEX account_merges_survivor ON account_merges (survivor_id);
