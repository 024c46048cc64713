-- The UTC instants of sum_slot at which one tariff's peak band begins or ends, in order, the
-- first a beginning: a reading of those days is in the band exactly when
-- width_bucket(interval_start, bounds) is odd (sum_meter_days.sql), one binary search per
-- reading instead of a time-zone conversion or a join. Empty when the band holds no half hour of
-- the days (width_bucket is then 0: never in the band). bit: the tariff's bit
-- (meterflow.tariffs.TariffSet.bits) in sum_slot.class.
SELECT coalesce(array_agg(utc ORDER BY utc), '{}')
  FROM (SELECT utc, class & %(bit)s <> 0 AS inside,
               lag(class & %(bit)s <> 0, 1, false) OVER (ORDER BY utc) AS before
          FROM sum_slot) x
 WHERE inside <> before
