-- The batch being judged, locked so that promotion cannot take it meanwhile.
SELECT batch_id, feed, file_name, status, rows_staged, staging_purged_at
  FROM audit.load_batch
 WHERE batch_id = %(batch_id)s
   FOR UPDATE
