//! The Inventory's rules: which events each command yields on the current
//! state, or why it is rejected. One function per command; `decide` only
//! dispatches (and answers NotFound for anything but `Initialize` before
//! the inventory exists).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    Blackout, Capacity, Hold, HoldRequest, HoldStatus, Inventory, InventoryCommand,
    InventoryEvent as E,
};
use crate::aggregate::Decide;
use crate::error::{Conflict, DomainError, FieldError};
use crate::listing::{ListingKind, MAX_RENTAL_UNITS, MAX_SALE_STOCK};
use crate::period::{Period, PricingUnit};
use crate::schedule::Schedule;

type Decision = Result<Vec<E>, DomainError>;

impl Decide for Inventory {
    fn decide(&self, command: InventoryCommand) -> Decision {
        use InventoryCommand as C;
        match (self.capacity, command) {
            (
                _,
                C::Initialize {
                    listing_id,
                    capacity,
                },
            ) => self.initialize(listing_id, capacity),
            (None, _) => Err(DomainError::not_found("inventory")),
            (
                Some(capacity),
                C::PlaceHold {
                    hold_id,
                    order_id,
                    request,
                    expires_at,
                    now,
                },
            ) => self.place_hold(capacity, hold_id, order_id, request, expires_at, now),
            (Some(_), C::ConfirmHold { hold_id, now }) => self.confirm_hold(hold_id, now),
            (Some(_), C::ReleaseHold { hold_id, reason }) => self.release_hold(hold_id, reason),
            (Some(_), C::ExpireHold { hold_id, now }) => self.expire_hold(hold_id, now),
            (
                Some(_),
                C::RecordReturn {
                    hold_id,
                    returned_at,
                },
            ) => self.record_return(hold_id, returned_at),
            (Some(_), C::MarkOverdue { hold_id, now }) => self.mark_overdue(hold_id, now),
            (
                Some(capacity),
                C::SetSchedule {
                    schedule,
                    pricing_unit,
                },
            ) => self.set_schedule(capacity, schedule, pricing_unit),
            (
                Some(capacity),
                C::AddBlackout {
                    blackout_id,
                    period,
                    units,
                    reason,
                },
            ) => self.add_blackout(
                capacity,
                Blackout {
                    blackout_id,
                    period,
                    units,
                    reason,
                },
            ),
            (Some(_), C::RemoveBlackout { blackout_id }) => self.remove_blackout(blackout_id),
            (Some(capacity), C::SetUnits { units, now }) => self.set_units(capacity, units, now),
            (Some(capacity), C::AdjustStock { delta }) => self.adjust_stock(capacity, delta),
            (
                Some(_),
                C::PlaceChange {
                    hold_id,
                    change_id,
                    period,
                    expires_at,
                    extension,
                    now,
                },
            ) => self.place_change(hold_id, change_id, period, expires_at, extension, now),
            (
                Some(_),
                C::ApplyChange {
                    hold_id,
                    change_id,
                    now,
                },
            ) => self.apply_change(hold_id, change_id, now),
            (Some(_), C::LapseChange { hold_id, change_id }) => {
                self.lapse_change(hold_id, change_id)
            }
        }
    }
}

impl Inventory {
    fn initialize(&self, listing_id: Uuid, capacity: Capacity) -> Decision {
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
        Ok(vec![E::InventoryInitialized {
            listing_id,
            capacity,
        }])
    }

