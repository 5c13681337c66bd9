//! How hard the bus tries, and what it counts: optimistic-concurrency
//! conflicts are retried with a jittered backoff, snapshots fall due at a
//! bounded share of the appends, and every command's outcome is a metric.

use std::time::Duration;

use cqrs_es::Aggregate;

/// How often a batch is retried after an optimistic-concurrency conflict.
pub(super) const MAX_ATTEMPTS: u32 = 12;

/// Jittered exponential backoff, capped at ~50 ms.
pub(super) fn backoff(attempt: u32) -> Duration {
    let base = 1u64 << attempt.min(5);
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % (base + 1);
    Duration::from_millis((base + jitter).min(50))
}

/// Whether appending up to `last` calls for a new snapshot: `every` events
/// after the last one at least, and a tenth of the history on long ones, so
/// that writing snapshots (which grow with the history: a listing's
/// inventory keeps every booking) costs a bounded share of each append,
/// while a cold load still replays at most a tenth of the events on top of
/// its snapshot.
pub(super) fn snapshot_due(every: usize, snapshot_at: usize, last: usize) -> bool {
    last.saturating_sub(snapshot_at) >= every.max(last / 10)
}

/// Counts commands by outcome: accepted | rejected (the domain said no) |
/// conflict (retries exhausted) | error (a dependency failed) | retried.
pub(super) fn count<A: Aggregate>(commands: usize, outcome: &'static str) {
    metrics::counter!(
        "ledger_commands_total",
        "aggregate_type" => A::TYPE,
        "outcome" => outcome
    )
    .increment(commands as u64);
}

#[cfg(test)]
mod tests {
    use super::snapshot_due;

    #[test]
    fn snapshots_fall_due_every_so_many_events_then_every_tenth_of_the_history() {
        assert!(!snapshot_due(50, 0, 49));
        assert!(snapshot_due(50, 0, 50));
        assert!(snapshot_due(50, 450, 500));
        // 20,000 events in: the next snapshot after 2,000 more.
        assert!(!snapshot_due(50, 20_000, 21_999));
        assert!(snapshot_due(50, 20_000, 22_300));
    }
}
