-- Meters that stopped reporting: meters of the chosen sources that sent readings in the 30 days
-- before the period's end, whose newest reading is more than %(grace)s older than the newest
-- reading of their source in the period (or who have none in the period at all).
WITH last AS (
    SELECT 'A' AS source, meter_id, max(interval_start) AS last_at FROM meter.readings_a
     WHERE interval_start >= %(lookback)s AND interval_start < %(end)s AND 'A' = ANY(%(sources)s)
     GROUP BY meter_id
    UNION ALL
    SELECT 'B', meter_id, max(interval_start) FROM meter.readings_b
     WHERE interval_start >= %(lookback)s AND interval_start < %(end)s AND 'B' = ANY(%(sources)s)
     GROUP BY meter_id
    UNION ALL
    SELECT 'C', meter_id, max(interval_start) FROM meter.readings_c
     WHERE interval_start >= %(lookback)s AND interval_start < %(end)s AND 'C' = ANY(%(sources)s)
     GROUP BY meter_id
), newest AS (
    SELECT source, max(last_at) AS newest FROM last WHERE last_at >= %(start)s GROUP BY source
)
SELECT l.source, l.meter_id, l.last_at
  FROM last l JOIN newest n USING (source)
 WHERE l.last_at < n.newest - %(grace)s::interval
 ORDER BY l.source, l.meter_id;
