-- The batches behind a period, for the data-quality summary: every batch with a reading (or a
-- staged row) in the period, plus every batch loaded during it (rejected and failed batches
-- have no promoted readings but belong in the summary). With each, its latest GX result (the
-- gate's verdict, V004) and its rejected rows counted by reason.
WITH touched AS (
    SELECT batch_id FROM meter.readings_a
     WHERE interval_start >= %(start)s AND interval_start < %(end)s AND 'A' = ANY(%(sources)s)
    UNION
    SELECT batch_id FROM meter.readings_b
     WHERE interval_start >= %(start)s AND interval_start < %(end)s AND 'B' = ANY(%(sources)s)
    UNION
    SELECT batch_id FROM meter.readings_c
     WHERE interval_start >= %(start)s AND interval_start < %(end)s AND 'C' = ANY(%(sources)s)
    UNION
    SELECT batch_id FROM staging.reading
     WHERE interval_start >= %(start)s AND interval_start < %(end)s AND source = ANY(%(sources)s)
    UNION
    SELECT batch_id FROM audit.load_batch
     WHERE started_at >= %(start)s AND started_at < %(end)s
)
SELECT b.batch_id, b.feed, b.file_name, b.status, b.rows_read, b.rows_staged, b.rows_rejected,
       b.rows_duplicate, b.started_at, b.error,
       q.suite, q.verdict, q.success, q.expectations_evaluated, q.expectations_failed, q.failures,
       coalesce(r.reasons, '{}'::jsonb) AS rejected_by_reason
  FROM audit.load_batch b
  JOIN touched t USING (batch_id)
  LEFT JOIN LATERAL (
        SELECT suite, verdict, success, expectations_evaluated, expectations_failed, failures
          FROM audit.quality_result qr
         WHERE qr.batch_id = b.batch_id
         ORDER BY qr.finished_at DESC, qr.id DESC
         LIMIT 1) q ON true
  LEFT JOIN LATERAL (
        SELECT jsonb_object_agg(reason, n) AS reasons
          FROM (SELECT reason, count(*) AS n FROM audit.rejected_row rr
                 WHERE rr.batch_id = b.batch_id GROUP BY reason) x) r ON true
 ORDER BY b.batch_id;
