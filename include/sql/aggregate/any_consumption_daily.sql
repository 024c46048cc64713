-- Whether mart.consumption_daily holds any row between the first and last local day of agg_days
-- (its primary key, V013). When it holds none, update_consumption_daily.sql would change
-- nothing and refresh skips it. date_from, date_to: parameters.
SELECT EXISTS (SELECT 1 FROM mart.consumption_daily
                WHERE local_date BETWEEN %(date_from)s AND %(date_to)s)
