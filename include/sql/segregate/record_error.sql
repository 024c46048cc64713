-- A batch that could not be promoted stays 'validated'; the reason is kept for people to read.
UPDATE audit.load_batch
   SET error = %(error)s
 WHERE batch_id = %(batch_id)s
   AND status = 'validated';
