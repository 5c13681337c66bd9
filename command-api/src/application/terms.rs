//! The terms an order is priced with, cached (issue 18, item 2): each
//! listing as its aggregate last answered, each vendor's fee rate and each
//! rental inventory's time zone, with the sequence each was read at. A
//! placement decides on them without reading the aggregates, and its append
//! carries a guard per term ([`Guard`]): if one changed since, nothing is
//! recorded, the placement drops what it used and decides again on fresh
//! terms. A stale price is a retry, never a wrong charge.
//!
//! Off on stores that cannot check guards (memory, in tests): every read
//! goes to the aggregate.

use std::num::NonZeroUsize;
use std::sync::{Mutex, PoisonError};

use domain::{Inventory, Listing, Tz, Vendor};
use event_log::Guard;
use lru::LruCache;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::bus::{CommandBus, CommandError};

/// Entries kept per kind (least recently used go).
const CAPACITY: usize = 4_096;

/// A value read from an aggregate, and the sequence it was read at.
#[derive(Clone)]
struct Read<T> {
    value: T,
    sequence: usize,
}

pub struct TermsCache {
    enabled: bool,
    listings: Mutex<LruCache<Uuid, Read<Listing>>>,
    fee_rates: Mutex<LruCache<Uuid, Read<Option<Decimal>>>>,
    time_zones: Mutex<LruCache<Uuid, Read<Option<Tz>>>>,
}

fn lru<T>() -> Mutex<LruCache<Uuid, T>> {
    Mutex::new(LruCache::new(
        NonZeroUsize::new(CAPACITY).unwrap_or(NonZeroUsize::MIN),
    ))
}

fn cached<T: Clone>(cache: &Mutex<LruCache<Uuid, Read<T>>>, id: Uuid) -> Option<Read<T>> {
    cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&id)
        .cloned()
}

fn keep<T>(cache: &Mutex<LruCache<Uuid, Read<T>>>, id: Uuid, read: Read<T>) {
    cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .put(id, read);
}

fn guard(aggregate_type: &str, id: Uuid, sequence: usize, event_type: Option<&str>) -> Guard {
    Guard {
        aggregate_type: aggregate_type.to_owned(),
        aggregate_id: id.to_string(),
        after_sequence: sequence as i64,
        event_type: event_type.map(str::to_owned),
    }
}

impl TermsCache {
    /// `enabled`: the stores check guards, so cached terms are safe.
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            listings: lru(),
            fee_rates: lru(),
            time_zones: lru(),
        }
    }

    /// The listing, and the guard that no event changed it since.
    pub async fn listing(
        &self,
        bus: &CommandBus<Listing>,
        id: Uuid,
    ) -> Result<(Listing, Guard), CommandError> {
        let read = match cached(&self.listings, id).filter(|_| self.enabled) {
            Some(read) => read,
            None => {
                let stored = bus.load_stored(&id.to_string()).await?;
                let read = Read {
                    value: stored.aggregate,
                    sequence: stored.sequence,
                };
                if self.enabled && read.sequence > 0 {
                    keep(&self.listings, id, read.clone());
                }
                read
            }
        };
        Ok((read.value, guard("Listing", id, read.sequence, None)))
    }

    /// The vendor's own platform fee rate (none: the deployment's), and the
    /// guard that it was not set again since.
    pub async fn fee_rate(
        &self,
        bus: &CommandBus<Vendor>,
        id: Uuid,
    ) -> Result<(Option<Decimal>, Guard), CommandError> {
        let read = match cached(&self.fee_rates, id).filter(|_| self.enabled) {
            Some(read) => read,
            None => {
                let stored = bus.load_stored(&id.to_string()).await?;
                let read = Read {
                    value: stored.aggregate.fee_rate(),
                    sequence: stored.sequence,
                };
                if self.enabled {
                    keep(&self.fee_rates, id, read.clone());
                }
                read
            }
        };
        Ok((
            read.value,
            guard("Vendor", id, read.sequence, Some("FeeRateSet")),
        ))
    }

    /// The time zone of the listing's schedule (none: the deployment's),
    /// and the guard that no schedule was set since.
    pub async fn time_zone(
        &self,
        bus: &CommandBus<Inventory>,
        id: Uuid,
    ) -> Result<(Option<Tz>, Guard), CommandError> {
        let read = match cached(&self.time_zones, id).filter(|_| self.enabled) {
            Some(read) => read,
            None => {
                let stored = bus.load_stored(&id.to_string()).await?;
                let read = Read {
                    value: stored.aggregate.schedule().map(|s| s.time_zone),
                    sequence: stored.sequence,
                };
                if self.enabled {
                    keep(&self.time_zones, id, read.clone());
                }
                read
            }
        };
        Ok((
            read.value,
            guard("Inventory", id, read.sequence, Some("ScheduleSet")),
        ))
    }

    /// Forgets what these guards were about: one of them failed.
    pub fn forget(&self, guards: &[Guard]) {
        for g in guards {
            let Ok(id) = g.aggregate_id.parse::<Uuid>() else {
                continue;
            };
            match g.aggregate_type.as_str() {
                "Listing" => {
                    self.listings
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .pop(&id);
                }
                "Vendor" => {
                    self.fee_rates
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .pop(&id);
                }
                "Inventory" => {
                    self.time_zones
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .pop(&id);
                }
                _ => {}
            }
        }
    }
}
