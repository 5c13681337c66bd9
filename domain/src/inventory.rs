//! The Inventory aggregate (one per listing): the reservation aggregate that
//! guards rental units and sale stock.
//!
//! Invariant: for rentals, at no instant do the quantities of the counted
//! holds (Active holds not lapsed, Confirmed holds, Returned holds until their
//! effective end) plus the blackout units overlapping that instant exceed
//! `units`; for sales, stock minus the quantities of Active (not lapsed) and
//! Confirmed sale holds never goes below zero.
//!
//! An Active hold whose `expires_at <= now` is *lapsed*: it no longer counts
//! when a command carrying `now` checks capacity (`PlaceHold`, `ConfirmHold`,
//! `SetUnits`). Commands without a `now` (`AddBlackout`, `AdjustStock`) count
//! every Active hold, which is conservative.
//!
//! Performance: counted rental allocations and blackouts are kept in an
//! interval index keyed by `(start, id)` together with the longest allocation
//! length, so an overlap query only scans `[q.start - max_len, q.end)`; peak use
//! is a sweep over the overlapping intervals only. The index is derived state:
//! it is not serialized and is rebuilt on deserialization (snapshots).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Conflict, DomainError, FieldError};
use crate::listing::{ListingKind, MAX_RENTAL_UNITS, MAX_SALE_STOCK};
use crate::period::Period;

/// What an inventory guards: `{"kind":"rental","units":3}` or
/// `{"kind":"sale","stock":10}`. For sales `stock` is the total quantity on
/// hand including what is held or sold-and-confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Capacity {
    Rental { units: u32 },
    Sale { stock: u32 },
}

