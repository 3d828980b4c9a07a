-- Index only what workers look for: pending deliveries. Right after a
-- campaign is enqueued (and analysed) every row is pending, so an index on
-- (status, next_attempt_at) looked useless to the planner and each claim
-- scanned and sorted the whole ledger. A delivery leaves these indexes when
-- it is done, instead of being rewritten in each of them.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_pending ON deliveries (next_attempt_at) WHERE status = 'pending';
DROP INDEX deliveries_by_campaign_status;
CREATE INDEX deliveries_pending_by_campaign ON deliveries (campaign_id) WHERE status = 'pending';
-- Withdrawal cancels a reader's pending rows (G-10); export lists them.
DROP INDEX deliveries_by_subscriber;
CREATE INDEX deliveries_by_subscriber ON deliveries (subscriber_id);
