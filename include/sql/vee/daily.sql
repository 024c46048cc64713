-- mart.vee_daily of the processed days: per series and local day the half hours expected,
-- readings, estimates (quality E) and flagged readings. Rows change only when a value does.
INSERT INTO mart.vee_daily AS d (source, local_date, meter_id, channel, expected, readings,
                                 estimated, flagged)
SELECT %(source)s, t.local_date, r.meter_id, r.channel, x.expected, count(*),
       count(*) FILTER (WHERE r.quality = 'E'),
       count(*) FILTER (WHERE f.interval_start IS NOT NULL)
  FROM {table} r
  JOIN vee_series s USING (meter_id, channel)
  JOIN vee_slot t USING (interval_start)
  JOIN (SELECT local_date, count(*)::integer AS expected FROM vee_slot GROUP BY local_date) x
    USING (local_date)
  LEFT JOIN (SELECT DISTINCT meter_id, channel, interval_start FROM audit.vee_flag
              WHERE source = %(source)s AND local_date BETWEEN %(day_from)s AND %(day_to)s
                AND rule <> %(gap)s) f
    ON f.meter_id = r.meter_id AND f.channel = r.channel AND f.interval_start = r.interval_start
 WHERE r.interval_start >= %(utc_from)s AND r.interval_start < %(utc_to)s
 GROUP BY t.local_date, r.meter_id, r.channel, x.expected
 ORDER BY 2, 3, 4
ON CONFLICT (local_date, source, meter_id, channel) DO UPDATE
   SET expected = excluded.expected, readings = excluded.readings,
       estimated = excluded.estimated, flagged = excluded.flagged
 WHERE (d.expected, d.readings, d.estimated, d.flagged)
       IS DISTINCT FROM (excluded.expected, excluded.readings, excluded.estimated,
                         excluded.flagged);
