//! The money checker: what the ledger, the vendor earnings and the
//! analytics answer, compared to the cent with what the raw event log says.
//!
//! The expectations are computed here from the `events` table alone (the
//! externally tagged JSON payloads, parsed by hand into `rust_decimal`s),
//! never from a projector's code or tables, so a one-cent slip in any
//! projector shows up as a [`Discrepancy`]. [`observe`] gathers what the
//! ledger answers (the HTTP routes, plus the `ledger_postings` journal);
//! [`check`] takes those figures and the pool and lists every disagreement.
//! A test may change the observed figures, or the read-model tables behind
//! them, before calling [`check`] to prove a wrong posting is caught.
//!
//! The checks assume a settled log: every projector at the head, no payment
//! left unallocated.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};
use reqwest::{Method, StatusCode};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::TestApp;

/// The analytics window of the checks: wide enough for every order placed
/// now and every rental the tests book (in 2030).
pub const WINDOW_FROM: &str = "2000-01-01T00:00:00Z";
pub const WINDOW_TO: &str = "2031-01-01T00:00:00Z";

pub const CASH: &str = "cash";
pub const CUSTOMER_FUNDS: &str = "customer_funds";
pub const TAX_PAYABLE: &str = "tax_payable";
pub const DEPOSITS_HELD: &str = "deposits_held";
pub const PLATFORM_FEES: &str = "platform_fees";

pub fn vendor_pending(vendor_id: Uuid) -> String {
    format!("vendor_pending:{vendor_id}")
}

pub fn vendor_available(vendor_id: Uuid) -> String {
    format!("vendor_available:{vendor_id}")
}

/// One disagreement between the log and what the ledger answered.
#[derive(Clone, Debug, PartialEq)]
pub struct Discrepancy {
    /// Which rule (e.g. `entry balanced`, `account balance`, `earnings.available`).
    pub check: String,
    /// What it is about (an account, a vendor, a position, a bucket).
    pub subject: String,
    pub expected: String,
    pub observed: String,
}

impl fmt::Display for Discrepancy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} [{}]: expected {}, observed {}",
            self.check, self.subject, self.expected, self.observed
        )
    }
}

/// Debit, credit and balance (debit − credit) of one account.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AccountFigures {
    pub debit: Decimal,
    pub credit: Decimal,
    pub balance: Decimal,
}

/// One line of the journal.
#[derive(Clone, Debug, PartialEq)]
pub struct Posting {
    pub posting_id: i64,
    pub position: i64,
    pub account: String,
    pub vendor_id: Option<Uuid>,
    pub order_id: Option<Uuid>,
    pub kind: String,
    pub debit: Decimal,
    pub credit: Decimal,
}

/// A vendor's `GET /v1/vendors/{id}/earnings`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Earnings {
    pub gross: Decimal,
    pub platform_fees: Decimal,
    pub net: Decimal,
    pub pending: Decimal,
    pub available: Decimal,
    pub paid_out: Decimal,
    pub damage_credits: Decimal,
}

/// `GET /v1/analytics/summary` over [`WINDOW_FROM`, `WINDOW_TO`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub gmv: Decimal,
    pub orders: i64,
    pub paid_orders: i64,
    pub avg_order_value: Decimal,
    pub cancellation_rate: Decimal,
    pub refunds: Decimal,
    pub rental_days: Decimal,
    pub utilization: Decimal,
    /// `(listing_id, gmv, orders)`, best first.
    pub top_listings: Vec<(Uuid, Decimal, i64)>,
    pub payment_failures: BTreeMap<String, i64>,
}

/// One bucket of `GET /v1/analytics/revenue`.
#[derive(Clone, Debug, PartialEq)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    pub key: Option<String>,
    pub gmv: Decimal,
    pub platform_fees: Decimal,
    pub orders: i64,
}

/// The revenue buckets the checks look at.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Revenue {
    pub day: Vec<Bucket>,
    pub week: Vec<Bucket>,
    pub month: Vec<Bucket>,
    pub by_vendor: Vec<Bucket>,
    pub by_category: Vec<Bucket>,
}

/// Everything the ledger answered, as the checker compares it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// `GET /v1/ledger/trial-balance`.
    pub accounts: BTreeMap<String, AccountFigures>,
    pub total_debit: Decimal,
    pub total_credit: Decimal,
    /// The journal, `ledger_postings`, in posting order.
    pub postings: Vec<Posting>,
    /// `GET /v1/vendors/{id}/earnings` of every registered vendor.
    pub earnings: BTreeMap<Uuid, Earnings>,
    /// Every page of `GET /v1/vendors/{id}/earnings/entries`.
    pub vendor_entries: BTreeMap<Uuid, Vec<Posting>>,
    pub summary: Summary,
    pub revenue: Revenue,
}

