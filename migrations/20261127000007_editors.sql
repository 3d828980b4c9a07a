-- Editors run the publication (S-10): separate from readers, with a role.
CREATE TABLE editors (
    id            TEXT PRIMARY KEY,
    -- Canonical address (D-14); the one identity of an editor.
    email         TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('editor', 'admin')),
    password_hash TEXT,
    -- The single-use set-password link `editor add` prints; only its
    -- SHA-256 is kept, and a new link replaces the old one.
    password_link_hash       TEXT UNIQUE,
    password_link_expires_at BIGINT,
    created_at    BIGINT NOT NULL
);

-- Editors' sessions, like readers' (A-08): the cookie holds the secret,
-- the table its SHA-256.
CREATE TABLE editor_sessions (
    id_hash      TEXT PRIMARY KEY,
    editor_id    TEXT NOT NULL REFERENCES editors (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX editor_sessions_by_editor ON editor_sessions (editor_id);

-- Bearer tokens for /api/v1, shown once, kept as SHA-256, revocable.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('editor', 'admin')),
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
-- A name belongs to one live token; a revoked token's name may be reused.
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;

-- Who did what, when (S-10, G-17). `actor` is "editor:<email>",
-- "token:<name>" or "cli"; `detail` is JSON.
CREATE TABLE audit_log (
    id     TEXT PRIMARY KEY,
    at     BIGINT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_log_by_time ON audit_log (at);

-- A POST retried with the same Idempotency-Key gets the first answer
-- again instead of publishing or sending twice. Kept for a day.
CREATE TABLE idempotency_keys (
    actor        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       INTEGER NOT NULL,
    body         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (actor, key)
);

-- Editors write drafts; readers, feeds and digests see only published
-- articles. Everything stored before was published. A draft never
-- published has published_at = 0; it is dated when first published.
ALTER TABLE articles ADD COLUMN draft INTEGER NOT NULL DEFAULT 0;

-- Feeds editors add in the console, beside those in config.toml. Editors
-- cannot allow private addresses (S-04): only the operator's config can.
CREATE TABLE editor_feeds (
    url        TEXT PRIMARY KEY,
    -- JSON array of category names.
    categories TEXT NOT NULL,
    poll       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
