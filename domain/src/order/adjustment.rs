//! Extensions and reschedules of a rental line (API.md "Rentals", issue 13
//! item 4). An adjustment names the line's new period and what it changes,
//! every amount a signed delta:
//! - an extension (the new period contains the old) costs the listing's
//!   current price for the billable units added;
//! - a reschedule reprices the line at the current price; a dearer period
//!   costs the difference, a cheaper one is refunded by the line's
//!   cancellation policy (the notice is from now to the booked start);
//! - tax and the vendor's platform fee are recomputed on the new amounts, so
//!   fees + nets = subtotals still holds to the cent.
//!
//! Something to pay awaits payment (`hold_expires_at`) while the Inventory
//! holds the new period; a payment naming the adjustment confirms it, and
//! an unpaid one lapses, the line keeping its old period. Nothing to pay
//! (a refund or no change in price) is confirmed at once.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::pricing::PricedOrder;
use super::status::status_name;
use super::{LineStatus, Order, OrderEvent as E, OrderStatus, PaymentOutcome};
use crate::cancellation::{refund_of, refund_percent};
use crate::error::{DomainError, FieldError};
use crate::listing::ListingKind;
use crate::money::{
    from_minor_units, is_valid_amount, round_cents, to_minor_units, MAX_ORDER_TOTAL,
};
use crate::order::placement::TOO_LARGE;
use crate::period::{Period, IN_PAST};
use crate::schedule::{billable_units_in, local};

type Decision = Result<Vec<E>, DomainError>;

/// Rule name (`errors[].code`) of an extension that does not extend.
pub const NOT_LONGER: &str = "not_longer";
/// Rule name of a reschedule to the period already booked.
pub const UNCHANGED: &str = "unchanged";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdjustmentKind {
    /// The new period contains the old one.
    Extension,
    /// Any other period: the line is repriced.
    Reschedule,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdjustmentStatus {
    AwaitingPayment,
    /// Paid; the Inventory is yet to move the hold.
    Paid,
    Confirmed,
    /// Not paid in time, or its units went elsewhere: the line keeps its
    /// old period (a payment that came is refunded).
    Lapsed,
}

/// A priced adjustment of one rental line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Adjustment {
    pub adjustment_id: Uuid,
    pub line_id: Uuid,
    pub vendor_id: Uuid,
    pub kind: AdjustmentKind,
    /// The new period.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub billable_units: u32,
    /// The line's unit price after the change.
    pub unit_price: Decimal,
    /// Deltas of the line's subtotal and tax, and of its vendor's fee and net.
    pub subtotal: Decimal,
    pub tax: Decimal,
    pub platform_fee: Decimal,
    pub net: Decimal,
    /// `subtotal + tax`: to pay when positive, refunded when negative.
    pub amount_due: Decimal,
    pub hold_expires_at: DateTime<Utc>,
}

impl Adjustment {
    pub fn period(&self) -> Period {
        Period {
            start: self.start,
            end: self.end,
        }
    }
}

/// An adjustment and where it stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdjustmentState {
    pub adjustment: Adjustment,
    pub status: AdjustmentStatus,
}

/// What a customer asks: a new period for a line, priced at the listing's
/// current `price_per_unit`, decided at `now`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdjustmentRequest {
    pub adjustment_id: Uuid,
    pub line_id: Uuid,
    pub kind: AdjustmentKind,
    pub period: Period,
    pub price_per_unit: Decimal,
    pub hold_expires_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

