-- What a reader wants, apart from consent (which lives in consent_events).
CREATE TABLE preferences (
    subscriber_id TEXT PRIMARY KEY REFERENCES subscribers (id) ON DELETE CASCADE,
    frequency     TEXT NOT NULL DEFAULT 'daily' CHECK (frequency IN ('daily', 'weekly')),
    -- 1 while the reader has paused the digest; consent is untouched.
    paused        BIGINT NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    updated_at    BIGINT NOT NULL
);

-- Article categories a reader wants in the digest; none means all.
CREATE TABLE preference_topics (
    subscriber_id TEXT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    category      TEXT NOT NULL,
    PRIMARY KEY (subscriber_id, category)
);

-- Addresses never to be mailed again unless they opt in afresh, kept only as
-- a keyed hash (HMAC-SHA256 with an instance secret), so the list holds no
-- address (G-13, E-24).
CREATE TABLE suppressions (
    email_hash TEXT PRIMARY KEY,
    reason     TEXT NOT NULL CHECK (reason IN ('erased', 'hard_bounce', 'complaint')),
    created_at BIGINT NOT NULL
);
