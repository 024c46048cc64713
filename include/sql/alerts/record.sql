-- One occurrence of an incident: opens it, or bumps the open one. Returns new = true when
-- this occurrence opened the incident (only then is it mailed).
INSERT INTO audit.alert AS a (incident, kind, summary, link, dag_id, run_id)
VALUES (%(incident)s, %(kind)s, %(summary)s, %(link)s, %(dag_id)s, %(run_id)s)
ON CONFLICT (incident) WHERE state = 'open' DO UPDATE
   SET occurrences = a.occurrences + 1,
       last_seen   = now(),
       summary     = excluded.summary
RETURNING (xmax = 0) AS new;
