-- UTC days of one source table with readings older than the cutoff, with what each holds.
-- {table} is a fixed identifier from meterflow.archive.TABLES, never input.
SELECT (interval_start AT TIME ZONE 'UTC')::date AS day,
       count(*)                                  AS rows,
       sum(kwh)                                  AS kwh_sum
  FROM {table}
 WHERE interval_start < %(cutoff)s
 GROUP BY 1
 ORDER BY 1
