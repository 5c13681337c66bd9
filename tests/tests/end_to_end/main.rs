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
mod cli_messages;
mod command_routes;
mod concurrency;
mod connections;
mod container;
mod cors;
mod crate_graph;
mod dashboard;
mod earnings_csv;
mod erasure;
mod events_api;
mod faults;
mod hardening;
mod idempotency;
mod invoices;
mod live_feeds;
mod loadgen_smoke;
mod money;
mod nats_cluster;
mod observability_tools;
mod openapi;
mod order_feeds;
mod payments_and_expiry;
mod payouts;
mod poison_event;
mod policies;
mod progress_in_a_terminal;
mod projector_runner;
mod read_api;
mod rebuild_and_export;
mod reconciliation;
mod refunds;
mod relay;
mod shutdown;
mod stream_history;
mod strict_input;
mod subscription_payments;
mod subscription_queries;
mod subscriptions;
mod tenant_businesses;
mod tenant_money;
mod tenant_reads;
mod tenants;
mod upcasting;
mod walkthrough;
mod webhooks_out;
