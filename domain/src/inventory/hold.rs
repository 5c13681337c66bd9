//! What an inventory records: the capacity it guards, the holds placed on
//! it for orders, and the blackout periods a vendor took out of rental.
//! Plain values; the rules about them live in `decide.rs`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::listing::ListingKind;
use crate::period::Period;
use crate::schedule::IsoDuration;

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
    /// Turnover time kept free after the period (and after a return).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffer: Option<IsoDuration>,
    /// Past its end and not returned: it keeps its units until returned.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub overdue: bool,
    /// A new period held for an extension or reschedule awaiting payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingChange>,
    /// The last change applied (a repeated apply records nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_change: Option<Uuid>,
}

/// A change of a hold's period awaiting payment: until `expires_at` the
/// units of the new period that the hold does not already occupy are held
/// too (`Hold::pending_pieces`); applied, the hold takes the new period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChange {
    pub change_id: Uuid,
    pub period: Period,
    pub expires_at: DateTime<Utc>,
    /// Not applied by its expiry: no longer counts (kept so that a late
    /// payment may hold it again).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lapsed: bool,
}

impl Hold {
    /// The instants a rental hold keeps its units `[start, end)`: its
    /// period and buffer; an overdue hold to the end of time (until it is
    /// returned); a returned one until its return (within its period) and
    /// buffer. Returns are recorded at or before now, so the late part of
    /// a late return lies in the past, where nothing new can be held.
    pub fn occupied(&self) -> Option<Period> {
        let HoldRequest::Rental { period, .. } = self.request else {
            return None;
        };
        let buffer = self.buffer.map_or(chrono::Duration::zero(), |b| b.delta());
        let end = match (self.status, self.returned_at) {
            (HoldStatus::Returned, Some(r)) => r.clamp(period.start, period.end) + buffer,
            (HoldStatus::Returned, None) => period.end + buffer,
            _ if self.overdue => crate::period::latest(),
            _ => period.end + buffer,
        };
        Some(Period {
            start: period.start,
            end,
        })
    }

    /// The request as the units it occupies: a rental's period stretched
    /// by its buffer (what a capacity check must find free).
    pub fn occupying(&self) -> HoldRequest {
        match (self.request, self.buffer) {
            (HoldRequest::Rental { period, quantity }, Some(b)) => HoldRequest::Rental {
                period: Period {
                    start: period.start,
                    end: period.end + b.delta(),
                },
                quantity,
            },
            (request, _) => request,
        }
    }

    /// The instants `period` (stretched by the buffer) needs beyond what
    /// the hold occupies now: none, one or two pieces.
    pub fn extra_pieces(&self, period: &Period) -> Vec<Period> {
        let Some(occupied) = self.occupied() else {
            return Vec::new();
        };
        let buffer = self.buffer.map_or(chrono::Duration::zero(), |b| b.delta());
        let wanted = Period {
            start: period.start,
            end: period.end + buffer,
        };
        let mut pieces = Vec::new();
        if wanted.start < occupied.start {
            pieces.push(Period {
                start: wanted.start,
                end: wanted.end.min(occupied.start),
            });
        }
        if wanted.end > occupied.end {
            pieces.push(Period {
                start: wanted.start.max(occupied.end),
                end: wanted.end,
            });
        }
        pieces.retain(|p| p.end > p.start);
        pieces
    }

    /// What a pending change holds beyond the hold's own units while it
    /// counts (an Active or Confirmed hold, the change not lapsed).
    pub fn pending_pieces(&self) -> Vec<Period> {
        match self.pending {
            Some(p)
                if !p.lapsed
                    && matches!(self.status, HoldStatus::Active | HoldStatus::Confirmed) =>
            {
                self.extra_pieces(&p.period)
            }
            _ => Vec::new(),
        }
    }

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
    /// Personal: sealed (the vendor's key).
    pub reason: crate::PersonalText,
}