// ---------------------------------------------------------------------------
// Observing
// ---------------------------------------------------------------------------

fn decimal(value: &Value) -> anyhow::Result<Decimal> {
    match value {
        Value::String(s) => Ok(s.parse()?),
        Value::Number(n) => Ok(n.to_string().parse()?),
        other => anyhow::bail!("not a decimal: {other}"),
    }
}

fn uuid(value: &Value) -> anyhow::Result<Uuid> {
    value
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| anyhow::anyhow!("not a uuid: {value}"))
}

fn instant(value: &Value) -> anyhow::Result<DateTime<Utc>> {
    value
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| anyhow::anyhow!("not an instant: {value}"))
}

async fn get(app: &TestApp, token: &str, path: &str) -> anyhow::Result<Value> {
    let answer = app.send(Method::GET, path, Some(token), None, &[]).await;
    anyhow::ensure!(
        answer.status == StatusCode::OK,
        "GET {path}: {} {:?}",
        answer.status,
        answer.body
    );
    Ok(answer.body)
}

fn posting_of(value: &Value) -> anyhow::Result<Posting> {
    Ok(Posting {
        posting_id: value["posting_id"].as_i64().unwrap_or_default(),
        position: value["position"]
            .as_i64()
            .ok_or_else(|| anyhow::anyhow!("entry without position: {value}"))?,
        account: value["account"].as_str().unwrap_or_default().to_owned(),
        vendor_id: None,
        order_id: value.get("order_id").and_then(|v| uuid(v).ok()),
        kind: value["kind"].as_str().unwrap_or_default().to_owned(),
        debit: decimal(&value["debit"])?,
        credit: decimal(&value["credit"])?,
    })
}

fn buckets_of(body: &Value) -> anyhow::Result<Vec<Bucket>> {
    body["buckets"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("revenue without buckets: {body}"))?
        .iter()
        .map(|b| {
            Ok(Bucket {
                start: instant(&b["start"])?,
                key: b.get("key").and_then(Value::as_str).map(str::to_owned),
                gmv: decimal(&b["gmv"])?,
                platform_fees: decimal(&b["platform_fees"])?,
                orders: b["orders"].as_i64().unwrap_or(-1),
            })
        })
        .collect()
}

/// Reads what the ledger answers: the trial balance, every registered
/// vendor's earnings and entries, the analytics summary and revenue over
/// [`WINDOW_FROM`, `WINDOW_TO`), as admin, plus the journal table.
pub async fn observe(app: &TestApp) -> anyhow::Result<Observed> {
    let admin = app.admin();
    let mut observed = Observed::default();

    let trial = get(app, &admin, "/v1/ledger/trial-balance").await?;
    for a in trial["accounts"].as_array().into_iter().flatten() {
        observed.accounts.insert(
            a["account"].as_str().unwrap_or_default().to_owned(),
            AccountFigures {
                debit: decimal(&a["debit"])?,
                credit: decimal(&a["credit"])?,
                balance: decimal(&a["balance"])?,
            },
        );
    }
    observed.total_debit = decimal(&trial["total_debit"])?;
    observed.total_credit = decimal(&trial["total_credit"])?;

    type Row = (
        i64,
        i64,
        String,
        Option<Uuid>,
        Option<Uuid>,
        String,
        Decimal,
        Decimal,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT posting_id, position, account, vendor_id, order_id, kind, debit, credit
           FROM ledger_postings ORDER BY posting_id",
    )
    .fetch_all(&app.pool)
    .await?;
    observed.postings = rows
        .into_iter()
        .map(
            |(posting_id, position, account, vendor_id, order_id, kind, debit, credit)| Posting {
                posting_id,
                position,
                account,
                vendor_id,
                order_id,
                kind,
                debit,
                credit,
            },
        )
        .collect();

    let vendors: Vec<String> = sqlx::query_scalar(
        "SELECT aggregate_id FROM events WHERE event_type = 'VendorRegistered'
          ORDER BY global_position",
    )
    .fetch_all(&app.pool)
    .await?;
    for vendor in vendors {
        let vendor_id = Uuid::parse_str(&vendor)?;
        let e = get(app, &admin, &format!("/v1/vendors/{vendor_id}/earnings")).await?;
        observed.earnings.insert(
            vendor_id,
            Earnings {
                gross: decimal(&e["gross"])?,
                platform_fees: decimal(&e["platform_fees"])?,
                net: decimal(&e["net"])?,
                pending: decimal(&e["pending"])?,
                available: decimal(&e["available"])?,
                paid_out: decimal(&e["paid_out"])?,
                damage_credits: decimal(&e["damage_credits"])?,
            },
        );
        let mut entries = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/v1/vendors/{vendor_id}/earnings/entries?limit=200");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = get(app, &admin, &path).await?;
            for item in page["items"].as_array().into_iter().flatten() {
                let mut posting = posting_of(item)?;
                posting.vendor_id = Some(vendor_id);
                entries.push(posting);
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        observed.vendor_entries.insert(vendor_id, entries);
    }

    let window = format!("from={WINDOW_FROM}&to={WINDOW_TO}");
    let s = get(app, &admin, &format!("/v1/analytics/summary?{window}")).await?;
    observed.summary = Summary {
        gmv: decimal(&s["gmv"])?,
        orders: s["orders"].as_i64().unwrap_or(-1),
        paid_orders: s["paid_orders"].as_i64().unwrap_or(-1),
        avg_order_value: decimal(&s["avg_order_value"])?,
        cancellation_rate: decimal(&s["cancellation_rate"])?,
        refunds: decimal(&s["refunds"])?,
        rental_days: decimal(&s["rental_days"])?,
        utilization: decimal(&s["utilization"])?,
        top_listings: s["top_listings"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                Ok((
                    uuid(&t["listing_id"])?,
                    decimal(&t["gmv"])?,
                    t["orders"].as_i64().unwrap_or(-1),
                ))
            })
            .collect::<anyhow::Result<_>>()?,
        payment_failures: s["payment_failures"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                (
                    f["reason"].as_str().unwrap_or_default().to_owned(),
                    f["count"].as_i64().unwrap_or(-1),
                )
            })
            .collect(),
    };
    let revenue = |query: &str| format!("/v1/analytics/revenue?{window}&{query}");
    observed.revenue = Revenue {
        day: buckets_of(&get(app, &admin, &revenue("granularity=day&group_by=none")).await?)?,
        week: buckets_of(&get(app, &admin, &revenue("granularity=week")).await?)?,
        month: buckets_of(&get(app, &admin, &revenue("granularity=month")).await?)?,
        by_vendor: buckets_of(&get(app, &admin, &revenue("group_by=vendor")).await?)?,
        by_category: buckets_of(&get(app, &admin, &revenue("group_by=category")).await?)?,
    };
    Ok(observed)
}

