-- In a cluster (TOKENS_CLUSTER=true) the writer is the pools' owner node: owner_node is its id
-- (host:cluster port) while it runs, null after a clean stop. Its ownership is a lease kept by the
-- writer's own confirmed writes: marked_at is refreshed at least every quarter of max_lag_ms, and
-- another node takes over only once marked_at is older than max_lag_ms plus a margin, by which time
-- the owner has stopped acknowledging (it acknowledges only within max_lag_ms of a confirmed write).
ALTER TABLE service_state ADD COLUMN owner_node text;
