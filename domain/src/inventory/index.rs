//! The interval index: the derived state that keeps the availability check
//! fast on a listing with tens of thousands of past bookings, and the
//! availability questions answered from it.
//!
//! Counted rental allocations (Active holds not lapsed, Confirmed holds,
//! Returned holds until their return; each with its buffer, an overdue one
//! open-ended) and blackouts are kept keyed
//! by `(start, id)` together with the longest allocation length, so an
//! overlap query only scans `[q.start - max_len, q.end)`; peak use is a
//! sweep over the overlapping intervals only. The index is not serialized:
//! `Inventory` rebuilds it on deserialization (snapshots).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::{Blackout, Capacity, Hold, HoldRequest, HoldStatus, Inventory};
use crate::period::Period;

/// One counted rental allocation in the interval index.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Alloc {
    end: DateTime<Utc>,
    /// `None` = all units (a full blackout).
    qty: Option<u32>,
    /// `Some` for Active holds: they stop counting once lapsed.
    expires_at: Option<DateTime<Utc>>,
}

/// Derived state, rebuilt from holds and blackouts.
#[derive(Clone, Debug, Default)]
pub(super) struct Index {
    allocs: BTreeMap<(DateTime<Utc>, Uuid), Alloc>,
    /// Longest allocation ever indexed (never shrinks; an over-estimate only
    /// widens the scan).
    max_len: TimeDelta,
    /// Active holds by expiry.
    active: BTreeSet<(DateTime<Utc>, Uuid)>,
    /// Σ quantity of Active (lapsed or not) and Confirmed sale holds.
    sale_held: u64,
}

impl Index {
    fn insert_alloc(&mut self, start: DateTime<Utc>, id: Uuid, alloc: Alloc) {
        let len = alloc.end - start;
        if len > self.max_len {
            self.max_len = len;
        }
        self.allocs.insert((start, id), alloc);
    }

    pub(super) fn add_hold(&mut self, h: &Hold) {
        if h.status == HoldStatus::Active {
            self.active.insert((h.expires_at, h.hold_id));
        }
        match h.request {
            HoldRequest::Sale { quantity } => {
                if matches!(h.status, HoldStatus::Active | HoldStatus::Confirmed) {
                    self.sale_held += u64::from(quantity);
                }
            }
            HoldRequest::Rental { period, quantity } => {
                let Some(occupied) = h.occupied() else {
                    return;
                };
                let alloc = match h.status {
                    HoldStatus::Active => Some(Alloc {
                        end: occupied.end,
                        qty: Some(quantity),
                        expires_at: Some(h.expires_at),
                    }),
                    HoldStatus::Confirmed | HoldStatus::Returned => (occupied.end > period.start)
                        .then_some(Alloc {
                            end: occupied.end,
                            qty: Some(quantity),
                            expires_at: None,
                        }),
                    HoldStatus::Released | HoldStatus::Expired => None,
                };
                if let Some(alloc) = alloc {
                    self.insert_alloc(period.start, h.hold_id, alloc);
                }
                // A change awaiting payment holds its extra instants until
                // it expires.
                if let Some(pending) = h.pending {
                    for piece in h.pending_pieces() {
                        self.insert_alloc(
                            piece.start,
                            pending.change_id,
                            Alloc {
                                end: piece.end,
                                qty: Some(quantity),
                                expires_at: Some(pending.expires_at),
                            },
                        );
                    }
                }
            }
        }
    }

    pub(super) fn remove_hold(&mut self, h: &Hold) {
        if h.status == HoldStatus::Active {
            self.active.remove(&(h.expires_at, h.hold_id));
        }
        match h.request {
            HoldRequest::Sale { quantity } => {
                if matches!(h.status, HoldStatus::Active | HoldStatus::Confirmed) {
                    self.sale_held -= u64::from(quantity);
                }
            }
            HoldRequest::Rental { period, .. } => {
                self.allocs.remove(&(period.start, h.hold_id));
                if let Some(pending) = h.pending {
                    for piece in h.pending_pieces() {
                        self.allocs.remove(&(piece.start, pending.change_id));
                    }
                }
            }
        }
    }

    pub(super) fn add_blackout(&mut self, b: &Blackout) {
        self.insert_alloc(
            b.period.start,
            b.blackout_id,
            Alloc {
                end: b.period.end,
                qty: b.units,
                expires_at: None,
            },
        );
    }

    pub(super) fn remove_blackout(&mut self, b: &Blackout) {
        self.allocs.remove(&(b.period.start, b.blackout_id));
    }
}

