-- mart.refresh_mark for the recomputed days (agg_days): readings and sum of row versions from
-- agg_read's per-half-hour rows, the tariff fingerprint. fingerprint: parameter.
INSERT INTO mart.refresh_mark AS m (source, local_date, readings, versions, tariffs)
SELECT d.source, d.local_date, coalesce(sum(r.n), 0), coalesce(sum(r.v), 0), %(fingerprint)s
  FROM agg_days d
  LEFT JOIN agg_slot s ON s.local_date = d.local_date
  LEFT JOIN agg_read r
    ON r.source = d.source AND r.interval_start = s.utc
 GROUP BY d.source, d.local_date
ON CONFLICT (source, local_date) DO UPDATE SET
    readings = excluded.readings, versions = excluded.versions, tariffs = excluded.tariffs,
    marked_at = now()
