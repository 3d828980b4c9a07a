-- "How many signup emails went out in the last hour?", asked before every
-- claim of the mail queue: strangers' signups may send only so many
-- (signup.emails_per_hour), the rest wait their turn in the queue.
CREATE INDEX outbox_sent_by_template ON outbox (template, sent_at);
