-- Endpoints that admins registered to hear what happens to readers and
-- campaigns (README.md, "Outgoing webhooks"). `events` lists the event
-- types wanted, each between commas (",subscriber.confirmed,consent.changed,"),
-- so one LIKE finds the endpoints of a type. `secret` signs each request
-- (Standard Webhooks: "whsec_" and the base64 of the key), so it is kept
-- as it is: a hash could not sign.
CREATE TABLE webhook_endpoints (
    id              TEXT PRIMARY KEY,
    url             TEXT NOT NULL,
    secret          TEXT NOT NULL,
    events          TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    enabled         INTEGER NOT NULL DEFAULT 1,
    -- Since when every request to it has failed; NULL after a success.
    failing_since   BIGINT,
    -- After a failure of the endpoint itself (no connection, a timeout, a
    -- 5xx or 429 answer), none of its events is claimed before this.
    retry_at        BIGINT,
    last_error      TEXT,
    -- Set when it was turned off: by whom ('failures' after a day of them,
    -- or the admin's label), when and why.
    disabled_by     TEXT,
    disabled_at     BIGINT,
    disabled_reason TEXT,
    -- When it was created or last turned back on: retries give up counting
    -- from the later of this and the event.
    enabled_at      BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);

-- Each reader's (or campaign's) count of events, taken in the transaction
-- that queues one: the row's lock makes two transactions telling of the
-- same reader number their events in the order they commit, whatever the
-- instances' clocks say.
CREATE TABLE webhook_chains (
    ordering_key TEXT PRIMARY KEY,
    seq          BIGINT NOT NULL
);

-- One event for one endpoint, written in the transaction of the change it
-- tells of, and sent through the lease queue (src/store/queue.rs).
-- `event_id` is the event's id (the `webhook-id` header), the same for every
-- endpoint. Events of one reader (or one campaign) share an `ordering_key`
-- and are numbered by `seq`; only the first pending event of an endpoint's
-- key is sent, so each endpoint hears them in order. The payload holds no
-- address: a reader's is added as it is sent, so an erased reader's never
-- leaves. No foreign key to the endpoint: an endpoint removed while an event
-- is queued for it must not fail the change that queued it (the claim
-- skips such rows, the purge removes them).
CREATE TABLE webhook_messages (
    endpoint_id     TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    ordering_key    TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    subscriber_id   TEXT,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'failed', 'cancelled')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT,
    PRIMARY KEY (endpoint_id, event_id)
);

CREATE INDEX webhook_messages_due ON webhook_messages (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_messages_chain ON webhook_messages (endpoint_id, ordering_key, seq)
    WHERE status = 'pending';
