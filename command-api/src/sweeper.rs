//! The sweeper's task: expires unpaid holds and cancels their orders
//! (DESIGN.md: "an unpaid hold never blocks a unit after its expiry plus
//! one sweep") every `sweep_interval`, bills and duns the subscriptions
//! due (`application::billing`), and forgets idempotency keys past their
//! retention about once an hour.
//!
//! What a round does is `application::sweep`; the deadlines are claimed
//! so that replicas share the work without doing it twice
//! (`deadlines::postgres`).

use tokio_util::sync::CancellationToken;

use crate::idempotency::IdempotencyStore;
use crate::AppState;

pub use crate::application::sweep::sweep_once;

/// Runs until `shutdown` is cancelled.
pub async fn run(app: AppState, shutdown: CancellationToken) {
    let idempotency = IdempotencyStore::new(app.pool.clone());
    let mut rounds: u64 = 0;
    loop {
        match sweep_once(&app).await {
            Ok(settled) if settled > 0 => tracing::info!(settled, "swept lapsed holds"),
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "hold sweep failed; will retry"),
        }
        match crate::application::billing::tick(&app).await {
            Ok(recorded) if recorded > 0 => tracing::info!(recorded, "billed subscriptions"),
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "subscription billing failed; will retry"),
        }
        match crate::application::leases::tick(&app).await {
            Ok(recorded) if recorded > 0 => tracing::info!(recorded, "dunned leases"),
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "lease dunning failed; will retry"),
        }
        // Forget idempotency keys past their retention about once an hour.
        rounds += 1;
        if rounds.is_multiple_of((3600 / app.config.sweep_interval.as_secs().max(1)).max(1)) {
            if let Err(err) = idempotency.purge_expired().await {
                tracing::warn!(error = %err, "could not purge idempotency keys");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(app.config.sweep_interval) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
