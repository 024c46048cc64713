-- The open incidents not yet mailed that one message carries: those of this DAG run, and
-- any left unmailed longer than the grace (a mapped task's failure whose run had no step to
-- send it). Marked mailed in the same statement so that two senders never mail one twice.
UPDATE audit.alert
   SET mailed_at = now()
 WHERE mailed_at IS NULL
   AND state = 'open'
   AND ((dag_id = %(dag_id)s AND run_id = %(run_id)s)
        OR first_seen < now() - make_interval(secs => %(grace_seconds)s))
RETURNING kind, summary, link, dag_id, run_id, occurrences;
