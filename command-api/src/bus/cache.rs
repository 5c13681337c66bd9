//! A bounded cache of aggregate states. The state a batch leaves behind is
//! kept, so the next batch does not load the aggregate again (a listing
//! with 10,000 bookings would otherwise read and parse its snapshot every
//! time). The cache is never trusted to accept anything: the append
//! carries the expected sequence, and a stale copy fails it with a conflict
//! and is reloaded. Only the aggregate's worker touches its entry: taken
//! at the start of a batch, put back after it.

use std::num::NonZeroUsize;
use std::sync::{Mutex, PoisonError};

use lru::LruCache;

/// Aggregates kept in memory per aggregate type (least recently used go).
const CAPACITY: usize = 4_096;

/// An aggregate's state and the sequence of the last event it reflects.
pub(super) struct Loaded<A> {
    pub aggregate: A,
    pub sequence: usize,
    /// Sequence of the last snapshot this process knows of (on a load:
    /// the loaded sequence, which errs towards a later snapshot).
    pub snapshot_at: usize,
    /// The tenant its events belong to (`None`: it has none yet).
    pub tenant: Option<String>,
}

impl<A: Default> Loaded<A> {
    /// The state of an aggregate without events.
    pub fn empty() -> Self {
        Self {
            aggregate: A::default(),
            sequence: 0,
            snapshot_at: 0,
            tenant: None,
        }
    }
}

pub(super) struct StateCache<A> {
    states: Mutex<LruCache<String, Loaded<A>>>,
}

impl<A> StateCache<A> {
    pub fn new() -> Self {
        let capacity = NonZeroUsize::new(CAPACITY).unwrap_or(NonZeroUsize::MIN);
        Self {
            states: Mutex::new(LruCache::new(capacity)),
        }
    }

    pub fn take(&self, aggregate_id: &str) -> Option<Loaded<A>> {
        self.states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop(aggregate_id)
    }

    pub fn put(&self, aggregate_id: &str, loaded: Loaded<A>) {
        self.states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .put(aggregate_id.to_owned(), loaded);
    }

    pub fn put_if_absent(&self, aggregate_id: &str, loaded: Loaded<A>) {
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        if !states.contains(aggregate_id) {
            states.put(aggregate_id.to_owned(), loaded);
        }
    }
}
