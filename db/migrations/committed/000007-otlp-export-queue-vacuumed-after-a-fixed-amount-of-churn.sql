--! Previous: sha1:5abc54e3e2bca82e2ad9d4c80d6e5e8fc2b039e0
--! Hash: sha1:fb8103bf39bf0931232fc8b1597194a09d0e1d44
--! Message: OTLP export queue vacuumed after a fixed amount of churn

-- The export queue is a queue: every row is inserted once and deleted soon
-- after. With the default thresholds (20% of the table) a backlog of
-- millions of rows would gather hundreds of thousands of dead entries at the
-- head of the claim index before autovacuum cleans them, and every claim
-- would step over them. Vacuum it after a small, fixed amount of churn.
alter table tracing.otlp_outbox set (
  autovacuum_vacuum_scale_factor = 0,
  autovacuum_vacuum_threshold = 20000,
  autovacuum_vacuum_insert_scale_factor = 0,
  autovacuum_vacuum_insert_threshold = 20000,
  autovacuum_analyze_scale_factor = 0.05
);
