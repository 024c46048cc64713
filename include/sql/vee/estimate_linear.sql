-- LINEAR: prev + (next - prev) × i / (gap + 1), i the half hours from the reading before.
INSERT INTO vee_est (meter_id, channel, interval_start, local_date, kwh, method, inputs)
SELECT m.meter_id, m.channel, m.interval_start, m.local_date,
       round(g.prev_kwh + (g.next_kwh - g.prev_kwh)
             * (extract(epoch FROM m.interval_start - g.prev_at) / 1800)::numeric
             / (g.gap_intervals + 1), %(decimals)s),
       g.method,
       jsonb_build_object('prev_at', g.prev_at, 'prev_kwh', g.prev_kwh,
                          'next_at', g.next_at, 'next_kwh', g.next_kwh,
                          'gap_intervals', g.gap_intervals)
  FROM vee_missing m
  JOIN vee_gap g USING (meter_id, channel, grp)
 WHERE g.method = %(linear)s;
