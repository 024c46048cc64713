-- The feed that staged one batch: its max_kwh is the limit of the batch's energy channels
-- where a meter has no capacity of its own.
SELECT feed
  FROM audit.load_batch
 WHERE batch_id = %(batch_id)s
