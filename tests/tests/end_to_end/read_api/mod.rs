//! The query side end to end (API.md "Conventions" and "Queries"): listings
//! search, detail and availability, orders scoped by role, projections,
//! health, and read-your-writes with `Ledger-Min-Position`.
//!
//! Every query that follows a command sends the command's `position` as
//! `Ledger-Min-Position`, so no test sleeps waiting for a projector.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::Utc;
use ledger_tests::answer::{instant, ledger_position, position, uuid_of};
use ledger_tests::client::MIN_POSITION;
use ledger_tests::Marketplace;
use ledger_tests::{assert_invalid_field, assert_problem};
use ledger_tests::{assert_ok, rental_item, sale_item};
use ledger_tests::{at, Answer, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

mod freshness;
mod listings;
mod orders;
mod projections;
mod search;

fn rental_body(title: &str, description: &str, category: &str, unit: &str, units: u32) -> Value {
    json!({"title": title, "description": description, "category": category,
           "kind": "rental", "pricing_unit": unit, "price_per_unit": "10.00",
           "deposit": "5.00", "units": units})
}

fn sale_body(title: &str, description: &str, category: &str, stock: u32) -> Value {
    json!({"title": title, "description": description, "category": category,
           "kind": "sale", "unit_price": "7.00", "stock": stock})
}

/// Creates a listing as its vendor (a draft); returns its id and position.
async fn create_listing(app: &TestApp, vendor_id: Uuid, body: Value) -> (Uuid, i64) {
    let answer = app.create_listing(&app.vendor(vendor_id), body).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    (answer.uuid("listing_id"), position(&answer))
}

/// A published listing; returns its id and the position of the publish.
async fn published(app: &TestApp, vendor_id: Uuid, body: Value) -> (Uuid, i64) {
    let (listing_id, _) = create_listing(app, vendor_id, body).await;
    let at = app.publish(vendor_id, listing_id).await.position();
    (listing_id, at)
}

async fn cancel(app: &TestApp, customer: &str, order_id: Uuid) -> Answer {
    let answer = app
        .cancel_order(
            &app.customer(customer),
            order_id,
            json!({"reason": "changed my mind"}),
        )
        .await;
    assert_ok(&answer);
    answer
}

async fn add_blackout(
    app: &TestApp,
    vendor_id: Uuid,
    listing_id: Uuid,
    start: &str,
    end: &str,
    units: Option<u32>,
) -> i64 {
    let mut body = json!({"start": start, "end": end, "reason": "maintenance"});
    if let Some(units) = units {
        body["units"] = json!(units);
    }
    let answer = app
        .add_blackout(&app.vendor(vendor_id), listing_id, body)
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    position(&answer)
}

/// One page of a search; asserts 200.
async fn search_page(app: &TestApp, token: &str, query: &str, min: Option<i64>) -> Answer {
    let answer = app
        .get_at(&format!("/v1/listings?{query}"), token, min)
        .await;
    assert_ok(&answer);
    answer
}

/// The ids on one page (asserting it is the only page).
async fn search_ids(app: &TestApp, token: &str, query: &str, min: Option<i64>) -> HashSet<Uuid> {
    let answer = search_page(app, token, query, min).await;
    assert!(
        answer.body["next_cursor"].is_null(),
        "one page expected: {:?}",
        answer.body
    );
    ids_of(&answer.body["items"], "listing_id")
}

fn ids_of(items: &Value, field: &str) -> HashSet<Uuid> {
    items
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {items}"))
        .iter()
        .map(|item| uuid_of(&item[field]))
        .collect()
}

fn set(ids: &[Uuid]) -> HashSet<Uuid> {
    ids.iter().copied().collect()
}

/// Walks every page of `path` (which has a `?`); returns the ids in page
/// order and the size of each page.
async fn walk_pages(
    app: &TestApp,
    path: &str,
    token: &str,
    field: &str,
    min: Option<i64>,
) -> (Vec<Uuid>, Vec<usize>) {
    let mut ids = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let url = match &cursor {
            Some(c) => format!("{path}&cursor={c}"),
            None => path.to_owned(),
        };
        let answer = app.get_at(&url, token, min).await;
        assert_ok(&answer);
        let items = answer.body["items"].as_array().expect("items").clone();
        sizes.push(items.len());
        ids.extend(items.iter().map(|i| uuid_of(&i[field])));
        match &answer.body["next_cursor"] {
            Value::Null => return (ids, sizes),
            Value::String(next) => cursor = Some(next.clone()),
            other => panic!("next_cursor is a string or null, not {other}"),
        }
    }
    panic!("pagination of {path} never ended");
}
