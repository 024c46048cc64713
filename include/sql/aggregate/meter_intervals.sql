-- One meter's readings, every channel, with interval_start in [utc_from, utc_to)
-- (meter_consumption_report), with the channel's kind (meter.channel_kind: import, export,
-- non_energy). {table}: a fixed identifier from meterflow.aggregation.TABLES. meter_id,
-- utc_from, utc_to: parameters.
SELECT interval_start, channel, meter.channel_kind(channel) AS kind, kwh, quality
  FROM {table}
 WHERE meter_id = %(meter_id)s
   AND interval_start >= %(utc_from)s AND interval_start < %(utc_to)s
 ORDER BY interval_start, channel
