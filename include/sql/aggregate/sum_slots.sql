-- Every UTC half hour of the local days [utc_from, utc_to) (the bounds of the first and the last
-- local day of sum_days, in the tariffs' zone) with its local day, its half hour of the local day
-- and its interval class, computed once per half hour instead of once per reading.
-- Local time (DST-correct: AT TIME ZONE), then integer arithmetic on the local half-hour number
-- h (half hours since 1970-01-01 00:00 local wall clock, a Thursday):
--   local day = 1970-01-01 + h / 48, half hour of the day = h mod 48,
--   half hour of the local week (Monday 00:00 = 0) = (h + 3 * 48) mod 336 → interval class.
-- On the October clock change the two local 01:00 (and 01:30) half hours both exist, in the
-- same slot: that day has 50; in March local 01:00-01:59 never happens: 46.
-- sum_day_starts.sql and sum_band_bounds.sql turn it into the few instants where a local day or a
-- tariff's band begins or ends, so sum_meter_days.sql finds a reading's day and bands by binary
-- search (width_bucket), with no per-reading time-zone arithmetic and no join.
-- tz, codes (336 interval classes, meterflow.tariffs.TariffSet.class_codes), utc_from, utc_to:
-- parameters.
CREATE TEMP TABLE sum_slot ON COMMIT DROP AS
SELECT x.utc,
       date '1970-01-01' + x.h / 48                    AS local_date,
       (x.h %% 48)::smallint                           AS slot,
       (%(codes)s::integer[])[(x.h + 144) %% 336 + 1]  AS class
  FROM (SELECT u AS utc,
               floor(date_part('epoch', u AT TIME ZONE %(tz)s) / 1800)::integer AS h
          FROM generate_series(%(utc_from)s::timestamptz,
                               %(utc_to)s::timestamptz - interval '30 minutes',
                               interval '30 minutes') AS u) x
