-- Runs touching the first or last half hour of the processed days: the nearest known reading
-- before / after, within the horizon (index lookups; few runs).
UPDATE vee_gap g
   SET prev_at = coalesce(g.prev_at, p.interval_start), prev_kwh = coalesce(g.prev_kwh, p.kwh),
       next_at = coalesce(g.next_at, x.interval_start), next_kwh = coalesce(g.next_kwh, x.kwh)
  FROM vee_gap g2
  LEFT JOIN LATERAL (
        SELECT r.interval_start, r.kwh FROM {table} r
         WHERE g2.first = %(utc_from)s
           AND r.meter_id = g2.meter_id AND r.channel = g2.channel
           AND r.interval_start < g2.first
           AND r.interval_start >= g2.first - interval '30 minutes' * (%(horizon)s + 1)
           AND r.interval_start >= %(utc_from)s - interval '30 minutes' * (%(horizon)s + 1)
           AND r.interval_start < %(utc_from)s
           AND NOT (r.quality = 'E' AND r.batch_id = %(vee_batch)s)
         ORDER BY r.interval_start DESC LIMIT 1) AS p ON true
  LEFT JOIN LATERAL (
        SELECT r.interval_start, r.kwh FROM {table} r
         WHERE g2.last = %(utc_to)s - interval '30 minutes'
           AND r.meter_id = g2.meter_id AND r.channel = g2.channel
           AND r.interval_start > g2.last
           AND r.interval_start <= g2.last + interval '30 minutes' * (%(horizon)s + 1)
           AND r.interval_start >= %(utc_to)s
           AND r.interval_start <= %(utc_to)s + interval '30 minutes' * %(horizon)s
           AND NOT (r.quality = 'E' AND r.batch_id = %(vee_batch)s)
         ORDER BY r.interval_start LIMIT 1) AS x ON true
 WHERE (g2.first = %(utc_from)s OR g2.last = %(utc_to)s - interval '30 minutes')
   AND g.meter_id = g2.meter_id AND g.channel = g2.channel AND g.grp = g2.grp;
