//! A consumer that cannot apply the log says so (DESIGN.md invariant 8).
//!
//! A failing attempt is retried after a doubling backoff. Once the retries
//! are used up the consumer is *stalled*: the fault is recorded in
//! `pipeline_faults` with the position of the event it stopped at (read by
//! `GET /v1/projections`, `/health/ready` and `/metrics` on every replica),
//! the gauge `ledger_consumer_stalled` is 1 and the stall is logged at
//! ERROR. It goes on retrying, slowly, so that a fix (a new binary, an
//! upcaster, a schema change) or a rebuild that moves its checkpoint past
//! the event lets it go on; its next success clears the fault.
//!
//! Failures of every kind count alike (an event that cannot be applied, a
//! panic, the database or NATS away): a transient one ends in a success
//! that clears the stall, a permanent one is reported instead of retried
//! in silence.

use std::sync::Mutex;
use std::time::Duration;

use crate::faults::{self, FaultKind};
use sqlx::PgPool;

use crate::Error;

/// How a consumer's failing attempts are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Failed attempts in a row (the first included) after which the
    /// consumer is reported stalled.
    pub attempts: u32,
    /// The wait after the first failure; each further failure doubles it.
    pub first_backoff: Duration,
    /// The longest wait between two attempts before the stall.
    pub max_backoff: Duration,
    /// The wait between two attempts while stalled.
    pub stalled_retry: Duration,
}

impl Default for RetryPolicy {
    /// About half a minute of retries (0.5 s doubling to 8 s, eight
    /// attempts), then one attempt every 30 s.
    fn default() -> Self {
        Self {
            attempts: 8,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            stalled_retry: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait after `failures` failed attempts in a row (1 or more), while
    /// not yet stalled.
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.first_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// Whether `failures` failed attempts in a row make a stall.
    pub fn is_exhausted(&self, failures: u32) -> bool {
        failures >= self.attempts.max(1)
    }
}

/// What this process knows of a consumer's fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// Not known yet: an earlier process may have left a stall recorded.
    Unknown,
    None,
    Stalled,
}

struct State {
    failures: u32,
    fault: Fault,
}

/// One runner's failures in a row, and its stall.
pub(crate) struct Health {
    name: &'static str,
    component: String,
    state: Mutex<State>,
}

impl Health {
    pub(crate) fn new(name: &'static str) -> Self {
        Self {
            name,
            component: faults::consumer_component(name),
            state: Mutex::new(State {
                failures: 0,
                fault: Fault::Unknown,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Never held across an await; a poisoned lock still holds a count.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A batch applied, or nothing was left to apply: the count starts
    /// again, and a stall (this process's, or one an earlier process left)
    /// is cleared.
    pub(crate) async fn succeeded(&self, pool: &PgPool) {
        let fault = {
            let mut state = self.state();
            state.failures = 0;
            std::mem::replace(&mut state.fault, Fault::None)
        };
        if fault == Fault::None {
            return;
        }
        if let Err(err) = self.clear(pool).await {
            tracing::warn!(consumer = self.name, error = %err, "the consumer's stall could not be cleared");
            self.state().fault = fault;
            return;
        }
        if fault == Fault::Stalled {
            metrics::gauge!("ledger_consumer_stalled", "consumer" => self.name).set(0.0);
            tracing::info!(
                consumer = self.name,
                "the consumer applies the log again; stall cleared"
            );
        }
    }

    /// An attempt failed with `error`, stopping before the event at
    /// `position` (when known). Records a stall once the retries are used
    /// up; returns how long to wait before the next attempt.
    pub(crate) async fn failed(
        &self,
        pool: &PgPool,
        policy: &RetryPolicy,
        error: &Error,
        position: Option<i64>,
    ) -> Duration {
        let (failures, was_stalled) = {
            let mut state = self.state();
            state.failures = state.failures.saturating_add(1);
            let was_stalled = state.fault == Fault::Stalled;
            if policy.is_exhausted(state.failures) {
                state.fault = Fault::Stalled;
            }
            (state.failures, was_stalled)
        };
        if !policy.is_exhausted(failures) {
            let retry_in = policy.backoff(failures);
            tracing::warn!(
                consumer = self.name,
                position,
                error = %error,
                attempt = failures,
                attempts = policy.attempts,
                retry_in = ?retry_in,
                "the consumer failed; retrying"
            );
            return retry_in;
        }
        metrics::gauge!("ledger_consumer_stalled", "consumer" => self.name).set(1.0);
        if was_stalled {
            tracing::warn!(
                consumer = self.name,
                position,
                error = %error,
                attempt = failures,
                "the consumer is still stalled"
            );
        } else {
            tracing::error!(
                consumer = self.name,
                position,
                error = %error,
                attempts = failures,
                "the consumer is stalled: its retries are used up; it retries every {:?} until a fix or a rebuild lets it go on",
                policy.stalled_retry
            );
        }
        // Refreshed on every attempt: the position and error stay current,
        // and a record that failed (the database away) is made later.
        if let Err(err) = self.record(pool, error, position).await {
            tracing::warn!(consumer = self.name, error = %err, "the stall could not be recorded");
        }
        policy.stalled_retry
    }

    /// Clears the component's stall; a fault of another kind is left to
    /// whoever recorded it.
    async fn clear(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        faults::clear(pool, &self.component, FaultKind::Stalled).await?;
        Ok(())
    }

    /// Records the stall (never over a stream mismatch: see
    /// [`faults::record`]).
    async fn record(
        &self,
        pool: &PgPool,
        error: &Error,
        position: Option<i64>,
    ) -> Result<(), sqlx::Error> {
        faults::record(
            pool,
            &self.component,
            FaultKind::Stalled,
            position,
            &error.to_string(),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_from_the_first_wait_up_to_the_cap() {
        let policy = RetryPolicy::default();
        let waits: Vec<u64> = (1..=7)
            .map(|n| policy.backoff(n).as_millis() as u64)
            .collect();
        assert_eq!(waits, [500, 1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
        assert_eq!(policy.backoff(u32::MAX), policy.max_backoff);
    }

    #[test]
    fn the_consumer_is_stalled_once_its_attempts_are_used_up() {
        let policy = RetryPolicy {
            attempts: 3,
            ..RetryPolicy::default()
        };
        assert!(!policy.is_exhausted(2));
        assert!(policy.is_exhausted(3) && policy.is_exhausted(4));
        let never_zero = RetryPolicy {
            attempts: 0,
            ..RetryPolicy::default()
        };
        assert!(!never_zero.is_exhausted(0) && never_zero.is_exhausted(1));
    }
}
