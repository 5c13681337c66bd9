//! Fulfilment of a paid order, per vendor part: a sale part is shipped then
//! delivered; a rental line is picked up then returned, its deposit settled
//! (refunded, or part withheld for damage). A part is fulfilled when every
//! line of it is delivered or returned; the order completes when every part
//! is.

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::adjustment::{AdjustmentKind, AdjustmentStatus};
use super::pricing::PricedLine;
use super::status::status_name;
use super::{LineStatus, Order, OrderEvent as E, OrderStatus, PartStatus};
use crate::error::{DomainError, FieldError};

/// Rule names (`errors[].code`) of a refused `returned_at`.
pub const IN_FUTURE: &str = "in_future";
pub const BEFORE_PICKUP: &str = "before_pickup";
use crate::listing::ListingKind;
use crate::money::{is_valid_amount, round_cents, MAX_ORDER_TOTAL};
use crate::period::Period;
use crate::schedule::billable_units_in;
use chrono_tz::Tz;

type Decision = Result<Vec<E>, DomainError>;

/// How a rental line came back: when, and how its deposit was settled.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LineReturn {
    pub returned_at: DateTime<Utc>,
    pub deposit_refunded: Decimal,
    pub damage_withheld: Decimal,
    #[serde(default)]
    pub late_fee: Decimal,
    #[serde(default)]
    pub late_fee_owed: Decimal,
    /// Returned early: what the policy refunded of the unused time.
    #[serde(default)]
    pub refund: Decimal,
}

/// The late fee of a line returned at `returned_at`: its late fee per unit
/// × the started pricing units (calendar days in its zone for day
/// listings) from its end to the return × its quantity; zero when on time.
/// At most [`MAX_ORDER_TOTAL`], so that no amount outgrows the books.
pub fn late_fee(line: &PricedLine, returned_at: DateTime<Utc>) -> Decimal {
    let (Some(end), Some(unit), Some(per_unit)) =
        (line.end, line.pricing_unit, line.late_fee_per_unit)
    else {
        return round_cents(Decimal::ZERO);
    };
    if returned_at <= end || per_unit <= Decimal::ZERO {
        return round_cents(Decimal::ZERO);
    }
    let late = Period {
        start: end,
        end: returned_at,
    };
    let units = billable_units_in(&late, unit, line.time_zone.unwrap_or(Tz::UTC));
    let fee = per_unit
        .checked_mul(Decimal::from(units))
        .and_then(|f| f.checked_mul(Decimal::from(line.quantity)))
        .unwrap_or(MAX_ORDER_TOTAL);
    round_cents(fee.min(MAX_ORDER_TOTAL))
}

impl Order {
    /// Pending (nothing happened yet), InProgress, or Fulfilled.
    pub fn part_status(&self, vendor_id: Uuid) -> Option<PartStatus> {
        let mut lines = self.lines().filter(|l| l.vendor_id == vendor_id).peekable();
        lines.peek()?;
        if self.fulfilled_vendors.contains(&vendor_id) {
            return Some(PartStatus::Fulfilled);
        }
        let started = lines.any(|l| self.line_status(l.line_id) != Some(LineStatus::Pending));
        Some(if started {
            PartStatus::InProgress
        } else {
            PartStatus::Pending
        })
    }
    /// Whether any line was shipped or picked up.
    pub fn fulfilment_started(&self) -> bool {
        self.line_status.values().any(|s| *s != LineStatus::Pending)
    }

    pub(super) fn ship_part(&self, vendor_id: Uuid, at: DateTime<Utc>) -> Decision {
        let lines = self.sale_lines_of(vendor_id)?;
        if lines
            .iter()
            .all(|l| self.line_status(l.line_id) != Some(LineStatus::Pending))
        {
            return Ok(vec![]);
        }
        self.require_confirmed()?;
        Ok(self.with_completion(vec![E::PartShipped { vendor_id, at }], at))
    }

