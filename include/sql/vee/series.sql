-- The energy series of one source that reported (a reading that is not meterflow's own
-- estimate) in [seen_from, utc_to); one meter when the meter parameter is set.
-- {table}: from the fixed mapping in meterflow.vee.
INSERT INTO vee_series (meter_id, channel, kind)
SELECT DISTINCT meter_id, channel, meter.channel_kind(channel)
  FROM {table}
 WHERE interval_start >= %(seen_from)s AND interval_start < %(utc_to)s
   AND meter.channel_kind(channel) <> 'non_energy'
   AND NOT (quality = 'E' AND batch_id = %(vee_batch)s)
   AND (%(meter)s::text IS NULL OR meter_id = %(meter)s::text);
