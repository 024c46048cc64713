-- Per channel, what one UTC day of a source table holds: read in the export's snapshot, and
-- matched against the Parquet's own figures per channel (and written into the manifest).
SELECT channel,
       count(*)              AS rows,
       coalesce(sum(kwh), 0) AS kwh_sum
  FROM {table}
 WHERE interval_start >= %(start)s AND interval_start < %(end)s
 GROUP BY channel
 ORDER BY channel
