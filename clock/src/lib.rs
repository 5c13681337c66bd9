//! The clock every component takes (DESIGN.md "The businesses it serves":
//! "Every component takes a clock; nothing reads the system time
//! directly"), so that expiries, deadlines and signatures' ages are tested
//! on a controlled clock.
//!
//! Times are truncated to microseconds, so that a time survives a round
//! trip through PostgreSQL and JSON unchanged and compares equal after it.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    /// The current time, truncated to microseconds.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock: the only place that reads the system time. The
/// binary's wiring creates it and passes it to what needs the time.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        truncate(Utc::now())
    }
}

/// A clock that moves only when told to (tests).
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock standing at `now` (truncated to microseconds).
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(truncate(now)),
        }
    }

    /// Sets the time.
    pub fn set(&self, now: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = truncate(now);
    }

    /// Moves the time on by `by` (back, when negative).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now = truncate(*now + by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `at` without its nanoseconds below the microsecond.
fn truncate(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_keeps_microseconds() {
        let start = DateTime::from_timestamp(1_000, 1_234_567).expect("valid");
        let clock = ManualClock::new(start);
        assert_eq!(clock.now().timestamp_subsec_nanos(), 1_234_000);
        assert_eq!(clock.now(), clock.now());
        clock.advance(Duration::seconds(90));
        assert_eq!(clock.now().timestamp(), 1_090);
        clock.set(start);
        assert_eq!(clock.now().timestamp(), 1_000);
    }

    #[test]
    fn the_system_clock_has_no_nanoseconds_below_the_microsecond() {
        assert_eq!(SystemClock.now().timestamp_subsec_nanos() % 1_000, 0);
    }
}
