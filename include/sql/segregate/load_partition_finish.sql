-- The private loading table, empty once its months are attached to the source table.
DROP TABLE {loading};