    fn place_hold(
        &self,
        capacity: Capacity,
        hold_id: Uuid,
        order_id: Uuid,
        request: HoldRequest,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Decision {
        if let Some(existing) = self.holds.get(&hold_id) {
            // A retry (same order and request) is a no-op even when it
            // computed another expiry.
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
        // The schedule in force now decides; a later change does not
        // touch this hold.
        let schedule = self
            .schedule
            .as_ref()
            .filter(|_| request.kind() == ListingKind::Rental);
        if let (Some(schedule), Some(period)) = (schedule, request.period()) {
            if period.is_valid() {
                let unit = self.pricing_unit.unwrap_or(PricingUnit::Hour);
                errors.extend(schedule.check(period, now, unit));
            }
        }
        DomainError::check(errors)?;
        let buffer = schedule.and_then(Schedule::buffer);
        let probe = Hold {
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
        let free = self.free_for(&probe.occupying(), now, None);
        if request.quantity() > free {
            return Err(self.unavailable(&request, free));
        }
        Ok(vec![E::HoldPlaced {
            hold_id,
            order_id,
            request,
            expires_at,
            buffer,
        }])
    }

    /// Confirming an Active hold after its expiry, or an Expired one,
    /// reinstates it first, if its units are still free.
    fn confirm_hold(&self, hold_id: Uuid, now: DateTime<Utc>) -> Decision {
        let h = self.require_hold(hold_id)?;
        match h.status {
            HoldStatus::Confirmed | HoldStatus::Returned => Ok(vec![]),
            HoldStatus::Released => Err(DomainError::invalid_state(
                "the hold was released and cannot be confirmed",
            )),
            HoldStatus::Active if h.expires_at > now => Ok(vec![E::HoldConfirmed { hold_id }]),
            HoldStatus::Active | HoldStatus::Expired => {
                let free = self.free_for(&h.occupying(), now, Some(hold_id));
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

    fn release_hold(&self, hold_id: Uuid, reason: String) -> Decision {
        let h = self.require_hold(hold_id)?;
        match h.status {
            HoldStatus::Active | HoldStatus::Confirmed => {
                Ok(vec![E::HoldReleased { hold_id, reason }])
            }
            HoldStatus::Released | HoldStatus::Expired | HoldStatus::Returned => Ok(vec![]),
        }
    }

    fn expire_hold(&self, hold_id: Uuid, now: DateTime<Utc>) -> Decision {
        let h = self.require_hold(hold_id)?;
        match h.status {
            HoldStatus::Active if h.expires_at <= now => Ok(vec![E::HoldExpired { hold_id }]),
            HoldStatus::Active => Err(DomainError::invalid_state("the hold has not expired yet")),
            _ => Ok(vec![]),
        }
    }

    fn record_return(&self, hold_id: Uuid, returned_at: DateTime<Utc>) -> Decision {
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

    /// Only a confirmed rental whose period has ended can be overdue.
    fn mark_overdue(&self, hold_id: Uuid, now: DateTime<Utc>) -> Decision {
        let h = self.require_hold(hold_id)?;
        let Some(period) = h.request.period() else {
            return Err(DomainError::invalid_state(
                "only rental holds can be overdue",
            ));
        };
        match h.status {
            HoldStatus::Confirmed if h.overdue => Ok(vec![]),
            HoldStatus::Confirmed if period.end <= now => Ok(vec![E::HoldOverdue { hold_id }]),
            HoldStatus::Confirmed => {
                Err(DomainError::invalid_state("the rental has not ended yet"))
            }
            HoldStatus::Returned => Ok(vec![]),
            _ => Err(DomainError::invalid_state(
                "only a confirmed rental can be overdue",
            )),
        }
    }

    /// A rental listing's schedule, for holds placed from now on.
    fn set_schedule(
        &self,
        capacity: Capacity,
        schedule: Schedule,
        pricing_unit: PricingUnit,
    ) -> Decision {
        if capacity.kind() != ListingKind::Rental {
            return Err(DomainError::invalid_state(
                "schedules apply to rental listings only",
            ));
        }
        DomainError::check(schedule.validate())?;
        if self.schedule.as_ref() == Some(&schedule) && self.pricing_unit == Some(pricing_unit) {
            return Ok(vec![]);
        }
        Ok(vec![E::ScheduleSet {
            schedule,
            pricing_unit,
        }])
    }

    fn add_blackout(&self, capacity: Capacity, blackout: Blackout) -> Decision {
        let Blackout {
            blackout_id,
            period,
            units,
            reason,
        } = blackout;
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

    fn remove_blackout(&self, blackout_id: Uuid) -> Decision {
        if !self.blackouts.contains_key(&blackout_id) {
            return Err(DomainError::not_found("blackout"));
        }
        Ok(vec![E::BlackoutRemoved { blackout_id }])
    }

    /// Fewer units only when what is held or booked from `now` on still fits.
    fn set_units(&self, capacity: Capacity, units: u32, now: DateTime<Utc>) -> Decision {
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

    /// Less stock only when what is held or sold still fits.
    fn adjust_stock(&self, capacity: Capacity, delta: i64) -> Decision {
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
        let held = self.sale_held();
        if new_stock < 0 || (delta < 0 && (new_stock as u64) < held) {
            return Err(DomainError::WouldUndercut {
                in_use: u32::try_from(held).unwrap_or(u32::MAX),
                requested_capacity: new_stock,
            });
        }
        let free = (new_stock as u64).saturating_sub(held) as u32;
        Ok(vec![E::StockAdjusted { delta, stock: free }])
    }

    pub(super) fn require_hold(&self, hold_id: Uuid) -> Result<&Hold, DomainError> {
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
}
