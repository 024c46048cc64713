-- Claim the send: a 'sending' row, committed before anything goes to SMTP. The partial unique
-- index delivery_in_flight lets only one claim per deliverable exist; a second claim gets no row.
-- send_no counts on from the sends that went, or may have gone ('unknown').
INSERT INTO audit.delivery (period_start, period_end, recipients, content_hash, status, send_no,
                            forced, run_id, sources, formats, size_bytes)
SELECT %(period_start)s, %(period_end)s, %(recipients)s, %(content_hash)s, 'sending',
       coalesce(max(send_no), 0) + 1, %(forced)s, %(run_id)s, %(sources)s, %(formats)s,
       %(size_bytes)s
  FROM audit.delivery
 WHERE period_start = %(period_start)s AND period_end = %(period_end)s
   AND recipients = %(recipients)s AND content_hash = %(content_hash)s
   AND status IN ('sent', 'unknown')
ON CONFLICT DO NOTHING
RETURNING id, send_no;