// ---------------------------------------------------------------------------
// Expecting: the log, read by hand
// ---------------------------------------------------------------------------

/// Half away from zero, to the cent (DESIGN.md "Domain").
pub fn cents(amount: Decimal) -> Decimal {
    let mut rounded = amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(2);
    rounded
}

#[derive(Clone, Debug)]
struct Line {
    line_id: Uuid,
    listing_id: Uuid,
    vendor_id: Uuid,
    rental: bool,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    quantity: i64,
    subtotal: Decimal,
    tax: Decimal,
    deposit: Decimal,
}

#[derive(Clone, Debug)]
struct Split {
    vendor_id: Uuid,
    subtotal: Decimal,
    fee: Decimal,
    net: Decimal,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Status {
    Placed,
    Confirmed,
    Cancelled,
}

#[derive(Clone, Debug)]
struct OrderFacts {
    placed_at: DateTime<Utc>,
    lines: Vec<Line>,
    vendors: Vec<Split>,
    tax: Decimal,
    deposit: Decimal,
    total: Decimal,
    status: Status,
    /// The payment is allocated to tax, deposits, fees and vendors.
    allocated: bool,
    refunded: Decimal,
    /// Vendors whose part was fulfilled, with the net the order said.
    fulfilled: BTreeMap<Uuid, Decimal>,
}

impl OrderFacts {
    fn subtotal(&self) -> Decimal {
        self.vendors.iter().map(|v| v.subtotal).sum()
    }
}

/// Per (position, account): debit and credit.
type Journal = BTreeMap<i64, BTreeMap<String, (Decimal, Decimal)>>;

/// What the log says the figures must be.
#[derive(Debug, Default)]
pub struct Expected {
    orders: BTreeMap<Uuid, OrderFacts>,
    /// The journal by the movements of the ledger's module comment.
    journal: Journal,
    vendors: BTreeSet<Uuid>,
    /// Σ net of fulfilled parts, per vendor (from the orders' events).
    fulfilled_net: BTreeMap<Uuid, Decimal>,
    /// Σ damage withheld on returned lines, per vendor (orders' events).
    damage_withheld: BTreeMap<Uuid, Decimal>,
    /// From the vendors' own events.
    made_available: BTreeMap<(Uuid, Uuid), Decimal>,
    damage_credited: BTreeMap<(Uuid, Uuid), Decimal>,
    payouts: BTreeMap<Uuid, Decimal>,
    /// Running available balance per vendor, by its own events.
    balance: BTreeMap<Uuid, Decimal>,
    captured: Decimal,
    refunds: Decimal,
    deposit_refunds: Decimal,
    /// Line id → (vendor, damage withheld) of returned lines.
    returns: BTreeMap<Uuid, (Uuid, Decimal)>,
    /// Listing id → (category, rental units, created at).
    listings: BTreeMap<Uuid, (String, Option<i64>, DateTime<Utc>)>,
    /// (recorded at, reason) of every failed payment.
    failures: Vec<(DateTime<Utc>, String)>,
    /// Inconsistencies inside the log itself.
    log_problems: Vec<Discrepancy>,
}

fn inner<'a>(event_type: &str, payload: &'a Value) -> &'a Value {
    payload.get(event_type).unwrap_or(payload)
}

