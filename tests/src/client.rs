//! The HTTP client of the tests: every request goes through `send` (or
//! `send_bytes` for bodies that are not JSON), and the common commands and
//! queries of API.md have a method each, so a test says "place an order"
//! rather than spelling a path and a token. Methods named after a command
//! return the raw [`Answer`] (tests of refusals read its problem document);
//! the typed answers below are for the fields tests read of a success.

use std::fmt::Display;

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{Answer, TestApp};

/// The header a query waits on until the read models reach a position.
pub const MIN_POSITION: &str = "Ledger-Min-Position";

/// `201` to `POST /v1/orders`.
#[derive(Clone, Debug, Deserialize)]
pub struct PlacedOrder {
    pub order_id: Uuid,
    pub status: String,
    pub subtotal: Decimal,
    pub tax: Decimal,
    pub deposit: Decimal,
    pub total: Decimal,
    pub hold_expires_at: DateTime<Utc>,
    pub lines: Vec<PlacedLine>,
    pub vendors: Vec<VendorShare>,
    pub position: i64,
}

/// One line of a placed order.
#[derive(Clone, Debug, Deserialize)]
pub struct PlacedLine {
    pub line_id: Uuid,
    pub listing_id: Uuid,
    pub vendor_id: Uuid,
    pub kind: String,
    pub quantity: u32,
    pub unit_price: Decimal,
    pub subtotal: Decimal,
    pub tax: Decimal,
    pub deposit: Decimal,
}

/// One vendor's part of a placed order.
#[derive(Clone, Debug, Deserialize)]
pub struct VendorShare {
    pub vendor_id: Uuid,
    pub subtotal: Decimal,
    pub platform_fee: Decimal,
    pub net: Decimal,
}

/// `200` to a cancellation.
#[derive(Clone, Debug, Deserialize)]
pub struct OrderStatusChanged {
    pub order_id: Uuid,
    pub status: String,
    pub position: i64,
}

/// `200` to a shipment or delivery of a vendor's part.
#[derive(Clone, Debug, Deserialize)]
pub struct PartChanged {
    pub order_id: Uuid,
    pub vendor_id: Uuid,
    pub order_status: String,
    pub position: i64,
}

/// `200` to a pickup or return of a rental line.
#[derive(Clone, Debug, Deserialize)]
pub struct LineChanged {
    pub order_id: Uuid,
    pub line_id: Uuid,
    pub vendor_id: Uuid,
    pub order_status: String,
    pub deposit_refunded: Option<Decimal>,
    pub damage_withheld: Option<Decimal>,
    pub position: i64,
}

/// `201` to a payout request.
#[derive(Clone, Debug, Deserialize)]
pub struct PayoutRecorded {
    pub payout_id: Uuid,
    pub vendor_id: Uuid,
    pub amount: Decimal,
    pub position: i64,
}

/// `201` to a blackout.
#[derive(Clone, Debug, Deserialize)]
pub struct BlackoutAdded {
    pub blackout_id: Uuid,
    pub listing_id: Uuid,
    pub position: i64,
}

/// `GET /v1/vendors/{id}/earnings`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Earnings {
    pub vendor_id: Uuid,
    pub currency: String,
    pub gross: Decimal,
    pub platform_fees: Decimal,
    pub net: Decimal,
    pub pending: Decimal,
    pub available: Decimal,
    pub paid_out: Decimal,
    pub damage_credits: Decimal,
}

