-- Add Customer's claim on an IDOC number while its submit asks identity. No database
-- connection is held across those calls (a slow identity would starve the pool), so
-- the claim is a row: a second intake of the number waits for the row to go, and a
-- claim whose intake died is taken over once it expires.
CREATE TABLE idoc_claims (
    idoc_number text PRIMARY KEY,
    token       uuid NOT NULL,
    expires_at  timestamptz NOT NULL
);