fn field(value: &Value, name: &str) -> anyhow::Result<Decimal> {
    decimal(&value[name]).map_err(|e| anyhow::anyhow!("{name}: {e}"))
}

fn parse_order(payload: &Value) -> anyhow::Result<OrderFacts> {
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
        vendors,
        tax: field(priced, "tax")?,
        deposit: field(priced, "deposit")?,
        total: field(priced, "total")?,
        status: Status::Placed,
        allocated: false,
        refunded: Decimal::ZERO,
        fulfilled: BTreeMap::new(),
    })
}

impl Expected {
    fn post(&mut self, position: i64, lines: &[(String, Decimal, Decimal)]) {
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

    fn problem(&mut self, check: &str, subject: String, expected: String, observed: String) {
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
        let fee_rate = decimal(&rates["platform_fee_rate"]).unwrap_or_default();
        let subject = format!("order {order_id}");
        for v in &order.vendors {
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
                    self.post(position, &Self::allocation(&order));
                }
                let o = self.orders.get_mut(&order_id).expect("known order");
                o.allocated = true;
                o.status = Status::Confirmed;
            }
            "OrderCancelled" => {
                if order.allocated {
                    let reversal: Vec<_> = Self::allocation(&order)
                        .into_iter()
                        .map(|(a, d, c)| (a, c, d))
                        .collect();
                    self.post(position, &reversal);
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
                if deposit != Some(refunded + withheld) {
                    self.problem(
                        "return: deposit = refunded + withheld",
                        format!("order {order_id} line {line_id}"),
                        format!("{deposit:?}"),
                        format!("{refunded} + {withheld}"),
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
    ) -> anyhow::Result<()> {
        let zero = Decimal::ZERO;
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
                    &[(available, amount, zero), (CASH.to_owned(), zero, amount)],
                );
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
                "Vendor" => expected.apply_vendor(position, id, &event_type, payload)?,
                "Listing" | "Inventory" => {
                    expected.apply_listing(id, &aggregate_type, &event_type, payload, recorded_at)
                }
                _ => {}
            }
        }
        expected.cross_check_vendor_events();
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
        for (_, order) in self.paid_orders() {
            for v in order.vendors.iter().filter(|v| v.vendor_id == vendor_id) {
                e.gross += v.subtotal;
                e.platform_fees += v.fee;
                if !order.fulfilled.contains_key(&vendor_id) {
                    e.pending += v.net;
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
            - e.paid_out;
        e
    }

    /// Balance (debit − credit) of every account, from the business state
    /// at the end of the log (not from the movements).
    pub fn balances(&self) -> BTreeMap<String, Decimal> {
        let mut b: BTreeMap<String, Decimal> = BTreeMap::new();
        let payouts: Decimal = self.payouts.values().copied().sum();
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
            self.captured - self.refunds - self.deposit_refunds - payouts,
        );
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
    fn revenue(
        &self,
        bucket: impl Fn(DateTime<Utc>) -> DateTime<Utc>,
        key: impl Fn(&Line) -> Option<String>,
    ) -> Buckets {
        let mut out: BTreeMap<_, (Decimal, Decimal, BTreeSet<Uuid>)> = BTreeMap::new();
        for (order_id, order) in self.paid_orders() {
            for line in &order.lines {
                let split = order.vendors.iter().find(|v| v.vendor_id == line.vendor_id);
                let share = split
                    .filter(|v| !v.subtotal.is_zero())
                    .map(|v| v.fee * line.subtotal / v.subtotal)
                    .unwrap_or_default();
                let e = out.entry((bucket(order.placed_at), key(line))).or_default();
                e.0 += line.subtotal;
                e.1 += share;
                e.2.insert(*order_id);
            }
        }
        out
    }
}

fn day_of(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(t.year(), t.month(), t.day(), 0, 0, 0)
        .single()
        .expect("a day")
}

fn week_of(t: DateTime<Utc>) -> DateTime<Utc> {
    day_of(t) - Duration::days(i64::from(t.weekday().num_days_from_monday()))
}

fn month_of(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
        .single()
        .expect("a month")
}

fn seconds(d: Duration) -> Decimal {
    Decimal::from(d.num_microseconds().unwrap_or(i64::MAX)) / Decimal::from(1_000_000)
}

// ---------------------------------------------------------------------------
// Comparing
// ---------------------------------------------------------------------------

struct Report(Vec<Discrepancy>);

impl Report {
    fn same<T: PartialEq + fmt::Debug>(
        &mut self,
        check: &str,
        subject: impl fmt::Display,
        expected: T,
        observed: T,
    ) {
        if expected != observed {
            self.0.push(Discrepancy {
                check: check.to_owned(),
                subject: subject.to_string(),
                expected: format!("{expected:?}"),
                observed: format!("{observed:?}"),
            });
        }
    }

    /// A ratio the API rounds to `dp` places: either midpoint rule is
    /// accepted (DESIGN.md fixes rounding for money only).
    fn ratio(&mut self, check: &str, exact: Decimal, dp: u32, observed: Decimal) {
        let away = exact.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero);
        let even = exact.round_dp_with_strategy(dp, RoundingStrategy::MidpointNearestEven);
        if observed != away && observed != even {
            self.same(check, "all time", away, observed);
        }
    }
}

/// Compares what the ledger answered with what the log says; every
/// disagreement, to the cent. Empty when all is well.
pub async fn check(pool: &PgPool, observed: &Observed) -> anyhow::Result<Vec<Discrepancy>> {
    let expected = Expected::from_log(pool).await?;
    Ok(compare(&expected, observed))
}

/// [`check`] with the expectations already read.
pub fn compare(expected: &Expected, observed: &Observed) -> Vec<Discrepancy> {
    let mut r = Report(expected.log_problems.clone());
    check_journal(expected, observed, &mut r);
    check_accounts(expected, observed, &mut r);
    check_earnings(expected, observed, &mut r);
    check_conservation(expected, observed, &mut r);
    check_summary(expected, observed, &mut r);
    check_revenue(expected, observed, &mut r);
    r.0
}

fn net_by_position(postings: &[Posting]) -> Journal {
    let mut journal: Journal = BTreeMap::new();
    for p in postings {
        let e = journal
            .entry(p.position)
            .or_default()
            .entry(p.account.clone())
            .or_default();
        e.0 += p.debit;
        e.1 += p.credit;
    }
    journal
}

/// The journal: balanced overall and within every entry, and entry by
/// entry the movements the log calls for.
fn check_journal(expected: &Expected, observed: &Observed, r: &mut Report) {
    let debit: Decimal = observed.postings.iter().map(|p| p.debit).sum();
    let credit: Decimal = observed.postings.iter().map(|p| p.credit).sum();
    r.same("journal: Σ debit = Σ credit", "all postings", debit, credit);
    let journal = net_by_position(&observed.postings);
    for (position, accounts) in &journal {
        let d: Decimal = accounts.values().map(|a| a.0).sum();
        let c: Decimal = accounts.values().map(|a| a.1).sum();
        r.same(
            "journal: entry balanced (Σ debit = Σ credit)",
            format!("position {position}"),
            d,
            c,
        );
    }
    let positions: BTreeSet<i64> = journal
        .keys()
        .chain(expected.journal.keys())
        .copied()
        .collect();
    let empty = BTreeMap::new();
    for position in positions {
        let want = expected.journal.get(&position).unwrap_or(&empty);
        let got = journal.get(&position).unwrap_or(&empty);
        let accounts: BTreeSet<&String> = want.keys().chain(got.keys()).collect();
        for account in accounts {
            r.same(
                "journal: entry lines (debit, credit) as the event calls for",
                format!("position {position} account {account}"),
                want.get(account).copied().unwrap_or_default(),
                got.get(account).copied().unwrap_or_default(),
            );
        }
    }
}

/// The trial balance: totals, per-account figures against the journal,
/// the movements and the business state.
fn check_accounts(expected: &Expected, observed: &Observed, r: &mut Report) {
    r.same(
        "trial balance: total debit = total credit",
        "totals",
        observed.total_debit,
        observed.total_credit,
    );
    let debit: Decimal = observed.accounts.values().map(|a| a.debit).sum();
    let credit: Decimal = observed.accounts.values().map(|a| a.credit).sum();
    r.same(
        "trial balance: totals = Σ accounts",
        "totals",
        (debit, credit),
        (observed.total_debit, observed.total_credit),
    );
    let mut from_postings: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
    for p in &observed.postings {
        let e = from_postings.entry(p.account.clone()).or_default();
        e.0 += p.debit;
        e.1 += p.credit;
    }
    let totals = expected.account_totals();
    let balances = expected.balances();
    let accounts: BTreeSet<&String> = observed
        .accounts
        .keys()
        .chain(from_postings.keys())
        .chain(totals.keys())
        .chain(balances.keys())
        .collect();
    for account in accounts {
        let got = observed.accounts.get(account).copied().unwrap_or_default();
        r.same(
            "trial balance: balance = debit − credit",
            account,
            got.debit - got.credit,
            got.balance,
        );
        r.same(
            "trial balance: (debit, credit) = Σ journal lines",
            account,
            from_postings.get(account).copied().unwrap_or_default(),
            (got.debit, got.credit),
        );
        r.same(
            "trial balance: (debit, credit) = Σ movements of the log",
            account,
            totals.get(account).copied().unwrap_or_default(),
            (got.debit, got.credit),
        );
        r.same(
            "trial balance: balance = what the log says is owed or held",
            account,
            balances.get(account).copied().unwrap_or_default(),
            got.balance,
        );
    }
}

/// Every vendor's earnings and entries.
fn check_earnings(expected: &Expected, observed: &Observed, r: &mut Report) {
    let totals = expected.account_totals();
    let vendors: BTreeSet<&Uuid> = expected
        .vendors
        .iter()
        .chain(observed.earnings.keys())
        .collect();
    for vendor_id in vendors {
        let want = expected.earnings(*vendor_id);
        let Some(got) = observed.earnings.get(vendor_id) else {
            r.same("earnings: every vendor answers", vendor_id, true, false);
            continue;
        };
        let subject = format!("vendor {vendor_id}");
        r.same("earnings.gross", &subject, want.gross, got.gross);
        r.same(
            "earnings.platform_fees",
            &subject,
            want.platform_fees,
            got.platform_fees,
        );
        r.same("earnings.net", &subject, want.net, got.net);
        r.same("earnings.pending", &subject, want.pending, got.pending);
        r.same(
            "earnings.available",
            &subject,
            want.available,
            got.available,
        );
        r.same("earnings.paid_out", &subject, want.paid_out, got.paid_out);
        r.same(
            "earnings.damage_credits",
            &subject,
            want.damage_credits,
            got.damage_credits,
        );
        r.same(
            "earnings: net = gross − platform_fees",
            &subject,
            got.gross - got.platform_fees,
            got.net,
        );

        let entries = observed
            .vendor_entries
            .get(vendor_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let own = [vendor_pending(*vendor_id), vendor_available(*vendor_id)];
        for account in &own {
            let sum = entries
                .iter()
                .filter(|p| &p.account == account)
                .fold((Decimal::ZERO, Decimal::ZERO), |s, p| {
                    (s.0 + p.debit, s.1 + p.credit)
                });
            r.same(
                "earnings entries: Σ lines of the vendor's account",
                account,
                totals.get(account).copied().unwrap_or_default(),
                sum,
            );
        }
        for p in entries {
            let foreign = p.account.starts_with("vendor_") && !own.contains(&p.account);
            r.same(
                "earnings entries: only the vendor's own accounts",
                format!("{subject} posting {}", p.posting_id),
                false,
                foreign,
            );
        }
    }
}

/// Invariant 2: nothing is lost or created.
fn check_conservation(expected: &Expected, observed: &Observed, r: &mut Report) {
    let nets: Decimal = observed.earnings.values().map(|e| e.net).sum();
    let fees: Decimal = observed.earnings.values().map(|e| e.platform_fees).sum();
    r.same(
        "conservation: Σ vendor nets + Σ fees = Σ subtotals of paid, unrefunded orders",
        "all vendors",
        expected.paid_subtotal(),
        nets + fees,
    );
    let owed = |account: &str| {
        -observed
            .accounts
            .get(account)
            .map(|a| a.balance)
            .unwrap_or_default()
    };
    let payables: Decimal = observed
        .earnings
        .values()
        .map(|e| e.pending + e.available)
        .sum();
    let paid_out: Decimal = observed.earnings.values().map(|e| e.paid_out).sum();
    let unallocated = owed(CUSTOMER_FUNDS);
    r.same(
        "conservation: captured − refunds (incl. deposits) = payables + paid out + fees + tax + deposits held + unallocated",
        "all money",
        expected.captured - expected.refunds - expected.deposit_refunds,
        payables
            + paid_out
            + owed(PLATFORM_FEES)
            + owed(TAX_PAYABLE)
            + owed(DEPOSITS_HELD)
            + unallocated,
    );
    r.same(
        "conservation: no customer funds left unallocated once settled",
        CUSTOMER_FUNDS,
        Decimal::ZERO,
        unallocated,
    );
    r.same(
        "conservation: platform fees account = Σ vendors' fees",
        PLATFORM_FEES,
        fees,
        owed(PLATFORM_FEES),
    );
}

fn window() -> (DateTime<Utc>, DateTime<Utc>) {
    let parse = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .expect("a window bound")
            .with_timezone(&Utc)
    };
    (parse(WINDOW_FROM), parse(WINDOW_TO))
}

/// The summary over the window, from the log.
fn check_summary(expected: &Expected, observed: &Observed, r: &mut Report) {
    let (from, to) = window();
    let s = &observed.summary;
    let in_window = |t: DateTime<Utc>| t >= from && t < to;
    let placed: Vec<(&Uuid, &OrderFacts)> = expected
        .orders
        .iter()
        .filter(|(_, o)| in_window(o.placed_at))
        .collect();
    let paid: Vec<(&Uuid, &OrderFacts)> = placed
        .iter()
        .copied()
        .filter(|(_, o)| o.status == Status::Confirmed)
        .collect();
    let gmv: Decimal = paid.iter().map(|(_, o)| o.subtotal()).sum();
    let cancelled = placed
        .iter()
        .filter(|(_, o)| o.status == Status::Cancelled)
        .count();
    r.same("summary.gmv", "all time", gmv, s.gmv);
    r.same("summary.orders", "all time", placed.len() as i64, s.orders);
    r.same(
        "summary.paid_orders",
        "all time",
        paid.len() as i64,
        s.paid_orders,
    );
    let avg = if paid.is_empty() {
        cents(Decimal::ZERO)
    } else {
        cents(gmv / Decimal::from(paid.len()))
    };
    r.same(
        "summary.avg_order_value",
        "all time",
        avg,
        s.avg_order_value,
    );
    if !placed.is_empty() {
        r.ratio(
            "summary.cancellation_rate",
            Decimal::from(cancelled) / Decimal::from(placed.len()),
            4,
            s.cancellation_rate,
        );
    }
    let refunds: Decimal = placed.iter().map(|(_, o)| o.refunded).sum();
    r.same("summary.refunds", "all time", refunds, s.refunds);

    let mut booked = Decimal::ZERO;
    for (_, order) in &paid {
        for line in order.lines.iter().filter(|l| l.rental) {
            if let (Some(start), Some(end)) = (line.start, line.end) {
                let overlap = end.min(to) - start.max(from);
                if overlap > Duration::zero() {
                    booked += seconds(overlap) * Decimal::from(line.quantity);
                }
            }
        }
    }
    r.ratio(
        "summary.rental_days",
        booked / Decimal::from(86_400),
        2,
        s.rental_days,
    );
    let offered: Decimal = expected
        .listings
        .values()
        .filter_map(|(_, units, created)| units.map(|u| (u, *created)))
        .filter(|(_, created)| *created < to)
        .map(|(units, created)| Decimal::from(units) * seconds(to - created.max(from)))
        .sum();
    if !offered.is_zero() {
        r.ratio("summary.utilization", booked / offered, 4, s.utilization);
    }

    let mut by_listing: BTreeMap<Uuid, (Decimal, BTreeSet<Uuid>)> = BTreeMap::new();
    for (order_id, order) in &paid {
        for line in &order.lines {
            let e = by_listing.entry(line.listing_id).or_default();
            e.0 += line.subtotal;
            e.1.insert(**order_id);
        }
    }
    let mut top: Vec<(Uuid, Decimal, i64)> = by_listing
        .into_iter()
        .map(|(id, (gmv, orders))| (id, gmv, orders.len() as i64))
        .collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top.truncate(10);
    r.same(
        "summary.top_listings",
        "all time",
        top,
        s.top_listings.clone(),
    );

    let mut failures: BTreeMap<String, i64> = BTreeMap::new();
    for (at, reason) in &expected.failures {
        if in_window(*at) {
            *failures.entry(reason.clone()).or_default() += 1;
        }
    }
    r.same(
        "summary.payment_failures",
        "all time",
        failures,
        s.payment_failures.clone(),
    );
}

type BucketKey = (DateTime<Utc>, Option<String>);
/// GMV, exact fee shares and the orders of each bucket.
type Buckets = BTreeMap<BucketKey, (Decimal, Decimal, BTreeSet<Uuid>)>;

fn compare_buckets(check: &str, want: Buckets, got: &[Bucket], with_fees: bool, r: &mut Report) {
    let got: BTreeMap<BucketKey, (Decimal, Decimal, i64)> = got
        .iter()
        .map(|b| ((b.start, b.key.clone()), (b.gmv, b.platform_fees, b.orders)))
        .collect();
    let keys: BTreeSet<&BucketKey> = want.keys().chain(got.keys()).collect();
    for key in keys {
        let w = want
            .get(key)
            .map(|(gmv, fees, orders)| {
                (
                    *gmv,
                    if with_fees {
                        cents(*fees)
                    } else {
                        Decimal::ZERO
                    },
                    orders.len() as i64,
                )
            })
            .unwrap_or_default();
        let g = got
            .get(key)
            .map(|(gmv, fees, orders)| {
                (*gmv, if with_fees { *fees } else { Decimal::ZERO }, *orders)
            })
            .unwrap_or_default();
        r.same(
            check,
            format!("{} {}", key.0.to_rfc3339(), key.1.as_deref().unwrap_or("-")),
            w,
            g,
        );
    }
}

/// Revenue buckets: by day, week and month, per vendor and per category,
/// summing to the summary and to the vendors' earnings.
fn check_revenue(expected: &Expected, observed: &Observed, r: &mut Report) {
    let rev = &observed.revenue;
    compare_buckets(
        "revenue by day (gmv, fees, orders)",
        expected.revenue(day_of, |_| None),
        &rev.day,
        true,
        r,
    );
    compare_buckets(
        "revenue by week (gmv, fees, orders)",
        expected.revenue(week_of, |_| None),
        &rev.week,
        true,
        r,
    );
    compare_buckets(
        "revenue by month (gmv, fees, orders)",
        expected.revenue(month_of, |_| None),
        &rev.month,
        true,
        r,
    );
    compare_buckets(
        "revenue by day and vendor (gmv, fees, orders)",
        expected.revenue(day_of, |l| Some(l.vendor_id.to_string())),
        &rev.by_vendor,
        true,
        r,
    );
    let category = |l: &Line| {
        Some(
            expected
                .listings
                .get(&l.listing_id)
                .map(|c| c.0.clone())
                .unwrap_or_default(),
        )
    };
    compare_buckets(
        "revenue by day and category (gmv, orders)",
        expected.revenue(day_of, category),
        &rev.by_category,
        false,
        r,
    );

    for (name, buckets) in [
        ("day", &rev.day),
        ("week", &rev.week),
        ("month", &rev.month),
    ] {
        let sum: Decimal = buckets.iter().map(|b| b.gmv).sum();
        r.same(
            "revenue: Σ buckets = summary gmv",
            name,
            observed.summary.gmv,
            sum,
        );
    }
    for b in &rev.week {
        r.same(
            "revenue: a week starts on Monday 00:00",
            b.start.to_rfc3339(),
            (chrono::Weekday::Mon, 0, 0),
            (b.start.weekday(), b.start.hour(), b.start.minute()),
        );
    }
    for b in &rev.month {
        r.same(
            "revenue: a month starts on the 1st 00:00",
            b.start.to_rfc3339(),
            (1, 0),
            (b.start.day(), b.start.hour()),
        );
    }
    let mut per_vendor: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
    for b in &rev.by_vendor {
        let e = per_vendor
            .entry(b.key.clone().unwrap_or_default())
            .or_default();
        e.0 += b.gmv;
        e.1 += b.platform_fees;
    }
    for (vendor_id, e) in &observed.earnings {
        r.same(
            "revenue: Σ vendor buckets = the vendor's (gross, fees)",
            vendor_id,
            (e.gross, e.platform_fees),
            per_vendor
                .remove(&vendor_id.to_string())
                .unwrap_or_default(),
        );
    }
    for (key, sums) in per_vendor {
        r.same(
            "revenue: vendor buckets name known vendors",
            key,
            (Decimal::ZERO, Decimal::ZERO),
            sums,
        );
    }
}

// ---------------------------------------------------------------------------
// Settling
// ---------------------------------------------------------------------------

/// Waits until every projector and the policies stand at the head of the
/// log and the head stays put (no policy has anything left to do); returns
/// the head. Fails after `timeout`.
pub async fn settle(app: &TestApp, timeout: std::time::Duration) -> anyhow::Result<i64> {
    let admin = app.admin();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_head = -1;
    loop {
        let list = get(app, &admin, "/v1/projections").await?;
        let rows = list.as_array().cloned().unwrap_or_default();
        let head = rows
            .iter()
            .filter_map(|p| p["head"].as_i64())
            .max()
            .unwrap_or(0);
        let caught_up = !rows.is_empty()
            && rows
                .iter()
                .all(|p| p["position"].as_i64() == Some(head) && p["lag_events"] == 0);
        if caught_up && head == last_head {
            return Ok(head);
        }
        last_head = if caught_up { head } else { -1 };
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the read models did not settle: {list}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
