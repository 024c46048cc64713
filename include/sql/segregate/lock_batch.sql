-- Take the batch for promotion inside the promoting transaction. FOR UPDATE makes a second,
-- concurrent promoter wait here and then see status 'promoted' (and do nothing).
-- batch_id: audit.load_batch.batch_id
SELECT status, rows_staged
  FROM audit.load_batch
 WHERE batch_id = %(batch_id)s
   FOR UPDATE;
