-- Batches waiting for promotion: every batch the quality gate passed, oldest first (a newer
-- batch wins ties of quality, so promoting in load order is the natural order).
SELECT batch_id
  FROM audit.load_batch
 WHERE status = 'validated'
 ORDER BY batch_id;
