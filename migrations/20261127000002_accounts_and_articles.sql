-- Server-side sessions (A-08). The cookie holds a 256-bit secret; only its
-- SHA-256 is stored, so a leaked table signs nobody in.
CREATE TABLE sessions (
    id_hash       TEXT PRIMARY KEY,
    subscriber_id TEXT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    created_at    BIGINT NOT NULL,
    -- Idle timeout: refreshed at most once a minute, not on every request.
    last_seen_at  BIGINT NOT NULL,
    -- Absolute timeout, fixed at sign-in.
    expires_at    BIGINT NOT NULL
);
-- Sign-out everywhere and password changes revoke a reader's sessions.
CREATE INDEX sessions_by_subscriber ON sessions (subscriber_id);

CREATE TABLE articles (
    id            TEXT PRIMARY KEY,
    slug          TEXT NOT NULL UNIQUE,
    title         TEXT NOT NULL,
    teaser        TEXT NOT NULL,
    body_markdown TEXT NOT NULL,
    -- Rendered and sanitised once, when written (E-28), so pages and emails
    -- never handle unsanitised HTML.
    body_html     TEXT NOT NULL,
    author        TEXT NOT NULL,
    published_at  BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
-- Lists and digests read the newest published articles first.
CREATE INDEX articles_by_published ON articles (published_at);

CREATE TABLE article_categories (
    article_id TEXT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    category   TEXT NOT NULL,
    PRIMARY KEY (article_id, category)
);
-- Readers' topics select articles by category.
CREATE INDEX article_categories_by_category ON article_categories (category);

-- Sign-in finds accounts by address regardless of case.
CREATE INDEX accounts_by_lower_username ON accounts (lower(username));