    pub(super) fn deliver_part(&self, vendor_id: Uuid, at: DateTime<Utc>) -> Decision {
        let lines = self.sale_lines_of(vendor_id)?;
        if lines
            .iter()
            .all(|l| self.line_status(l.line_id) == Some(LineStatus::Delivered))
        {
            return Ok(vec![]);
        }
        self.require_confirmed()?;
        if lines
            .iter()
            .any(|l| self.line_status(l.line_id) == Some(LineStatus::Pending))
        {
            return Err(DomainError::invalid_state("the part has not been shipped"));
        }
        Ok(self.with_completion(vec![E::PartDelivered { vendor_id, at }], at))
    }

    /// A pickup before the booked start needs the earlier time held first:
    /// an extension of the line back to the pickup (awaiting payment, paid
    /// or confirmed), which the Inventory granted only if that time was
    /// free. Without one it is refused (409), so a unit never leaves while
    /// it shows as free for those hours.
    pub(super) fn pick_up_line(&self, line_id: Uuid, at: DateTime<Utc>) -> Decision {
        let line = self.rental_line(line_id)?;
        if self.line_status(line_id) != Some(LineStatus::Pending) {
            return Ok(vec![]);
        }
        self.require_confirmed()?;
        if line.start.is_some_and(|start| at < start) && !self.holds_earlier(line_id, at) {
            return Err(DomainError::invalid_state(format!(
                "the line is booked from {}; picking it up earlier needs that time held first",
                line.start.map(|s| s.to_rfc3339()).unwrap_or_default()
            )));
        }
        Ok(vec![E::LinePickedUp { line_id, at }])
    }

    /// Whether an extension of the line, not lapsed, starts at or before `at`.
    pub fn holds_earlier(&self, line_id: Uuid, at: DateTime<Utc>) -> bool {
        self.adjustments().any(|s| {
            s.adjustment.line_id == line_id
                && s.adjustment.kind == AdjustmentKind::Extension
                && s.adjustment.start <= at
                && s.status != AdjustmentStatus::Lapsed
        })
    }

    /// A picked-up line past its end and not returned becomes overdue.
    pub(super) fn mark_line_overdue(&self, line_id: Uuid, at: DateTime<Utc>) -> Decision {
        let line = self.rental_line(line_id)?;
        match self.line_status(line_id) {
            Some(LineStatus::Overdue | LineStatus::Returned) => Ok(vec![]),
            Some(LineStatus::PickedUp) if line.end.is_some_and(|end| end <= at) => {
                Ok(vec![E::LineOverdue { line_id, at }])
            }
            Some(LineStatus::PickedUp) => {
                Err(DomainError::invalid_state("the rental has not ended yet"))
            }
            _ => Err(DomainError::invalid_state(
                "the line has not been picked up",
            )),
        }
    }

    pub(super) fn return_line(
        &self,
        line_id: Uuid,
        returned_at: DateTime<Utc>,
        damage_withheld: Decimal,
        now: DateTime<Utc>,
    ) -> Decision {
        let line = self.rental_line(line_id)?;
        if self.line_status(line_id) == Some(LineStatus::Returned) {
            return Ok(vec![]);
        }
        if returned_at > now {
            return Err(DomainError::Validation {
                errors: vec![FieldError::with_code(
                    "returned_at",
                    IN_FUTURE,
                    "a return cannot be recorded in the future",
                )],
            });
        }
        if self
            .picked_up_at(line_id)
            .is_some_and(|picked| returned_at < picked)
        {
            return Err(DomainError::Validation {
                errors: vec![FieldError::with_code(
                    "returned_at",
                    BEFORE_PICKUP,
                    "a line cannot come back before it was picked up",
                )],
            });
        }
        // The late fee comes out of the deposit first; damage from the rest.
        let fee = late_fee(line, returned_at);
        let from_deposit = fee.min(line.deposit);
        let left = line.deposit - from_deposit;
        if !is_valid_amount(damage_withheld) || damage_withheld > left {
            return Err(DomainError::invalid(
                "damage_withheld",
                format!(
                    "must be a non-negative amount with at most 2 decimal places, at most the deposit left after the late fee, {}",
                    round_cents(left)
                ),
            ));
        }
        self.require_confirmed()?;
        if !matches!(
            self.line_status(line_id),
            Some(LineStatus::PickedUp | LineStatus::Overdue)
        ) {
            return Err(DomainError::invalid_state(
                "the line has not been picked up",
            ));
        }
        // Returned early: the unused units are refunded by the policy
        // (`early_return`), before the return completes the part.
        let mut events = Vec::new();
        let mut refund = round_cents(Decimal::ZERO);
        if let Some(refunded) = self.early_return_refund(line, returned_at, now) {
            if let E::RefundRecorded { amount, .. } = &refunded {
                refund = *amount;
            }
            events.push(refunded);
        }
        events.push(E::LineReturned {
            line_id,
            vendor_id: line.vendor_id,
            returned_at,
            deposit_refunded: round_cents(left - damage_withheld),
            damage_withheld: round_cents(damage_withheld),
            late_fee: fee,
            late_fee_owed: round_cents(fee - from_deposit),
            refund,
        });
        Ok(self.with_completion(events, returned_at))
    }

