-- Quality gate speed: the rows of the batch under check, as a view GX can reflect.
--
-- GX reads the columns of a *query* asset by running the whole query and fetching its result
-- (column_reflection_fallback), i.e. every row of the batch travels to the task: seconds and
-- hundreds of MB for a 5-million-row batch. A *table* asset on this view is reflected from
-- the catalogue instead. The batch is the setting meterflow.batch_id of the session, which
-- meterflow.quality puts into the connection options of GX's data source; without it, a query
-- on the view fails ("unrecognized configuration parameter") rather than judging other rows.
-- The sub-select evaluates the setting once per query, not once per row.
CREATE VIEW staging.batch_under_check AS
SELECT meter_id, source, interval_start, kwh, quality
  FROM staging.reading
 WHERE batch_id = (SELECT current_setting('meterflow.batch_id')::bigint);
