-- Monthly partitions of a source table with their bounds (from the catalog, never input).
SELECT n.nspname AS schema_name,
       c.relname AS partition_name,
       substring(pg_get_expr(c.relpartbound, c.oid) FROM 'FROM \(''([^'']+)''\)')::timestamptz
           AS lower_bound,
       substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \(''([^'']+)''\)')::timestamptz
           AS upper_bound
  FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE i.inhparent = %(parent)s::regclass
 ORDER BY lower_bound