    fn require_confirmed(&self) -> Result<(), DomainError> {
        if self.status == OrderStatus::Confirmed {
            Ok(())
        } else {
            Err(DomainError::invalid_state(format!(
                "the order is {}, not confirmed",
                status_name(self.status)
            )))
        }
    }

    /// `events` followed by VendorPartFulfilled / OrderCompleted when they
    /// complete a part / the order.
    pub(super) fn with_completion(&self, events: Vec<E>, at: DateTime<Utc>) -> Vec<E> {
        let mut next = self.clone();
        for e in &events {
            next.apply(e.clone());
        }
        let mut out = events;
        let Some(priced) = next.priced.clone() else {
            return out;
        };
        for v in &priced.vendors {
            if next.fulfilled_vendors.contains(&v.vendor_id) {
                continue;
            }
            let done = priced
                .lines
                .iter()
                .filter(|l| l.vendor_id == v.vendor_id)
                .all(|l| {
                    matches!(
                        next.line_status(l.line_id),
                        Some(LineStatus::Delivered | LineStatus::Returned)
                    )
                });
            if done {
                // Less what refunds took or disputes froze of it.
                let e = E::VendorPartFulfilled {
                    vendor_id: v.vendor_id,
                    net: next.part_net_left(v.vendor_id),
                };
                next.apply(e.clone());
                out.push(e);
            }
        }
        if next.status == OrderStatus::Confirmed
            && priced
                .vendors
                .iter()
                .all(|v| next.fulfilled_vendors.contains(&v.vendor_id))
        {
            out.push(E::OrderCompleted { at });
        }
        out
    }

    fn sale_lines_of(&self, vendor_id: Uuid) -> Result<Vec<&PricedLine>, DomainError> {
        let lines: Vec<&PricedLine> = self
            .lines()
            .filter(|l| l.vendor_id == vendor_id && l.kind == ListingKind::Sale)
            .collect();
        if lines.is_empty() {
            return Err(DomainError::not_found("sale lines for vendor"));
        }
        Ok(lines)
    }

    fn rental_line(&self, line_id: Uuid) -> Result<&PricedLine, DomainError> {
        let line = self.line(line_id).ok_or(DomainError::not_found("line"))?;
        if line.kind != ListingKind::Rental {
            return Err(DomainError::invalid_state(
                "this is a sale line; ship and deliver the vendor's part instead",
            ));
        }
        Ok(line)
    }

    /// Applies PartShipped / PartDelivered: every sale line of the vendor
    /// still at `from` moves to `to`.
    pub(super) fn set_sale_lines(&mut self, vendor_id: Uuid, from: LineStatus, to: LineStatus) {
        let ids: Vec<Uuid> = self
            .lines()
            .filter(|l| l.vendor_id == vendor_id && l.kind == ListingKind::Sale)
            .map(|l| l.line_id)
            .collect();
        for id in ids {
            if let Some(s) = self.line_status.get_mut(&id) {
                if *s == from {
                    *s = to;
                }
            }
        }
    }
}
