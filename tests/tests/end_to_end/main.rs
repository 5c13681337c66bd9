//! The end-to-end tests, one module per area, built as ONE test binary:
//! every binary links the whole server, so one link instead of twenty-one
//! saves minutes of each build on a two-core machine, and one harness keeps
//! both cores busy until the last test ends.

mod attack_run;
mod audit;
mod audit_anchors;
mod audit_python;
mod audit_roles;
mod authorization;
mod authorization_matrix;
mod command_routes;
mod concurrency;
mod connections;
mod crate_graph;
mod events_api;
mod faults;
mod hardening;
mod idempotency;
mod live_feeds;
mod loadgen_smoke;
mod money;
mod nats_cluster;
mod openapi;
mod payments_and_expiry;
mod poison_event;
mod policies;
mod projector_runner;
mod read_api;
mod rebuild_and_export;
mod reconciliation;
mod relay;
mod shutdown;
mod stream_history;
mod strict_input;
mod upcasting;
