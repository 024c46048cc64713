-- One scan of one source table over the local days of agg_days: local time in the tariffs'
-- zone (DST-correct: AT TIME ZONE), then pure integer arithmetic on the local half-hour number
-- h (half hours since 1970-01-01 00:00 local wall clock, a Thursday):
--   local day = 1970-01-01 + h / 48, half hour of the day = h mod 48,
--   half hour of the local week (Monday 00:00 = 0) = (h + 3 * 48) mod 336 → interval class.
-- On the October clock change the two local 01:00 (and 01:30) intervals both count, in the
-- same slot: that day has 50 intervals; in March local 01:00-01:59 never happens: 46.
-- {table}: a fixed identifier from meterflow.aggregation.TABLES.
-- source, tz, codes (336 interval classes, meterflow.tariffs.TariffSet.class_codes),
-- utc_from, utc_to (bounds of the days, widened by a day): parameters.
INSERT INTO agg_stage (source, meter_id, local_date, class, slot, kwh, n)
SELECT %(source)s::char(1), r.meter_id, r.local_date, r.class, r.slot, sum(r.kwh), count(*)
  FROM (SELECT x.meter_id, x.kwh,
               date '1970-01-01' + x.h / 48                    AS local_date,
               (x.h %% 48)::smallint                           AS slot,
               (%(codes)s::integer[])[(x.h + 144) %% 336 + 1]  AS class
          FROM (SELECT meter_id, kwh,
                       floor(date_part('epoch', interval_start AT TIME ZONE %(tz)s) / 1800)::integer
                           AS h
                  FROM {table}
                 WHERE interval_start >= %(utc_from)s AND interval_start < %(utc_to)s
                OFFSET 0) x
       ) r
  JOIN agg_days d ON d.source = %(source)s::char(1) AND d.local_date = r.local_date
 GROUP BY GROUPING SETS ((r.meter_id, r.local_date, r.class), (r.local_date, r.slot))
