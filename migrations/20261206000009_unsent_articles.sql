-- A digest carries every article no earlier campaign of its schedule
-- carried (within an age limit), whatever the article's date and whenever
-- it arrived. The watermark decided that before, and lost articles stored
-- late with an earlier date (feeds, backdated imports, republished pieces).
ALTER TABLE digest_schedules DROP COLUMN covered_until;

-- "Has a campaign of this schedule carried this article?", asked for every
-- candidate article when a campaign is created or previewed.
CREATE INDEX campaign_articles_by_article ON campaign_articles (article_id);

-- A hash of a feed entry as last imported: a changed entry updates its
-- article (never sending it again); an unchanged one is left alone, so
-- polls do not overwrite an editor's corrections. NULL for entries imported
-- before this column existed: their next poll records it.
ALTER TABLE feed_entries ADD COLUMN content_hash TEXT;
