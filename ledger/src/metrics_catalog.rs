//! Every series `/metrics` exposes, described (the `# HELP` lines) and
//! registered at zero when the recorder is installed, so that a dashboard
//! or an alert on a counter that has not counted yet
//! (`ledger_rate_limited_total`, `ledger_consumer_repositioned_total`)
//! finds a 0, not "No data". Labelled series are registered for every
//! label value known in advance (aggregate types, outcomes, consumers,
//! limit scopes); the request-latency histogram appears with the first
//! request (its labels are the route and status actually served).

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

/// The consumers of the stream: the read models and the policies.
pub const CONSUMERS: &[&str] = &[
    projectors::availability::NAME,
    projectors::orders::NAME,
    projectors::ledger::NAME,
    projectors::analytics::NAME,
    projectors::invoices::NAME,
    projectors::subscriptions::NAME,
    command_api::policies::NAME,
];

const AGGREGATE_TYPES: &[&str] = &[
    "Vendor",
    "Listing",
    "Inventory",
    "Order",
    "InvoiceBook",
    "Plan",
    "Subscription",
];
const COMMAND_OUTCOMES: &[&str] = &["accepted", "rejected", "conflict", "error", "retried"];
const RATE_LIMIT_SCOPES: &[&str] = &["ip", "principal"];

/// The names of every series described here (tests check each appears).
pub const SERIES: &[&str] = &[
    "ledger_build_info",
    "ledger_http_request_duration_seconds",
    "ledger_commands_total",
    "ledger_rate_limited_total",
    "ledger_relay_published_total",
    "ledger_relay_position",
    "ledger_relay_lag_events",
    "ledger_relay_backlog_events",
    "ledger_relay_lag_seconds",
    "ledger_events_head_position",
    "ledger_consumer_applied_total",
    "ledger_consumer_repositioned_total",
    "ledger_consumer_position",
    "ledger_consumer_lag_events",
    "ledger_consumer_stalled",
    "ledger_db_pool_connections",
    "ledger_db_pool_idle_connections",
    "ledger_db_pool_max_connections",
    "ledger_metrics_sample_failures_total",
];

/// Describes every series and registers those known in advance at zero.
/// Called once, right after the recorder is installed.
pub fn describe_and_register() {
    describe_gauge!(
        "ledger_build_info",
        "Always 1; the labels say which build runs (version, profile)"
    );
    metrics::gauge!(
        "ledger_build_info",
        "version" => env!("CARGO_PKG_VERSION"),
        "profile" => if cfg!(debug_assertions) { "debug" } else { "release" }
    )
    .set(1.0);

    describe_histogram!(
        "ledger_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency by method, route template and status"
    );
    describe_counter!(
        "ledger_commands_total",
        "Commands run by the bus, by aggregate type and outcome (accepted, rejected, conflict, error, retried)"
    );
    for aggregate_type in AGGREGATE_TYPES {
        for outcome in COMMAND_OUTCOMES {
            metrics::counter!(
                "ledger_commands_total",
                "aggregate_type" => *aggregate_type,
                "outcome" => *outcome
            )
            .increment(0);
        }
    }
    describe_counter!(
        "ledger_rate_limited_total",
        "Requests answered 429 by the rate limits, by scope (ip, principal)"
    );
    for scope in RATE_LIMIT_SCOPES {
        metrics::counter!("ledger_rate_limited_total", "scope" => *scope).increment(0);
    }

    describe_counter!(
        "ledger_relay_published_total",
        "Events the relay published to JetStream (and the stream acknowledged)"
    );
    metrics::counter!("ledger_relay_published_total").increment(0);
    for (name, help) in [
        (
            "ledger_relay_position",
            "Global position of the last event the stream acknowledged",
        ),
        (
            "ledger_relay_lag_events",
            "Events committed but not yet published (head - relay position)",
        ),
        (
            "ledger_relay_backlog_events",
            "Same as ledger_relay_lag_events (older name, kept for dashboards)",
        ),
        (
            "ledger_events_head_position",
            "Global position of the last committed event",
        ),
    ] {
        describe_gauge!(name, help);
        metrics::gauge!(name).set(0.0);
    }
    describe_gauge!(
        "ledger_relay_lag_seconds",
        Unit::Seconds,
        "Age of the oldest committed event not yet published (0 when none)"
    );
    metrics::gauge!("ledger_relay_lag_seconds").set(0.0);

    describe_counter!(
        "ledger_consumer_applied_total",
        "Events a consumer applied to its read model or policy, by consumer"
    );
    describe_counter!(
        "ledger_consumer_repositioned_total",
        "Times a consumer fell so far behind the stream that it caught up from the events table, by consumer"
    );
    describe_gauge!(
        "ledger_consumer_position",
        "Global position of a consumer's checkpoint"
    );
    describe_gauge!(
        "ledger_consumer_lag_events",
        "Events published but not yet applied by a consumer (relay position - checkpoint)"
    );
    describe_gauge!(
        "ledger_consumer_stalled",
        "1 while a consumer is stalled at an event it cannot apply, else 0"
    );
    for consumer in CONSUMERS {
        let consumer = *consumer;
        metrics::counter!("ledger_consumer_applied_total", "consumer" => consumer).increment(0);
        metrics::counter!("ledger_consumer_repositioned_total", "consumer" => consumer)
            .increment(0);
        metrics::gauge!("ledger_consumer_stalled", "consumer" => consumer).set(0.0);
    }

    for (name, help) in [
        (
            "ledger_db_pool_connections",
            "PostgreSQL connections open in the pool",
        ),
        (
            "ledger_db_pool_idle_connections",
            "PostgreSQL connections idle in the pool",
        ),
        (
            "ledger_db_pool_max_connections",
            "Most PostgreSQL connections the pool may open (LEDGER_DB_POOL_SIZE)",
        ),
    ] {
        describe_gauge!(name, help);
    }
    describe_counter!(
        "ledger_metrics_sample_failures_total",
        "Scrapes whose database sampling failed or took over 2 s (the gauges kept their last values)"
    );
    metrics::counter!("ledger_metrics_sample_failures_total").increment(0);
}
