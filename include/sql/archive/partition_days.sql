-- Every UTC day of one partition, fingerprinted (under the lock taken before dropping it).
SELECT (interval_start AT TIME ZONE 'UTC')::date AS day,
       count(*)                                  AS rows,
       coalesce(sum(kwh), 0)                     AS kwh_sum,
       md5(string_agg(
           meter.reading_line(meter_id, channel, interval_start, kwh, quality, batch_id,
                              ingested_at),
           E'\n' ORDER BY meter_id, channel, interval_start)) AS fingerprint
  FROM {partition}
 GROUP BY 1
