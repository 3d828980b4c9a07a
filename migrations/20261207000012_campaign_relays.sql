-- What each SMTP relay did for a campaign: sent, deferred (the message
-- went to another relay or was retried later) and refused for good. Added
-- to by each instance as it records its sends, so the figures cover them all.
CREATE TABLE campaign_relays (
    campaign_id TEXT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    relay       TEXT NOT NULL,
    sent        BIGINT NOT NULL DEFAULT 0,
    deferred    BIGINT NOT NULL DEFAULT 0,
    failed      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, relay)
);
