-- Set by a hard bounce (E-24): the reader is never selected or sent to again.
ALTER TABLE subscribers ADD COLUMN suppressed_at BIGINT;

-- Per schedule: the articles published up to `covered_until` are in a digest
-- already (the watermark); `last_fire_at` is the last cron time acted on.
CREATE TABLE digest_schedules (
    name          TEXT PRIMARY KEY,
    covered_until BIGINT NOT NULL,
    last_fire_at  BIGINT NOT NULL
);

CREATE TABLE campaigns (
    id           TEXT PRIMARY KEY,
    schedule     TEXT NOT NULL,
    -- daily:2026-11-27, weekly:2026-W48, or now:<id> for an editor's send.
    -- Unique, so instances firing together create one campaign (E-27's sibling).
    period_key   TEXT NOT NULL UNIQUE,
    status       TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'paused', 'done', 'cancelled')),
    subject      TEXT NOT NULL,
    covers_from  BIGINT NOT NULL,
    covers_until BIGINT NOT NULL,
    recipients   BIGINT NOT NULL DEFAULT 0,
    sent         BIGINT NOT NULL DEFAULT 0,
    failed       BIGINT NOT NULL DEFAULT 0,
    cancelled    BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    finished_at  BIGINT
);

-- The articles a campaign covers, fixed when it is created.
CREATE TABLE campaign_articles (
    campaign_id TEXT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    article_id  TEXT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    PRIMARY KEY (campaign_id, article_id)
);

-- One row per (campaign, reader): at most one digest each (E-27).
CREATE TABLE deliveries (
    campaign_id     TEXT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    subscriber_id   TEXT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'cancelled')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_error      TEXT,
    sent_at         BIGINT,
    PRIMARY KEY (campaign_id, subscriber_id)
);
-- Workers look for due pending rows.
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
-- "Is anything of this campaign still pending?" after every batch.
CREATE INDEX deliveries_by_campaign_status ON deliveries (campaign_id, status);
-- Withdrawal cancels a reader's pending rows (G-10); export lists them.
CREATE INDEX deliveries_by_subscriber ON deliveries (subscriber_id, status);
