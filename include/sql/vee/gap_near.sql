-- A run inside the processed days has known readings right before and after it (the half hour
-- next to a run is not missing, else it would be in the run): one hash join with the days'
-- readings finds both. Runs at the days' first or last half hour are left to gap_far.sql.
WITH edge AS (
    SELECT g.meter_id, g.channel, g.grp,
           max(r.kwh) FILTER (WHERE r.interval_start = g.first - interval '30 minutes') AS p,
           max(r.kwh) FILTER (WHERE r.interval_start = g.last + interval '30 minutes') AS x
      FROM vee_gap g
      JOIN {table} r
        ON r.meter_id = g.meter_id AND r.channel = g.channel
       AND r.interval_start IN (g.first - interval '30 minutes', g.last + interval '30 minutes')
     WHERE r.interval_start >= %(utc_from)s AND r.interval_start < %(utc_to)s
       AND NOT (r.quality = 'E' AND r.batch_id = %(vee_batch)s)
     GROUP BY g.meter_id, g.channel, g.grp
)
UPDATE vee_gap g
   SET prev_at = CASE WHEN e.p IS NOT NULL THEN g.first - interval '30 minutes' END,
       prev_kwh = e.p,
       next_at = CASE WHEN e.x IS NOT NULL THEN g.last + interval '30 minutes' END,
       next_kwh = e.x
  FROM edge e
 WHERE e.meter_id = g.meter_id AND e.channel = g.channel AND e.grp = g.grp;
