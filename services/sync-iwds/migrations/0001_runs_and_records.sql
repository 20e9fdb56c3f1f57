-- Sync runs, the last accepted IWDS state, and the staging tables a run is diffed from.

CREATE TABLE iwds_runs (
    id           uuid PRIMARY KEY,
    feed         text NOT NULL CHECK (feed IN ('participants', 'staff-access')),
    mode         text NOT NULL CHECK (mode IN ('full', 'partial')),
    kind         text NOT NULL CHECK (kind IN ('nightly', 'stream', 'manual')),
    source       text NOT NULL,             -- cli, http, topic
    status       text NOT NULL CHECK (status IN ('running', 'done', 'held', 'refused', 'discarded')),
    -- reading: the file is being staged; staged: every row is in staging, ready to apply
    phase        text NOT NULL DEFAULT 'reading' CHECK (phase IN ('reading', 'staged', 'applied')),
    file_path    text,                      -- a CLI run's file: redone from it after a crash
    staged_rows  integer NOT NULL DEFAULT 0,
    counts       jsonb NOT NULL DEFAULT '{}',
    message      text,                      -- why refused or held (never a row's content)
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz
);
CREATE INDEX iwds_runs_newest ON iwds_runs (started_at DESC, id DESC);

CREATE TABLE iwds_rejected (
    run_id  uuid NOT NULL REFERENCES iwds_runs (id) ON DELETE CASCADE,
    line    integer NOT NULL,
    iwds_id text NOT NULL,
    reason  text NOT NULL
);
CREATE INDEX iwds_rejected_run ON iwds_rejected (run_id, line);

-- The last accepted version of each participant record; hash excludes updated_at.
CREATE TABLE iwds_people (
    iwds_person_id        text PRIMARY KEY,
    worknet_account_id    uuid,           -- as IWDS sent it
    linked_account_id     uuid,           -- found by the matcher or set by an admin
    linked_by             text,           -- matcher | admin
    lwia_code             text NOT NULL,
    office_code           text,
    case_manager_staff_id text,
    first_name            text,
    last_name             text,
    date_of_birth         date,
    program               text,
    status                text NOT NULL,
    exit_date             date,
    updated_at            timestamptz NOT NULL,
    hash                  bytea NOT NULL,
    link_tried_at         timestamptz
);
CREATE INDEX iwds_people_unlinked ON iwds_people (iwds_person_id)
    WHERE worknet_account_id IS NULL AND linked_account_id IS NULL;

-- A staff member's current set of grants (sorted JSON array) and its hash.
CREATE TABLE iwds_staff (
    iwds_staff_id    text PRIMARY KEY,
    worknet_username text,
    grants           jsonb NOT NULL,
    hash             bytea NOT NULL
);

-- Staging: unlogged for speed; a run's staged_rows tells whether its rows survived.
CREATE UNLOGGED TABLE iwds_stage_people (
    run_id                uuid NOT NULL,
    line                  integer NOT NULL,
    iwds_person_id        text NOT NULL,
    worknet_account_id    uuid,
    lwia_code             text NOT NULL,
    office_code           text,
    case_manager_staff_id text,
    first_name            text,
    last_name             text,
    date_of_birth         date,
    program               text,
    status                text NOT NULL,
    exit_date             date,
    updated_at            timestamptz NOT NULL,
    hash                  bytea NOT NULL
);

CREATE UNLOGGED TABLE iwds_stage_grants (
    run_id           uuid NOT NULL,
    line             integer NOT NULL,
    iwds_staff_id    text NOT NULL,
    worknet_username text,
    level            text NOT NULL,
    lwia_code        text,
    office_code      text
);
