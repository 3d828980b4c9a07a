-- Portable schema (see src/store/mod.rs): ids are UUID v7 text, times are
-- Unix milliseconds (BIGINT), so one query layer serves SQLite and PostgreSQL.

-- Instance-wide secrets (CSRF key), generated once and shared by every instance.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE subscribers (
    id              TEXT PRIMARY KEY,
    -- As typed, for display (D-14).
    email           TEXT NOT NULL,
    -- Trimmed, domain lower-cased and IDNA-encoded: the one identity of a reader (D-14).
    email_canonical TEXT NOT NULL UNIQUE,
    name            TEXT,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'confirmed')),
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    confirmed_at    BIGINT,
    -- The confirmation email whose link was followed: its Message-ID and
    -- template version are the double-opt-in evidence (D-13).
    confirmed_via   TEXT
);

-- Created at confirmation; the password arrives with a set-password link (A-01).
CREATE TABLE accounts (
    subscriber_id TEXT PRIMARY KEY REFERENCES subscribers (id) ON DELETE CASCADE,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT,
    created_at    BIGINT NOT NULL
);

-- Immutable wording versions; the id is the SHA-256 of the text (G-05).
CREATE TABLE consent_texts (
    id         TEXT PRIMARY KEY,
    purpose    TEXT NOT NULL,
    body       TEXT NOT NULL,
    language   TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Append-only (G-06): current consent is the latest event per purpose.
-- IP and user agent live only here, on the events that prove opt-in (G-07).
CREATE TABLE consent_events (
    id            TEXT PRIMARY KEY,
    -- Whose consent: a subscriber's id, a browser's pseudonymous cookie-consent
    -- id, or, after erasure, only a keyed hash of the address (G-13). No
    -- foreign key, so proof of consent can outlive the subscriber row.
    subject_kind  TEXT NOT NULL CHECK (subject_kind IN ('subscriber', 'browser', 'erased')),
    subject       TEXT NOT NULL,
    -- newsletter, or cookies.<category>
    purpose       TEXT NOT NULL,
    action        TEXT NOT NULL CHECK (action IN ('granted', 'confirmed', 'withdrawn')),
    text_id       TEXT NOT NULL REFERENCES consent_texts (id),
    source        TEXT NOT NULL,
    -- Where exactly: an import file's name (G-04 "how").
    source_detail TEXT,
    -- The privacy notice in force when the consent was given (G-04 "what they were told").
    notice_id     TEXT REFERENCES consent_texts (id),
    ip            TEXT,
    user_agent    TEXT,
    created_at    BIGINT NOT NULL
);
-- "What did this reader last say about this purpose?"
CREATE INDEX consent_events_by_subject ON consent_events (subject, purpose, created_at);

-- Durable mail: written in the transaction that caused it, sent by workers.
CREATE TABLE outbox (
    id               TEXT PRIMARY KEY,
    template         TEXT NOT NULL,
    subscriber_id    TEXT REFERENCES subscribers (id) ON DELETE CASCADE,
    recipient        TEXT NOT NULL,
    -- Template variables as JSON. It can hold a tokenised link, so it is
    -- emptied once the message is sent or has failed for good.
    context          TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'cancelled')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    -- A claim by one worker; an expired lease lets another worker take the row.
    lease_owner      TEXT,
    lease_until      BIGINT,
    last_error       TEXT,
    -- Fixed when queued, so retries carry the same Message-ID.
    message_id       TEXT NOT NULL,
    template_version TEXT,
    created_at       BIGINT NOT NULL,
    sent_at          BIGINT
);
-- Workers look for due pending rows.
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
-- Rate limits count a reader's recent emails of one kind (D-08, D-09).
CREATE INDEX outbox_by_subscriber ON outbox (subscriber_id, template, created_at);

-- Emailed secrets, stored only as SHA-256 hashes (D-03), one purpose each (D-04).
CREATE TABLE tokens (
    hash          TEXT PRIMARY KEY,
    subscriber_id TEXT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    purpose       TEXT NOT NULL,
    -- The email that carried it (evidence for D-13).
    outbox_id     TEXT REFERENCES outbox (id) ON DELETE SET NULL,
    -- The digest wording this link confirms, if the request that sent it
    -- ticked the box: only the mailbox owner's click turns a grant into
    -- consent, never someone else's signup (L-02).
    consent_text_id TEXT REFERENCES consent_texts (id),
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    used_at       BIGINT
);
-- Issuing a token voids the reader's older ones of the same purpose (D-05).
CREATE INDEX tokens_by_subscriber ON tokens (subscriber_id, purpose);
