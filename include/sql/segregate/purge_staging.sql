-- Staging rows of batches promoted more than retention_days days ago are deleted; the batch
-- row stays (with its reconciliation) and records when its staging rows went.
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
)
SELECT (SELECT count(*) FROM due) AS batches, (SELECT count(*) FROM gone) AS rows;
