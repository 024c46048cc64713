-- Whether mart.peak_daily holds any row of one tariff between the first and last local day of
-- agg_days (its primary key, V013). When it holds none, update_peak_daily.sql would change
-- nothing and refresh skips it (a first refresh of those days only inserts).
-- tariff, date_from, date_to: parameters.
SELECT EXISTS (SELECT 1 FROM mart.peak_daily
                WHERE tariff = %(tariff)s AND local_date BETWEEN %(date_from)s AND %(date_to)s)
