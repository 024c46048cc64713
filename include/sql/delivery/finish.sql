-- Record how a claimed send ended: 'sent' (the SMTP server accepted it), 'failed' (nothing
-- went) or 'unknown' (the connection broke after the message data was sent).
UPDATE audit.delivery
   SET status = %(status)s,
       message_id = coalesce(%(message_id)s, message_id),
       detail = %(detail)s,
       attachments = coalesce(%(attachments)s, attachments),
       sent_at = CASE WHEN %(status)s = 'sent' THEN now() END
 WHERE id = %(id)s AND status = 'sending';
