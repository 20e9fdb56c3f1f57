-- Messages staff sent to a group from the pages: groups answers 202 with the message id
-- and keeps no list of them, and notify answers a message's status only by its id, so
-- the group page remembers here which messages it sent (no body, no recipients).
-- (Numbered 0020 so that other page features can take 0002.. without a clash.)
CREATE TABLE group_messages (
    message_id  uuid PRIMARY KEY,
    group_id    uuid NOT NULL,
    staff_id    uuid NOT NULL,
    subject     text NOT NULL,
    recipients  integer NOT NULL,
    sent_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX group_messages_by_group ON group_messages (group_id, sent_at DESC);
