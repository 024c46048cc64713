-- Staging rows of batches promoted more than retention_days days ago, and of batches the
-- quality gate rejected more than rejected_retention_days ago (their raw file stays on S3 to
-- be landed again), are deleted; the batch row stays (with its reconciliation) and records
-- when its staging rows went. The batch's quality profile (staging.batch_profile,
-- staging.batch_day_gap) goes with them. Rejected rows of files landed more than
-- reject_retention_days ago go too (audit.rejected_row; the batch keeps its counts by reason
-- in its quality result and its accounting).
WITH due AS (
    UPDATE audit.load_batch AS b
       SET staging_purged_at = now()
     WHERE staging_purged_at IS NULL
       AND ((status = 'promoted'
             AND promoted_at < now() - make_interval(days => %(retention_days)s))
         OR (status = 'rejected'
             AND (SELECT max(q.finished_at) FROM audit.quality_result q
                   WHERE q.batch_id = b.batch_id)
                 < now() - make_interval(days => %(rejected_retention_days)s)))
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
), rejects AS (
    DELETE FROM audit.rejected_row
     WHERE batch_id IN (SELECT batch_id FROM audit.load_batch
                         WHERE started_at < now() - make_interval(days => %(reject_retention_days)s))
    RETURNING 1
)
SELECT (SELECT count(*) FROM due) AS batches, (SELECT count(*) FROM gone) AS rows,
       (SELECT count(*) FROM rejects) AS rejected_rows;
