-- mart.meter_day from sum_meter_day (resum). A row is replaced only by one computed from at
-- least as many import and export intervals (archived readings never shrink it; a day summed
-- again under other tariffs after part of it was archived keeps its old row and fingerprint,
-- which a refresh leaves out of mart.peak_daily) and only when something changed, so summing
-- an unchanged day again writes nothing. fingerprint: parameter.
INSERT INTO mart.meter_day AS m (
    source, local_date, meter_id, tariffs, kwh, intervals, peak_kwh, peak_n, export_kwh,
    export_intervals)
SELECT source, local_date, meter_id, %(fingerprint)s, total_kwh, intervals, peak_kwh, peak_n,
       export_kwh, export_intervals
  FROM sum_meter_day
ON CONFLICT (local_date, source, meter_id) DO UPDATE SET
    tariffs = excluded.tariffs, kwh = excluded.kwh, intervals = excluded.intervals,
    peak_kwh = excluded.peak_kwh, peak_n = excluded.peak_n, export_kwh = excluded.export_kwh,
    export_intervals = excluded.export_intervals
 WHERE excluded.intervals >= m.intervals AND excluded.export_intervals >= m.export_intervals
   AND (m.tariffs, m.kwh, m.intervals, m.peak_kwh, m.peak_n, m.export_kwh, m.export_intervals)
       IS DISTINCT FROM (excluded.tariffs, excluded.kwh, excluded.intervals, excluded.peak_kwh,
                         excluded.peak_n, excluded.export_kwh, excluded.export_intervals)