impl Capacity {
    pub fn kind(&self) -> ListingKind {
        match self {
            Capacity::Rental { .. } => ListingKind::Rental,
            Capacity::Sale { .. } => ListingKind::Sale,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HoldRequest {
    Rental { period: Period, quantity: u32 },
    Sale { quantity: u32 },
}

impl HoldRequest {
    pub fn quantity(&self) -> u32 {
        match self {
            HoldRequest::Rental { quantity, .. } | HoldRequest::Sale { quantity } => *quantity,
        }
    }
    pub fn period(&self) -> Option<&Period> {
        match self {
            HoldRequest::Rental { period, .. } => Some(period),
            HoldRequest::Sale { .. } => None,
        }
    }
    pub fn kind(&self) -> ListingKind {
        match self {
            HoldRequest::Rental { .. } => ListingKind::Rental,
            HoldRequest::Sale { .. } => ListingKind::Sale,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldStatus {
    Active,
    Confirmed,
    Released,
    Expired,
    Returned,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hold {
    pub hold_id: Uuid,
    pub order_id: Uuid,
    pub request: HoldRequest,
    pub expires_at: DateTime<Utc>,
    pub status: HoldStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returned_at: Option<DateTime<Utc>>,
}

impl Hold {
    /// Active and `expires_at <= now`: no longer counts, awaiting the sweeper.
    pub fn is_lapsed(&self, now: DateTime<Utc>) -> bool {
        self.status == HoldStatus::Active && self.expires_at <= now
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Blackout {
    pub blackout_id: Uuid,
    pub period: Period,
    /// `None` = all units.
    pub units: Option<u32>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InventoryCommand {
    Initialize {
        listing_id: Uuid,
        capacity: Capacity,
    },
    PlaceHold {
        hold_id: Uuid,
        order_id: Uuid,
        request: HoldRequest,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    ConfirmHold {
        hold_id: Uuid,
        now: DateTime<Utc>,
    },
    ReleaseHold {
        hold_id: Uuid,
        reason: String,
    },
    ExpireHold {
        hold_id: Uuid,
        now: DateTime<Utc>,
    },
    RecordReturn {
        hold_id: Uuid,
        returned_at: DateTime<Utc>,
    },
    AddBlackout {
        blackout_id: Uuid,
        period: Period,
        units: Option<u32>,
        reason: String,
    },
    RemoveBlackout {
        blackout_id: Uuid,
    },
    SetUnits {
        units: u32,
        now: DateTime<Utc>,
    },
    AdjustStock {
        delta: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InventoryEvent {
    InventoryInitialized {
        listing_id: Uuid,
        capacity: Capacity,
    },
    HoldPlaced {
        hold_id: Uuid,
        order_id: Uuid,
        request: HoldRequest,
        expires_at: DateTime<Utc>,
    },
    HoldConfirmed {
        hold_id: Uuid,
    },
    HoldReinstated {
        hold_id: Uuid,
    },
    HoldReleased {
        hold_id: Uuid,
        reason: String,
    },
    HoldExpired {
        hold_id: Uuid,
    },
    ReturnRecorded {
        hold_id: Uuid,
        returned_at: DateTime<Utc>,
    },
    BlackoutAdded {
        blackout_id: Uuid,
        period: Period,
        units: Option<u32>,
        reason: String,
    },
    BlackoutRemoved {
        blackout_id: Uuid,
    },
    UnitsChanged {
        units: u32,
    },
    /// `stock` is the free stock after the adjustment.
    StockAdjusted {
        delta: i64,
        stock: u32,
    },
}

impl DomainEvent for InventoryEvent {
    fn event_type(&self) -> String {
        match self {
            InventoryEvent::InventoryInitialized { .. } => "InventoryInitialized",
            InventoryEvent::HoldPlaced { .. } => "HoldPlaced",
            InventoryEvent::HoldConfirmed { .. } => "HoldConfirmed",
            InventoryEvent::HoldReinstated { .. } => "HoldReinstated",
            InventoryEvent::HoldReleased { .. } => "HoldReleased",
            InventoryEvent::HoldExpired { .. } => "HoldExpired",
            InventoryEvent::ReturnRecorded { .. } => "ReturnRecorded",
            InventoryEvent::BlackoutAdded { .. } => "BlackoutAdded",
            InventoryEvent::BlackoutRemoved { .. } => "BlackoutRemoved",
            InventoryEvent::UnitsChanged { .. } => "UnitsChanged",
            InventoryEvent::StockAdjusted { .. } => "StockAdjusted",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        crate::EVENT_VERSION.to_string()
    }
}

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
struct Index {
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

    fn add_hold(&mut self, h: &Hold) {
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
                let alloc = match h.status {
                    HoldStatus::Active => Some(Alloc {
                        end: period.end,
                        qty: Some(quantity),
                        expires_at: Some(h.expires_at),
                    }),
                    HoldStatus::Confirmed => Some(Alloc {
                        end: period.end,
                        qty: Some(quantity),
                        expires_at: None,
                    }),
                    HoldStatus::Returned => {
                        let end = effective_end(&period, h.returned_at);
                        (end > period.start).then_some(Alloc {
                            end,
                            qty: Some(quantity),
                            expires_at: None,
                        })
                    }
                    HoldStatus::Released | HoldStatus::Expired => None,
                };
                if let Some(alloc) = alloc {
                    self.insert_alloc(period.start, h.hold_id, alloc);
                }
            }
        }
    }

    fn remove_hold(&mut self, h: &Hold) {
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
            }
        }
    }

    fn add_blackout(&mut self, b: &Blackout) {
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

    fn remove_blackout(&mut self, b: &Blackout) {
        self.allocs.remove(&(b.period.start, b.blackout_id));
    }
}

/// A returned rental frees its units from min(returned_at, end) (never
/// before its start).
fn effective_end(period: &Period, returned_at: Option<DateTime<Utc>>) -> DateTime<Utc> {
    match returned_at {
        Some(r) => r.clamp(period.start, period.end),
        None => period.end,
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "InventoryData")]
pub struct Inventory {
    listing_id: Option<Uuid>,
    capacity: Option<Capacity>,
    holds: BTreeMap<Uuid, Hold>,
    blackouts: BTreeMap<Uuid, Blackout>,
    #[serde(skip)]
    index: Index,
}

/// The serialized form of [`Inventory`] (without its derived index).
#[derive(Deserialize)]
struct InventoryData {
    listing_id: Option<Uuid>,
    capacity: Option<Capacity>,
    #[serde(default)]
    holds: BTreeMap<Uuid, Hold>,
    #[serde(default)]
    blackouts: BTreeMap<Uuid, Blackout>,
}

impl From<InventoryData> for Inventory {
    fn from(d: InventoryData) -> Self {
        let mut index = Index::default();
        for h in d.holds.values() {
            index.add_hold(h);
        }
        for b in d.blackouts.values() {
            index.add_blackout(b);
        }
        Inventory {
            listing_id: d.listing_id,
            capacity: d.capacity,
            holds: d.holds,
            blackouts: d.blackouts,
            index,
        }
    }
}

impl PartialEq for Inventory {
    fn eq(&self, other: &Self) -> bool {
        self.listing_id == other.listing_id
            && self.capacity == other.capacity
            && self.holds == other.holds
            && self.blackouts == other.blackouts
    }
}

impl Inventory {
    pub fn listing_id(&self) -> Option<Uuid> {
        self.listing_id
    }
    pub fn is_initialized(&self) -> bool {
        self.capacity.is_some()
    }
    pub fn capacity(&self) -> Option<&Capacity> {
        self.capacity.as_ref()
    }
    pub fn kind(&self) -> Option<ListingKind> {
        self.capacity.as_ref().map(Capacity::kind)
    }
    pub fn hold(&self, hold_id: Uuid) -> Option<&Hold> {
        self.holds.get(&hold_id)
    }
    pub fn holds(&self) -> impl Iterator<Item = &Hold> {
        self.holds.values()
    }
    pub fn blackout(&self, blackout_id: Uuid) -> Option<&Blackout> {
        self.blackouts.get(&blackout_id)
    }
    pub fn blackouts(&self) -> impl Iterator<Item = &Blackout> {
        self.blackouts.values()
    }

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
    fn peak_use(
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

    fn require_hold(&self, hold_id: Uuid) -> Result<&Hold, DomainError> {
        self.holds
            .get(&hold_id)
            .ok_or(DomainError::not_found("hold"))
    }

    fn unavailable(&self, request: &HoldRequest, free: u32) -> DomainError {
        DomainError::Unavailable {
            conflicts: vec![Conflict {
                listing_id: self.listing_id.unwrap_or_default(),
                start: request.period().map(|p| p.start),
                end: request.period().map(|p| p.end),
                requested: request.quantity(),
                free,
            }],
        }
    }

    /// Free units for `request` at `now`, ignoring `exclude`.
    fn free_for(&self, request: &HoldRequest, now: DateTime<Utc>, exclude: Option<Uuid>) -> u32 {
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

    fn decide(&self, command: InventoryCommand) -> Result<Vec<InventoryEvent>, DomainError> {
        use InventoryCommand as C;
        use InventoryEvent as E;
        if let C::Initialize {
            listing_id,
            capacity,
        } = command
        {
            if self.is_initialized() {
                return Err(DomainError::AlreadyExists { what: "inventory" });
            }
            match capacity {
                Capacity::Rental { units } if !(1..=MAX_RENTAL_UNITS).contains(&units) => {
                    return Err(DomainError::invalid(
                        "units",
                        format!("must be between 1 and {MAX_RENTAL_UNITS}"),
                    ));
                }
                Capacity::Sale { stock } if stock > MAX_SALE_STOCK => {
                    return Err(DomainError::invalid(
                        "stock",
                        format!("must be at most {MAX_SALE_STOCK}"),
                    ));
                }
                _ => {}
            }
            return Ok(vec![E::InventoryInitialized {
                listing_id,
                capacity,
            }]);
        }
        let Some(capacity) = self.capacity else {
            return Err(DomainError::not_found("inventory"));
        };
        match command {
            C::Initialize { .. } => unreachable!("handled above"),
            C::PlaceHold {
                hold_id,
                order_id,
                request,
                expires_at,
                now,
            } => {
                if let Some(existing) = self.holds.get(&hold_id) {
                    // A retry (same order and request) is a no-op even when
                    // it computed another expiry.
                    if existing.order_id == order_id && existing.request == request {
                        return Ok(vec![]);
                    }
                    return Err(DomainError::AlreadyExists { what: "hold" });
                }
                let mut errors = Vec::new();
                if request.kind() != capacity.kind() {
                    errors.push(FieldError::new(
                        "kind",
                        format!(
                            "this listing is a {} listing",
                            match capacity.kind() {
                                ListingKind::Rental => "rental",
                                ListingKind::Sale => "sale",
                            }
                        ),
                    ));
                }
                if request.quantity() < 1 {
                    errors.push(FieldError::new("quantity", "must be at least 1"));
                }
                if let Some(p) = request.period() {
                    if !p.is_valid() {
                        errors.push(FieldError::new("end", "end must be after start"));
                    }
                }
                if expires_at <= now {
                    errors.push(FieldError::new("expires_at", "must be after now"));
                }
                DomainError::check(errors)?;
                let free = self.free_for(&request, now, None);
                if request.quantity() > free {
                    return Err(self.unavailable(&request, free));
                }
                Ok(vec![E::HoldPlaced {
                    hold_id,
                    order_id,
                    request,
                    expires_at,
                }])
            }
            C::ConfirmHold { hold_id, now } => {
                let h = self.require_hold(hold_id)?;
                match h.status {
                    HoldStatus::Confirmed | HoldStatus::Returned => Ok(vec![]),
                    HoldStatus::Released => Err(DomainError::invalid_state(
                        "the hold was released and cannot be confirmed",
                    )),
                    HoldStatus::Active if h.expires_at > now => {
                        Ok(vec![E::HoldConfirmed { hold_id }])
                    }
                    HoldStatus::Active | HoldStatus::Expired => {
                        let free = self.free_for(&h.request, now, Some(hold_id));
                        if h.request.quantity() > free {
                            return Err(self.unavailable(&h.request, free));
                        }
                        Ok(vec![
                            E::HoldReinstated { hold_id },
                            E::HoldConfirmed { hold_id },
                        ])
                    }
                }
            }
            C::ReleaseHold { hold_id, reason } => {
                let h = self.require_hold(hold_id)?;
                match h.status {
                    HoldStatus::Active | HoldStatus::Confirmed => {
                        Ok(vec![E::HoldReleased { hold_id, reason }])
                    }
                    HoldStatus::Released | HoldStatus::Expired | HoldStatus::Returned => Ok(vec![]),
                }
            }
            C::ExpireHold { hold_id, now } => {
                let h = self.require_hold(hold_id)?;
                match h.status {
                    HoldStatus::Active if h.expires_at <= now => {
                        Ok(vec![E::HoldExpired { hold_id }])
                    }
                    HoldStatus::Active => {
                        Err(DomainError::invalid_state("the hold has not expired yet"))
                    }
                    _ => Ok(vec![]),
                }
            }
            C::RecordReturn {
                hold_id,
                returned_at,
            } => {
                let h = self.require_hold(hold_id)?;
                if h.request.kind() != ListingKind::Rental {
                    return Err(DomainError::invalid_state(
                        "only rental holds can be returned",
                    ));
                }
                match h.status {
                    HoldStatus::Confirmed => Ok(vec![E::ReturnRecorded {
                        hold_id,
                        returned_at,
                    }]),
                    HoldStatus::Returned => Ok(vec![]),
                    _ => Err(DomainError::invalid_state(
                        "only a confirmed rental can be returned",
                    )),
                }
            }
            C::AddBlackout {
                blackout_id,
                period,
                units,
                reason,
            } => {
                let Capacity::Rental { units: cap } = capacity else {
                    return Err(DomainError::invalid_state(
                        "blackouts apply to rental listings only",
                    ));
                };
                if let Some(existing) = self.blackouts.get(&blackout_id) {
                    if existing.period == period && existing.units == units {
                        return Ok(vec![]);
                    }
                    return Err(DomainError::AlreadyExists { what: "blackout" });
                }
                let mut errors = Vec::new();
                if let Err(DomainError::Validation { errors: found }) =
                    Period::new(period.start, period.end)
                {
                    errors.extend(found);
                }
                if units == Some(0) {
                    errors.push(FieldError::new("units", "must be at least 1"));
                }
                DomainError::check(errors)?;
                let blocked = units.unwrap_or(cap);
                let in_use = self.peak_use(&period, None, None, cap);
                if u64::from(in_use) + u64::from(blocked) > u64::from(cap) {
                    return Err(DomainError::WouldUndercut {
                        in_use,
                        requested_capacity: i64::from(cap) - i64::from(blocked),
                    });
                }
                Ok(vec![E::BlackoutAdded {
                    blackout_id,
                    period,
                    units,
                    reason,
                }])
            }
            C::RemoveBlackout { blackout_id } => {
                if !self.blackouts.contains_key(&blackout_id) {
                    return Err(DomainError::not_found("blackout"));
                }
                Ok(vec![E::BlackoutRemoved { blackout_id }])
            }
            C::SetUnits { units, now } => {
                let Capacity::Rental { units: current } = capacity else {
                    return Err(DomainError::invalid_state(
                        "units apply to rental listings only; adjust the stock instead",
                    ));
                };
                if !(1..=MAX_RENTAL_UNITS).contains(&units) {
                    return Err(DomainError::invalid(
                        "units",
                        format!("must be between 1 and {MAX_RENTAL_UNITS}"),
                    ));
                }
                if units == current {
                    return Ok(vec![]);
                }
                if units < current {
                    let from_now = Period {
                        start: now,
                        end: DateTime::<Utc>::MAX_UTC,
                    };
                    let in_use = self.peak_use(&from_now, Some(now), None, units);
                    if in_use > units {
                        return Err(DomainError::WouldUndercut {
                            in_use,
                            requested_capacity: i64::from(units),
                        });
                    }
                }
                Ok(vec![E::UnitsChanged { units }])
            }
            C::AdjustStock { delta } => {
                let Capacity::Sale { stock } = capacity else {
                    return Err(DomainError::invalid_state(
                        "stock applies to sale listings only; set the units instead",
                    ));
                };
                if delta == 0 {
                    return Err(DomainError::invalid("delta", "must not be zero"));
                }
                let new_stock = i64::from(stock).saturating_add(delta);
                if new_stock > i64::from(MAX_SALE_STOCK) {
                    return Err(DomainError::invalid(
                        "delta",
                        format!("stock must stay at most {MAX_SALE_STOCK}"),
                    ));
                }
                let held = self.index.sale_held;
                if new_stock < 0 || (delta < 0 && (new_stock as u64) < held) {
                    return Err(DomainError::WouldUndercut {
                        in_use: u32::try_from(held).unwrap_or(u32::MAX),
                        requested_capacity: new_stock,
                    });
                }
                let free = (new_stock as u64).saturating_sub(held) as u32;
                Ok(vec![E::StockAdjusted { delta, stock: free }])
            }
        }
    }

    /// Changes one hold, keeping the index in sync.
    fn update_hold(&mut self, hold_id: Uuid, f: impl FnOnce(&mut Hold)) {
        if let Some(h) = self.holds.get_mut(&hold_id) {
            self.index.remove_hold(h);
            f(h);
            self.index.add_hold(h);
        }
    }
}

impl Aggregate for Inventory {
    const TYPE: &'static str = "Inventory";
    type Command = InventoryCommand;
    type Event = InventoryEvent;
    type Error = DomainError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _service: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use InventoryEvent as E;
        match event {
            E::InventoryInitialized {
                listing_id,
                capacity,
            } => {
                self.listing_id = Some(listing_id);
                self.capacity = Some(capacity);
            }
            E::HoldPlaced {
                hold_id,
                order_id,
                request,
                expires_at,
            } => {
                let hold = Hold {
                    hold_id,
                    order_id,
                    request,
                    expires_at,
                    status: HoldStatus::Active,
                    returned_at: None,
                };
                if let Some(old) = self.holds.get(&hold_id) {
                    self.index.remove_hold(old);
                }
                self.index.add_hold(&hold);
                self.holds.insert(hold_id, hold);
            }
            E::HoldConfirmed { hold_id } => {
                self.update_hold(hold_id, |h| h.status = HoldStatus::Confirmed)
            }
            E::HoldReinstated { hold_id } => {
                self.update_hold(hold_id, |h| h.status = HoldStatus::Active)
            }
            E::HoldReleased { hold_id, .. } => {
                self.update_hold(hold_id, |h| h.status = HoldStatus::Released)
            }
            E::HoldExpired { hold_id } => {
                self.update_hold(hold_id, |h| h.status = HoldStatus::Expired)
            }
            E::ReturnRecorded {
                hold_id,
                returned_at,
            } => self.update_hold(hold_id, |h| {
                h.status = HoldStatus::Returned;
                h.returned_at = Some(returned_at);
            }),
            E::BlackoutAdded {
                blackout_id,
                period,
                units,
                reason,
            } => {
                let b = Blackout {
                    blackout_id,
                    period,
                    units,
                    reason,
                };
                if let Some(old) = self.blackouts.get(&blackout_id) {
                    self.index.remove_blackout(old);
                }
                self.index.add_blackout(&b);
                self.blackouts.insert(blackout_id, b);
            }
            E::BlackoutRemoved { blackout_id } => {
                if let Some(b) = self.blackouts.remove(&blackout_id) {
                    self.index.remove_blackout(&b);
                }
            }
            E::UnitsChanged { units } => {
                if let Some(Capacity::Rental { units: u }) = self.capacity.as_mut() {
                    *u = units;
                }
            }
            E::StockAdjusted { delta, .. } => {
                if let Some(Capacity::Sale { stock }) = self.capacity.as_mut() {
                    *stock = (i64::from(*stock) + delta).clamp(0, i64::from(u32::MAX)) as u32;
                }
            }
        }
    }
}
