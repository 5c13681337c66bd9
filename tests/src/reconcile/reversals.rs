//! Expecting refunds, disputes and unapplied payments (API.md "Money"):
//! their journal entries and the balances they leave, read from the raw
//! payloads of `RefundRecorded`, `PaymentUnapplied`,
//! `UnappliedPaymentApplied`/`Refunded`, `DisputeOpened`/`Closed` and the
//! vendors' `EarningsReversed`, `EarningsRestored` and `ReceivableSettled`.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::Value;
use uuid::Uuid;

use super::expected::{field, Expected};
use super::observe::uuid;
use super::*;

pub const UNAPPLIED: &str = "unapplied";
pub const DISPUTED: &str = "disputed";
pub const VENDOR_REVERSALS: &str = "vendor_reversals";

pub fn vendor_frozen(vendor_id: Uuid) -> String {
    format!("vendor_frozen:{vendor_id}")
}

pub fn vendor_receivable(vendor_id: Uuid) -> String {
    format!("vendor_receivable:{vendor_id}")
}

/// What these paths did, summed over the log.
#[derive(Debug, Default)]
pub struct MoneyPaths {
    pub partial_refunds: Decimal,
    pub unapplied_in: Decimal,
    pub unapplied_applied: Decimal,
    pub unapplied_refunded: Decimal,
    pub disputes_opened: Decimal,
    pub disputes_won: Decimal,
    pub disputes_lost: Decimal,
    pub tax_reversed: Decimal,
    pub fees_reversed: Decimal,
    /// (order, vendor) → net taken from the part's pending (refunds and
    /// disputes), less what won disputes gave back to it.
    pub pending_taken: BTreeMap<(Uuid, Uuid), Decimal>,
    pub frozen: BTreeMap<Uuid, Decimal>,
    pub receivable: BTreeMap<Uuid, Decimal>,
    /// Changes to the available balance by the vendors' own events.
    pub available: BTreeMap<Uuid, Decimal>,
    /// Balance (debit − credit) of `vendor_reversals`.
    pub clearing: Decimal,
    /// What refunds took of orders cancelled after them (goods and tax):
    /// the cancellation's reversal no longer takes it from customer funds.
    pub cancelled_after_refunds: Decimal,
}

struct Part {
    vendor_id: Uuid,
    tax: Decimal,
    fee: Decimal,
    net: Decimal,
    from_pending: Decimal,
    from_available: Decimal,
}

fn parts(payload: &Value, key: &str) -> anyhow::Result<Vec<Part>> {
    payload[key]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|p| {
            Ok(Part {
                vendor_id: uuid(&p["vendor_id"])?,
                tax: field(p, "tax")?,
                fee: field(p, "fee_reversed")?,
                net: field(p, "net_reversed")?,
                from_pending: field(p, "from_pending")?,
                from_available: field(p, "from_available")?,
            })
        })
        .collect()
}

