//! Expecting: the log, read by hand. The figures every account, vendor and
//! analytics bucket must show, computed from the raw `events` payloads
//! alone, never from a projector's code or tables.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::observe::{decimal, instant, uuid};
use super::*;

/// Half away from zero, to the cent (DESIGN.md "Domain").
pub fn cents(amount: Decimal) -> Decimal {
    let mut rounded = amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(2);
    rounded
}

#[derive(Clone, Debug)]
pub(super) struct Line {
    pub(super) line_id: Uuid,
    pub(super) listing_id: Uuid,
    pub(super) vendor_id: Uuid,
    pub(super) rental: bool,
    pub(super) start: Option<DateTime<Utc>>,
    pub(super) end: Option<DateTime<Utc>>,
    pub(super) quantity: i64,
    /// As confirmed booking changes left it.
    pub(super) subtotal: Decimal,
    pub(super) tax: Decimal,
    pub(super) deposit: Decimal,
    /// The subtotal as placed, and the vendor's fee deltas of the line's
    /// confirmed booking changes (the analytics' line fee share is the
    /// placed share plus these).
    pub(super) placed_subtotal: Decimal,
    pub(super) fee_delta: Decimal,
    /// Returned before its end: the rental time ends here.
    pub(super) returned_early: Option<DateTime<Utc>>,
}

impl Line {
    /// The rental time the analytics count: the period as changed, ended
    /// by an early return.
    pub(super) fn rented(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let (start, end) = (self.start?, self.end?);
        let end = self.returned_early.map_or(end, |r| r.min(end).max(start));
        Some((start, end))
    }
}

#[derive(Clone, Debug)]
pub(super) struct Split {
    pub(super) vendor_id: Uuid,
    pub(super) subtotal: Decimal,
    pub(super) fee: Decimal,
    pub(super) net: Decimal,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Status {
    Placed,
    Confirmed,
    Cancelled,
}

#[derive(Clone, Debug)]
pub(super) struct OrderFacts {
    pub(super) placed_at: DateTime<Utc>,
    pub(super) lines: Vec<Line>,
    pub(super) vendors: Vec<Split>,
    /// The vendors' splits as placed (the analytics' fee shares start from
    /// them; `vendors` follows the booking changes).
    pub(super) placed_vendors: Vec<Split>,
    pub(super) tax: Decimal,
    pub(super) deposit: Decimal,
    pub(super) total: Decimal,
    pub(super) status: Status,
    /// The payment is allocated to tax, deposits, fees and vendors.
    pub(super) allocated: bool,
    pub(super) refunded: Decimal,
    /// What refunds (`RefundRecorded`) took: goods and tax, tax, and per
    /// vendor (fee, net); a cancellation after them reverses the rest.
    pub(super) taken_amount: Decimal,
    pub(super) taken_tax: Decimal,
    pub(super) taken: BTreeMap<Uuid, (Decimal, Decimal)>,
    /// Vendors whose part was fulfilled, with the net the order said.
    pub(super) fulfilled: BTreeMap<Uuid, Decimal>,
    /// Σ instalments of its lease, if it has one (owed, not paid upfront).
    pub(super) scheduled: Decimal,
}

impl OrderFacts {
    /// The vendors' subtotals, after the booking changes confirmed.
    pub(super) fn subtotal(&self) -> Decimal {
        self.vendors.iter().map(|v| v.subtotal).sum()
    }

