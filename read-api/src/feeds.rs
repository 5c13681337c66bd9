//! How many live feeds (`text/event-stream`) may be open at once, per
//! principal and overall (API.md "Conventions", issue 23 item 1): each
//! holds a connection and a reader of the log for as long as it lasts, so
//! one client must not open them without bound. Beyond a cap a new feed is
//! answered 429 with `Retry-After`; the feeds already open go on.
//!
//! Also what every feed route shares: where a feed resumes from, and when
//! its token ends it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ledger_http::ApiError;

/// When a refused client may try again (a feed ends at the latest when
/// its token does).
const RETRY_AFTER_SECS: u64 = 5;

/// The caps on open feeds.
#[derive(Clone, Copy, Debug)]
pub struct FeedLimits {
    /// Feeds one principal (token subject) may hold open.
    pub per_principal: usize,
    /// Feeds open on this process in all.
    pub overall: usize,
}

impl Default for FeedLimits {
    fn default() -> Self {
        Self {
            per_principal: 10,
            overall: 1_000,
        }
    }
}

/// The feeds open now, by principal.
#[derive(Debug)]
pub struct Feeds {
    limits: FeedLimits,
    open: Arc<Mutex<Open>>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_subject: HashMap<String, usize>,
}

impl Feeds {
    pub fn new(limits: FeedLimits) -> Self {
        Self {
            limits,
            open: Arc::default(),
        }
    }

    /// A place for one more feed of `subject`, held until it is dropped;
    /// 429 beyond either cap.
    pub fn open(&self, subject: &str) -> Result<FeedPermit, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let held = open.by_subject.get(subject).copied().unwrap_or(0);
        if open.total >= self.limits.overall || held >= self.limits.per_principal {
            return Err(ApiError::RateLimited {
                retry_after_secs: RETRY_AFTER_SECS,
            });
        }
        open.total += 1;
        *open.by_subject.entry(subject.to_owned()).or_default() += 1;
        Ok(FeedPermit {
            subject: subject.to_owned(),
            open: self.open.clone(),
        })
    }
}

impl Default for Feeds {
    fn default() -> Self {
        Self::new(FeedLimits::default())
    }
}

/// One open feed's place; given back when the feed ends.
#[derive(Debug)]
pub struct FeedPermit {
    subject: String,
    open: Arc<Mutex<Open>>,
}

impl Drop for FeedPermit {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(held) = open.by_subject.get_mut(&self.subject) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                open.by_subject.remove(&self.subject);
            }
        }
    }
}

/// Where a live feed starts: `after` (422 if negative), or `Last-Event-ID`,
/// which wins (400 unless a non-negative integer); 0 without either.
pub(crate) fn resume_point(
    after: Option<i64>,
    headers: &axum::http::HeaderMap,
) -> Result<i64, ApiError> {
    let after = match after {
        None => 0,
        Some(after) if after >= 0 => after,
        Some(_) => return Err(ledger_http::invalid("after", "must be at least 0")),
    };
    match headers.get("last-event-id") {
        None => Ok(after),
        Some(last) => last
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|p| *p >= 0)
            .ok_or_else(|| {
                ApiError::BadRequest("Last-Event-ID must be a non-negative integer".to_owned())
            }),
    }
}

/// When a feed's token expires, and that instant on tokio's clock: the
/// time left is read on the injected clock and waited out on tokio's.
pub(crate) fn expiry(
    principal: &ledger_http::Principal,
    clock: &dyn ledger_clock::Clock,
) -> Option<(chrono::DateTime<chrono::Utc>, tokio::time::Instant)> {
    principal.expires_at.map(|at| {
        let left = (at - clock.now())
            .to_std()
            .unwrap_or(std::time::Duration::ZERO);
        (at, tokio::time::Instant::now() + left)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feeds_are_capped_per_principal_and_overall_and_freed_when_they_end() {
        let feeds = Feeds::new(FeedLimits {
            per_principal: 2,
            overall: 3,
        });
        let a1 = feeds.open("a").expect("first of a");
        let _a2 = feeds.open("a").expect("second of a");
        assert!(matches!(feeds.open("a"), Err(ApiError::RateLimited { .. })));
        let _b1 = feeds.open("b").expect("b under the overall cap");
        assert!(feeds.open("c").is_err(), "the overall cap");
        drop(a1);
        assert!(feeds.open("c").is_ok(), "a place came free");
    }
}
