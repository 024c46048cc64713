-- The latest send of this deliverable (same period, recipients and content), if any: 'sent',
-- or 'unknown' (the SMTP connection broke after the data went: it may have arrived, so it is
-- not sent again without force).
SELECT id, send_no, sent_at, message_id, status
  FROM audit.delivery
 WHERE period_start = %(period_start)s AND period_end = %(period_end)s
   AND recipients = %(recipients)s AND content_hash = %(content_hash)s
   AND status IN ('sent', 'unknown')
 ORDER BY send_no DESC, id DESC
 LIMIT 1;
