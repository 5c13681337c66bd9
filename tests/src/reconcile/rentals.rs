//! Expecting the rental money paths (API.md "Rentals", issue 13 item 8):
//! booking changes, late fees and cancellation-policy tiers, read from the
//! raw payloads of `AdjustmentConfirmed`, `LineReturned`'s late fee,
//! `CancellationCharged` and the vendors' `LateFeeCredited`.
//!
//! - a confirmed extension or reschedule moves its signed amounts between
//!   customer funds, tax, the vendor's pending net and the platform's fee,
//!   and the order is that much dearer (or cheaper) from then on, for the
//!   ledger, the earnings and the analytics (the line's period and amounts);
//! - a late fee comes from the deposit first (the vendor's at once,
//!   `LateFeeCredited`); the rest is a customer receivable and stays in the
//!   vendor's pending net until collected;
//! - a cancellation under a policy keeps part of the price: customer funds
//!   to tax, the vendor's pending net and the platform's fee, that net made
//!   available at once like a fulfilled part's.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use uuid::Uuid;

use super::expected::{field, Expected, Split};
use super::observe::{instant, uuid};
use super::*;

pub const CUSTOMER_RECEIVABLE: &str = "customer_receivable";

/// What these paths did, summed over the log.
#[derive(Debug, Default)]
pub struct RentalPaths {
    /// Late fees the deposits did not cover, per vendor: owed by customers,
    /// pending for the vendor.
    pub late_fee_owed: BTreeMap<Uuid, Decimal>,
    /// Late fees taken from deposits, per (vendor, line), by the orders.
    pub late_fee_from_deposit: BTreeMap<(Uuid, Uuid), Decimal>,
    /// The same, by the vendors' own `LateFeeCredited`.
    pub late_fee_credited: BTreeMap<(Uuid, Uuid), Decimal>,
    /// What cancellation policies kept, per (order, vendor).
    pub kept: BTreeMap<(Uuid, Uuid), Split>,
    pub kept_tax: Decimal,
    /// When each line first went overdue.
    pub overdue_at: BTreeMap<Uuid, DateTime<Utc>>,
    /// Each late return: when, its whole late fee, and what the deposit
    /// did not cover.
    pub late_returns: BTreeMap<Uuid, (DateTime<Utc>, Decimal, Decimal)>,
    /// Late fees owed, paid (`LateFeePaid`): by a payment's cash, or by
    /// unapplied cash; and per (vendor, line) by the orders' parts.
    pub late_fees_paid_cash: Decimal,
    pub late_fees_paid_unapplied: Decimal,
    pub late_fee_paid: BTreeMap<(Uuid, Uuid), Decimal>,
    /// The same, by the vendors' own `LateFeeCollected`.
    pub late_fee_collected: BTreeMap<(Uuid, Uuid), Decimal>,
}

/// `(account, debit, credit)` crediting `amount`, or debiting its opposite.
fn credit_signed(account: String, amount: Decimal) -> (String, Decimal, Decimal) {
    if amount < Decimal::ZERO {
        (account, -amount, Decimal::ZERO)
    } else {
        (account, Decimal::ZERO, amount)
    }
}

