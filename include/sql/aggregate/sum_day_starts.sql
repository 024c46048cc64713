-- The local days of sum_slot in order with the UTC instant each begins (local midnight in the
-- tariffs' zone): sum_meter_days.sql groups a reading by width_bucket(interval_start, starts),
-- the position of its local day, and reads the date back from the dates array.
SELECT array_agg(utc ORDER BY utc) AS starts, array_agg(local_date ORDER BY utc) AS dates
  FROM (SELECT local_date, min(utc) AS utc FROM sum_slot GROUP BY local_date) d
