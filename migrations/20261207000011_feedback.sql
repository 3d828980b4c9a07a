-- What the mail world reported about a message after it left: a bounce or
-- a complaint, from the SMTP conversation, the bounce mailbox or a
-- provider's webhook. Erased with its reader.
CREATE TABLE feedback_events (
    id            TEXT PRIMARY KEY,
    -- The source and its own id for the event (or a digest of the report
    -- when it has none): the same report received twice is stored once,
    -- and acted on once.
    event_key     TEXT NOT NULL UNIQUE,
    source        TEXT NOT NULL CHECK (source IN ('smtp', 'mailbox', 'ses', 'postmark', 'mailgun', 'sendgrid')),
    kind          TEXT NOT NULL CHECK (kind IN ('hard_bounce', 'soft_bounce', 'complaint')),
    subscriber_id TEXT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    -- The digest it was about, when it was one.
    campaign_id   TEXT REFERENCES campaigns (id) ON DELETE SET NULL,
    -- As reported: an enhanced status code, a provider's bounce type, a
    -- complaint's feedback type.
    status        TEXT NOT NULL,
    -- The server's words, addresses masked.
    detail        TEXT NOT NULL,
    occurred_at   BIGINT NOT NULL,
    received_at   BIGINT NOT NULL
);
-- A reader's events, newest last: the console, the export, the soft count.
CREATE INDEX feedback_by_subscriber ON feedback_events (subscriber_id, occurred_at);
-- A campaign's bounce and complaint rates.
CREATE INDEX feedback_by_campaign ON feedback_events (campaign_id, kind);
-- Rates over the last 30 days.
CREATE INDEX feedback_by_time ON feedback_events (occurred_at, kind);

-- One read of the bounce mailbox per poll interval across instances: the
-- first to insert the interval's number reads it.
CREATE TABLE mailbox_polls (
    slot       BIGINT PRIMARY KEY,
    polled_at  BIGINT NOT NULL
);

-- Webhook requests already accepted (Mailgun's token, or a digest of a
-- signed body), so a replayed request is refused; kept a day, past every
-- signature's time limit.
CREATE TABLE webhook_replays (
    token       TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL
);

-- SNS signing certificates, fetched over HTTPS from the provider's own host
-- and shared by every instance.
CREATE TABLE webhook_certificates (
    url        TEXT PRIMARY KEY,
    pem        TEXT NOT NULL,
    fetched_at BIGINT NOT NULL
);

-- One suppression list, for every reason an address is no longer mailed:
-- rebuilt with the new reasons (SQLite cannot change a CHECK), the reader
-- it suppresses while they exist, and the report or editor that caused it.
-- It replaces subscribers.suppressed_at, whose rows are copied here at the next
-- start (their keyed hashes need the suppression key, which the database
-- does not hold: privacy::move_legacy_suppressions).
CREATE TABLE suppressions_list (
    email_hash    TEXT PRIMARY KEY,
    reason        TEXT NOT NULL CHECK (reason IN ('erased', 'hard_bounce', 'soft_bounces', 'complaint', 'manual')),
    subscriber_id TEXT REFERENCES subscribers (id) ON DELETE SET NULL,
    event_id      TEXT REFERENCES feedback_events (id) ON DELETE SET NULL,
    -- An editor's note on a manual suppression.
    note          TEXT,
    created_at    BIGINT NOT NULL
);
INSERT INTO suppressions_list (email_hash, reason, created_at)
    SELECT email_hash, reason, created_at FROM suppressions;
DROP TABLE suppressions;
ALTER TABLE suppressions_list RENAME TO suppressions;
-- "Is this reader suppressed?", asked for every digest claimed.
CREATE UNIQUE INDEX suppressions_by_subscriber ON suppressions (subscriber_id);
CREATE INDEX suppressions_by_time ON suppressions (created_at);
