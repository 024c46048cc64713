-- Local days (in the tariffs' zone) holding readings of the given batches in one source table.
-- Superseded readings carry the batch that replaced them, so its days are found too.
-- {table}: a fixed identifier from meterflow.aggregation.TABLES. tz, batch_ids: parameters.
SELECT DISTINCT (interval_start AT TIME ZONE %(tz)s)::date AS local_date
  FROM {table}
 WHERE batch_id = ANY(%(batch_ids)s::bigint[])
 ORDER BY 1
