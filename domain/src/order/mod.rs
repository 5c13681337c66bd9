//! The Order aggregate: one customer, lines from many vendors, payment and
//! fulfilment.

pub mod pricing;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::DomainError;
use crate::money::Rates;
use pricing::{LineInput, PricedLine, PricedOrder};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    #[default]
    Placed,
    Confirmed,
    Completed,
    Cancelled,
    Refunded,
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
    OrderCancelled {
        reason: Option<String>,
        by_expiry: bool,
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
        crate::EVENT_VERSION.to_string()
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
}

impl Order {
    fn decide(&self, _command: OrderCommand) -> Result<Vec<OrderEvent>, DomainError> {
        Err(DomainError::invalid_state("not implemented yet"))
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

    fn apply(&mut self, _event: Self::Event) {}
}

#[allow(dead_code)]
fn _unused(_: &PricedLine) {}
