//! The Order aggregate: one customer, lines from many vendors, payment and
//! fulfilment.

pub mod placement;
pub mod pricing;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{DomainError, FieldError};
use crate::listing::ListingKind;
use crate::money::{from_minor_units, is_valid_amount, round_cents, to_minor_units, Rates};
use pricing::{LineInput, PricedLine, PricedOrder};

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    #[default]
    Placed,
    Confirmed,
    Completed,
    Cancelled,
    Refunded,
}

/// Why an order was cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelCause {
    /// The customer (or an admin on their behalf) asked for it.
    Customer,
    /// Its holds lapsed before it was paid.
    Expiry,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartStatus {
    #[default]
    Pending,
    InProgress,
    Fulfilled,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineStatus {
    #[default]
    Pending,
    Shipped,
    Delivered,
    PickedUp,
    Returned,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PaymentOutcome {
    Succeeded,
    Failed { reason: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrderCommand {
    Place {
        order_id: Uuid,
        customer_id: String,
        currency: String,
        lines: Vec<LineInput>,
        rates: Rates,
        hold_expires_at: DateTime<Utc>,
        placed_at: DateTime<Utc>,
    },
    RecordPayment {
        /// The payment provider's event id (idempotency key).
        payment_id: String,
        intent_id: String,
        amount_minor: i64,
        currency: String,
        outcome: PaymentOutcome,
        received_at: DateTime<Utc>,
    },
    Reconfirm {
        at: DateTime<Utc>,
    },
    RefundLapsed {
        at: DateTime<Utc>,
    },
    Cancel {
        reason: Option<String>,
        at: DateTime<Utc>,
    },
    ExpireUnpaid {
        at: DateTime<Utc>,
    },
    ShipPart {
        vendor_id: Uuid,
        at: DateTime<Utc>,
    },
    DeliverPart {
        vendor_id: Uuid,
        at: DateTime<Utc>,
    },
    PickUpLine {
        line_id: Uuid,
        at: DateTime<Utc>,
    },
    ReturnLine {
        line_id: Uuid,
        returned_at: DateTime<Utc>,
        damage_withheld: Decimal,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrderEvent {
    OrderPlaced {
        order_id: Uuid,
        customer_id: String,
        currency: String,
        priced: PricedOrder,
        rates: Rates,
        hold_expires_at: DateTime<Utc>,
        placed_at: DateTime<Utc>,
    },
    PaymentFailed {
        payment_id: String,
        intent_id: String,
        reason: String,
    },
    PaymentAmountMismatch {
        payment_id: String,
        intent_id: String,
        expected_minor: i64,
        received_minor: i64,
        currency: String,
    },
    PaymentCaptured {
        payment_id: String,
        intent_id: String,
        amount: Decimal,
    },
    OrderConfirmed {
        confirmed_at: DateTime<Utc>,
    },
    OrderReconfirmed {
        at: DateTime<Utc>,
    },
    RefundIssued {
        amount: Decimal,
        reason: String,
    },
    /// Schema 2.0 (see [`crate::upcast`]): `cause` replaced 1.0's
    /// `by_expiry: bool`.
    OrderCancelled {
        reason: Option<String>,
        cause: CancelCause,
        at: DateTime<Utc>,
    },
    PartShipped {
        vendor_id: Uuid,
        at: DateTime<Utc>,
    },
    PartDelivered {
        vendor_id: Uuid,
        at: DateTime<Utc>,
    },
    LinePickedUp {
        line_id: Uuid,
        at: DateTime<Utc>,
    },
    LineReturned {
        line_id: Uuid,
        vendor_id: Uuid,
        returned_at: DateTime<Utc>,
        deposit_refunded: Decimal,
        damage_withheld: Decimal,
    },
    VendorPartFulfilled {
        vendor_id: Uuid,
        net: Decimal,
    },
    OrderCompleted {
        at: DateTime<Utc>,
    },
}

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> String {
        match self {
            OrderEvent::OrderPlaced { .. } => "OrderPlaced",
            OrderEvent::PaymentFailed { .. } => "PaymentFailed",
            OrderEvent::PaymentAmountMismatch { .. } => "PaymentAmountMismatch",
            OrderEvent::PaymentCaptured { .. } => "PaymentCaptured",
            OrderEvent::OrderConfirmed { .. } => "OrderConfirmed",
            OrderEvent::OrderReconfirmed { .. } => "OrderReconfirmed",
            OrderEvent::RefundIssued { .. } => "RefundIssued",
            OrderEvent::OrderCancelled { .. } => "OrderCancelled",
            OrderEvent::PartShipped { .. } => "PartShipped",
            OrderEvent::PartDelivered { .. } => "PartDelivered",
            OrderEvent::LinePickedUp { .. } => "LinePickedUp",
            OrderEvent::LineReturned { .. } => "LineReturned",
            OrderEvent::VendorPartFulfilled { .. } => "VendorPartFulfilled",
            OrderEvent::OrderCompleted { .. } => "OrderCompleted",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        match self {
            OrderEvent::OrderCancelled { .. } => crate::upcast::ORDER_CANCELLED_VERSION,
            _ => crate::EVENT_VERSION,
        }
        .to_string()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Order {
    order_id: Option<Uuid>,
    customer_id: String,
    currency: String,
    priced: Option<PricedOrder>,
    rates: Option<Rates>,
    hold_expires_at: Option<DateTime<Utc>>,
    placed_at: Option<DateTime<Utc>>,
    status: OrderStatus,
    cancelled_by_expiry: bool,
    cancel_reason: Option<String>,
    captured: Decimal,
    refunded: Decimal,
    payments_seen: BTreeSet<String>,
    line_status: BTreeMap<Uuid, LineStatus>,
    fulfilled_vendors: BTreeSet<Uuid>,
    #[serde(default)]
    returns: BTreeMap<Uuid, LineReturn>,
}

/// How a rental line came back: when, and how its deposit was settled.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LineReturn {
    pub returned_at: DateTime<Utc>,
    pub deposit_refunded: Decimal,
    pub damage_withheld: Decimal,
}

impl Order {
    /// The order exists (OrderPlaced was recorded), whatever its status.
    pub fn is_placed(&self) -> bool {
        self.order_id.is_some()
    }
    pub fn order_id(&self) -> Option<Uuid> {
        self.order_id
    }
    pub fn status(&self) -> OrderStatus {
        self.status
    }
    pub fn customer_id(&self) -> &str {
        &self.customer_id
    }
    pub fn currency(&self) -> &str {
        &self.currency
    }
    pub fn rates(&self) -> Option<Rates> {
        self.rates
    }
    pub fn placed_at(&self) -> Option<DateTime<Utc>> {
        self.placed_at
    }
    pub fn hold_expires_at(&self) -> Option<DateTime<Utc>> {
        self.hold_expires_at
    }
    pub fn priced(&self) -> Option<&PricedOrder> {
        self.priced.as_ref()
    }
    /// The order total (zero before placement).
    pub fn total(&self) -> Decimal {
        self.priced.as_ref().map_or(Decimal::ZERO, |p| p.total)
    }
    /// `(listing_id, hold_id)` of every line, in line order.
    pub fn hold_ids(&self) -> Vec<(Uuid, Uuid)> {
        self.lines().map(|l| (l.listing_id, l.hold_id)).collect()
    }
    /// Vendors in order of first appearance.
    pub fn vendor_ids(&self) -> Vec<Uuid> {
        self.priced
            .as_ref()
            .map(|p| p.vendors.iter().map(|v| v.vendor_id).collect())
            .unwrap_or_default()
    }
    pub fn lines(&self) -> impl Iterator<Item = &PricedLine> {
        self.priced.iter().flat_map(|p| p.lines.iter())
    }
    pub fn line(&self, line_id: Uuid) -> Option<&PricedLine> {
        self.lines().find(|l| l.line_id == line_id)
    }
    pub fn line_vendor(&self, line_id: Uuid) -> Option<Uuid> {
        self.line(line_id).map(|l| l.vendor_id)
    }
    pub fn line_status(&self, line_id: Uuid) -> Option<LineStatus> {
        self.line_status.get(&line_id).copied()
    }
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
    /// The cancellation (if still cancelled) was by hold expiry.
    pub fn cancelled_by_expiry(&self) -> bool {
        self.cancelled_by_expiry
    }
    pub fn cancel_reason(&self) -> Option<&str> {
        self.cancel_reason.as_deref()
    }
    /// Σ captured payments (refunds not deducted).
    pub fn captured_amount(&self) -> Decimal {
        self.captured
    }
    pub fn refunded_amount(&self) -> Decimal {
        self.refunded
    }
    /// Captured minus refunded.
    pub fn net_paid(&self) -> Decimal {
        self.captured - self.refunded
    }
    /// The recorded return of a rental line, once it came back.
    pub fn line_return(&self, line_id: Uuid) -> Option<&LineReturn> {
        self.returns.get(&line_id)
    }
    pub fn has_seen_payment(&self, payment_id: &str) -> bool {
        self.payments_seen.contains(payment_id)
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
    fn with_completion(&self, events: Vec<OrderEvent>, at: DateTime<Utc>) -> Vec<OrderEvent> {
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
                let e = OrderEvent::VendorPartFulfilled {
                    vendor_id: v.vendor_id,
                    net: v.net,
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
            out.push(OrderEvent::OrderCompleted { at });
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

    #[allow(clippy::too_many_arguments)]
    fn place(
        &self,
        order_id: Uuid,
        customer_id: String,
        currency: String,
        lines: Vec<LineInput>,
        rates: Rates,
        hold_expires_at: DateTime<Utc>,
        placed_at: DateTime<Utc>,
    ) -> Result<Vec<OrderEvent>, DomainError> {
        if self.is_placed() {
            return Err(DomainError::AlreadyExists { what: "order" });
        }
        let mut errors = Vec::new();
        let customer_id = customer_id.trim().to_string();
        if customer_id.is_empty() {
            errors.push(FieldError::new("customer_id", "must not be empty"));
        }
        let currency = currency.trim().to_uppercase();
        if currency.is_empty() {
            errors.push(FieldError::new("currency", "must not be empty"));
        }
        let priced = placement::check_placement(&lines, rates, placed_at);
        if let Err(DomainError::Validation { errors: found }) = &priced {
            errors.extend(found.iter().cloned());
        }
        DomainError::check(errors)?;
        let priced = priced?;
        Ok(vec![OrderEvent::OrderPlaced {
            order_id,
            customer_id,
            currency,
            priced,
            rates,
            hold_expires_at,
            placed_at,
        }])
    }

    fn decide(&self, command: OrderCommand) -> Result<Vec<OrderEvent>, DomainError> {
        use OrderCommand as C;
        use OrderEvent as E;
        if let C::Place {
            order_id,
            customer_id,
            currency,
            lines,
            rates,
            hold_expires_at,
            placed_at,
        } = command
        {
            return self.place(
                order_id,
                customer_id,
                currency,
                lines,
                rates,
                hold_expires_at,
                placed_at,
            );
        }
        if !self.is_placed() {
            return Err(DomainError::not_found("order"));
        }
        match command {
            C::Place { .. } => unreachable!("handled above"),
            C::RecordPayment {
                payment_id,
                intent_id,
                amount_minor,
                currency,
                outcome,
                received_at,
            } => {
                if self.payments_seen.contains(&payment_id) {
                    return Ok(vec![]);
                }
                if let PaymentOutcome::Failed { reason } = outcome {
                    return Ok(vec![E::PaymentFailed {
                        payment_id,
                        intent_id,
                        reason,
                    }]);
                }
                let expected_minor = to_minor_units(self.total()).unwrap_or(i64::MAX);
                if amount_minor != expected_minor
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
                    payment_id,
                    intent_id,
                    amount,
                };
                Ok(match self.status {
                    OrderStatus::Placed => vec![
                        captured,
                        E::OrderConfirmed {
                            confirmed_at: received_at,
                        },
                    ],
                    // Paid after expiry: the caller re-holds, then issues
                    // Reconfirm or RefundLapsed.
                    OrderStatus::Cancelled
                        if self.cancelled_by_expiry && self.net_paid() <= Decimal::ZERO =>
                    {
                        vec![captured]
                    }
                    // Paid after the customer cancelled: refunded at once.
                    OrderStatus::Cancelled if self.net_paid() <= Decimal::ZERO => vec![
                        captured,
                        E::RefundIssued {
                            amount,
                            reason: "order cancelled".into(),
                        },
                    ],
                    // A second payment for an order already paid.
                    _ => vec![
                        captured,
                        E::RefundIssued {
                            amount,
                            reason: "duplicate payment".into(),
                        },
                    ],
                })
            }
            C::Reconfirm { at } => match self.status {
                OrderStatus::Confirmed | OrderStatus::Completed => Ok(vec![]),
                OrderStatus::Cancelled
                    if self.cancelled_by_expiry && self.net_paid() >= self.total() =>
                {
                    Ok(vec![E::OrderReconfirmed { at }])
                }
                OrderStatus::Cancelled if self.cancelled_by_expiry => Err(
                    DomainError::invalid_state("no captured payment covers the order"),
                ),
                s => Err(DomainError::invalid_state(format!(
                    "an order that is {} cannot be reconfirmed",
                    status_name(s)
                ))),
            },
            C::RefundLapsed { at: _ } => match self.status {
                OrderStatus::Refunded => Ok(vec![]),
                OrderStatus::Cancelled if self.net_paid() > Decimal::ZERO => {
                    Ok(vec![E::RefundIssued {
                        amount: self.net_paid(),
                        reason: "units no longer available".into(),
                    }])
                }
                OrderStatus::Cancelled => Err(DomainError::invalid_state(
                    "the order has no captured payment to refund",
                )),
                s => Err(DomainError::invalid_state(format!(
                    "an order that is {} cannot be refunded as lapsed",
                    status_name(s)
                ))),
            },
            C::Cancel { reason, at } => match self.status {
                OrderStatus::Placed => Ok(vec![E::OrderCancelled {
                    reason,
                    cause: CancelCause::Customer,
                    at,
                }]),
                OrderStatus::Confirmed => {
                    if self.fulfilment_started() {
                        return Err(DomainError::invalid_state("fulfilment has started"));
                    }
                    let mut events = vec![E::OrderCancelled {
                        reason: reason.clone(),
                        cause: CancelCause::Customer,
                        at,
                    }];
                    if self.net_paid() > Decimal::ZERO {
                        events.push(E::RefundIssued {
                            amount: self.net_paid(),
                            reason: reason.unwrap_or_else(|| "order cancelled".into()),
                        });
                    }
                    Ok(events)
                }
                OrderStatus::Cancelled | OrderStatus::Refunded => Ok(vec![]),
                OrderStatus::Completed => Err(DomainError::invalid_state(
                    "a completed order cannot be cancelled",
                )),
            },
            C::ExpireUnpaid { at } => match self.status {
                OrderStatus::Placed => match self.hold_expires_at {
                    Some(exp) if exp <= at => Ok(vec![E::OrderCancelled {
                        reason: Some("hold expired".into()),
                        cause: CancelCause::Expiry,
                        at,
                    }]),
                    _ => Err(DomainError::invalid_state("the hold has not expired yet")),
                },
                _ => Ok(vec![]),
            },
            C::ShipPart { vendor_id, at } => {
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
            C::DeliverPart { vendor_id, at } => {
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
            C::PickUpLine { line_id, at } => {
                self.rental_line(line_id)?;
                if self.line_status(line_id) != Some(LineStatus::Pending) {
                    return Ok(vec![]);
                }
                self.require_confirmed()?;
                Ok(vec![E::LinePickedUp { line_id, at }])
            }
            C::ReturnLine {
                line_id,
                returned_at,
                damage_withheld,
            } => {
                let line = self.rental_line(line_id)?;
                if self.line_status(line_id) == Some(LineStatus::Returned) {
                    return Ok(vec![]);
                }
                if !is_valid_amount(damage_withheld) || damage_withheld > line.deposit {
                    return Err(DomainError::invalid(
                        "damage_withheld",
                        format!(
                            "must be a non-negative amount with at most 2 decimal places, at most the deposit {}",
                            line.deposit
                        ),
                    ));
                }
                self.require_confirmed()?;
                if self.line_status(line_id) != Some(LineStatus::PickedUp) {
                    return Err(DomainError::invalid_state(
                        "the line has not been picked up",
                    ));
                }
                Ok(self.with_completion(
                    vec![E::LineReturned {
                        line_id,
                        vendor_id: line.vendor_id,
                        returned_at,
                        deposit_refunded: round_cents(line.deposit - damage_withheld),
                        damage_withheld: round_cents(damage_withheld),
                    }],
                    returned_at,
                ))
            }
        }
    }
}

fn status_name(s: OrderStatus) -> &'static str {
    match s {
        OrderStatus::Placed => "placed",
        OrderStatus::Confirmed => "confirmed",
        OrderStatus::Completed => "completed",
        OrderStatus::Cancelled => "cancelled",
        OrderStatus::Refunded => "refunded",
    }
}

impl Aggregate for Order {
    const TYPE: &'static str = "Order";
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = DomainError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _service: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use OrderEvent as E;
        match event {
            E::OrderPlaced {
                order_id,
                customer_id,
                currency,
                priced,
                rates,
                hold_expires_at,
                placed_at,
            } => {
                self.order_id = Some(order_id);
                self.customer_id = customer_id;
                self.currency = currency;
                self.line_status = priced
                    .lines
                    .iter()
                    .map(|l| (l.line_id, LineStatus::Pending))
                    .collect();
                self.priced = Some(priced);
                self.rates = Some(rates);
                self.hold_expires_at = Some(hold_expires_at);
                self.placed_at = Some(placed_at);
                self.status = OrderStatus::Placed;
            }
            E::PaymentFailed { payment_id, .. } | E::PaymentAmountMismatch { payment_id, .. } => {
                self.payments_seen.insert(payment_id);
            }
            E::PaymentCaptured {
                payment_id, amount, ..
            } => {
                self.payments_seen.insert(payment_id);
                self.captured += amount;
            }
            E::OrderConfirmed { .. } => self.status = OrderStatus::Confirmed,
            E::OrderReconfirmed { .. } => {
                self.status = OrderStatus::Confirmed;
                self.cancelled_by_expiry = false;
                self.cancel_reason = None;
            }
            E::RefundIssued { amount, .. } => {
                self.refunded += amount;
                if self.status == OrderStatus::Cancelled {
                    self.status = OrderStatus::Refunded;
                }
            }
            E::OrderCancelled { reason, cause, .. } => {
                self.status = OrderStatus::Cancelled;
                self.cancelled_by_expiry = cause == CancelCause::Expiry;
                self.cancel_reason = reason;
            }
            E::PartShipped { vendor_id, .. } => {
                self.set_sale_lines(vendor_id, LineStatus::Pending, LineStatus::Shipped)
            }
            E::PartDelivered { vendor_id, .. } => {
                self.set_sale_lines(vendor_id, LineStatus::Shipped, LineStatus::Delivered)
            }
            E::LinePickedUp { line_id, .. } => {
                self.line_status.insert(line_id, LineStatus::PickedUp);
            }
            E::LineReturned {
                line_id,
                returned_at,
                deposit_refunded,
                damage_withheld,
                ..
            } => {
                self.line_status.insert(line_id, LineStatus::Returned);
                self.returns.insert(
                    line_id,
                    LineReturn {
                        returned_at,
                        deposit_refunded,
                        damage_withheld,
                    },
                );
            }
            E::VendorPartFulfilled { vendor_id, .. } => {
                self.fulfilled_vendors.insert(vendor_id);
            }
            E::OrderCompleted { .. } => self.status = OrderStatus::Completed,
        }
    }
}

impl Order {
    fn set_sale_lines(&mut self, vendor_id: Uuid, from: LineStatus, to: LineStatus) {
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
