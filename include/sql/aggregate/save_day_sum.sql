-- mart.day_sum for every (source, local day) of sum_days (resum), days without a reading too:
-- the tariff fingerprint, a new version (a refresh rebuilds the marts of a day whose version
-- moved since its mart.refresh_mark) and the readings summed (of every channel, non-energy
-- ones too). fingerprint: parameter.
INSERT INTO mart.day_sum AS m (source, local_date, tariffs, version, readings, summed_at)
SELECT d.source, d.local_date, %(fingerprint)s, nextval('mart.day_sum_version'),
       coalesce(p.readings, 0), now()
  FROM sum_days d
  LEFT JOIN (SELECT source, local_date, sum(all_readings) AS readings
               FROM sum_profile GROUP BY source, local_date) p
    ON p.source = d.source AND p.local_date = d.local_date
 ORDER BY d.source, d.local_date
ON CONFLICT (source, local_date) DO UPDATE SET
    tariffs = excluded.tariffs, version = excluded.version, readings = excluded.readings,
    summed_at = excluded.summed_at