    /// The lines' subtotals as changed (what the analytics count).
    pub(super) fn lines_subtotal(&self) -> Decimal {
        self.lines.iter().map(|l| l.subtotal).sum()
    }
}

/// Per (position, account): debit and credit.
pub(super) type Journal = BTreeMap<i64, BTreeMap<String, (Decimal, Decimal)>>;

/// What the log says the figures must be.
#[derive(Debug, Default)]
pub struct Expected {
    pub(super) orders: BTreeMap<Uuid, OrderFacts>,
    /// The journal by the movements of the ledger's module comment.
    pub(super) journal: Journal,
    pub(super) vendors: BTreeSet<Uuid>,
    /// Σ net of fulfilled parts, per vendor (from the orders' events).
    pub(super) fulfilled_net: BTreeMap<Uuid, Decimal>,
    /// Σ damage withheld on returned lines, per vendor (orders' events).
    pub(super) damage_withheld: BTreeMap<Uuid, Decimal>,
    /// From the vendors' own events.
    pub(super) made_available: BTreeMap<(Uuid, Uuid), Decimal>,
    pub(super) damage_credited: BTreeMap<(Uuid, Uuid), Decimal>,
    /// Σ payouts requested and not failed, per vendor.
    pub(super) payouts: BTreeMap<Uuid, Decimal>,
    /// Every payout: its vendor, amount and status, by the vendors' events.
    pub(super) payout_states: BTreeMap<Uuid, Payout>,
    /// Σ payouts paid (left the bank).
    pub(super) payouts_paid: Decimal,
    /// Each vendor's own fee rate in force, as the log goes (FeeRateSet).
    pub(super) fee_rates: BTreeMap<Uuid, Decimal>,
    /// When each payout was requested (for the summary's window).
    pub(super) payout_requested_at: BTreeMap<Uuid, DateTime<Utc>>,
    /// Running available balance per vendor, by its own events.
    pub(super) balance: BTreeMap<Uuid, Decimal>,
    pub(super) captured: Decimal,
    pub(super) refunds: Decimal,
    pub(super) deposit_refunds: Decimal,
    /// Line id → (vendor, damage withheld) of returned lines.
    pub(super) returns: BTreeMap<Uuid, (Uuid, Decimal)>,
    /// Listing id → (category, rental units, created at).
    pub(super) listings: BTreeMap<Uuid, (String, Option<i64>, DateTime<Utc>)>,
    /// (recorded at, reason) of every failed payment.
    pub(super) failures: Vec<(DateTime<Utc>, String)>,
    /// Inconsistencies inside the log itself.
    pub(super) log_problems: Vec<Discrepancy>,
    /// Refunds, disputes and unapplied payments (`reversals`).
    pub(super) money: super::reversals::MoneyPaths,
    /// Booking changes, late fees and cancellation policies (`rentals`).
    pub(super) rentals: super::rentals::RentalPaths,
    /// Instalments of leases (`leases`).
    pub(super) leases: super::leases::LeasePaths,
    /// Subscription invoices, payments and credits (`subscriptions`).
    pub(super) subscriptions: super::subscriptions::SubscriptionPaths,
}

pub(super) fn inner<'a>(event_type: &str, payload: &'a Value) -> &'a Value {
    payload.get(event_type).unwrap_or(payload)
}

pub(super) fn field(value: &Value, name: &str) -> anyhow::Result<Decimal> {
    decimal(&value[name]).map_err(|e| anyhow::anyhow!("{name}: {e}"))
}

