-- The estimates into the readings, quality E and batch vee_batch: a new row where the half
-- hour has none; a changed value where it holds meterflow's own estimate; never over any other
-- reading (an actual that arrived meanwhile wins). RETURNING: what changed.
INSERT INTO {table} AS t (meter_id, channel, interval_start, kwh, quality, batch_id, ingested_at)
SELECT meter_id, channel, interval_start, kwh, 'E', %(vee_batch)s, now()
  FROM vee_est
 ORDER BY meter_id, channel, interval_start
ON CONFLICT (meter_id, channel, interval_start) DO UPDATE
   SET kwh = excluded.kwh, ingested_at = excluded.ingested_at
 WHERE t.quality = 'E' AND t.batch_id = %(vee_batch)s AND t.kwh <> excluded.kwh
RETURNING interval_start;
