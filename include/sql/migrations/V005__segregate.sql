-- Segregation (meter_segregate): validated staging batches promoted into meter.readings_a|b|c.

-- Rank of a quality flag, the upsert rule's order: A (actual) 3, S/F (substituted) 2,
-- E (estimated) 1. Same numbers as meterflow.models.Quality.rank (a test holds them equal).
-- Written as a string-bodied, non-STRICT SQL function on purpose: the planner inlines it into
-- a plain CASE (checked with EXPLAIN VERBOSE). A SQL-standard body (RETURN ...) or STRICT is
-- not inlined in PostgreSQL 15 and costs ~10 µs per row: 10× slower promotion.
CREATE FUNCTION meter.quality_rank(q char) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE q WHEN 'A' THEN 3 WHEN 'S' THEN 2 WHEN 'F' THEN 2 WHEN 'E' THEN 1 END $$;

-- When a batch was promoted (starts its staging retention) and when its staging rows were
-- purged (staging_retention_days after promotion).
ALTER TABLE audit.load_batch
    ADD COLUMN promoted_at       timestamptz,
    ADD COLUMN staging_purged_at timestamptz;

-- The reconciliation of every promoted batch, held by the database as well as by the code:
-- rows promoted (new) + superseded (replaced an existing reading) + kept (an existing,
-- not-worse reading stayed) = rows validated (rows_staged).
ALTER TABLE audit.load_batch ADD CONSTRAINT load_batch_promotion_reconciled CHECK (
    status <> 'promoted'
    OR (rows_promoted IS NOT NULL AND rows_superseded IS NOT NULL AND rows_kept IS NOT NULL
        AND rows_promoted + rows_superseded + rows_kept = rows_staged
        AND promoted_at IS NOT NULL));

-- Purge looks up promoted batches by promotion time.
CREATE INDEX load_batch_promoted_at ON audit.load_batch (promoted_at)
    WHERE status = 'promoted' AND staging_purged_at IS NULL;
