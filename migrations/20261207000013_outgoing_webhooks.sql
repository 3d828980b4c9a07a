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
    last_error      TEXT,
    -- Set when it was turned off, by an admin or after a day of failures.
    disabled_at     BIGINT,
    disabled_reason TEXT,
    -- When it was created or last turned back on: retries give up counting
    -- from the later of this and the event.
    enabled_at      BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);

-- One event for one endpoint, written in the transaction of the change it
-- tells of, and sent through the lease queue (src/store/queue.rs).
-- `event_id` is the event's id (the `webhook-id` header), the same for every
-- endpoint; UUID v7, so it also orders events. Events of one reader (or one
-- campaign) share an `ordering_key`, and only the oldest pending event of
-- an endpoint's key is sent, so each endpoint hears them in order.
-- `subscriber_id` lets an erasure find the events about a reader.
CREATE TABLE webhook_messages (
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    ordering_key    TEXT NOT NULL,
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
CREATE INDEX webhook_messages_chain ON webhook_messages (endpoint_id, ordering_key, event_id)
    WHERE status = 'pending';
CREATE INDEX webhook_messages_subscriber ON webhook_messages (subscriber_id);
