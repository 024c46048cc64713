-- The gate: staged (or re-checked validated/rejected) becomes validated or rejected.
-- A promoted batch is never touched again.
UPDATE audit.load_batch
   SET status = %(verdict)s
 WHERE batch_id = %(batch_id)s
   AND status IN ('staged', 'validated', 'rejected')
