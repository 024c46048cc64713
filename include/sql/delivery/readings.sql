-- The period's readings of the chosen sources, one row per meter, channel and half hour, with
-- the channel's kind (meter.channel_kind, V015: import, export, non_energy).
-- %(start)s, %(end)s: the UTC bounds [start, end) of the local period; %(sources)s: e.g. {A,B,C}.
-- Each branch prunes to the partitions of the period; a source not asked for is a one-time
-- filter that skips its table.
SELECT 'A' AS source, meter_id, channel, meter.channel_kind(channel) AS kind, interval_start,
       kwh, quality, batch_id, ingested_at
  FROM meter.readings_a
 WHERE interval_start >= %(start)s AND interval_start < %(end)s AND 'A' = ANY(%(sources)s)
UNION ALL
SELECT 'B', meter_id, channel, meter.channel_kind(channel), interval_start, kwh, quality,
       batch_id, ingested_at
  FROM meter.readings_b
 WHERE interval_start >= %(start)s AND interval_start < %(end)s AND 'B' = ANY(%(sources)s)
UNION ALL
SELECT 'C', meter_id, channel, meter.channel_kind(channel), interval_start, kwh, quality,
       batch_id, ingested_at
  FROM meter.readings_c
 WHERE interval_start >= %(start)s AND interval_start < %(end)s AND 'C' = ANY(%(sources)s)
ORDER BY 1, 2, 3, 5;
