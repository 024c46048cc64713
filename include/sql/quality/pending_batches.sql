-- Batches waiting for the quality gate: staged and not yet validated or rejected.
SELECT batch_id
  FROM audit.load_batch
 WHERE status = 'staged'
 ORDER BY batch_id
