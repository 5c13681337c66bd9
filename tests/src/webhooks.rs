//! The payment provider's side: events shaped like the provider's
//! (`payment_intent.*`), signed with the webhook secret at the moment they
//! are sent, and delivered to `/v1/webhooks/payments`. `pay` is how a test
//! settles an order's total in one line.

use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::answer::decimal;
use crate::client::PlacedOrder;
use crate::tokens::WEBHOOK_SECRET;
use crate::{Answer, TestApp};

/// The provider's event that a payment succeeded.
pub const SUCCEEDED: &str = "payment_intent.succeeded";
/// The provider's event that a payment failed.
pub const FAILED: &str = "payment_intent.payment_failed";

/// A provider event about the payment of `order_id` (`failure` becomes its
/// `last_payment_error`).
pub fn payment_event(
    event_id: &str,
    kind: &str,
    order_id: Uuid,
    amount_minor: i64,
    failure: Option<&str>,
) -> Value {
    json!({
        "id": event_id,
        "type": kind,
        "data": {"object": {
            "id": format!("pi_{event_id}"),
            "amount": amount_minor,
            "currency": "usd",
            "metadata": {"order_id": order_id.to_string()},
            "last_payment_error": failure.map(|m| json!({"message": m})),
        }}
    })
}

/// A provider event about the payment of the subscription invoice
/// `invoice_id` (`metadata.invoice_id`).
pub fn invoice_payment_event(
    event_id: &str,
    kind: &str,
    invoice_id: &str,
    amount_minor: i64,
    failure: Option<&str>,
) -> Value {
    json!({
        "id": event_id,
        "type": kind,
        "data": {"object": {
            "id": format!("pi_{event_id}"),
            "amount": amount_minor,
            "currency": "usd",
            "metadata": {"invoice_id": invoice_id},
            "last_payment_error": failure.map(|m| json!({"message": m})),
        }}
    })
}

/// The raw body of `event` and its `stripe-signature` header signed with
/// `secret` at unix time `timestamp`.
pub fn signed(event: &Value, secret: &str, timestamp: i64) -> (Vec<u8>, String) {
    let raw = serde_json::to_vec(event).expect("serialise");
    let signature = command_api::routes::webhooks::sign(&raw, secret, timestamp);
    (raw, signature)
}

/// An amount in minor units (cents).
pub fn minor_units(amount: Decimal) -> i64 {
    (amount * Decimal::from(100))
        .trunc()
        .to_string()
        .parse()
        .expect("minor units")
}

/// The total of an order answer in minor units.
pub fn total_minor(order: &Answer) -> i64 {
    minor_units(decimal(&order.body["total"]))
}

impl TestApp {
    /// Sends a payment webhook for `order_id`, signed at the server's now.
    pub async fn payment_webhook(
        &self,
        event_id: &str,
        kind: &str,
        order_id: Uuid,
        amount_minor: i64,
        failure: Option<&str>,
    ) -> Answer {
        let event = payment_event(event_id, kind, order_id, amount_minor, failure);
        let (raw, signature) = signed(&event, WEBHOOK_SECRET, self.now().timestamp());
        self.send_raw_webhook(raw, &signature).await
    }

    /// Sends a payment webhook for the subscription invoice `invoice_id`,
    /// signed now.
    pub async fn invoice_webhook(
        &self,
        event_id: &str,
        kind: &str,
        invoice_id: Uuid,
        amount_minor: i64,
    ) -> Answer {
        let event =
            invoice_payment_event(event_id, kind, &invoice_id.to_string(), amount_minor, None);
        let (raw, signature) = signed(&event, WEBHOOK_SECRET, chrono::Utc::now().timestamp());
        self.send_raw_webhook(raw, &signature).await
    }

    /// Delivers a raw webhook body with this `stripe-signature`.
    pub async fn send_raw_webhook(&self, raw: Vec<u8>, signature: &str) -> Answer {
        self.send_bytes(
            reqwest::Method::POST,
            "/v1/webhooks/payments",
            None,
            Some("application/json"),
            raw,
            &[("stripe-signature", signature)],
        )
        .await
    }

    /// Pays an order (its answer) in full; asserts the webhook is taken.
    pub async fn pay(&self, order: &Answer) -> Answer {
        self.pay_order(order.uuid("order_id"), total_minor(order))
            .await
    }

    /// Pays `amount_minor` for `order_id`; asserts the webhook is taken.
    pub async fn pay_order(&self, order_id: Uuid, amount_minor: i64) -> Answer {
        let answer = self
            .payment_webhook(
                &format!("evt_{}", Uuid::new_v4().simple()),
                SUCCEEDED,
                order_id,
                amount_minor,
                None,
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        answer
    }

    /// Pays a placed order in full.
    pub async fn pay_placed(&self, order: &PlacedOrder) -> Answer {
        self.pay_order(order.order_id, minor_units(order.total))
            .await
    }

    /// Sends a provider's `payout.paid` or `payout.failed` (`kind`) about
    /// `payout_id` as event `event_id`, signed now.
    pub async fn payout_webhook(&self, event_id: &str, kind: &str, payout_id: Uuid) -> Answer {
        let event = payout_event(event_id, kind, payout_id);
        let (raw, signature) = signed(&event, WEBHOOK_SECRET, self.now().timestamp());
        self.send_raw_webhook(raw, &signature).await
    }
}

/// The provider's event that a payout reached the vendor's bank.
pub const PAYOUT_PAID: &str = "payout.paid";
/// The provider's event that a payout failed.
pub const PAYOUT_FAILED: &str = "payout.failed";

/// A provider event about payout `payout_id` (its outcome in `kind`).
pub fn payout_event(event_id: &str, kind: &str, payout_id: Uuid) -> Value {
    let failed = kind == PAYOUT_FAILED;
    json!({
        "id": event_id,
        "type": kind,
        "data": {"object": {
            "id": format!("po_{event_id}"),
            "object": "payout",
            "status": if failed { "failed" } else { "paid" },
            "failure_code": if failed { json!("account_closed") } else { Value::Null },
            "failure_message": if failed { json!("The bank account has been closed.") } else { Value::Null },
            "metadata": {"payout_id": payout_id.to_string()},
        }}
    })
}
