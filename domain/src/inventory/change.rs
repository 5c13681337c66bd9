//! Extensions and reschedules on the Inventory (API.md "Rentals"): a hold's
//! new period is held atomically while the change awaits payment, then
//! applied, or it lapses and the hold keeps its old period.
//!
//! While a change is pending only the instants of the new period (with the
//! hold's buffer) that the hold does not occupy already count as extra
//! units (`Hold::pending_pieces`), so fifty customers extending into the
//! same free units get exactly those units, and a reschedule that overlaps
//! the old period does not need a unit twice.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{HoldStatus, Inventory, InventoryEvent as E};
use crate::error::{Conflict, DomainError, FieldError};
use crate::listing::ListingKind;
use crate::period::{Period, PricingUnit};

type Decision = Result<Vec<E>, DomainError>;

impl Inventory {
    pub(super) fn place_change(
        &self,
        hold_id: Uuid,
        change_id: Uuid,
        period: Period,
        expires_at: DateTime<Utc>,
        extension: bool,
        now: DateTime<Utc>,
    ) -> Decision {
        let h = self.require_hold(hold_id)?;
        if h.request.kind() != ListingKind::Rental {
            return Err(DomainError::invalid_state(
                "only rental holds can be changed",
            ));
        }
        if let Some(p) = h.pending.filter(|p| p.change_id == change_id) {
            return if p.period == period {
                Ok(vec![])
            } else {
                Err(DomainError::AlreadyExists { what: "change" })
            };
        }
        if h.last_change == Some(change_id) {
            return Ok(vec![]);
        }
        if !matches!(h.status, HoldStatus::Active | HoldStatus::Confirmed) || h.overdue {
            return Err(DomainError::invalid_state(
                "only a booked rental (not overdue, not returned) can be changed",
            ));
        }
        if h.pending.is_some_and(|p| !p.lapsed && p.expires_at > now) {
            return Err(DomainError::invalid_state(
                "another change of this hold awaits payment",
            ));
        }
        let mut errors = Vec::new();
        if !period.is_valid() {
            errors.push(FieldError::new("end", "end must be after start"));
        }
        if expires_at <= now {
            errors.push(FieldError::new("expires_at", "must be after now"));
        }
        if let (Some(schedule), true) = (self.schedule.as_ref(), period.is_valid()) {
            let unit = self.pricing_unit.unwrap_or(PricingUnit::Hour);
            errors.extend(
                schedule
                    .check(&period, now, unit)
                    .into_iter()
                    // An extension keeps the start it was booked with.
                    .filter(|e| !(extension && e.field == "start")),
            );
        }
        DomainError::check(errors)?;
        self.check_pieces_free(hold_id, &period, now)?;
        Ok(vec![E::ChangeHeld {
            hold_id,
            change_id,
            period,
            expires_at,
        }])
    }

    /// A change not lapsed is applied; a lapsed one only if its units are
    /// still free.
    pub(super) fn apply_change(
        &self,
        hold_id: Uuid,
        change_id: Uuid,
        now: DateTime<Utc>,
    ) -> Decision {
        let h = self.require_hold(hold_id)?;
        if h.last_change == Some(change_id) {
            return Ok(vec![]);
        }
        let Some(pending) = h.pending.filter(|p| p.change_id == change_id) else {
            return Err(DomainError::not_found("change"));
        };
        if !matches!(h.status, HoldStatus::Active | HoldStatus::Confirmed) {
            return Err(DomainError::invalid_state(
                "the hold was released or returned; it cannot be changed",
            ));
        }
        if pending.lapsed || pending.expires_at <= now {
            self.check_pieces_free(hold_id, &pending.period, now)?;
        }
        Ok(vec![E::ChangeApplied {
            hold_id,
            change_id,
            period: pending.period,
            buffer: h.buffer,
        }])
    }

    pub(super) fn lapse_change(&self, hold_id: Uuid, change_id: Uuid) -> Decision {
        let h = self.require_hold(hold_id)?;
        match h.pending {
            Some(p) if p.change_id == change_id && !p.lapsed => {
                Ok(vec![E::ChangeLapsed { hold_id, change_id }])
            }
            _ => Ok(vec![]),
        }
    }

    /// 409 `unavailable` (naming the whole new period) unless every instant
    /// the hold would newly occupy has its quantity free.
    fn check_pieces_free(
        &self,
        hold_id: Uuid,
        period: &Period,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        let h = self.require_hold(hold_id)?;
        let quantity = h.request.quantity();
        let units = match self.capacity {
            Some(super::Capacity::Rental { units }) => units,
            _ => 0,
        };
        let free = h
            .extra_pieces(period)
            .iter()
            .map(|piece| {
                units.saturating_sub(self.peak_use(piece, Some(now), Some(hold_id), units))
            })
            .min()
            .unwrap_or(units.max(quantity));
        if quantity > free {
            return Err(DomainError::Unavailable {
                conflicts: vec![Conflict {
                    listing_id: self.listing_id.unwrap_or_default(),
                    start: Some(period.start),
                    end: Some(period.end),
                    requested: quantity,
                    free,
                }],
            });
        }
        Ok(())
    }
}
