-- The share of estimated readings of one meter (every source, every energy channel) or of all
-- meters (meter NULL) over local days [day_from, day_to], per local day, from mart.vee_daily.
SELECT local_date, sum(readings)::bigint AS readings, sum(estimated)::bigint AS estimated,
       sum(flagged)::bigint AS flagged
  FROM mart.vee_daily
 WHERE local_date BETWEEN %(day_from)s AND %(day_to)s
   AND (%(meter)s::text IS NULL OR meter_id = %(meter)s::text)
 GROUP BY local_date
 ORDER BY local_date;
