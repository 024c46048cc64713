-- The asked (source, local day)s whose day sums are missing or were computed under other
-- tariffs, or every asked day when rescan is true: refresh sums them from the readings first
-- (meterflow.aggregation.resum). fingerprint, rescan: parameters.
SELECT a.source, a.local_date
  FROM agg_asked a
  LEFT JOIN mart.day_sum s ON s.source = a.source AND s.local_date = a.local_date
 WHERE %(rescan)s OR s.tariffs IS DISTINCT FROM %(fingerprint)s
 ORDER BY a.source, a.local_date