pub(super) fn parse_order(payload: &Value) -> anyhow::Result<OrderFacts> {
    let priced = &payload["priced"];
    let lines = priced["lines"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("OrderPlaced without lines"))?
        .iter()
        .map(|l| {
            Ok(Line {
                line_id: uuid(&l["line_id"])?,
                listing_id: uuid(&l["listing_id"])?,
                vendor_id: uuid(&l["vendor_id"])?,
                rental: l["kind"] == "rental",
                start: l.get("start").and_then(|v| instant(v).ok()),
                end: l.get("end").and_then(|v| instant(v).ok()),
                quantity: l["quantity"].as_i64().unwrap_or_default(),
                subtotal: field(l, "subtotal")?,
                tax: field(l, "tax")?,
                deposit: field(l, "deposit")?,
                placed_subtotal: field(l, "subtotal")?,
                fee_delta: Decimal::ZERO,
                returned_early: None,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let vendors = priced["vendors"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("OrderPlaced without vendors"))?
        .iter()
        .map(|v| {
            Ok(Split {
                vendor_id: uuid(&v["vendor_id"])?,
                subtotal: field(v, "subtotal")?,
                fee: field(v, "platform_fee")?,
                net: field(v, "net")?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(OrderFacts {
        placed_at: instant(&payload["placed_at"])?,
        lines,
        placed_vendors: vendors.clone(),
        vendors,
        tax: field(priced, "tax")?,
        deposit: field(priced, "deposit")?,
        total: field(priced, "total")?,
        status: Status::Placed,
        allocated: false,
        refunded: Decimal::ZERO,
        taken_amount: Decimal::ZERO,
        taken_tax: Decimal::ZERO,
        taken: BTreeMap::new(),
        fulfilled: BTreeMap::new(),
        scheduled: super::leases::scheduled(priced)?,
    })
}

impl Expected {
    pub(super) fn post(&mut self, position: i64, lines: &[(String, Decimal, Decimal)]) {
        for (account, debit, credit) in lines {
            if debit.is_zero() && credit.is_zero() {
                continue;
            }
            let e = self
                .journal
                .entry(position)
                .or_default()
                .entry(account.clone())
                .or_default();
            e.0 += *debit;
            e.1 += *credit;
        }
    }

    pub(super) fn problem(
        &mut self,
        check: &str,
        subject: String,
        expected: String,
        observed: String,
    ) {
        self.log_problems.push(Discrepancy {
            check: check.to_owned(),
            subject,
            expected,
            observed,
        });
    }

    /// The allocation of a confirmed order: customer funds to tax, deposits,
    /// vendors' pending nets and the platform's fees.
    fn allocation(order: &OrderFacts) -> Vec<(String, Decimal, Decimal)> {
        let zero = Decimal::ZERO;
        let mut lines = vec![
            (CUSTOMER_FUNDS.to_owned(), order.total, zero),
            (TAX_PAYABLE.to_owned(), zero, order.tax),
            (DEPOSITS_HELD.to_owned(), zero, order.deposit),
        ];
        for v in &order.vendors {
            lines.push((vendor_pending(v.vendor_id), zero, v.net));
            lines.push((PLATFORM_FEES.to_owned(), zero, v.fee));
        }
        lines
    }

    /// Checks the pricing arithmetic of a placed order (fees + nets =
    /// subtotals, sums of lines, rounding of fee and tax).
    fn check_pricing(&mut self, order_id: Uuid, payload: &Value, order: &OrderFacts) {
        let rates = &payload["rates"];
        let tax_rate = decimal(&rates["tax_rate"]).unwrap_or_default();
        let deployment_rate = decimal(&rates["platform_fee_rate"]).unwrap_or_default();
        let subject = format!("order {order_id}");
        let splits = payload["priced"]["vendors"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for v in &order.vendors {
            // A vendor's own rate set before the order was placed prices
            // it (new orders only), and the split names it.
            let own = self.fee_rates.get(&v.vendor_id).copied();
            let fee_rate = own.unwrap_or(deployment_rate);
            let named = splits
                .iter()
                .find(|s| s["vendor_id"].as_str() == Some(v.vendor_id.to_string().as_str()))
                .and_then(|s| s.get("fee_rate"))
                .and_then(|r| decimal(r).ok());
            if named.map(|r| r.normalize()) != own.map(|r| r.normalize()) {
                self.problem(
                    "pricing: the split names the vendor's own fee rate in force",
                    format!("{subject} vendor {}", v.vendor_id),
                    format!("{own:?}"),
                    format!("{named:?}"),
                );
            }
            let lines: Decimal = order
                .lines
                .iter()
                .filter(|l| l.vendor_id == v.vendor_id)
                .map(|l| l.subtotal)
                .sum();
            if lines != v.subtotal || v.fee + v.net != v.subtotal {
                self.problem(
                    "pricing: vendor subtotal = Σ lines = fee + net",
                    format!("{subject} vendor {}", v.vendor_id),
                    format!("{lines}"),
                    format!("subtotal {} fee {} net {}", v.subtotal, v.fee, v.net),
                );
            }
            if cents(v.subtotal * fee_rate) != v.fee {
                self.problem(
                    "pricing: fee = round(subtotal × rate)",
                    format!("{subject} vendor {}", v.vendor_id),
                    cents(v.subtotal * fee_rate).to_string(),
                    v.fee.to_string(),
                );
            }
        }
        for l in &order.lines {
            if cents(l.subtotal * tax_rate) != l.tax {
                self.problem(
                    "pricing: line tax = round(subtotal × tax rate)",
                    format!("{subject} line {}", l.line_id),
                    cents(l.subtotal * tax_rate).to_string(),
                    l.tax.to_string(),
                );
            }
        }
        let tax: Decimal = order.lines.iter().map(|l| l.tax).sum();
        let deposit: Decimal = order.lines.iter().map(|l| l.deposit).sum();
        if tax != order.tax
            || deposit != order.deposit
            || order.subtotal() + order.tax + order.deposit != order.total
        {
            self.problem(
                "pricing: total = subtotal + tax + deposit",
                subject,
                format!(
                    "tax {tax} deposit {deposit} total {}",
                    order.subtotal() + tax + deposit
                ),
                format!(
                    "tax {} deposit {} total {}",
                    order.tax, order.deposit, order.total
                ),
            );
        }
    }

    fn apply_order(
        &mut self,
        position: i64,
        order_id: Uuid,
        event_type: &str,
        payload: &Value,
        recorded_at: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let zero = Decimal::ZERO;
        if event_type == "OrderPlaced" {
            let order = parse_order(payload)?;
            self.check_pricing(order_id, payload, &order);
            self.orders.insert(order_id, order);
            return Ok(());
        }
        if event_type == "PaymentFailed" {
            let reason = payload["reason"].as_str().unwrap_or_default().to_owned();
            self.failures.push((recorded_at, reason));
            return Ok(());
        }
        let Some(order) = self.orders.get(&order_id).cloned() else {
            anyhow::bail!("{event_type} at {position} for an order never placed");
        };
        if self.apply_order_money(position, order_id, event_type, payload)?
            || self.apply_order_rentals(position, order_id, event_type, payload)?
            || self.apply_order_leases(position, order_id, event_type, payload)?
        {
            return Ok(());
        }
        match event_type {
            "PaymentCaptured" => {
                let amount = field(payload, "amount")?;
                self.captured += amount;
                self.post(
                    position,
                    &[
                        (CASH.to_owned(), amount, zero),
                        (CUSTOMER_FUNDS.to_owned(), zero, amount),
                    ],
                );
            }
            "OrderConfirmed" | "OrderReconfirmed" => {
                if !order.allocated {
                    self.post_scheduled(position, &order);
                    self.post(position, &Self::allocation(&order));
                }
                let o = self.orders.get_mut(&order_id).expect("known order");
                o.allocated = true;
                o.status = Status::Confirmed;
            }
            "OrderCancelled" => {
                if order.allocated {
                    // Refunds gave part back already: the rest is reversed,
                    // and the refunds' tax and fees leave the sums of
                    // reversals with the order (it no longer counts).
                    let mut left = order.clone();
                    left.total -= order.taken_amount;
                    left.tax -= order.taken_tax;
                    for v in &mut left.vendors {
                        let (fee, net) = order.taken.get(&v.vendor_id).copied().unwrap_or_default();
                        v.fee -= fee;
                        v.net -= net;
                    }
                    let reversal: Vec<_> = Self::allocation(&left)
                        .into_iter()
                        .map(|(a, d, c)| (a, c, d))
                        .collect();
                    self.post(position, &reversal);
                    self.money.tax_reversed -= order.taken_tax;
                    self.money.fees_reversed -= order.taken.values().map(|t| t.0).sum::<Decimal>();
                    self.money.cancelled_after_refunds += order.taken_amount;
                }
                let o = self.orders.get_mut(&order_id).expect("known order");
                o.allocated = false;
                o.status = Status::Cancelled;
            }
            "RefundIssued" => {
                let amount = field(payload, "amount")?;
                self.refunds += amount;
                self.orders
                    .get_mut(&order_id)
                    .expect("known order")
                    .refunded += amount;
                self.post(
                    position,
                    &[
                        (CUSTOMER_FUNDS.to_owned(), amount, zero),
                        (CASH.to_owned(), zero, amount),
                    ],
                );
            }
            "LineReturned" => {
                let refunded = field(payload, "deposit_refunded")?;
                let withheld = field(payload, "damage_withheld")?;
                let vendor_id = uuid(&payload["vendor_id"])?;
                let line_id = uuid(&payload["line_id"])?;
                let deposit = order
                    .lines
                    .iter()
                    .find(|l| l.line_id == line_id)
                    .map(|l| l.deposit);
                let late_fee = self.late_fee_from_deposit(line_id);
                if deposit != Some(refunded + withheld + late_fee) {
                    self.problem(
                        "return: deposit = refunded + withheld + late fee taken from it",
                        format!("order {order_id} line {line_id}"),
                        format!("{deposit:?}"),
                        format!("{refunded} + {withheld} + {late_fee}"),
                    );
                }
                self.deposit_refunds += refunded;
                *self.damage_withheld.entry(vendor_id).or_default() += withheld;
                self.returns.insert(line_id, (vendor_id, withheld));
                self.post(
                    position,
                    &[
                        (DEPOSITS_HELD.to_owned(), refunded, zero),
                        (CASH.to_owned(), zero, refunded),
                    ],
                );
            }
            "VendorPartFulfilled" => {
                let vendor_id = uuid(&payload["vendor_id"])?;
                let net = field(payload, "net")?;
                *self.fulfilled_net.entry(vendor_id).or_default() += net;
                self.orders
                    .get_mut(&order_id)
                    .expect("known order")
                    .fulfilled
                    .insert(vendor_id, net);
            }
            _ => {}
        }
        Ok(())
    }

    fn apply_vendor(
        &mut self,
        position: i64,
        vendor_id: Uuid,
        event_type: &str,
        payload: &Value,
        recorded_at: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let zero = Decimal::ZERO;
        if self.apply_vendor_money(position, vendor_id, event_type, payload)?
            || self.apply_vendor_rentals(position, vendor_id, event_type, payload)?
        {
            return Ok(());
        }
        let (pending, available) = (vendor_pending(vendor_id), vendor_available(vendor_id));
        match event_type {
            "VendorRegistered" => {
                self.vendors.insert(vendor_id);
            }
            "EarningsMadeAvailable" => {
                let amount = field(payload, "amount")?;
                let order_id = uuid(&payload["order_id"])?;
                *self
                    .made_available
                    .entry((vendor_id, order_id))
                    .or_default() += amount;
                *self.balance.entry(vendor_id).or_default() += amount;
                self.post(
                    position,
                    &[(pending, amount, zero), (available, zero, amount)],
                );
            }
            "DamageCredited" => {
                let amount = field(payload, "amount")?;
                let line_id = uuid(&payload["line_id"])?;
                *self
                    .damage_credited
                    .entry((vendor_id, line_id))
                    .or_default() += amount;
                *self.balance.entry(vendor_id).or_default() += amount;
                self.post(
                    position,
                    &[
                        (DEPOSITS_HELD.to_owned(), amount, zero),
                        (available, zero, amount),
                    ],
                );
            }
            "PayoutRecorded" => {
                let amount = field(payload, "amount")?;
                let payout_id = uuid(&payload["payout_id"])?;
                self.payout_states.insert(
                    payout_id,
                    Payout {
                        vendor_id,
                        amount,
                        status: "requested".to_owned(),
                    },
                );
                self.payout_requested_at.insert(payout_id, recorded_at);
                *self.payouts.entry(vendor_id).or_default() += amount;
                let balance = self.balance.entry(vendor_id).or_default();
                *balance -= amount;
                if *balance < Decimal::ZERO {
                    let left = *balance + amount;
                    self.problem(
                        "log: a payout never exceeds the available balance",
                        format!("vendor {vendor_id} position {position}"),
                        format!("at most {left}"),
                        amount.to_string(),
                    );
                }
                self.post(
                    position,
                    &[
                        (available, amount, zero),
                        (PAYOUTS_IN_TRANSIT.to_owned(), zero, amount),
                    ],
                );
            }
            "PayoutPaid" | "PayoutFailed" => {
                let amount = field(payload, "amount")?;
                let payout_id = uuid(&payload["payout_id"])?;
                let status = if event_type == "PayoutPaid" {
                    "paid"
                } else {
                    "failed"
                };
                let known = self.payout_states.get(&payout_id).cloned();
                match &known {
                    Some(p)
                        if p.status == "requested"
                            && p.amount == amount
                            && p.vendor_id == vendor_id => {}
                    _ => self.problem(
                        "log: a payout is paid or failed once, as requested",
                        format!("payout {payout_id} position {position}"),
                        format!("requested {amount} by vendor {vendor_id}"),
                        format!("{known:?}"),
                    ),
                }
                if let Some(p) = self.payout_states.get_mut(&payout_id) {
                    p.status = status.to_owned();
                }
                if status == "paid" {
                    self.payouts_paid += amount;
                    self.post(
                        position,
                        &[
                            (PAYOUTS_IN_TRANSIT.to_owned(), amount, zero),
                            (CASH.to_owned(), zero, amount),
                        ],
                    );
                } else {
                    // The amount is the vendor's to be paid out again.
                    *self.payouts.entry(vendor_id).or_default() -= amount;
                    *self.balance.entry(vendor_id).or_default() += amount;
                    self.post(
                        position,
                        &[
                            (PAYOUTS_IN_TRANSIT.to_owned(), amount, zero),
                            (available, zero, amount),
                        ],
                    );
                }
            }
            "FeeRateSet" => {
                self.fee_rates.insert(vendor_id, field(payload, "rate")?);
            }
            _ => {}
        }
        Ok(())
    }

    fn apply_listing(
        &mut self,
        listing_id: Uuid,
        aggregate_type: &str,
        event_type: &str,
        payload: &Value,
        recorded_at: DateTime<Utc>,
    ) {
        match (aggregate_type, event_type) {
            ("Listing", "ListingCreated") => {
                let category = payload["category"].as_str().unwrap_or_default().to_owned();
                let units = (payload["terms"]["kind"] == "rental")
                    .then(|| payload["terms"]["units"].as_i64().unwrap_or_default());
                let entry =
                    self.listings
                        .entry(listing_id)
                        .or_insert((String::new(), None, recorded_at));
                entry.0 = category;
                entry.2 = recorded_at;
                if entry.1.is_none() {
                    entry.1 = units;
                }
            }
            ("Inventory", "InventoryInitialized") => {
                if let Some(units) = payload["capacity"]["units"].as_i64() {
                    if let Some(entry) = self.listings.get_mut(&listing_id) {
                        entry.1 = Some(units);
                    }
                }
            }
            ("Inventory", "UnitsChanged") => {
                if let Some(entry) = self.listings.get_mut(&listing_id) {
                    entry.1 = payload["units"].as_i64();
                }
            }
            _ => {}
        }
    }

    /// Reads the whole `events` table, in log order.
    pub async fn from_log(pool: &PgPool) -> anyhow::Result<Expected> {
        type Row = (i64, String, String, String, Value, DateTime<Utc>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT global_position, aggregate_type, aggregate_id, event_type, payload::jsonb,
                    recorded_at
               FROM events ORDER BY global_position",
        )
        .fetch_all(pool)
        .await?;
        let mut expected = Expected::default();
        for (position, aggregate_type, aggregate_id, event_type, payload, recorded_at) in rows {
            let payload = inner(&event_type, &payload);
            let Ok(id) = Uuid::parse_str(&aggregate_id) else {
                continue;
            };
            match aggregate_type.as_str() {
                "Order" => expected.apply_order(position, id, &event_type, payload, recorded_at)?,
                "Vendor" => {
                    expected.apply_vendor(position, id, &event_type, payload, recorded_at)?
                }
                "Listing" | "Inventory" => {
                    expected.apply_listing(id, &aggregate_type, &event_type, payload, recorded_at)
                }
                "Subscription" => expected.apply_subscription(position, &event_type, payload)?,
                _ => {}
            }
        }
        expected.cross_check_vendor_events();
        expected.cross_check_rentals();
        Ok(expected)
    }

    /// The vendors' own events agree with the orders': one credit of the
    /// net per fulfilled part, one damage credit per line with damage.
    fn cross_check_vendor_events(&mut self) {
        let mut fulfilled: BTreeMap<(Uuid, Uuid), Decimal> = BTreeMap::new();
        for (order_id, order) in &self.orders {
            for (vendor_id, net) in &order.fulfilled {
                fulfilled.insert((*vendor_id, *order_id), *net);
            }
        }
        // What a cancellation policy kept is made available like a
        // fulfilled part's net.
        for ((order_id, vendor_id), split) in &self.rentals.kept {
            fulfilled.insert((*vendor_id, *order_id), split.net);
        }
        let keys: BTreeSet<(Uuid, Uuid)> = fulfilled
            .keys()
            .chain(self.made_available.keys())
            .copied()
            .collect();
        for key in keys {
            let (want, got) = (fulfilled.get(&key), self.made_available.get(&key));
            if want != got {
                self.problem(
                    "log: earnings made available = net of the fulfilled part",
                    format!("vendor {} order {}", key.0, key.1),
                    format!("{want:?}"),
                    format!("{got:?}"),
                );
            }
        }
        let damage: BTreeMap<(Uuid, Uuid), Decimal> = self
            .returns
            .iter()
            .filter(|(_, (_, withheld))| !withheld.is_zero())
            .map(|(line, (vendor, withheld))| ((*vendor, *line), *withheld))
            .collect();
        let keys: BTreeSet<(Uuid, Uuid)> = damage
            .keys()
            .chain(self.damage_credited.keys())
            .copied()
            .collect();
        for key in keys {
            let (want, got) = (damage.get(&key), self.damage_credited.get(&key));
            if want != got {
                self.problem(
                    "log: damage credited = damage withheld",
                    format!("vendor {} line {}", key.0, key.1),
                    format!("{want:?}"),
                    format!("{got:?}"),
                );
            }
        }
    }

    /// Orders that count: paid and neither cancelled nor refunded.
    fn paid_orders(&self) -> impl Iterator<Item = (&Uuid, &OrderFacts)> {
        self.orders
            .iter()
            .filter(|(_, o)| o.status == Status::Confirmed)
    }

    /// Σ subtotals of paid, unrefunded orders.
    pub fn paid_subtotal(&self) -> Decimal {
        self.paid_orders().map(|(_, o)| o.subtotal()).sum()
    }

    /// A vendor's earnings, from the orders' events (gross and fees of
    /// paid orders; pending until its part is fulfilled) and its payouts.
    pub fn earnings(&self, vendor_id: Uuid) -> Earnings {
        let mut e = Earnings::default();
        for (order_id, order) in self.paid_orders() {
            for v in order.vendors.iter().filter(|v| v.vendor_id == vendor_id) {
                e.gross += v.subtotal;
                e.platform_fees += v.fee;
                if !order.fulfilled.contains_key(&vendor_id) {
                    let taken = self.money.pending_taken.get(&(*order_id, vendor_id));
                    e.pending += v.net - taken.copied().unwrap_or_default();
                }
            }
        }
        e.net = e.gross - e.platform_fees;
        e.damage_credits = self
            .damage_withheld
            .get(&vendor_id)
            .copied()
            .unwrap_or_default();
        e.paid_out = self.payouts.get(&vendor_id).copied().unwrap_or_default();
        e.available = self
            .fulfilled_net
            .get(&vendor_id)
            .copied()
            .unwrap_or_default()
            + e.damage_credits
            - e.paid_out
            + self
                .money
                .available
                .get(&vendor_id)
                .copied()
                .unwrap_or_default();
        self.rental_earnings(vendor_id, &mut e);
        self.lease_earnings(vendor_id, &mut e);
        e.net = e.gross - e.platform_fees;
        e
    }

    /// Balance (debit − credit) of every account, from the business state
    /// at the end of the log (not from the movements).
    pub fn balances(&self) -> BTreeMap<String, Decimal> {
        let mut b: BTreeMap<String, Decimal> = BTreeMap::new();
        let payouts: Decimal = self.payouts.values().copied().sum();
        let in_transit = payouts - self.payouts_paid;
        let damage: Decimal = self.damage_withheld.values().copied().sum();
        let allocated: Vec<&OrderFacts> = self.orders.values().filter(|o| o.allocated).collect();
        let total: Decimal = allocated.iter().map(|o| o.total).sum();
        let tax: Decimal = allocated.iter().map(|o| o.tax).sum();
        let deposits: Decimal = allocated.iter().map(|o| o.deposit).sum();
        let fees: Decimal = allocated
            .iter()
            .flat_map(|o| o.vendors.iter().map(|v| v.fee))
            .sum();
        b.insert(
            CASH.to_owned(),
            self.captured - self.refunds - self.deposit_refunds - self.payouts_paid,
        );
        if !self.payout_states.is_empty() {
            b.insert(PAYOUTS_IN_TRANSIT.to_owned(), -in_transit);
        }
        b.insert(
            CUSTOMER_FUNDS.to_owned(),
            -(self.captured - self.refunds - total),
        );
        b.insert(TAX_PAYABLE.to_owned(), -tax);
        b.insert(
            DEPOSITS_HELD.to_owned(),
            -(deposits - self.deposit_refunds - damage),
        );
        b.insert(PLATFORM_FEES.to_owned(), -fees);
        for vendor_id in &self.vendors {
            let e = self.earnings(*vendor_id);
            b.insert(vendor_pending(*vendor_id), -e.pending);
            b.insert(vendor_available(*vendor_id), -e.available);
        }
        self.money_balances(&mut b);
        self.rental_balances(&mut b);
        self.lease_balances(&mut b);
        self.subscription_balances(&mut b);
        b
    }

    /// Debit and credit totals of every account, by the movements.
    pub fn account_totals(&self) -> BTreeMap<String, (Decimal, Decimal)> {
        let mut totals: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
        for entry in self.journal.values() {
            for (account, (debit, credit)) in entry {
                let t = totals.entry(account.clone()).or_default();
                t.0 += *debit;
                t.1 += *credit;
            }
        }
        totals
    }

    /// GMV, fees and orders of the paid orders grouped by `bucket` of
    /// their placement and by `key` of their lines.
    pub(super) fn revenue(
        &self,
        bucket: impl Fn(DateTime<Utc>) -> DateTime<Utc>,
        key: impl Fn(&Line) -> Option<String>,
    ) -> Buckets {
        let mut out: BTreeMap<_, (Decimal, Decimal, BTreeSet<Uuid>)> = BTreeMap::new();
        for (order_id, order) in self.paid_orders() {
            for line in &order.lines {
                let split = order
                    .placed_vendors
                    .iter()
                    .find(|v| v.vendor_id == line.vendor_id);
                let share = split
                    .filter(|v| !v.subtotal.is_zero())
                    .map(|v| v.fee * line.placed_subtotal / v.subtotal)
                    .unwrap_or_default()
                    + line.fee_delta;
                let e = out.entry((bucket(order.placed_at), key(line))).or_default();
                e.0 += line.subtotal;
                e.1 += share;
                e.2.insert(*order_id);
            }
        }
        out
    }
}

pub(super) type BucketKey = (DateTime<Utc>, Option<String>);
/// GMV, exact fee shares and the orders of each bucket.
pub(super) type Buckets = BTreeMap<BucketKey, (Decimal, Decimal, BTreeSet<Uuid>)>;

pub(super) fn day_of(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(t.year(), t.month(), t.day(), 0, 0, 0)
        .single()
        .expect("a day")
}

pub(super) fn week_of(t: DateTime<Utc>) -> DateTime<Utc> {
    day_of(t) - Duration::days(i64::from(t.weekday().num_days_from_monday()))
}

pub(super) fn month_of(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
        .single()
        .expect("a month")
}

pub(super) fn seconds(d: Duration) -> Decimal {
    Decimal::from(d.num_microseconds().unwrap_or(i64::MAX)) / Decimal::from(1_000_000)
}