impl Expected {
    /// The order events of these paths; `false` for any other.
    /// `LineReturned` is only read for its late fee here (its deposit
    /// refund is `apply_order`'s).
    pub(super) fn apply_order_rentals(
        &mut self,
        position: i64,
        order_id: Uuid,
        event_type: &str,
        payload: &Value,
    ) -> anyhow::Result<bool> {
        let zero = Decimal::ZERO;
        match event_type {
            "AdjustmentConfirmed" => {
                let a = &payload["adjustment"];
                let (vendor_id, line_id) = (uuid(&a["vendor_id"])?, uuid(&a["line_id"])?);
                let (subtotal, tax, fee, net, due) = (
                    field(a, "subtotal")?,
                    field(a, "tax")?,
                    field(a, "platform_fee")?,
                    field(a, "net")?,
                    field(a, "amount_due")?,
                );
                if subtotal + tax != due || fee + net != subtotal {
                    self.problem(
                        "adjustment: amount due = subtotal + tax, fee + net = subtotal",
                        format!("order {order_id} line {line_id}"),
                        format!("{} and {subtotal}", subtotal + tax),
                        format!("{due} and {}", fee + net),
                    );
                }
                let Some(order) = self.orders.get_mut(&order_id) else {
                    anyhow::bail!("AdjustmentConfirmed at {position} for an unknown order");
                };
                order.tax += tax;
                order.total += due;
                if let Some(line) = order.lines.iter_mut().find(|l| l.line_id == line_id) {
                    line.subtotal += subtotal;
                    line.tax += tax;
                    line.fee_delta += fee;
                    line.start = Some(instant(&a["start"])?);
                    line.end = Some(instant(&a["end"])?);
                }
                if let Some(v) = order.vendors.iter_mut().find(|v| v.vendor_id == vendor_id) {
                    v.subtotal += subtotal;
                    v.fee += fee;
                    v.net += net;
                }
                if order.allocated {
                    self.post(
                        position,
                        &[
                            credit_signed(CUSTOMER_FUNDS.to_owned(), -due),
                            credit_signed(TAX_PAYABLE.to_owned(), tax),
                            credit_signed(vendor_pending(vendor_id), net),
                            credit_signed(PLATFORM_FEES.to_owned(), fee),
                        ],
                    );
                }
            }
            "CancellationCharged" => {
                let mut kept_tax = zero;
                for line in payload["lines"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                {
                    kept_tax += field(line, "kept_tax")?;
                }
                self.rentals.kept_tax += kept_tax;
                let mut lines = vec![(TAX_PAYABLE.to_owned(), zero, kept_tax)];
                let mut total = kept_tax;
                for v in payload["vendors"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                {
                    let split = Split {
                        vendor_id: uuid(&v["vendor_id"])?,
                        subtotal: field(v, "subtotal")?,
                        fee: field(v, "platform_fee")?,
                        net: field(v, "net")?,
                    };
                    total += split.subtotal;
                    lines.push((vendor_pending(split.vendor_id), zero, split.net));
                    lines.push((PLATFORM_FEES.to_owned(), zero, split.fee));
                    self.rentals.kept.insert((order_id, split.vendor_id), split);
                }
                lines.insert(0, (CUSTOMER_FUNDS.to_owned(), total, zero));
                self.post(position, &lines);
            }
            "LateFeePaid" => {
                let amount = field(payload, "amount")?;
                let mut parts_sum = zero;
                for part in payload["parts"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                {
                    let paid = field(part, "amount")?;
                    parts_sum += paid;
                    *self
                        .rentals
                        .late_fee_paid
                        .entry((uuid(&part["vendor_id"])?, uuid(&part["line_id"])?))
                        .or_default() += paid;
                }
                if parts_sum != amount {
                    self.problem(
                        "late fee paid: Σ parts = amount",
                        format!("order {order_id}"),
                        amount.to_string(),
                        parts_sum.to_string(),
                    );
                }
                let from_unapplied = payload["from_unapplied"].as_bool().unwrap_or(false);
                let source = if from_unapplied {
                    self.rentals.late_fees_paid_unapplied += amount;
                    super::UNAPPLIED
                } else {
                    self.rentals.late_fees_paid_cash += amount;
                    CASH
                };
                self.post(
                    position,
                    &[
                        (source.to_owned(), amount, zero),
                        (CUSTOMER_RECEIVABLE.to_owned(), zero, amount),
                    ],
                );
            }
            "LineOverdue" => {
                let line_id = uuid(&payload["line_id"])?;
                let at = instant(&payload["at"])?;
                self.rentals.overdue_at.entry(line_id).or_insert(at);
            }
            "LineReturned" => {
                let late_fee = field(payload, "late_fee").unwrap_or_default();
                let owed = field(payload, "late_fee_owed").unwrap_or_default();
                let vendor_id = uuid(&payload["vendor_id"])?;
                let line_id = uuid(&payload["line_id"])?;
                let returned_at = instant(&payload["returned_at"])?;
                if let Some(line) = self
                    .orders
                    .get_mut(&order_id)
                    .and_then(|o| o.lines.iter_mut().find(|l| l.line_id == line_id))
                {
                    if line.end.is_some_and(|end| returned_at < end) {
                        line.returned_early = Some(returned_at);
                    }
                }
                if late_fee > zero {
                    let at = returned_at;
                    self.rentals
                        .late_returns
                        .insert(line_id, (at, late_fee, owed));
                }
                if late_fee - owed > zero {
                    self.rentals
                        .late_fee_from_deposit
                        .insert((vendor_id, line_id), late_fee - owed);
                }
                if owed > zero {
                    *self.rentals.late_fee_owed.entry(vendor_id).or_default() += owed;
                    self.post(
                        position,
                        &[
                            (CUSTOMER_RECEIVABLE.to_owned(), owed, zero),
                            (vendor_pending(vendor_id), zero, owed),
                        ],
                    );
                }
                // The deposit refund is `apply_order`'s.
                return Ok(false);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The vendor events of these paths; `false` for any other.
    pub(super) fn apply_vendor_rentals(
        &mut self,
        position: i64,
        vendor_id: Uuid,
        event_type: &str,
        payload: &Value,
    ) -> anyhow::Result<bool> {
        if event_type == "LateFeeCollected" {
            let amount = field(payload, "amount")?;
            let line_id = uuid(&payload["line_id"])?;
            *self
                .rentals
                .late_fee_collected
                .entry((vendor_id, line_id))
                .or_default() += amount;
            *self.balance.entry(vendor_id).or_default() += amount;
            self.post(
                position,
                &[
                    (vendor_pending(vendor_id), amount, Decimal::ZERO),
                    (vendor_available(vendor_id), Decimal::ZERO, amount),
                ],
            );
            return Ok(true);
        }
        if event_type != "LateFeeCredited" {
            return Ok(false);
        }
        let amount = field(payload, "amount")?;
        let line_id = uuid(&payload["line_id"])?;
        *self
            .rentals
            .late_fee_credited
            .entry((vendor_id, line_id))
            .or_default() += amount;
        *self.balance.entry(vendor_id).or_default() += amount;
        self.post(
            position,
            &[
                (DEPOSITS_HELD.to_owned(), amount, Decimal::ZERO),
                (vendor_available(vendor_id), Decimal::ZERO, amount),
            ],
        );
        Ok(true)
    }

    /// Late fees taken from a line's deposit, by the order's word.
    pub(super) fn late_fee_from_deposit(&self, line_id: Uuid) -> Decimal {
        self.rentals
            .late_fee_from_deposit
            .iter()
            .filter(|((_, line), _)| *line == line_id)
            .map(|(_, fee)| *fee)
            .sum()
    }

    /// What these paths add to a vendor's earnings: kept parts (gross,
    /// fees; their nets made available), late fees owed (pending) and
    /// taken from deposits (available).
    pub(super) fn rental_earnings(&self, vendor_id: Uuid, e: &mut Earnings) {
        let r = &self.rentals;
        for ((_, v), split) in &r.kept {
            if *v == vendor_id {
                e.gross += split.subtotal;
                e.platform_fees += split.fee;
                e.available += split.net;
            }
        }
        e.pending += r.late_fee_owed.get(&vendor_id).copied().unwrap_or_default();
        let collected: Decimal = r
            .late_fee_collected
            .iter()
            .filter(|((v, _), _)| *v == vendor_id)
            .map(|(_, paid)| *paid)
            .sum();
        e.pending -= collected;
        e.available += collected;
        e.available += r
            .late_fee_from_deposit
            .iter()
            .filter(|((v, _), _)| *v == vendor_id)
            .map(|(_, fee)| *fee)
            .sum::<Decimal>();
    }

    /// The balances these paths change (`b` has the others already; the
    /// vendors' come from [`Expected::earnings`]).
    pub(super) fn rental_balances(&self, b: &mut BTreeMap<String, Decimal>) {
        let r = &self.rentals;
        let mut change = |account: &str, by: Decimal| {
            *b.entry(account.to_owned()).or_default() += by;
        };
        let kept_subtotal: Decimal = r.kept.values().map(|s| s.subtotal).sum();
        let kept_fees: Decimal = r.kept.values().map(|s| s.fee).sum();
        change(CUSTOMER_FUNDS, kept_subtotal + r.kept_tax);
        change(TAX_PAYABLE, -r.kept_tax);
        change(PLATFORM_FEES, -kept_fees);
        change(
            DEPOSITS_HELD,
            r.late_fee_from_deposit.values().copied().sum::<Decimal>(),
        );
        let owed: Decimal = r.late_fee_owed.values().copied().sum();
        let paid = r.late_fees_paid_cash + r.late_fees_paid_unapplied;
        if !owed.is_zero() {
            change(CUSTOMER_RECEIVABLE, owed - paid);
        }
        change(CASH, r.late_fees_paid_cash);
        if !r.late_fees_paid_unapplied.is_zero() {
            change(super::UNAPPLIED, r.late_fees_paid_unapplied);
        }
    }

    /// The vendors' `LateFeeCredited` agree with the orders' late fees
    /// taken from deposits, their `LateFeeCollected` with the late fees
    /// the orders say were paid; and what was made available of a
    /// cancelled order is what its policy kept.
    pub(super) fn cross_check_rentals(&mut self) {
        let paid = self.rentals.late_fee_paid.clone();
        let collected = self.rentals.late_fee_collected.clone();
        let keys: std::collections::BTreeSet<&(Uuid, Uuid)> =
            paid.keys().chain(collected.keys()).collect();
        for key in keys {
            let (want, got) = (paid.get(key), collected.get(key));
            if want != got {
                self.problem(
                    "log: late fee collected by the vendor = late fee paid on the order",
                    format!("vendor {} line {}", key.0, key.1),
                    format!("{want:?}"),
                    format!("{got:?}"),
                );
            }
        }
        let from_orders = self.rentals.late_fee_from_deposit.clone();
        let credited = self.rentals.late_fee_credited.clone();
        let keys: std::collections::BTreeSet<&(Uuid, Uuid)> =
            from_orders.keys().chain(credited.keys()).collect();
        for key in keys {
            let (want, got) = (from_orders.get(key), credited.get(key));
            if want != got {
                self.problem(
                    "log: late fee credited = late fee taken from the deposit",
                    format!("vendor {} line {}", key.0, key.1),
                    format!("{want:?}"),
                    format!("{got:?}"),
                );
            }
        }
    }

    /// Lines gone overdue in `[from, to)`, the late fees of the returns in
    /// it, and what of those is still owed (the analytics summary's
    /// `overdue_lines`, `late_fees`, `late_fees_owed`).
    pub(super) fn late_returns_in(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> (i64, Decimal, Decimal) {
        let within = |t: &DateTime<Utc>| *t >= from && *t < to;
        let overdue = self
            .rentals
            .overdue_at
            .values()
            .filter(|t| within(t))
            .count();
        let fees = self
            .rentals
            .late_returns
            .values()
            .filter(|(t, _, _)| within(t))
            .map(|(_, fee, _)| *fee)
            .sum();
        let owed = self
            .rentals
            .late_returns
            .iter()
            .filter(|(_, (t, _, _))| within(t))
            .map(|(line, (_, _, owed))| {
                let paid: Decimal = self
                    .rentals
                    .late_fee_paid
                    .iter()
                    .filter(|((_, l), _)| l == line)
                    .map(|(_, paid)| *paid)
                    .sum();
                *owed - paid
            })
            .sum();
        (overdue as i64, fees, owed)
    }

    /// What a vendor's earnings hold beyond the analytics' revenue (which
    /// counts orders as their confirmed booking changes left them, and
    /// cancelled orders not at all): what cancellation policies kept, as
    /// (gross, fees).
    pub(super) fn beyond_analytics(&self, vendor_id: Uuid) -> (Decimal, Decimal) {
        let (mut gross, mut fees) = (Decimal::ZERO, Decimal::ZERO);
        for ((_, v), split) in &self.rentals.kept {
            if *v == vendor_id {
                gross += split.subtotal;
                fees += split.fee;
            }
        }
        // What lease write-offs took back (the analytics count the order
        // as placed).
        let (taken, taken_fees) = self.lease_taken(vendor_id);
        (gross - taken, fees - taken_fees)
    }

    /// Σ kept subtotals of cancellation policies.
    pub(super) fn kept_subtotal(&self) -> Decimal {
        self.rentals.kept.values().map(|s| s.subtotal).sum()
    }
}
