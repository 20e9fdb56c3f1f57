-- The relay no longer leases and marks each row: it reads the outbox in
-- (transaction id, id) order, only rows whose transaction ended before every
-- transaction still running began (below the snapshot's xmin, so nothing that
-- commits late can fall behind it), and keeps its place in one cursor row.
--
-- Existing rows read as transaction 1: before every new row, in id order.
-- (A constant default: no table rewrite. New rows take their own transaction id.)
ALTER TABLE outbox ADD COLUMN xid xid8 NOT NULL DEFAULT '1'::xid8;
ALTER TABLE outbox ALTER COLUMN xid SET DEFAULT pg_current_xact_id();
CREATE INDEX outbox_order ON outbox (xid, id);

-- The old relay's indexes: one entry per row written, none needed now.
-- (published_at is still filled in, in bulk while the relay is idle, for people
-- and tests that look at it; it is indexed nowhere, so that update is HOT.)
DROP INDEX outbox_unpublished;
DROP INDEX outbox_unpublished_subject;
DROP INDEX outbox_published;

CREATE TABLE outbox_cursor (
    name          text PRIMARY KEY,
    broker_epoch  text,              -- the broker log the rows up to the cursor went into
    xid           xid8   NOT NULL,   -- last row sent: (xid, id)
    id            bigint NOT NULL,
    marked_xid    xid8   NOT NULL,   -- last row whose published_at is filled in
    marked_id     bigint NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Start after the rows the old relay published, at the first row it had not:
-- a row published out of id order after that one is sent again (consumers are
-- idempotent); none is skipped. The epoch is the last one rows went into, so a
-- broker that kept its log is not sent everything again.
INSERT INTO outbox_cursor (name, broker_epoch, xid, id, marked_xid, marked_id)
SELECT 'relay',
       (SELECT broker_epoch FROM outbox WHERE published_at IS NOT NULL
         ORDER BY published_at DESC LIMIT 1),
       '1'::xid8, start, '1'::xid8, start
FROM (SELECT coalesce((SELECT min(id) - 1 FROM outbox WHERE published_at IS NULL),
                      (SELECT max(id) FROM outbox), 0) AS start) s;
