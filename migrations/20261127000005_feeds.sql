-- Article feeds: when each was last polled and with what result.
CREATE TABLE feeds (
    url           TEXT PRIMARY KEY,
    -- The last cron time acted on, so instances polling together poll once.
    last_fire_at  BIGINT NOT NULL,
    polled_at     BIGINT,
    last_result   TEXT
);

-- Which entry of which feed became which article: an entry is imported once,
-- however often the feed lists it.
CREATE TABLE feed_entries (
    feed_url   TEXT NOT NULL,
    guid       TEXT NOT NULL,
    article_id TEXT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    PRIMARY KEY (feed_url, guid)
);
