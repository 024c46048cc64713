-- Record how a claimed send ended: 'sent' (the SMTP server accepted it) or 'failed'.
UPDATE audit.delivery
   SET status = %(status)s,
       message_id = coalesce(%(message_id)s, message_id),
       detail = %(detail)s,
       attachments = coalesce(%(attachments)s, attachments),
       sent_at = CASE WHEN %(status)s = 'sent' THEN now() END
 WHERE id = %(id)s AND status = 'sending';