impl Expected {
    /// The order events of these paths; `false` for any other.
    pub(super) fn apply_order_money(
        &mut self,
        position: i64,
        order_id: Uuid,
        event_type: &str,
        payload: &Value,
    ) -> anyhow::Result<bool> {
        let zero = Decimal::ZERO;
        match event_type {
            "RefundRecorded" => {
                let amount = field(payload, "amount")?;
                self.money.partial_refunds += amount;
                let parts = parts(payload, "parts")?;
                if let Some(order) = self.orders.get_mut(&order_id) {
                    order.refunded += amount;
                    order.taken_amount += amount;
                    for p in &parts {
                        order.taken_tax += p.tax;
                        let t = order.taken.entry(p.vendor_id).or_default();
                        t.0 += p.fee;
                        t.1 += p.net;
                    }
                }
                let mut lines = vec![(CASH.to_owned(), zero, amount)];
                for p in parts {
                    self.money.tax_reversed += p.tax;
                    self.money.fees_reversed += p.fee;
                    *self
                        .money
                        .pending_taken
                        .entry((order_id, p.vendor_id))
                        .or_default() += p.from_pending;
                    self.money.clearing += p.from_available;
                    lines.push((TAX_PAYABLE.to_owned(), p.tax, zero));
                    lines.push((PLATFORM_FEES.to_owned(), p.fee, zero));
                    lines.push((vendor_pending(p.vendor_id), p.from_pending, zero));
                    lines.push((VENDOR_REVERSALS.to_owned(), p.from_available, zero));
                }
                self.post(position, &lines);
            }
            "PaymentUnapplied" | "UnappliedPaymentApplied" | "UnappliedPaymentRefunded" => {
                let amount = field(payload, "amount")?;
                let other = match event_type {
                    "PaymentUnapplied" => {
                        self.money.unapplied_in += amount;
                        self.post(
                            position,
                            &[
                                (CASH.to_owned(), amount, zero),
                                (UNAPPLIED.to_owned(), zero, amount),
                            ],
                        );
                        return Ok(true);
                    }
                    "UnappliedPaymentApplied" => {
                        self.money.unapplied_applied += amount;
                        CUSTOMER_FUNDS
                    }
                    _ => {
                        self.money.unapplied_refunded += amount;
                        CASH
                    }
                };
                self.post(
                    position,
                    &[
                        (UNAPPLIED.to_owned(), amount, zero),
                        (other.to_owned(), zero, amount),
                    ],
                );
            }
            "DisputeOpened" => {
                let amount = field(payload, "amount")?;
                self.money.disputes_opened += amount;
                let mut lines = vec![
                    (DISPUTED.to_owned(), amount, zero),
                    (CASH.to_owned(), zero, amount),
                ];
                for p in parts(payload, "parts")? {
                    *self
                        .money
                        .pending_taken
                        .entry((order_id, p.vendor_id))
                        .or_default() += p.from_pending;
                    self.money.clearing += p.from_available;
                    *self.money.frozen.entry(p.vendor_id).or_default() += p.net;
                    lines.push((vendor_pending(p.vendor_id), p.from_pending, zero));
                    lines.push((VENDOR_REVERSALS.to_owned(), p.from_available, zero));
                    lines.push((vendor_frozen(p.vendor_id), zero, p.net));
                }
                self.post(position, &lines);
            }
            "DisputeClosed" => {
                let amount = field(payload, "amount")?;
                let mut lines = Vec::new();
                if payload["won"] == Value::Bool(true) {
                    self.money.disputes_won += amount;
                    lines.push((CASH.to_owned(), amount, zero));
                    lines.push((DISPUTED.to_owned(), zero, amount));
                    for r in payload["releases"]
                        .as_array()
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                    {
                        let vendor_id = uuid(&r["vendor_id"])?;
                        let (to_pending, to_available) =
                            (field(r, "to_pending")?, field(r, "to_available")?);
                        *self.money.frozen.entry(vendor_id).or_default() -=
                            to_pending + to_available;
                        *self
                            .money
                            .pending_taken
                            .entry((order_id, vendor_id))
                            .or_default() -= to_pending;
                        self.money.clearing -= to_available;
                        lines.push((vendor_frozen(vendor_id), to_pending + to_available, zero));
                        lines.push((vendor_pending(vendor_id), zero, to_pending));
                        lines.push((VENDOR_REVERSALS.to_owned(), zero, to_available));
                    }
                } else {
                    self.money.disputes_lost += amount;
                    lines.push((DISPUTED.to_owned(), zero, amount));
                    for p in parts(payload, "parts")? {
                        self.money.tax_reversed += p.tax;
                        self.money.fees_reversed += p.fee;
                        *self.money.frozen.entry(p.vendor_id).or_default() -= p.net;
                        lines.push((vendor_frozen(p.vendor_id), p.net, zero));
                        lines.push((PLATFORM_FEES.to_owned(), p.fee, zero));
                        lines.push((TAX_PAYABLE.to_owned(), p.tax, zero));
                    }
                }
                self.post(position, &lines);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The vendor events of these paths; `false` for any other.
    pub(super) fn apply_vendor_money(
        &mut self,
        position: i64,
        vendor_id: Uuid,
        event_type: &str,
        payload: &Value,
    ) -> anyhow::Result<bool> {
        let zero = Decimal::ZERO;
        let available = vendor_available(vendor_id);
        let receivable = vendor_receivable(vendor_id);
        match event_type {
            "EarningsReversed" => {
                let amount = field(payload, "amount")?;
                let from = field(payload, "from_available")?;
                let owed = field(payload, "receivable")?;
                *self.money.available.entry(vendor_id).or_default() -= from;
                *self.balance.entry(vendor_id).or_default() -= from;
                *self.money.receivable.entry(vendor_id).or_default() += owed;
                self.money.clearing -= amount;
                self.post(
                    position,
                    &[
                        (available, from, zero),
                        (receivable, owed, zero),
                        (VENDOR_REVERSALS.to_owned(), zero, amount),
                    ],
                );
            }
            "EarningsRestored" => {
                let amount = field(payload, "amount")?;
                let settled = field(payload, "receivable_settled")?;
                *self.money.available.entry(vendor_id).or_default() += amount - settled;
                *self.balance.entry(vendor_id).or_default() += amount - settled;
                *self.money.receivable.entry(vendor_id).or_default() -= settled;
                self.money.clearing += amount;
                self.post(
                    position,
                    &[
                        (VENDOR_REVERSALS.to_owned(), amount, zero),
                        (receivable, zero, settled),
                        (available, zero, amount - settled),
                    ],
                );
            }
            "ReceivableSettled" => {
                let amount = field(payload, "amount")?;
                *self.money.available.entry(vendor_id).or_default() -= amount;
                *self.balance.entry(vendor_id).or_default() -= amount;
                *self.money.receivable.entry(vendor_id).or_default() -= amount;
                self.post(
                    position,
                    &[(available, amount, zero), (receivable, zero, amount)],
                );
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The balances of the accounts these paths add, and what they change
    /// of the others (`b` has the others already).
    pub(super) fn money_balances(&self, b: &mut BTreeMap<String, Decimal>) {
        let m = &self.money;
        let mut change = |account: &str, by: Decimal| {
            *b.entry(account.to_owned()).or_default() += by;
        };
        change(
            CASH,
            m.unapplied_in - m.unapplied_refunded - m.partial_refunds - m.disputes_opened
                + m.disputes_won,
        );
        change(
            CUSTOMER_FUNDS,
            -m.unapplied_applied + m.cancelled_after_refunds,
        );
        change(
            UNAPPLIED,
            -(m.unapplied_in - m.unapplied_applied - m.unapplied_refunded),
        );
        change(TAX_PAYABLE, m.tax_reversed);
        change(PLATFORM_FEES, m.fees_reversed);
        change(
            DISPUTED,
            m.disputes_opened - m.disputes_won - m.disputes_lost,
        );
        change(VENDOR_REVERSALS, m.clearing);
        for (vendor_id, frozen) in &m.frozen {
            change(&vendor_frozen(*vendor_id), -*frozen);
        }
        for (vendor_id, owed) in &m.receivable {
            change(&vendor_receivable(*vendor_id), *owed);
        }
    }
}
