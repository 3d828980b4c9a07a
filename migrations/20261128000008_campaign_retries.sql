-- A campaign's retries, as editors watch it while its SMTP server refuses:
-- how many deliveries were put back, when the latest of them falls due (the
-- backoff), and why. Counted per batch, like sent and failed.
ALTER TABLE campaigns ADD COLUMN retries BIGINT NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN next_retry_at BIGINT;
ALTER TABLE campaigns ADD COLUMN last_error TEXT;
