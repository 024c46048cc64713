-- One row per run of missing half hours: the known readings either side (not meterflow's own
-- estimates, within the horizon), the gap's full length between them, and the method: LINEAR
-- for a gap of at most linear_max half hours between two readings, LIKE_DAY for a longer one
-- (or one with no reading after it yet) of at most horizon half hours, none beyond.
CREATE TEMP TABLE vee_gap ON COMMIT DROP AS
SELECT g.meter_id, g.channel, g.grp, g.first, g.last, g.n,
       p.interval_start AS prev_at, p.kwh AS prev_kwh,
       x.interval_start AS next_at, x.kwh AS next_kwh,
       (extract(epoch FROM coalesce(x.interval_start, g.last + interval '30 minutes')
                           - p.interval_start) / 1800)::integer - 1 AS gap_intervals,
       CASE
         WHEN p.interval_start IS NULL THEN NULL
         WHEN x.interval_start IS NOT NULL
              AND x.interval_start - p.interval_start
                  <= interval '30 minutes' * (%(linear_max)s + 1) THEN %(linear)s
         WHEN coalesce(x.interval_start, g.last + interval '30 minutes') - p.interval_start
                  <= interval '30 minutes' * (%(horizon)s + 1) THEN %(like_day)s
       END AS method
  FROM (SELECT meter_id, channel, grp, min(interval_start) AS first,
               max(interval_start) AS last, count(*) AS n
          FROM vee_missing GROUP BY meter_id, channel, grp) AS g
  LEFT JOIN LATERAL (
        SELECT r.interval_start, r.kwh FROM {table} r
         WHERE r.meter_id = g.meter_id AND r.channel = g.channel
           AND r.interval_start < g.first
           AND r.interval_start >= g.first - interval '30 minutes' * (%(horizon)s + 1)
           AND NOT (r.quality = 'E' AND r.batch_id = %(vee_batch)s)
         ORDER BY r.interval_start DESC LIMIT 1) AS p ON true
  LEFT JOIN LATERAL (
        SELECT r.interval_start, r.kwh FROM {table} r
         WHERE r.meter_id = g.meter_id AND r.channel = g.channel
           AND r.interval_start > g.last
           AND r.interval_start <= g.last + interval '30 minutes' * (%(horizon)s + 1)
           AND NOT (r.quality = 'E' AND r.batch_id = %(vee_batch)s)
         ORDER BY r.interval_start LIMIT 1) AS x ON true;
