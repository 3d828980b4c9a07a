-- "How many signup emails went out in the last hour?", asked before every
-- claim of the mail queue: strangers' signups may send only so many
-- (signup.emails_per_hour), the rest wait their turn in the queue.
CREATE INDEX outbox_sent_by_template ON outbox (template, sent_at);

-- A password-reset or sign-in-link request, kept as it arrives: the request
-- itself writes this one row whether the address has an account or not, so
-- its timing tells nothing (the delivery worker looks the address up,
-- applies the per-account limit and queues the email).
CREATE TABLE link_requests (
    id              TEXT PRIMARY KEY,
    email_canonical TEXT NOT NULL,
    template        TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
