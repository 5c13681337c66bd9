//! Booking changes (API.md "Rentals"): a line extended or rescheduled, and
//! the provider's payment of an adjustment (`metadata.adjustment_id`).

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::tokens::WEBHOOK_SECRET;
use crate::webhooks::{signed, SUCCEEDED};
use crate::{Answer, TestApp};

/// A provider event paying an adjustment (naming no order).
pub fn adjustment_payment(event_id: &str, adjustment_id: Uuid, amount_minor: i64) -> Value {
    json!({
        "id": event_id,
        "type": SUCCEEDED,
        "data": {"object": {
            "id": format!("pi_{event_id}"),
            "amount": amount_minor,
            "currency": "usd",
            "metadata": {"adjustment_id": adjustment_id.to_string()},
            "last_payment_error": null,
        }}
    })
}

impl TestApp {
    /// `POST /v1/orders/{id}/lines/{line_id}/extend {end}`.
    pub async fn extend(&self, token: &str, order_id: Uuid, line_id: Uuid, end: &str) -> Answer {
        self.post(
            &format!("/v1/orders/{order_id}/lines/{line_id}/extend"),
            token,
            json!({ "end": end }),
        )
        .await
    }

    /// `POST /v1/orders/{id}/lines/{line_id}/reschedule {start, end}`.
    pub async fn reschedule(
        &self,
        token: &str,
        order_id: Uuid,
        line_id: Uuid,
        start: &str,
        end: &str,
    ) -> Answer {
        self.post(
            &format!("/v1/orders/{order_id}/lines/{line_id}/reschedule"),
            token,
            json!({ "start": start, "end": end }),
        )
        .await
    }

    /// Pays an adjustment's `amount_minor`; asserts the webhook is taken.
    pub async fn pay_adjustment(&self, adjustment_id: Uuid, amount_minor: i64) -> Answer {
        let event = adjustment_payment(
            &format!("evt_{}", Uuid::new_v4().simple()),
            adjustment_id,
            amount_minor,
        );
        let (raw, signature) = signed(&event, WEBHOOK_SECRET, self.now().timestamp());
        let answer = self.send_raw_webhook(raw, &signature).await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        answer
    }
}