impl Inventory {
    /// Active holds with `expires_at <= now`, earliest expiry first.
    pub fn active_holds_due(&self, now: DateTime<Utc>) -> Vec<Uuid> {
        self.index
            .active
            .iter()
            .take_while(|(exp, _)| *exp <= now)
            .map(|(_, id)| *id)
            .collect()
    }

    /// Free sale stock: stock − Active and Confirmed sale holds (Active holds
    /// count until expired, lapsed or not). `None` for rentals and before
    /// initialization.
    pub fn free_stock(&self) -> Option<u32> {
        match self.capacity {
            Some(Capacity::Sale { stock }) => {
                Some(u64::from(stock).saturating_sub(self.index.sale_held) as u32)
            }
            _ => None,
        }
    }

    /// Minimum number of free rental units over `period` at time `now` (lapsed
    /// Active holds do not count). For a sale inventory, the free stock at
    /// `now`; 0 before initialization.
    pub fn free_units(&self, period: &Period, now: DateTime<Utc>) -> u32 {
        match self.capacity {
            Some(Capacity::Rental { units }) => {
                units.saturating_sub(self.peak_use(period, Some(now), None, units))
            }
            Some(Capacity::Sale { stock }) => {
                u64::from(stock).saturating_sub(self.sale_used(now)) as u32
            }
            None => 0,
        }
    }

    /// Σ quantity of Active (lapsed or not) and Confirmed sale holds.
    pub(super) fn sale_held(&self) -> u64 {
        self.index.sale_held
    }

    /// Σ quantity of the sale holds that count at `now` (lapsed ones do not).
    fn sale_used(&self, now: DateTime<Utc>) -> u64 {
        let lapsed: u64 = self
            .index
            .active
            .iter()
            .take_while(|(exp, _)| *exp <= now)
            .filter_map(|(_, id)| match self.holds[id].request {
                HoldRequest::Sale { quantity } => Some(u64::from(quantity)),
                HoldRequest::Rental { .. } => None,
            })
            .sum();
        self.index.sale_held - lapsed
    }

    /// Peak number of units used at any instant of `q` by the counted
    /// allocations (rental holds and blackouts). `now = None` counts every
    /// Active hold; `exclude` leaves one hold out; full blackouts count as
    /// `full_units`.
    pub(super) fn peak_use(
        &self,
        q: &Period,
        now: Option<DateTime<Utc>>,
        exclude: Option<Uuid>,
        full_units: u32,
    ) -> u32 {
        if q.end <= q.start {
            return 0;
        }
        let lo = q
            .start
            .checked_sub_signed(self.index.max_len)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let mut changes: Vec<(DateTime<Utc>, i64)> = Vec::new();
        for (&(start, id), a) in self
            .index
            .allocs
            .range((lo, Uuid::nil())..(q.end, Uuid::nil()))
        {
            if a.end <= q.start || Some(id) == exclude {
                continue;
            }
            if let (Some(exp), Some(now)) = (a.expires_at, now) {
                if exp <= now {
                    continue;
                }
            }
            let qty = i64::from(a.qty.unwrap_or(full_units));
            changes.push((start.max(q.start), qty));
            changes.push((a.end.min(q.end), -qty));
        }
        // Half-open intervals: at equal instants, ends come before starts.
        changes.sort_unstable();
        let mut cur = 0i64;
        let mut peak = 0i64;
        for (_, d) in changes {
            cur += d;
            peak = peak.max(cur);
        }
        u32::try_from(peak).unwrap_or(u32::MAX)
    }

    /// Free units for `request` at `now`, ignoring `exclude`.
    pub(super) fn free_for(
        &self,
        request: &HoldRequest,
        now: DateTime<Utc>,
        exclude: Option<Uuid>,
    ) -> u32 {
        match (self.capacity, request) {
            (Some(Capacity::Rental { units }), HoldRequest::Rental { period, .. }) => {
                units.saturating_sub(self.peak_use(period, Some(now), exclude, units))
            }
            (Some(Capacity::Sale { stock }), HoldRequest::Sale { .. }) => {
                // A lapsed hold is already excluded by `sale_used`, an
                // expired one is not counted at all.
                let mut used = self.sale_used(now);
                if let Some(h) = exclude.and_then(|id| self.holds.get(&id)) {
                    if h.status == HoldStatus::Active && h.expires_at > now {
                        used -= u64::from(h.request.quantity());
                    }
                }
                u64::from(stock)
                    .saturating_sub(used)
                    .min(u64::from(u32::MAX)) as u32
            }
            _ => 0,
        }
    }
}