impl PricedOrder {
    /// The order after a confirmed adjustment: the line's period and price,
    /// its vendor's split and the order's sums. Used by the Order and by
    /// the ledger, so both see the same amounts.
    pub fn apply_adjustment(&mut self, a: &Adjustment) {
        if let Some(line) = self.lines.iter_mut().find(|l| l.line_id == a.line_id) {
            line.start = Some(a.start);
            line.end = Some(a.end);
            if let Some(tz) = line.time_zone {
                line.local_start = Some(local(a.start, tz));
                line.local_end = Some(local(a.end, tz));
            }
            line.billable_units = Some(a.billable_units);
            line.unit_price = round_cents(a.unit_price);
            line.subtotal = round_cents(line.subtotal + a.subtotal);
            line.tax = round_cents(line.tax + a.tax);
        }
        if let Some(v) = self.vendors.iter_mut().find(|v| v.vendor_id == a.vendor_id) {
            v.subtotal = round_cents(v.subtotal + a.subtotal);
            v.platform_fee = round_cents(v.platform_fee + a.platform_fee);
            v.net = round_cents(v.net + a.net);
        }
        self.subtotal = round_cents(self.subtotal + a.subtotal);
        self.tax = round_cents(self.tax + a.tax);
        self.total = round_cents(self.total + a.amount_due);
    }
}

impl Order {
    pub fn adjustment(&self, adjustment_id: Uuid) -> Option<&AdjustmentState> {
        self.adjustments.get(&adjustment_id)
    }
    pub fn adjustments(&self) -> impl Iterator<Item = &AdjustmentState> {
        self.adjustments.values()
    }

    /// Prices `request` on the order as it stands, or says why it cannot
    /// be: 404 unknown line, 409 (InvalidState) when the order or the line
    /// is not in a state to change, 422 for the period.
    pub fn plan_adjustment(&self, request: &AdjustmentRequest) -> Result<Adjustment, DomainError> {
        let line = self
            .line(request.line_id)
            .ok_or(DomainError::not_found("line"))?;
        if line.kind != ListingKind::Rental {
            return Err(DomainError::invalid_state(
                "only rental lines can be extended or rescheduled",
            ));
        }
        if self.status != OrderStatus::Confirmed {
            return Err(DomainError::invalid_state(format!(
                "the order is {}, not confirmed",
                status_name(self.status)
            )));
        }
        let line_status = self.line_status(line.line_id).unwrap_or_default();
        let allowed = match request.kind {
            AdjustmentKind::Extension => {
                matches!(line_status, LineStatus::Pending | LineStatus::PickedUp)
            }
            AdjustmentKind::Reschedule => line_status == LineStatus::Pending,
        };
        if !allowed {
            return Err(DomainError::invalid_state(match request.kind {
                AdjustmentKind::Extension => {
                    "only a line booked or picked up (not overdue, not returned) can be extended"
                }
                AdjustmentKind::Reschedule => "only a line not yet picked up can be rescheduled",
            }));
        }
        if self.adjustments.values().any(|s| {
            s.adjustment.line_id == line.line_id
                && matches!(
                    s.status,
                    AdjustmentStatus::AwaitingPayment | AdjustmentStatus::Paid
                )
        }) {
            return Err(DomainError::invalid_state(
                "another change of this line awaits payment",
            ));
        }
        let (Some(old), Some(unit), Some(rates), Some(priced)) = (
            line.period(),
            line.pricing_unit,
            self.rates,
            self.priced.as_ref(),
        ) else {
            return Err(DomainError::invalid_state("the line has no period"));
        };
        let new = Period::new(request.period.start, request.period.end)?;
        let now = request.now;
        match request.kind {
            AdjustmentKind::Extension => {
                if new.start > old.start || new.end < old.end || new == old {
                    return Err(DomainError::Validation {
                        errors: vec![FieldError::with_code(
                            "end",
                            NOT_LONGER,
                            format!("an extension ends after the booked end, {}", old.end),
                        )],
                    });
                }
                if new.end <= now {
                    return Err(DomainError::Validation {
                        errors: vec![FieldError::with_code(
                            "end",
                            IN_PAST,
                            "the new end is in the past",
                        )],
                    });
                }
            }
            AdjustmentKind::Reschedule => {
                if new == old {
                    return Err(DomainError::Validation {
                        errors: vec![FieldError::with_code(
                            "start",
                            UNCHANGED,
                            "the line is booked for this period already",
                        )],
                    });
                }
                if new.start < now {
                    return Err(DomainError::Validation {
                        errors: vec![FieldError::with_code(
                            "start",
                            IN_PAST,
                            "the period starts in the past",
                        )],
                    });
                }
            }
        }
        if !is_valid_amount(request.price_per_unit) {
            return Err(DomainError::invalid(
                "price_per_unit",
                "must be a non-negative amount with at most 2 decimal places",
            ));
        }
        let zone = line.time_zone.unwrap_or(chrono_tz::Tz::UTC);
        let units = billable_units_in(&new, unit, zone);
        let qty = Decimal::from(line.quantity);
        let price = request.price_per_unit;
        let (subtotal, unit_price) = match request.kind {
            AdjustmentKind::Extension => {
                let added = units.saturating_sub(line.billable_units.unwrap_or(0));
                (
                    round_cents(line.subtotal + price * Decimal::from(added) * qty),
                    line.unit_price,
                )
            }
            AdjustmentKind::Reschedule => {
                let repriced = round_cents(price * Decimal::from(units) * qty);
                if repriced >= line.subtotal {
                    (repriced, price)
                } else {
                    let percent = refund_percent(&line.cancellation_policy, old.start - now);
                    let refund = refund_of(line.subtotal - repriced, percent);
                    (round_cents(line.subtotal - refund), price)
                }
            }
        };
        let tax = round_cents(subtotal * rates.tax_rate);
        let subtotal_delta = round_cents(subtotal - line.subtotal);
        let tax_delta = round_cents(tax - line.tax);
        let (fee_delta, net_delta) = match priced.vendor(line.vendor_id) {
            Some(v) => {
                let fee = round_cents((v.subtotal + subtotal_delta) * rates.platform_fee_rate);
                let fee_delta = round_cents(fee - v.platform_fee);
                (fee_delta, round_cents(subtotal_delta - fee_delta))
            }
            None => (round_cents(Decimal::ZERO), subtotal_delta),
        };
        let amount_due = round_cents(subtotal_delta + tax_delta);
        if priced.total + amount_due > MAX_ORDER_TOTAL {
            return Err(DomainError::Validation {
                errors: vec![FieldError::with_code(
                    "end",
                    TOO_LARGE,
                    format!("the order's total would exceed {MAX_ORDER_TOTAL}.00"),
                )],
            });
        }
        Ok(Adjustment {
            adjustment_id: request.adjustment_id,
            line_id: line.line_id,
            vendor_id: line.vendor_id,
            kind: request.kind,
            start: new.start,
            end: new.end,
            billable_units: units,
            unit_price: round_cents(unit_price),
            subtotal: subtotal_delta,
            tax: tax_delta,
            platform_fee: fee_delta,
            net: net_delta,
            amount_due,
            hold_expires_at: request.hold_expires_at,
        })
    }

