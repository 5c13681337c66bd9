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
//! Here: the aggregate's state, its commands and events, and `apply`. What
//! it records is in `hold`, the interval index that keeps the check fast in
//! `index`, and the rules (one function per command) in `decide`.

mod change;
mod decide;
mod hold;
mod index;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::handle_by_deciding;
use crate::error::DomainError;
use crate::listing::ListingKind;
use crate::period::{Period, PricingUnit};
use crate::schedule::{IsoDuration, Schedule};
pub use hold::{Blackout, Capacity, Hold, HoldRequest, HoldStatus, PendingChange};
use index::Index;

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
    /// A confirmed rental past its end and not returned keeps its units
    /// until it is returned.
    MarkOverdue {
        hold_id: Uuid,
        now: DateTime<Utc>,
    },
    /// The listing's schedule, for holds placed from now on.
    SetSchedule {
        schedule: Schedule,
        pricing_unit: PricingUnit,
    },
    AddBlackout {
        blackout_id: Uuid,
        period: Period,
        units: Option<u32>,
        /// Personal: sealed by the edge (the vendor's key).
        reason: crate::PersonalText,
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
    /// Holds `period` for a hold's extension or reschedule until
    /// `expires_at` (only what the hold does not occupy already must be
    /// free); `extension` = the start stays, so rules about the start are
    /// not asked again.
    PlaceChange {
        hold_id: Uuid,
        change_id: Uuid,
        period: Period,
        expires_at: DateTime<Utc>,
        extension: bool,
        now: DateTime<Utc>,
    },
    /// The change was paid (or nothing was due): the hold takes its period,
    /// held again first if it lapsed.
    ApplyChange {
        hold_id: Uuid,
        change_id: Uuid,
        now: DateTime<Utc>,
    },
    /// The change was not paid in time: its units are free again.
    LapseChange {
        hold_id: Uuid,
        change_id: Uuid,
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
        /// Turnover time kept free after the period (the schedule's, when
        /// the hold was placed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        buffer: Option<IsoDuration>,
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
    HoldOverdue {
        hold_id: Uuid,
    },
    ScheduleSet {
        schedule: Schedule,
        pricing_unit: PricingUnit,
    },
    BlackoutAdded {
        blackout_id: Uuid,
        period: Period,
        units: Option<u32>,
        /// Personal: sealed by the edge (the vendor's key).
        reason: crate::PersonalText,
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
    ChangeHeld {
        hold_id: Uuid,
        change_id: Uuid,
        period: Period,
        expires_at: DateTime<Utc>,
    },
    /// The hold's period is `period` now (its buffer, kept from when it
    /// was placed, after it).
    ChangeApplied {
        hold_id: Uuid,
        change_id: Uuid,
        period: Period,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        buffer: Option<IsoDuration>,
    },
    ChangeLapsed {
        hold_id: Uuid,
        change_id: Uuid,
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
            InventoryEvent::HoldOverdue { .. } => "HoldOverdue",
            InventoryEvent::ScheduleSet { .. } => "ScheduleSet",
            InventoryEvent::BlackoutAdded { .. } => "BlackoutAdded",
            InventoryEvent::BlackoutRemoved { .. } => "BlackoutRemoved",
            InventoryEvent::UnitsChanged { .. } => "UnitsChanged",
            InventoryEvent::StockAdjusted { .. } => "StockAdjusted",
            InventoryEvent::ChangeHeld { .. } => "ChangeHeld",
            InventoryEvent::ChangeApplied { .. } => "ChangeApplied",
            InventoryEvent::ChangeLapsed { .. } => "ChangeLapsed",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        crate::EVENT_VERSION.to_string()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "InventoryData")]
pub struct Inventory {
    listing_id: Option<Uuid>,
    capacity: Option<Capacity>,
    holds: BTreeMap<Uuid, Hold>,
    blackouts: BTreeMap<Uuid, Blackout>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    schedule: Option<Schedule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pricing_unit: Option<PricingUnit>,
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
    #[serde(default)]
    schedule: Option<Schedule>,
    #[serde(default)]
    pricing_unit: Option<PricingUnit>,
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
            schedule: d.schedule,
            pricing_unit: d.pricing_unit,
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
            && self.schedule == other.schedule
            && self.pricing_unit == other.pricing_unit
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
    /// The schedule new holds are judged by; `None` = open all the time.
    pub fn schedule(&self) -> Option<&Schedule> {
        self.schedule.as_ref()
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

    handle_by_deciding!();

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
                buffer,
            } => {
                let hold = Hold {
                    hold_id,
                    order_id,
                    request,
                    expires_at,
                    status: HoldStatus::Active,
                    returned_at: None,
                    buffer,
                    overdue: false,
                    pending: None,
                    last_change: None,
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
            E::HoldOverdue { hold_id } => self.update_hold(hold_id, |h| h.overdue = true),
            E::ScheduleSet {
                schedule,
                pricing_unit,
            } => {
                self.schedule = Some(schedule);
                self.pricing_unit = Some(pricing_unit);
            }
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
            E::ChangeHeld {
                hold_id,
                change_id,
                period,
                expires_at,
            } => self.update_hold(hold_id, |h| {
                h.pending = Some(PendingChange {
                    change_id,
                    period,
                    expires_at,
                    lapsed: false,
                })
            }),
            E::ChangeApplied {
                hold_id,
                change_id,
                period,
                ..
            } => self.update_hold(hold_id, |h| {
                if let HoldRequest::Rental { period: p, .. } = &mut h.request {
                    *p = period;
                }
                h.pending = None;
                h.last_change = Some(change_id);
            }),
            E::ChangeLapsed { hold_id, change_id } => self.update_hold(hold_id, |h| {
                if let Some(p) = h.pending.as_mut().filter(|p| p.change_id == change_id) {
                    p.lapsed = true;
                }
            }),
        }
    }
}
