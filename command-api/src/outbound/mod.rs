//! Outgoing webhooks (API.md "Webhooks out, live feeds, dashboard"):
//!
//! - `routes`: endpoints registered by vendors (their orders' events) and
//!   admins (every event), their secrets, delivery logs and redelivery;
//! - `urls`: which URLs an endpoint may have (no internal addresses);
//! - `fanout`: the `webhooks` stream consumer: a delivery row per (endpoint,
//!   event), written with its checkpoint (durable and crash-safe like the
//!   projectors);
//! - `dispatch`: sends due deliveries signed like the ledger's own webhook
//!   (`Ledger-Signature: t=…,v1=…`, `Ledger-Event-Id`), retrying with
//!   exponential backoff and jitter for 24 h, then marks them failed.

pub mod dispatch;
pub mod fanout;
pub mod routes;
pub mod urls;

use std::time::Duration;

/// Settings of outgoing webhooks.
#[derive(Clone, Debug)]
pub struct OutboundConfig {
    /// Loopback addresses (`localhost`, 127.0.0.0/8, ::1) are refused
    /// unless this is set (tests, local development).
    pub allow_loopback: bool,
    /// Host names or addresses allowed although internal (private ranges).
    pub allowed_hosts: Vec<String>,
    /// How long one delivery attempt may take.
    pub timeout: Duration,
    /// Whether this process sends deliveries.
    pub dispatch: bool,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            allow_loopback: false,
            allowed_hosts: Vec::new(),
            timeout: Duration::from_secs(10),
            dispatch: true,
        }
    }
}
