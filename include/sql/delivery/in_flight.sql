-- The claimed, unfinished send of this deliverable (a run died between claiming and recording).
SELECT id, created_at, run_id, message_id
  FROM audit.delivery
 WHERE period_start = %(period_start)s AND period_end = %(period_end)s
   AND recipients = %(recipients)s AND content_hash = %(content_hash)s AND status = 'sending';
