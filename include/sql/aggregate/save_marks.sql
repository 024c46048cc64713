-- mart.refresh_mark for the recomputed days (agg_days): the version of the day sums the marts
-- were built from and the tariff fingerprint. fingerprint: parameter.
INSERT INTO mart.refresh_mark AS m (source, local_date, version, tariffs)
SELECT source, local_date, version, %(fingerprint)s
  FROM agg_days
 WHERE version IS NOT NULL
ON CONFLICT (source, local_date) DO UPDATE SET
    version = excluded.version, tariffs = excluded.tariffs, marked_at = now()
