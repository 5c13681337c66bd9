//! Read models built from the event log, one module per model (DESIGN.md
//! "NATS"); the runner that feeds them from JetStream is the stream
//! consumer of `ledger_nats::consumer`.
//!
//! - `availability`: listings and the allocations of their units.
//! - `orders`: orders as placed, with status, parts, payments and refunds.
//! - `ledger`: the double-entry postings, account totals, vendor earnings.
//! - `analytics`: order, line, listing and payment-failure facts.
//! - `invoices`: the invoices and credit notes the vendors' books issued.
//! - `subscriptions`: plans, subscriptions and their invoices.
//! - `rebuild`: all of them again from the events table, into a fresh schema.
//!
//! Every read model reads an event's domain event through [`decode`], which
//! upcasts an older schema first (`event_log::typed`).

pub mod analytics;
pub mod availability;
pub mod invoices;
pub mod ledger;
pub mod orders;
pub mod rebuild;
pub mod subscriptions;

/// The stream consumer lives in `ledger_nats::consumer`; these paths are
/// kept for the callers that name it through the read models.
pub use ledger_nats::consumer::{checkpoints, decode, runner, stall};
pub use ledger_nats::consumer::{Consumer, RetryPolicy, Runner, RunnerConfig};
/// A read model fails as a consumer does.
pub use ledger_nats::Error;
pub use ledger_nats::EventEnvelope;

/// Every read model `ledger project` runs, by name.
pub fn read_models() -> Vec<std::sync::Arc<dyn Consumer>> {
    vec![
        std::sync::Arc::new(availability::Availability),
        std::sync::Arc::new(orders::Orders),
        std::sync::Arc::new(ledger::Ledger),
        std::sync::Arc::new(analytics::Analytics),
        std::sync::Arc::new(invoices::Invoices),
        std::sync::Arc::new(subscriptions::Subscriptions),
    ]
}
