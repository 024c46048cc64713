-- Staging rows of batches promoted more than retention_days days ago are deleted; the batch
-- row stays (with its reconciliation) and records when its staging rows went. The batch's
-- quality profile (staging.batch_profile, staging.batch_day_gap) goes with them.
WITH due AS (
    UPDATE audit.load_batch
       SET staging_purged_at = now()
     WHERE status = 'promoted'
       AND staging_purged_at IS NULL
       AND promoted_at < now() - make_interval(days => %(retention_days)s)
    RETURNING batch_id
), gone AS (
    DELETE FROM staging.reading
     WHERE batch_id IN (SELECT batch_id FROM due)
    RETURNING 1
), profile AS (
    DELETE FROM staging.batch_profile
     WHERE batch_id IN (SELECT batch_id FROM due)
), gaps AS (
    DELETE FROM staging.batch_day_gap
     WHERE batch_id IN (SELECT batch_id FROM due)
)
SELECT (SELECT count(*) FROM due) AS batches, (SELECT count(*) FROM gone) AS rows;