impl TestApp {
    /// Sends a request with optional token, JSON body and extra headers.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        answer_of(request).await
    }

    /// Sends a raw body with an optional content type (no JSON encoding).
    pub async fn send_bytes(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url))
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        answer_of(request).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Some(token), Some(&body), &[])
            .await
    }

    pub async fn post_with_key(&self, path: &str, token: &str, body: Value, key: &str) -> Answer {
        self.send(
            Method::POST,
            path,
            Some(token),
            Some(&body),
            &[("Idempotency-Key", key)],
        )
        .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Answer {
        self.send(Method::DELETE, path, Some(token), None, &[])
            .await
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.send(Method::GET, path, Some(token), None, &[]).await
    }

    /// A query that waits until the read models reach `min` (when given).
    pub async fn get_at(&self, path: &str, token: &str, min: Option<i64>) -> Answer {
        let min = min.map(|m| m.to_string());
        let headers: Vec<(&str, &str)> = min.iter().map(|m| (MIN_POSITION, m.as_str())).collect();
        self.send(Method::GET, path, Some(token), None, &headers)
            .await
    }

    /// A text answer asked without a token (metrics, docs): the status,
    /// the content type and the text.
    pub async fn get_text(&self, path: &str) -> (StatusCode, String, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base_url))
            .send()
            .await
            .expect("the ledger answers");
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (status, content_type, response.text().await.expect("a text"))
    }

    /// The Prometheus text of `/metrics`; asserts 200 and `text/plain`.
    pub async fn metrics(&self) -> String {
        let (status, content_type, text) = self.get_text("/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        text
    }

    // -- vendors and payouts -------------------------------------------------

    pub async fn register_vendor(&self, name: &str) -> Uuid {
        let answer = self
            .post("/v1/vendors", &self.admin(), json!({"name": name}))
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
        answer.uuid("vendor_id")
    }

    /// An admin asks to pay `amount` out to the vendor.
    pub async fn request_payout(&self, vendor_id: Uuid, amount: &str) -> Answer {
        self.post(
            &format!("/v1/vendors/{vendor_id}/payouts"),
            &self.admin(),
            json!({ "amount": amount }),
        )
        .await
    }

    /// The vendor's earnings as an admin reads them, once the read models
    /// reach `min`.
    pub async fn earnings(&self, vendor_id: Uuid, min: Option<i64>) -> Earnings {
        self.get_at(
            &format!("/v1/vendors/{vendor_id}/earnings"),
            &self.admin(),
            min,
        )
        .await
        .expect(StatusCode::OK)
    }

    // -- listings ------------------------------------------------------------

    /// `POST /v1/listings` as `token`.
    pub async fn create_listing(&self, token: &str, body: Value) -> Answer {
        self.post("/v1/listings", token, body).await
    }

    /// A published rental listing.
    pub async fn rental_listing(
        &self,
        vendor_id: Uuid,
        pricing_unit: &str,
        price: &str,
        deposit: &str,
        units: u32,
    ) -> Uuid {
        let answer = self
            .create_listing(
                &self.vendor(vendor_id),
                json!({"title": "Kayak", "description": "Two-seat kayak", "category": "boats",
                       "kind": "rental", "pricing_unit": pricing_unit,
                       "price_per_unit": price, "deposit": deposit, "units": units}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
        let listing_id = answer.uuid("listing_id");
        self.publish(vendor_id, listing_id).await;
        listing_id
    }

    /// A published sale listing.
    pub async fn sale_listing(&self, vendor_id: Uuid, price: &str, stock: u32) -> Uuid {
        let answer = self
            .create_listing(
                &self.vendor(vendor_id),
                json!({"title": "Paddle", "description": "Carbon paddle", "category": "gear",
                       "kind": "sale", "unit_price": price, "stock": stock}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
        let listing_id = answer.uuid("listing_id");
        self.publish(vendor_id, listing_id).await;
        listing_id
    }

    /// `POST /v1/listings/{id}/publish` as `token`.
    pub async fn publish_listing(&self, token: &str, listing_id: Uuid) -> Answer {
        self.post(
            &format!("/v1/listings/{listing_id}/publish"),
            token,
            json!({}),
        )
        .await
    }

    /// The vendor publishes its listing; asserts 200.
    pub async fn publish(&self, vendor_id: Uuid, listing_id: Uuid) -> Answer {
        let answer = self
            .publish_listing(&self.vendor(vendor_id), listing_id)
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        answer
    }

    /// `POST /v1/listings/{id}/archive` as `token`.
    pub async fn archive_listing(&self, token: &str, listing_id: Uuid) -> Answer {
        self.post(
            &format!("/v1/listings/{listing_id}/archive"),
            token,
            json!({}),
        )
        .await
    }

    /// `POST /v1/listings/{id}/price` as `token`.
    pub async fn change_price(&self, token: &str, listing_id: Uuid, body: Value) -> Answer {
        self.post(&format!("/v1/listings/{listing_id}/price"), token, body)
            .await
    }

    /// `POST /v1/listings/{id}/stock` as `token`.
    pub async fn change_stock(&self, token: &str, listing_id: Uuid, body: Value) -> Answer {
        self.post(&format!("/v1/listings/{listing_id}/stock"), token, body)
            .await
    }

    /// `POST /v1/listings/{id}/blackouts` as `token`.
    pub async fn add_blackout(&self, token: &str, listing_id: Uuid, body: Value) -> Answer {
        self.post(&format!("/v1/listings/{listing_id}/blackouts"), token, body)
            .await
    }

    /// `DELETE /v1/listings/{id}/blackouts/{blackout}` as `token`.
    pub async fn remove_blackout(
        &self,
        token: &str,
        listing_id: Uuid,
        blackout_id: Uuid,
    ) -> Answer {
        self.delete(
            &format!("/v1/listings/{listing_id}/blackouts/{blackout_id}"),
            token,
        )
        .await
    }

    // -- orders and fulfilment -----------------------------------------------

    /// `POST /v1/orders` by `customer`, whatever the outcome. `items` is a
    /// `Vec` of [`rental_item`](crate::rental_item)s and
    /// [`sale_item`](crate::sale_item)s, or a JSON array.
    pub async fn place_order(&self, customer: &str, items: impl Into<Value>) -> Answer {
        self.post(
            "/v1/orders",
            &self.customer(customer),
            json!({ "items": items.into() }),
        )
        .await
    }

    /// An order `customer` places; asserts 201.
    pub async fn place(&self, customer: &str, items: impl Into<Value>) -> Answer {
        let answer = self.place_order(customer, items).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
        answer
    }

    /// An order `customer` places, typed; asserts 201 and `placed`.
    pub async fn placed_order(&self, customer: &str, items: impl Into<Value>) -> PlacedOrder {
        let order: PlacedOrder = self
            .place_order(customer, items)
            .await
            .expect(StatusCode::CREATED);
        assert_eq!(order.status, "placed");
        order
    }

    /// `POST /v1/orders/{id}/cancel` as `token`.
    pub async fn cancel_order(&self, token: &str, order_id: Uuid, body: Value) -> Answer {
        self.post(&format!("/v1/orders/{order_id}/cancel"), token, body)
            .await
    }

    /// `POST /v1/orders/{id}/vendors/{vendor}/ship` as `token`.
    pub async fn ship(&self, token: &str, order_id: Uuid, vendor_id: Uuid) -> Answer {
        self.post(
            &format!("/v1/orders/{order_id}/vendors/{vendor_id}/ship"),
            token,
            json!({}),
        )
        .await
    }

    /// `POST /v1/orders/{id}/vendors/{vendor}/deliver` as `token`.
    pub async fn deliver(&self, token: &str, order_id: Uuid, vendor_id: Uuid) -> Answer {
        self.post(
            &format!("/v1/orders/{order_id}/vendors/{vendor_id}/deliver"),
            token,
            json!({}),
        )
        .await
    }

    /// `POST /v1/orders/{id}/lines/{line}/pickup` as `token`.
    pub async fn pickup(&self, token: &str, order_id: Uuid, line_id: impl Display) -> Answer {
        self.post(
            &format!("/v1/orders/{order_id}/lines/{line_id}/pickup"),
            token,
            json!({}),
        )
        .await
    }

    /// `POST /v1/orders/{id}/lines/{line}/return` as `token`.
    pub async fn return_line(
        &self,
        token: &str,
        order_id: Uuid,
        line_id: impl Display,
        body: Value,
    ) -> Answer {
        self.post(
            &format!("/v1/orders/{order_id}/lines/{line_id}/return"),
            token,
            body,
        )
        .await
    }

    /// `GET /v1/orders/{id}` as `token`, once the read models reach `min`.
    pub async fn order(&self, token: &str, order_id: Uuid, min: Option<i64>) -> Answer {
        self.get_at(&format!("/v1/orders/{order_id}"), token, min)
            .await
    }
}

/// Sends a built request and reads the answer.
async fn answer_of(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("the ledger answers");
    read(response).await
}

/// Reads a response into an [`Answer`] (for tests with their own client).
pub async fn read(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("a body");
    Answer {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}
