-- What each SMTP relay, and each receiving domain listed in
-- delivery.domain_limits, did for a campaign: sent, deferred (a relay: the
-- message went to another relay or was retried later; a domain: it was
-- retried later), refused for good, and held back at claim (a domain's
-- limit or deferral, or the warm-up). Added to by each instance as it
-- records its sends, so the figures cover them all.
CREATE TABLE campaign_figures (
    campaign_id TEXT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('relay', 'domain')),
    name        TEXT NOT NULL,
    sent        BIGINT NOT NULL DEFAULT 0,
    deferred    BIGINT NOT NULL DEFAULT 0,
    failed      BIGINT NOT NULL DEFAULT 0,
    held        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, kind, name)
);

-- What was let through per scope and period, shared by every instance:
-- `domain:gmail.com` per minute (period: the minute's start), `warmup` per
-- UTC day (the day's start), in Unix milliseconds.
CREATE TABLE send_budgets (
    scope   TEXT NOT NULL,
    period  BIGINT NOT NULL,
    used    BIGINT NOT NULL DEFAULT 0,
    -- What the last reservation was granted (see store/send_budgets.rs).
    granted BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, period)
);

-- A receiving domain that deferred our mail for its own reasons (a 4.7.x
-- reply): its digests wait until `until`.
CREATE TABLE domain_holds (
    domain TEXT PRIMARY KEY,
    until  BIGINT NOT NULL,
    reason TEXT NOT NULL
);

-- Why a campaign is held back (a domain limit, the warm-up ceiling) and
-- until when, for its status.
ALTER TABLE campaigns ADD COLUMN held_until BIGINT;
ALTER TABLE campaigns ADD COLUMN held_by TEXT;
