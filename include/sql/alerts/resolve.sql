-- A task succeeded: its open task incidents are resolved. Returns what was resolved, with
-- how long it lasted and how often it failed, and whether anyone was told of it.
UPDATE audit.alert
   SET state = 'resolved', resolved_at = now()
 WHERE state = 'open'
   AND kind = 'task_failing'
   AND starts_with(incident, %(prefix)s)
RETURNING summary, occurrences, first_seen, resolved_at, mailed_at IS NOT NULL AS told;