    /// Records the adjustment; one with nothing to pay is confirmed at once
    /// (and a refund issued when the change is cheaper). A retry of the
    /// same request records nothing new.
    pub(super) fn request_adjustment(&self, request: AdjustmentRequest) -> Decision {
        if let Some(existing) = self.adjustments.get(&request.adjustment_id) {
            let same = existing.adjustment.line_id == request.line_id
                && existing.adjustment.period() == request.period;
            return if same {
                Ok(vec![])
            } else {
                Err(DomainError::AlreadyExists { what: "adjustment" })
            };
        }
        let adjustment = self.plan_adjustment(&request)?;
        let at = request.now;
        let mut events = vec![E::AdjustmentRequested {
            adjustment: adjustment.clone(),
            at,
        }];
        if adjustment.amount_due <= Decimal::ZERO {
            let refund = -adjustment.amount_due;
            events.push(E::AdjustmentConfirmed { adjustment, at });
            if refund > Decimal::ZERO {
                events.push(E::RefundIssued {
                    amount: refund,
                    reason: "booking changed: refund by the cancellation policy".into(),
                });
            }
        }
        Ok(events)
    }

    /// A payment naming an adjustment: recorded once (by the provider's
    /// event id), captured when it is the amount due in the order's
    /// currency. Paying a lapsed adjustment asks the caller to hold the
    /// period again; paying one already paid refunds the payment.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn pay_adjustment(
        &self,
        adjustment_id: Uuid,
        payment_id: String,
        intent_id: String,
        amount_minor: i64,
        currency: String,
        outcome: PaymentOutcome,
    ) -> Decision {
        let state = self
            .adjustments
            .get(&adjustment_id)
            .ok_or(DomainError::not_found("adjustment"))?;
        if let Some(settled) = self.seen_or_failed(&payment_id, &intent_id, &outcome) {
            return Ok(settled);
        }
        let expected_minor = to_minor_units(state.adjustment.amount_due).unwrap_or(i64::MAX);
        if amount_minor != expected_minor
            || expected_minor <= 0
            || !currency.trim().eq_ignore_ascii_case(&self.currency)
        {
            return Ok(vec![E::PaymentAmountMismatch {
                payment_id,
                intent_id,
                expected_minor,
                received_minor: amount_minor,
                currency,
            }]);
        }
        let amount = from_minor_units(amount_minor);
        let captured = E::PaymentCaptured {
            payment_id: payment_id.clone(),
            intent_id,
            amount,
        };
        let order_over = matches!(
            self.status,
            OrderStatus::Cancelled | OrderStatus::Refunded | OrderStatus::Completed
        );
        Ok(match state.status {
            AdjustmentStatus::AwaitingPayment | AdjustmentStatus::Lapsed if !order_over => vec![
                captured,
                E::AdjustmentPaid {
                    adjustment_id,
                    payment_id,
                },
            ],
            _ => vec![
                captured,
                E::RefundIssued {
                    amount,
                    reason: "adjustment paid twice or no longer wanted".into(),
                },
            ],
        })
    }

    /// The Inventory moved the hold: the line takes the new period.
    pub(super) fn confirm_adjustment(&self, adjustment_id: Uuid, at: DateTime<Utc>) -> Decision {
        let state = self
            .adjustments
            .get(&adjustment_id)
            .ok_or(DomainError::not_found("adjustment"))?;
        match state.status {
            AdjustmentStatus::Confirmed => Ok(vec![]),
            AdjustmentStatus::Paid => Ok(vec![E::AdjustmentConfirmed {
                adjustment: state.adjustment.clone(),
                at,
            }]),
            AdjustmentStatus::AwaitingPayment | AdjustmentStatus::Lapsed => Err(
                DomainError::invalid_state("the adjustment has not been paid"),
            ),
        }
    }

    /// Not paid by its expiry, or paid after its units went elsewhere (the
    /// payment is refunded): the line keeps its old period.
    pub(super) fn lapse_adjustment(&self, adjustment_id: Uuid, at: DateTime<Utc>) -> Decision {
        let state = self
            .adjustments
            .get(&adjustment_id)
            .ok_or(DomainError::not_found("adjustment"))?;
        match state.status {
            AdjustmentStatus::Confirmed | AdjustmentStatus::Lapsed => Ok(vec![]),
            AdjustmentStatus::AwaitingPayment if state.adjustment.hold_expires_at <= at => {
                Ok(vec![E::AdjustmentLapsed { adjustment_id, at }])
            }
            AdjustmentStatus::AwaitingPayment => Err(DomainError::invalid_state(
                "the adjustment has not expired yet",
            )),
            AdjustmentStatus::Paid => Ok(vec![
                E::AdjustmentLapsed { adjustment_id, at },
                E::RefundIssued {
                    amount: state.adjustment.amount_due,
                    reason: "booking change lapsed: units no longer available".into(),
                },
            ]),
        }
    }

    /// Adjustments awaiting payment past their expiry at `now`.
    pub fn adjustments_due(&self, now: DateTime<Utc>) -> Vec<Uuid> {
        self.adjustments
            .values()
            .filter(|s| {
                s.status == AdjustmentStatus::AwaitingPayment && s.adjustment.hold_expires_at <= now
            })
            .map(|s| s.adjustment.adjustment_id)
            .collect()
    }
}
