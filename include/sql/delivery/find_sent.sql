-- The latest send of this deliverable (same period, recipients and content), if any.
SELECT id, send_no, sent_at, message_id
  FROM audit.delivery
 WHERE period_start = %(period_start)s AND period_end = %(period_end)s
   AND recipients = %(recipients)s AND content_hash = %(content_hash)s AND status = 'sent'
 ORDER BY send_no DESC
 LIMIT 1;
