--! Previous: sha1:baba28374482fe3488b931e7cdc78f0acc080abd
--! Hash: sha1:58796e9888e2dde010c7c2b633d52e4b24b342aa
--! Message: tracing.alert_finish_delivery dropped: the alert sender records a batch's outcomes through tracing.alert_finish_deliveries

-- The alert sender records a claimed batch's outcomes in one call,
-- tracing.alert_finish_deliveries (db/functions/221-alert-queue.sql),
-- instead of one call per delivery.
drop function if exists tracing.alert_finish_delivery(bigint, text, text, integer, interval);
