//! Expecting the money of leases (rental lines paid by instalments, issue
//! 15 item 3), read from the raw payloads of `OrderPlaced` (each line's
//! `payment_plan.schedule`), `InstalmentPaid` and `InstalmentsWrittenOff`:
//!
//! - a confirmed lease is allocated whole; its instalments stand in for
//!   payment as a customer receivable (`customer_receivable →
//!   customer_funds`);
//! - an instalment paid: cash in, the receivable down;
//! - a write-off takes back its parts' tax, fee and pending net (the
//!   vendor's gross, fees and pending down), or, with no parts, is the
//!   platform's loss (`instalment_write_offs`); the receivable down.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::Value;
use uuid::Uuid;

use super::expected::{field, Expected, OrderFacts};
use super::observe::uuid;
use super::rentals::CUSTOMER_RECEIVABLE;
use super::*;

/// Instalments written off after the vendor's part was fulfilled.
pub const INSTALMENT_WRITE_OFFS: &str = "instalment_write_offs";

/// What the leases did, summed over the log.
#[derive(Debug, Default)]
pub struct LeasePaths {
    /// Σ instalments of confirmed leases (owed at confirmation).
    pub scheduled: Decimal,
    pub paid: Decimal,
    pub written_off: Decimal,
    /// Written off with no parts: the platform's loss.
    pub borne: Decimal,
    pub tax_taken: Decimal,
    /// Per vendor: (subtotal, fee) taken back by write-offs.
    pub taken: BTreeMap<Uuid, (Decimal, Decimal)>,
    /// Per (order, vendor): pending net taken back.
    pub pending_taken: BTreeMap<(Uuid, Uuid), Decimal>,
}

/// Σ the instalments of a placed order's lines (`payment_plan.schedule`).
pub(super) fn scheduled(priced: &Value) -> anyhow::Result<Decimal> {
    let mut sum = Decimal::ZERO;
    for line in priced["lines"].as_array().into_iter().flatten() {
        for i in line["payment_plan"]["schedule"]
            .as_array()
            .into_iter()
            .flatten()
        {
            sum += field(i, "amount")?;
        }
    }
    Ok(sum)
}

impl Expected {
    /// The receivable of a lease's instalments, posted with its allocation.
    pub(super) fn post_scheduled(&mut self, position: i64, order: &OrderFacts) {
        if order.scheduled.is_zero() {
            return;
        }
        self.leases.scheduled += order.scheduled;
        self.post(
            position,
            &[
                (
                    CUSTOMER_RECEIVABLE.to_owned(),
                    order.scheduled,
                    Decimal::ZERO,
                ),
                (CUSTOMER_FUNDS.to_owned(), Decimal::ZERO, order.scheduled),
            ],
        );
    }

    /// The order events of leases; `false` for any other.
    pub(super) fn apply_order_leases(
        &mut self,
        position: i64,
        order_id: Uuid,
        event_type: &str,
        payload: &Value,
    ) -> anyhow::Result<bool> {
        let zero = Decimal::ZERO;
        match event_type {
            "InstalmentPaid" => {
                let amount = field(payload, "amount")?;
                self.leases.paid += amount;
                self.post(
                    position,
                    &[
                        (CASH.to_owned(), amount, zero),
                        (CUSTOMER_RECEIVABLE.to_owned(), zero, amount),
                    ],
                );
            }
            "InstalmentsWrittenOff" => {
                let amount = field(payload, "amount")?;
                self.leases.written_off += amount;
                let parts = payload["parts"].as_array().cloned().unwrap_or_default();
                let mut lines = vec![(CUSTOMER_RECEIVABLE.to_owned(), zero, amount)];
                if parts.is_empty() {
                    self.leases.borne += amount;
                    lines.push((INSTALMENT_WRITE_OFFS.to_owned(), amount, zero));
                }
                let mut sum = zero;
                for p in &parts {
                    let vendor_id = uuid(&p["vendor_id"])?;
                    let (subtotal, tax, fee, net) = (
                        field(p, "subtotal")?,
                        field(p, "tax")?,
                        field(p, "fee_reversed")?,
                        field(p, "net_reversed")?,
                    );
                    let (pending, available) =
                        (field(p, "from_pending")?, field(p, "from_available")?);
                    sum += subtotal + tax;
                    if fee + net != subtotal || pending + available != net || !available.is_zero() {
                        self.problem(
                            "lease write-off: fee + net = subtotal, all of the net from pending",
                            format!("order {order_id} vendor {vendor_id}"),
                            format!("{subtotal} from pending"),
                            format!("fee {fee} net {net} pending {pending} available {available}"),
                        );
                    }
                    self.leases.tax_taken += tax;
                    let t = self.leases.taken.entry(vendor_id).or_default();
                    t.0 += subtotal;
                    t.1 += fee;
                    *self
                        .leases
                        .pending_taken
                        .entry((order_id, vendor_id))
                        .or_default() += pending;
                    lines.push((TAX_PAYABLE.to_owned(), tax, zero));
                    lines.push((PLATFORM_FEES.to_owned(), fee, zero));
                    lines.push((vendor_pending(vendor_id), pending, zero));
                }
                if !parts.is_empty() && sum != amount {
                    self.problem(
                        "lease write-off: Σ parts = amount",
                        format!("order {order_id}"),
                        amount.to_string(),
                        sum.to_string(),
                    );
                }
                self.post(position, &lines);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// What write-offs took of a vendor's gross, fees and pending net.
    pub(super) fn lease_earnings(&self, vendor_id: Uuid, e: &mut Earnings) {
        if let Some((subtotal, fee)) = self.leases.taken.get(&vendor_id) {
            e.gross -= *subtotal;
            e.platform_fees -= *fee;
        }
        for ((order_id, v), taken) in &self.leases.pending_taken {
            let fulfilled = self
                .orders
                .get(order_id)
                .is_some_and(|o| o.fulfilled.contains_key(v));
            if *v == vendor_id && !fulfilled {
                e.pending -= *taken;
            }
        }
    }

    /// The balances leases change (`b` has the others already).
    pub(super) fn lease_balances(&self, b: &mut BTreeMap<String, Decimal>) {
        let l = &self.leases;
        if l.scheduled.is_zero() {
            return;
        }
        let mut change = |account: &str, by: Decimal| {
            *b.entry(account.to_owned()).or_default() += by;
        };
        let fees: Decimal = l.taken.values().map(|t| t.1).sum();
        change(CASH, l.paid);
        change(CUSTOMER_FUNDS, -l.scheduled);
        change(CUSTOMER_RECEIVABLE, l.scheduled - l.paid - l.written_off);
        change(TAX_PAYABLE, l.tax_taken);
        change(PLATFORM_FEES, fees);
        if !l.borne.is_zero() {
            change(INSTALMENT_WRITE_OFFS, l.borne);
        }
    }

    /// (subtotal, fee) write-offs took of a vendor's parts.
    pub(super) fn lease_taken(&self, vendor_id: Uuid) -> (Decimal, Decimal) {
        self.leases
            .taken
            .get(&vendor_id)
            .copied()
            .unwrap_or_default()
    }

    /// Σ subtotals written off vendors' parts.
    pub fn lease_subtotal_taken(&self) -> Decimal {
        self.leases.taken.values().map(|t| t.0).sum()
    }

    /// Σ instalments paid.
    pub fn instalments_paid(&self) -> Decimal {
        self.leases.paid
    }
}
