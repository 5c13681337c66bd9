//! What an inventory records: the capacity it guards, the holds placed on
//! it for orders, and the blackout periods a vendor took out of rental.
//! Plain values; the rules about them live in `decide.rs`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::listing::ListingKind;
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
