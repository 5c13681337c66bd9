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

// ---------------------------------------------------------------------------
// Read-your-writes
// ---------------------------------------------------------------------------

#[tokio::test]
async fn every_query_answer_carries_ledger_position_at_or_past_the_asked_minimum() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Harbour").await;
    let listing = app.rental_listing(vendor, "day", "10.00", "5.00", 2).await;
    let order = app
        .place("alice", vec![rental_item(listing, 1, &at(1, 0), &at(2, 0))])
        .await;
    let placed_at = position(&order);
    let order_id = order.uuid("order_id");
    let customer = app.customer("alice");
    let paths = [
        "/v1/listings".to_owned(),
        format!("/v1/listings/{listing}"),
        format!(
            "/v1/listings/{listing}/availability?from={}&to={}",
            at(0, 0),
            at(3, 0)
        ),
        "/v1/orders".to_owned(),
        format!("/v1/orders/{order_id}"),
    ];
    for path in &paths {
        let plain = app.get_at(path, &customer, None).await;
        assert_ok(&plain);
        assert!(ledger_position(&plain) >= 0, "{path}");
        let fresh = app.get_at(path, &customer, Some(placed_at)).await;
        assert_ok(&fresh);
        assert!(
            ledger_position(&fresh) >= placed_at,
            "{path}: Ledger-Position {} below the asked {placed_at}",
            ledger_position(&fresh)
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_query_with_the_commands_position_already_reflects_the_command() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Harbour").await;
    let customer = app.customer("alice");

    // A new listing is in the search and its detail right away.
    let (listing, published_at) = published(
        &app,
        vendor,
        rental_body("Canoe", "Red canoe", "boats", "day", 2),
    )
    .await;
    let found = search_ids(&app, &customer, "q=canoe", Some(published_at)).await;
    assert_eq!(found, set(&[listing]));
    let detail = app
        .get_at(
            &format!("/v1/listings/{listing}"),
            &customer,
            Some(published_at),
        )
        .await;
    assert_ok(&detail);
    assert_eq!(detail.body["status"], "published");

    // A placed order is `placed`, and its hold counts in the availability.
    let order = app
        .place("alice", vec![rental_item(listing, 2, &at(1, 0), &at(2, 0))])
        .await;
    let order_id = order.uuid("order_id");
    let shown = app
        .get_at(
            &format!("/v1/orders/{order_id}"),
            &customer,
            Some(position(&order)),
        )
        .await;
    assert_ok(&shown);
    assert_eq!(shown.body["status"], "placed");
    let availability_path = format!(
        "/v1/listings/{listing}/availability?from={}&to={}",
        at(1, 0),
        at(2, 0)
    );
    let held = app
        .get_at(&availability_path, &customer, Some(position(&order)))
        .await;
    assert_ok(&held);
    assert_eq!(held.body["free_min"], 0, "{:?}", held.body);

    // A cancel shows `cancelled`, and the units are free again.
    let cancelled = cancel(&app, "alice", order_id).await;
    let shown = app
        .get_at(
            &format!("/v1/orders/{order_id}"),
            &customer,
            Some(position(&cancelled)),
        )
        .await;
    assert_ok(&shown);
    assert_eq!(shown.body["status"], "cancelled");
    assert_eq!(shown.body["cancel_reason"], "changed my mind");
    let freed = app
        .get_at(&availability_path, &customer, Some(position(&cancelled)))
        .await;
    assert_ok(&freed);
    assert_eq!(freed.body["free_min"], 2, "{:?}", freed.body);
    app.stop().await;
}

#[tokio::test]
async fn a_malformed_min_position_is_a_400_problem() {
    let app = TestApp::spawn().await;
    let customer = app.customer("alice");
    for bad in ["abc", "-1", "1.5", "", "12abc", "99999999999999999999999"] {
        let answer = app
            .send(
                Method::GET,
                "/v1/listings",
                Some(&customer),
                None,
                &[(MIN_POSITION, bad)],
            )
            .await;
        assert_problem(&answer, StatusCode::BAD_REQUEST, "bad-request");
        let answer = app
            .send(
                Method::GET,
                "/v1/orders",
                Some(&customer),
                None,
                &[(MIN_POSITION, bad)],
            )
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "`{bad}`");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_min_position_beyond_the_head_answers_after_about_two_seconds_with_the_current_position()
{
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Harbour").await;
    let (listing, published_at) =
        published(&app, vendor, sale_body("Rope", "Long rope", "gear", 3)).await;
    let customer = app.customer("alice");
    let reached = app
        .get_at("/v1/listings", &customer, Some(published_at))
        .await;
    assert!(ledger_position(&reached) >= published_at);

    let far = published_at + 1_000_000;
    for path in [
        "/v1/listings".to_owned(),
        format!("/v1/listings/{listing}"),
        "/v1/orders".to_owned(),
    ] {
        let started = Instant::now();
        let answer = app.get_at(&path, &customer, Some(far)).await;
        let waited = started.elapsed();
        assert_ok(&answer);
        assert!(
            waited >= Duration::from_millis(1900),
            "{path}: answered after {waited:?}, before the read model could reach {far}"
        );
        assert!(
            waited < Duration::from_secs(5),
            "{path}: the wait is bounded by 2 s, took {waited:?}"
        );
        let current = ledger_position(&answer);
        assert!(
            current < far,
            "{path}: claims position {current} beyond the head"
        );
        if path != "/v1/orders" {
            assert!(current >= published_at, "{path}: position went back");
        }
    }
    app.stop().await;
}

// ---------------------------------------------------------------------------
// Listings: search
// ---------------------------------------------------------------------------

#[tokio::test]
async fn search_finds_listings_by_words_of_title_or_description_by_category_and_by_vendor() {
    let app = TestApp::spawn().await;
    let harbour = app.register_vendor("Harbour").await;
    let alpine = app.register_vendor("Alpine").await;
    let (kayak, _) = published(
        &app,
        harbour,
        rental_body("Sea kayak", "Stable touring boat", "boats", "day", 1),
    )
    .await;
    let (canoe, _) = published(
        &app,
        harbour,
        rental_body("Canoe", "Open touring canoe", "boats", "day", 1),
    )
    .await;
    let (paddle, _) = published(
        &app,
        harbour,
        sale_body("Paddle", "Carbon paddle for a kayak", "gear", 4),
    )
    .await;
    let (skis, last) = published(
        &app,
        alpine,
        rental_body("Skis", "Touring skis", "winter", "day", 2),
    )
    .await;
    let c = app.customer("alice");
    let min = Some(last);

    assert_eq!(
        search_ids(&app, &c, "q=kayak", min).await,
        set(&[kayak, paddle])
    );
    assert_eq!(search_ids(&app, &c, "q=carbon", min).await, set(&[paddle]));
    assert_eq!(
        search_ids(&app, &c, "q=touring", min).await,
        set(&[kayak, canoe, skis])
    );
    assert_eq!(
        search_ids(&app, &c, "q=touring%20canoe", min).await,
        set(&[canoe]),
        "every word of q must match"
    );
    assert!(search_ids(&app, &c, "q=submarine", min).await.is_empty());
    assert_eq!(
        search_ids(&app, &c, "category=boats", min).await,
        set(&[kayak, canoe])
    );
    assert!(search_ids(&app, &c, "category=boat", min).await.is_empty());
    assert_eq!(
        search_ids(&app, &c, &format!("vendor_id={alpine}"), min).await,
        set(&[skis])
    );
    assert_eq!(
        search_ids(&app, &c, &format!("vendor_id={harbour}&q=touring"), min).await,
        set(&[kayak, canoe])
    );
    assert_eq!(
        search_ids(&app, &c, "category=gear&q=kayak", min).await,
        set(&[paddle])
    );
    assert_eq!(
        search_ids(&app, &c, "", min).await,
        set(&[kayak, canoe, paddle, skis])
    );

    // An item carries what a catalogue needs.
    let page = search_page(&app, &c, "q=carbon", min).await;
    let item = &page.body["items"][0];
    assert_eq!(item["title"], "Paddle");
    assert_eq!(item["category"], "gear");
    assert_eq!(item["kind"], "sale");
    assert_eq!(item["vendor_id"], harbour.to_string());
    assert_eq!(item["unit_price"], "7.00");
    assert_eq!(item["stock"], 4);
    app.stop().await;
}

#[tokio::test]
async fn search_with_a_period_returns_only_listings_free_for_the_whole_of_it() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Harbour").await;
    let (three, _) = published(
        &app,
        vendor,
        rental_body("Kayak", "Three kayaks", "boats", "day", 3),
    )
    .await;
    let (dark, _) = published(
        &app,
        vendor,
        rental_body("Canoe", "Two canoes", "boats", "day", 2),
    )
    .await;
    let (stock, _) = published(&app, vendor, sale_body("Paddle", "Paddles", "gear", 5)).await;
    // 2 of 3 kayaks over days 2-4 (inside the period, not at its start).
    let booked = app
        .place(
            "alice",
            vec![
                rental_item(three, 2, &at(2, 0), &at(4, 0)),
                sale_item(stock, 3),
            ],
        )
        .await;
    // Every canoe blacked out over day 3.
    let last = add_blackout(&app, vendor, dark, &at(3, 0), &at(4, 0), None).await;
    let last = last.max(position(&booked));
    let c = app.customer("bob");

    let period = |from: &str, to: &str, quantity: u32| {
        format!("available_from={from}&available_to={to}&quantity={quantity}")
    };
    let days_1_to_5 = |q| period(&at(1, 0), &at(5, 0), q);
    assert_eq!(
        search_ids(&app, &c, &days_1_to_5(1), Some(last)).await,
        set(&[three, stock]),
        "one kayak is free all along; the canoes are blacked out"
    );
    assert_eq!(
        search_ids(&app, &c, &days_1_to_5(2), Some(last)).await,
        set(&[stock]),
        "two kayaks are not free while two are booked"
    );
    assert_eq!(
        search_ids(&app, &c, &days_1_to_5(3), Some(last)).await,
        HashSet::new(),
        "three kayaks: no; 3 paddles: only 2 left"
    );
    // Without `quantity` one unit is asked for.
    assert_eq!(
        search_ids(
            &app,
            &c,
            &format!("available_from={}&available_to={}", at(1, 0), at(5, 0)),
            Some(last)
        )
        .await,
        set(&[three, stock])
    );
    // Half-open periods: the booking ends as day 4 starts, the blackout too.
    assert_eq!(
        search_ids(&app, &c, &period(&at(4, 0), &at(6, 0), 2), Some(last)).await,
        set(&[three, dark, stock])
    );
    assert_eq!(
        search_ids(&app, &c, &period(&at(0, 0), &at(2, 0), 3), Some(last)).await,
        set(&[three]),
        "before the booking all three kayaks are free"
    );
    // Combined with the other filters.
    assert_eq!(
        search_ids(
            &app,
            &c,
            &format!("category=boats&{}", days_1_to_5(1)),
            Some(last)
        )
        .await,
        set(&[three])
    );

    // Paid, the hold is a booking and still counts.
    let paid = app.pay(&booked).await;
    assert_eq!(
        search_ids(&app, &c, &days_1_to_5(2), Some(position(&paid))).await,
        set(&[stock])
    );
    app.stop().await;
}

#[tokio::test]
async fn search_period_parameters_are_validated() {
    let app = TestApp::spawn().await;
    let c = app.customer("alice");
    let only_from = app
        .get_at(
            &format!("/v1/listings?available_from={}", at(1, 0)),
            &c,
            None,
        )
        .await;
    assert_eq!(
        only_from.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        only_from.body
    );
    let backwards = app
        .get_at(
            &format!(
                "/v1/listings?available_from={}&available_to={}",
                at(2, 0),
                at(1, 0)
            ),
            &c,
            None,
        )
        .await;
    assert_invalid_field(&backwards, "available_to");
    let empty = app
        .get_at(
            &format!(
                "/v1/listings?available_from={}&available_to={}",
                at(1, 0),
                at(1, 0)
            ),
            &c,
            None,
        )
        .await;
    assert_invalid_field(&empty, "available_to");
    let zero = app
        .get_at(
            &format!(
                "/v1/listings?available_from={}&available_to={}&quantity=0",
                at(1, 0),
                at(2, 0)
            ),
            &c,
            None,
        )
        .await;
    assert_invalid_field(&zero, "quantity");
    let not_a_time = app
        .get_at("/v1/listings?available_from=tomorrow", &c, None)
        .await;
    assert_problem(&not_a_time, StatusCode::BAD_REQUEST, "bad-request");
    app.stop().await;
}

#[tokio::test]
async fn search_pages_walk_every_listing_once_and_end_with_a_null_cursor() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Harbour").await;
    let mut all = Vec::new();
    let mut last = 0;
    for i in 0..7 {
        let (id, at) = published(
            &app,
            vendor,
            sale_body(&format!("Item {i}"), "Thing", "gear", 1),
        )
        .await;
        all.push(id);
        last = at;
    }
    let c = app.customer("alice");

    let (ids, sizes) = walk_pages(&app, "/v1/listings?limit=3", &c, "listing_id", Some(last)).await;
    assert_eq!(sizes, vec![3, 3, 1]);
    assert_eq!(ids.len(), set(&ids).len(), "no listing twice: {ids:?}");
    assert_eq!(set(&ids), set(&all));

    // A last page that is exactly full still ends with null, no empty page.
    let (ids, sizes) = walk_pages(&app, "/v1/listings?limit=7", &c, "listing_id", None).await;
    assert_eq!(sizes, vec![7]);
    assert_eq!(set(&ids), set(&all));
    // Filters hold across pages.
    let (ids, sizes) = walk_pages(
        &app,
        "/v1/listings?limit=2&q=thing&category=gear",
        &c,
        "listing_id",
        None,
    )
    .await;
    assert_eq!(sizes, vec![2, 2, 2, 1]);
    assert_eq!(set(&ids), set(&all));
    // The default and the maximum.
    let page = search_page(&app, &c, "", None).await;
    assert_eq!(page.body["items"].as_array().map(Vec::len), Some(7));
    assert!(page.body["next_cursor"].is_null());
    search_page(&app, &c, "limit=500", None).await;

    for bad in ["limit=0", "limit=501", "limit=-1"] {
        let answer = app.get_at(&format!("/v1/listings?{bad}"), &c, None).await;
        assert_invalid_field(&answer, "limit");
    }
    for bad in [
        "cursor=not-a-cursor",
        "limit=ten",
        "colour=red",
        "vendor_id=nobody",
        "quantity=many",
    ] {
        let answer = app.get_at(&format!("/v1/listings?{bad}"), &c, None).await;
        assert_problem(&answer, StatusCode::BAD_REQUEST, "bad-request");
    }
    app.stop().await;
}

#[tokio::test]
async fn customers_see_only_published_listings_vendors_also_their_own_and_admins_all() {
    let app = TestApp::spawn().await;
    let harbour = app.register_vendor("Harbour").await;
    let alpine = app.register_vendor("Alpine").await;
    let (live, _) = published(&app, harbour, sale_body("Live", "On sale", "gear", 1)).await;
    let (draft, _) = create_listing(&app, harbour, sale_body("Draft", "Soon", "gear", 1)).await;
    let (archived, _) = published(&app, harbour, sale_body("Old", "Gone", "gear", 1)).await;
    let archive = app.archive_listing(&app.vendor(harbour), archived).await;
    assert_ok(&archive);
    let (other_draft, last) =
        create_listing(&app, alpine, sale_body("Alpine draft", "Soon", "gear", 1)).await;
    let last = last.max(position(&archive));

    let customer = app.customer("alice");
    let owner = app.vendor(harbour);
    let other = app.vendor(alpine);
    let admin = app.admin();
    let analyst = app.analyst();
    assert_eq!(
        search_ids(&app, &customer, "", Some(last)).await,
        set(&[live])
    );
    assert_eq!(
        search_ids(&app, &analyst, "", Some(last)).await,
        set(&[live])
    );
    assert_eq!(
        search_ids(&app, &owner, "", Some(last)).await,
        set(&[live, draft, archived])
    );
    assert_eq!(
        search_ids(&app, &other, "", Some(last)).await,
        set(&[live, other_draft])
    );
    assert_eq!(
        search_ids(&app, &admin, "", Some(last)).await,
        set(&[live, draft, archived, other_draft])
    );

    let detail = |id: Uuid| format!("/v1/listings/{id}");
    for (token, id, visible) in [
        (&customer, live, true),
        (&customer, draft, false),
        (&customer, archived, false),
        (&analyst, draft, false),
        (&owner, draft, true),
        (&owner, archived, true),
        (&other, draft, false),
        (&other, archived, false),
        (&admin, draft, true),
        (&admin, other_draft, true),
    ] {
        let answer = app.get_at(&detail(id), token, Some(last)).await;
        if visible {
            assert_ok(&answer);
            assert_eq!(answer.body["listing_id"], id.to_string());
        } else {
            assert_problem(&answer, StatusCode::NOT_FOUND, "not-found");
        }
    }
    let as_owner = app.get_at(&detail(draft), &owner, None).await;
    assert_eq!(as_owner.body["status"], "draft");
    let as_owner = app.get_at(&detail(archived), &owner, None).await;
    assert_eq!(as_owner.body["status"], "archived");

    // Availability follows the same visibility.
    let availability = |id: Uuid| {
        format!(
            "/v1/listings/{id}/availability?from={}&to={}",
            at(0, 0),
            at(1, 0)
        )
    };
    let hidden = app.get_at(&availability(draft), &customer, None).await;
    assert_problem(&hidden, StatusCode::NOT_FOUND, "not-found");
    assert_ok(&app.get_at(&availability(draft), &owner, None).await);
    app.stop().await;
}

#[tokio::test]
async fn listing_detail_of_an_unknown_listing_is_404() {
    let app = TestApp::spawn().await;
    let c = app.customer("alice");
    let unknown = app
        .get_at(&format!("/v1/listings/{}", Uuid::now_v7()), &c, None)
        .await;
    assert_problem(&unknown, StatusCode::NOT_FOUND, "not-found");
    let garbage = app.get_at("/v1/listings/not-a-listing", &c, None).await;
    assert_eq!(garbage.status, StatusCode::NOT_FOUND, "{:?}", garbage.body);
    let availability = app
        .get_at(
            &format!(
                "/v1/listings/{}/availability?from={}&to={}",
                Uuid::now_v7(),
                at(0, 0),
                at(1, 0)
            ),
            &c,
            None,
        )
        .await;
    assert_problem(&availability, StatusCode::NOT_FOUND, "not-found");
    app.stop().await;
}

#[tokio::test]
async fn listing_detail_shows_the_current_price_units_and_free_stock() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Harbour").await;
    let owner = app.vendor(vendor);
    let c = app.customer("alice");
    let kayak = app.rental_listing(vendor, "day", "20.00", "50.00", 2).await;
    let paddle = app.sale_listing(vendor, "15.00", 5).await;

    let repriced = app
        .change_price(&owner, kayak, json!({"price_per_unit": "22.50"}))
        .await;
    assert_ok(&repriced);
    let restocked = app.change_stock(&owner, kayak, json!({"units": 4})).await;
    assert_ok(&restocked);
    let detail = app
        .get_at(
            &format!("/v1/listings/{kayak}"),
            &c,
            Some(position(&repriced).max(position(&restocked))),
        )
        .await;
    assert_ok(&detail);
    assert_eq!(detail.body["kind"], "rental");
    assert_eq!(detail.body["status"], "published");
    assert_eq!(detail.body["pricing_unit"], "day");
    assert_eq!(detail.body["price_per_unit"], "22.50");
    assert_eq!(detail.body["deposit"], "50.00");
    assert_eq!(detail.body["units"], 4);
    assert_eq!(detail.body["vendor_id"], vendor.to_string());

    let repriced = app
        .change_price(&owner, paddle, json!({"unit_price": "9.99"}))
        .await;
    assert_ok(&repriced);
    let detail = app
        .get_at(
            &format!("/v1/listings/{paddle}"),
            &c,
            Some(position(&repriced)),
        )
        .await;
    assert_eq!(detail.body["unit_price"], "9.99");
    assert_eq!(detail.body["stock"], 5);

    // A sale order takes stock; a cancel gives it back.
    let order = app.place("alice", vec![sale_item(paddle, 2)]).await;
    let detail = app
        .get_at(
            &format!("/v1/listings/{paddle}"),
            &c,
            Some(position(&order)),
        )
        .await;
    assert_eq!(detail.body["stock"], 3, "{:?}", detail.body);
    let cancelled = cancel(&app, "alice", order.uuid("order_id")).await;
    let detail = app
        .get_at(
            &format!("/v1/listings/{paddle}"),
            &c,
            Some(position(&cancelled)),
        )
        .await;
    assert_eq!(detail.body["stock"], 5, "{:?}", detail.body);

    // Paid, the sold units stay gone; added stock shows.
    let order = app.place("alice", vec![sale_item(paddle, 4)]).await;
    app.pay(&order).await;
    let added = app.change_stock(&owner, paddle, json!({"delta": 3})).await;
    assert_ok(&added);
    let detail = app
        .get_at(
            &format!("/v1/listings/{paddle}"),
            &c,
            Some(position(&added)),
        )
        .await;
    assert_eq!(detail.body["stock"], 4, "5 - 4 sold + 3: {:?}", detail.body);
    app.stop().await;
}

// ---------------------------------------------------------------------------
// Listings: availability
// ---------------------------------------------------------------------------

/// `(start hour, end hour, free)` of each slot, hours from `at(0, 0)`.
fn slot_hours(answer: &Answer) -> Vec<(i64, i64, i64)> {
    let base = instant(&json!(at(0, 0)));
    answer.body["slots"]
        .as_array()
        .unwrap_or_else(|| panic!("no slots: {:?}", answer.body))
        .iter()
        .map(|s| {
            (
                (instant(&s["start"]) - base).num_hours(),
                (instant(&s["end"]) - base).num_hours(),
                s["free"].as_i64().expect("free is an integer"),
            )
        })
        .collect()
}

#[tokio::test]
async fn availability_lists_maximal_slots_of_constant_free_units() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Harbour").await;
    let listing = app.rental_listing(vendor, "hour", "4.00", "5.00", 3).await;
    app.place("alice", vec![rental_item(listing, 1, &at(0, 2), &at(0, 5))])
        .await;
    app.place("bob", vec![rental_item(listing, 2, &at(0, 4), &at(0, 6))])
        .await;
    add_blackout(&app, vendor, listing, &at(0, 6), &at(0, 8), Some(1)).await;
    let order = app
        .place("carol", vec![rental_item(listing, 1, &at(0, 8), &at(0, 9))])
        .await;
    let last = add_blackout(&app, vendor, listing, &at(0, 10), &at(0, 11), None).await;
    let last = last.max(position(&order));
    let c = app.customer("dave");
    let path = |from: i64, to: i64, extra: &str| {
        format!(
            "/v1/listings/{listing}/availability?from={}&to={}{extra}",
            at(0, from),
            at(0, to)
        )
    };

    let whole = app.get_at(&path(0, 12, ""), &c, Some(last)).await;
    assert_ok(&whole);
    assert_eq!(whole.body["listing_id"], listing.to_string());
    assert_eq!(whole.body["units"], 3);
    assert_eq!(
        slot_hours(&whole),
        vec![
            (0, 2, 3),
            (2, 4, 2),
            (4, 5, 0),
            (5, 6, 1),
            // blackout of 1 unit, then an order of 1: one slot
            (6, 9, 2),
            (9, 10, 3),
            (10, 11, 0),
            (11, 12, 3),
        ]
    );
    assert_eq!(whole.body["free_min"], 0);
    assert_eq!(whole.body["available"], false);

    let middle = app.get_at(&path(5, 10, ""), &c, None).await;
    assert_eq!(slot_hours(&middle), vec![(5, 6, 1), (6, 9, 2), (9, 10, 3)]);
    assert_eq!(middle.body["free_min"], 1);
    assert_eq!(middle.body["available"], true);
    let two = app.get_at(&path(5, 10, "&quantity=2"), &c, None).await;
    assert_eq!(two.body["available"], false);
    assert_eq!(two.body["free_min"], 1);
    let late = app.get_at(&path(6, 9, "&quantity=2"), &c, None).await;
    assert_eq!(slot_hours(&late), vec![(6, 9, 2)]);
    assert_eq!(late.body["available"], true);
    let free = app.get_at(&path(11, 14, ""), &c, None).await;
    assert_eq!(slot_hours(&free), vec![(11, 14, 3)]);
    assert_eq!(free.body["free_min"], 3);
    app.stop().await;
}

#[tokio::test]
async fn availability_no_longer_counts_a_hold_that_lapsed() {
    // A short hold, and a sweeper too slow to expire it during the test:
    // the read model itself must stop counting a lapsed hold.
    let app = TestApp::spawn_with(|config| {
        config.hold_ttl = Duration::from_secs(4);
        config.sweep_interval = Duration::from_secs(3600);
    })
    .await;
    let vendor = app.register_vendor("Harbour").await;
    let listing = app.rental_listing(vendor, "day", "10.00", "5.00", 2).await;
    let order = app
        .place("alice", vec![rental_item(listing, 2, &at(1, 0), &at(3, 0))])
        .await;
    let c = app.customer("bob");
    let path = format!(
        "/v1/listings/{listing}/availability?from={}&to={}",
        at(0, 0),
        at(4, 0)
    );
    let search = format!(
        "available_from={}&available_to={}&quantity=2",
        at(1, 0),
        at(2, 0)
    );
    let held = app.get_at(&path, &c, Some(position(&order))).await;
    assert_ok(&held);
    assert_eq!(held.body["free_min"], 0, "{:?}", held.body);
    assert!(search_ids(&app, &c, &search, None).await.is_empty());

    let expires = instant(&order.body["hold_expires_at"]);
    let wait = (expires - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(300);
    tokio::time::sleep(wait).await;
    let lapsed = app.get_at(&path, &c, None).await;
    assert_ok(&lapsed);
    assert_eq!(slot_hours(&lapsed), vec![(0, 96, 2)]);
    assert_eq!(lapsed.body["available"], true);
    assert_eq!(search_ids(&app, &c, &search, None).await, set(&[listing]));
    app.stop().await;
}

#[tokio::test]
async fn availability_parameters_are_validated() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Harbour").await;
    let listing = app.rental_listing(vendor, "day", "10.00", "5.00", 2).await;
    let c = app.customer("alice");
    let base = format!("/v1/listings/{listing}/availability");
    for (from, to) in [(at(2, 0), at(2, 0)), (at(3, 0), at(2, 0))] {
        let answer = app
            .get_at(&format!("{base}?from={from}&to={to}"), &c, None)
            .await;
        assert_invalid_field(&answer, "to");
    }
    for query in [
        format!("?to={}", at(2, 0)),
        format!("?from={}", at(2, 0)),
        String::new(),
        format!("?from=yesterday&to={}", at(2, 0)),
        format!("?from={}&to={}&colour=red", at(1, 0), at(2, 0)),
    ] {
        let answer = app.get_at(&format!("{base}{query}"), &c, None).await;
        assert_problem(&answer, StatusCode::BAD_REQUEST, "bad-request");
    }
    let zero = app
        .get_at(
            &format!("{base}?from={}&to={}&quantity=0", at(1, 0), at(2, 0)),
            &c,
            None,
        )
        .await;
    assert_invalid_field(&zero, "quantity");
    app.stop().await;
}

// ---------------------------------------------------------------------------
// Orders
// ---------------------------------------------------------------------------

fn line_of(order: &Value, vendor_id: Uuid) -> &Value {
    order["lines"]
        .as_array()
        .and_then(|lines| {
            lines
                .iter()
                .find(|l| l["vendor_id"] == vendor_id.to_string())
        })
        .unwrap_or_else(|| panic!("no line of {vendor_id}: {order}"))
}

fn part_of(order: &Value, vendor_id: Uuid) -> &Value {
    order["vendors"]
        .as_array()
        .and_then(|parts| {
            parts
                .iter()
                .find(|p| p["vendor_id"] == vendor_id.to_string())
        })
        .unwrap_or_else(|| panic!("no part of {vendor_id}: {order}"))
}

async fn order_as(app: &TestApp, order_id: Uuid, token: &str, min: i64) -> Value {
    let answer = app
        .get_at(&format!("/v1/orders/{order_id}"), token, Some(min))
        .await;
    assert_ok(&answer);
    assert!(ledger_position(&answer) >= min);
    answer.body
}

#[tokio::test]
async fn the_owning_customer_sees_the_whole_order_through_its_lifecycle() {
    let app = TestApp::spawn().await;
    let shop = Marketplace::new(&app).with_harbour_and_alpine(5, 20).await;
    let placed = app.place("alice", shop.mixed_order()).await;
    let order_id = placed.uuid("order_id");
    let alice = app.customer("alice");

    let shown = order_as(&app, order_id, &alice, position(&placed)).await;
    assert_eq!(shown["order_id"], order_id.to_string());
    assert_eq!(shown["customer_id"], "alice");
    assert_eq!(shown["status"], "placed");
    for field in ["currency", "subtotal", "tax", "deposit", "total"] {
        assert_eq!(shown[field], placed.body[field], "{field}");
    }
    assert_eq!(shown["total"], "120.00");
    assert_eq!(
        instant(&shown["hold_expires_at"]),
        instant(&placed.body["hold_expires_at"])
    );
    let placed_lines = placed.body["lines"].as_array().expect("lines");
    assert_eq!(shown["lines"].as_array().map(Vec::len), Some(2));
    for placed_line in placed_lines {
        let line = shown["lines"]
            .as_array()
            .and_then(|lines| {
                lines
                    .iter()
                    .find(|l| l["line_id"] == placed_line["line_id"])
            })
            .unwrap_or_else(|| panic!("line missing: {placed_line}"));
        for field in [
            "listing_id",
            "vendor_id",
            "kind",
            "quantity",
            "unit_price",
            "subtotal",
            "tax",
            "deposit",
        ] {
            assert_eq!(line[field], placed_line[field], "line {field}");
        }
        if placed_line["kind"] == "rental" {
            assert_eq!(instant(&line["start"]), instant(&placed_line["start"]));
            assert_eq!(instant(&line["end"]), instant(&placed_line["end"]));
            assert_eq!(line["billable_units"], placed_line["billable_units"]);
        }
        assert_eq!(line["status"], "pending");
    }
    let placed_parts = placed.body["vendors"].as_array().expect("vendors");
    assert_eq!(shown["vendors"].as_array().map(Vec::len), Some(2));
    for placed_part in placed_parts {
        let part = part_of(&shown, uuid_of(&placed_part["vendor_id"]));
        for field in ["subtotal", "platform_fee", "net"] {
            assert_eq!(part[field], placed_part[field], "part {field}");
        }
        assert_eq!(part["status"], "pending");
    }
    assert_eq!(shown["payments"], json!([]));
    assert_eq!(shown["refunds"], json!([]));

    // Paid: confirmed, with the payment.
    let paid = app.pay(&placed).await;
    let shown = order_as(&app, order_id, &alice, position(&paid)).await;
    assert_eq!(shown["status"], "confirmed");
    let payments = shown["payments"].as_array().expect("payments");
    assert_eq!(payments.len(), 1, "{payments:?}");
    assert_eq!(payments[0]["outcome"], "captured");
    assert_eq!(payments[0]["amount"], "120.00");
    assert_eq!(shown["refunds"], json!([]));

    // The sale part ships and is delivered.
    let alpine = app.vendor(shop.alpine);
    let shipped = app
        .post(
            &format!("/v1/orders/{order_id}/vendors/{}/ship", shop.alpine),
            &alpine,
            json!({}),
        )
        .await;
    assert_ok(&shipped);
    let shown = order_as(&app, order_id, &alice, position(&shipped)).await;
    assert_eq!(line_of(&shown, shop.alpine)["status"], "shipped");
    assert_eq!(part_of(&shown, shop.alpine)["status"], "in_progress");
    assert_eq!(part_of(&shown, shop.harbour)["status"], "pending");
    let delivered = app
        .post(
            &format!("/v1/orders/{order_id}/vendors/{}/deliver", shop.alpine),
            &alpine,
            json!({}),
        )
        .await;
    assert_ok(&delivered);
    let shown = order_as(&app, order_id, &alice, position(&delivered)).await;
    assert_eq!(line_of(&shown, shop.alpine)["status"], "delivered");
    assert_eq!(part_of(&shown, shop.alpine)["status"], "fulfilled");
    assert_eq!(shown["status"], "confirmed");

    // The rental is picked up and returned with damage withheld.
    let harbour = app.vendor(shop.harbour);
    let rental_line = uuid_of(&line_of(&shown, shop.harbour)["line_id"]);
    let picked = app.pickup(&harbour, order_id, rental_line).await;
    assert_ok(&picked);
    let shown = order_as(&app, order_id, &alice, position(&picked)).await;
    assert_eq!(line_of(&shown, shop.harbour)["status"], "picked_up");
    assert_eq!(part_of(&shown, shop.harbour)["status"], "in_progress");
    let returned = app
        .return_line(
            &harbour,
            order_id,
            rental_line,
            json!({"returned_at": at(3, 0), "damage_withheld": "12.50"}),
        )
        .await;
    assert_ok(&returned);
    let shown = order_as(&app, order_id, &alice, position(&returned)).await;
    let line = line_of(&shown, shop.harbour);
    assert_eq!(line["status"], "returned");
    assert_eq!(line["deposit_refunded"], "37.50");
    assert_eq!(line["damage_withheld"], "12.50");
    assert_eq!(instant(&line["returned_at"]), instant(&json!(at(3, 0))));
    assert_eq!(part_of(&shown, shop.harbour)["status"], "fulfilled");
    assert_eq!(shown["status"], "completed");
    app.stop().await;
}

#[tokio::test]
async fn an_order_cancelled_after_payment_shows_refunded_with_its_refund() {
    let app = TestApp::spawn().await;
    let shop = Marketplace::new(&app).with_harbour_and_alpine(5, 20).await;
    let placed = app.place("alice", shop.mixed_order()).await;
    let order_id = placed.uuid("order_id");
    app.pay(&placed).await;
    let cancelled = cancel(&app, "alice", order_id).await;
    assert_eq!(cancelled.body["status"], "refunded");
    let shown = order_as(&app, order_id, &app.customer("alice"), position(&cancelled)).await;
    assert_eq!(shown["status"], "refunded");
    let refunds = shown["refunds"].as_array().expect("refunds");
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["amount"], "120.00");
    assert!(refunds[0]["reason"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(shown["payments"][0]["outcome"], "captured");

    // A cancel before payment: cancelled, nothing refunded.
    let placed = app.place("alice", shop.mixed_order()).await;
    let cancelled = cancel(&app, "alice", placed.uuid("order_id")).await;
    let shown = order_as(
        &app,
        placed.uuid("order_id"),
        &app.customer("alice"),
        position(&cancelled),
    )
    .await;
    assert_eq!(shown["status"], "cancelled");
    assert_eq!(shown["refunds"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn a_vendor_sees_only_its_lines_and_part_and_strangers_are_refused() {
    let app = TestApp::spawn().await;
    let shop = Marketplace::new(&app).with_harbour_and_alpine(5, 20).await;
    let stranger_vendor = app.register_vendor("Stranger").await;
    let placed = app.place("alice", shop.mixed_order()).await;
    let order_id = placed.uuid("order_id");
    let paid = app.pay(&placed).await;
    let min = position(&paid);

    for vendor in [shop.harbour, shop.alpine] {
        let shown = order_as(&app, order_id, &app.vendor(vendor), min).await;
        assert_eq!(shown["order_id"], order_id.to_string());
        assert_eq!(shown["status"], "confirmed");
        let lines = shown["lines"].as_array().expect("lines");
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["vendor_id"], vendor.to_string());
        let parts = shown["vendors"].as_array().expect("vendors");
        assert_eq!(parts.len(), 1, "{parts:?}");
        assert_eq!(parts[0]["vendor_id"], vendor.to_string());
        for hidden in [
            "payments",
            "refunds",
            "total",
            "subtotal",
            "tax",
            "deposit",
            "customer_id",
        ] {
            assert!(
                shown.get(hidden).is_none(),
                "a vendor sees `{hidden}`: {shown}"
            );
        }
    }

    let admin = order_as(&app, order_id, &app.admin(), min).await;
    assert_eq!(admin["lines"].as_array().map(Vec::len), Some(2));
    assert_eq!(admin["vendors"].as_array().map(Vec::len), Some(2));
    assert_eq!(admin["customer_id"], "alice");
    assert_eq!(admin["payments"].as_array().map(Vec::len), Some(1));
    assert_eq!(admin["total"], "120.00");

    let path = format!("/v1/orders/{order_id}");
    for token in [
        app.customer("bob"),
        app.vendor(stranger_vendor),
        app.analyst(),
        app.auditor(),
    ] {
        let answer = app.get_at(&path, &token, Some(min)).await;
        assert_problem(&answer, StatusCode::FORBIDDEN, "forbidden");
    }
    for token in [app.admin(), app.customer("alice")] {
        let unknown = app
            .get_at(&format!("/v1/orders/{}", Uuid::now_v7()), &token, None)
            .await;
        assert_problem(&unknown, StatusCode::NOT_FOUND, "not-found");
    }
    let garbage = app
        .get_at("/v1/orders/not-an-order", &app.admin(), None)
        .await;
    assert_eq!(garbage.status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn order_lists_are_scoped_to_who_asks_and_filtered_by_status() {
    let app = TestApp::spawn().await;
    let shop = Marketplace::new(&app).with_harbour_and_alpine(5, 20).await;
    let rental = app
        .place(
            "alice",
            vec![rental_item(shop.kayak, 1, &at(1, 0), &at(2, 0))],
        )
        .await;
    let sale = app.place("alice", vec![sale_item(shop.boots, 1)]).await;
    let bobs = app.place("bob", vec![sale_item(shop.boots, 3)]).await;
    let (rental, sale, bobs_id) = (
        rental.uuid("order_id"),
        sale.uuid("order_id"),
        bobs.uuid("order_id"),
    );
    let cancelled = cancel(&app, "bob", bobs_id).await;
    let min = Some(position(&cancelled));
    let list = |query: &str| format!("/v1/orders?{query}");

    let ids = |answer: &Answer| {
        assert_ok(answer);
        ids_of(&answer.body["items"], "order_id")
    };
    let alice = app.customer("alice");
    assert_eq!(
        ids(&app.get_at(&list(""), &alice, min).await),
        set(&[rental, sale])
    );
    assert_eq!(
        ids(&app.get_at(&list(""), &app.customer("bob"), min).await),
        set(&[bobs_id])
    );
    assert!(ids(&app.get_at(&list(""), &app.customer("carol"), min).await).is_empty());
    assert_eq!(
        ids(&app.get_at(&list(""), &app.vendor(shop.harbour), min).await),
        set(&[rental])
    );
    let alpine = app.get_at(&list(""), &app.vendor(shop.alpine), min).await;
    assert_eq!(ids(&alpine), set(&[sale, bobs_id]));
    for item in alpine.body["items"].as_array().expect("items") {
        assert!(item.get("total").is_none() && item.get("payments").is_none());
        for line in item["lines"].as_array().expect("lines") {
            assert_eq!(line["vendor_id"], shop.alpine.to_string());
        }
    }
    let admin = app.admin();
    assert_eq!(
        ids(&app.get_at(&list(""), &admin, min).await),
        set(&[rental, sale, bobs_id])
    );

    // By status.
    assert_eq!(
        ids(&app.get_at(&list("status=cancelled"), &admin, min).await),
        set(&[bobs_id])
    );
    assert_eq!(
        ids(&app.get_at(&list("status=placed"), &admin, min).await),
        set(&[rental, sale])
    );
    assert!(ids(&app.get_at(&list("status=cancelled"), &alice, min).await).is_empty());
    assert_eq!(
        ids(&app
            .get_at(&list("status=cancelled"), &app.vendor(shop.alpine), min)
            .await),
        set(&[bobs_id])
    );
    assert!(ids(&app.get_at(&list("status=confirmed"), &admin, min).await).is_empty());
    let invalid = app.get_at(&list("status=lost"), &admin, None).await;
    assert_invalid_field(&invalid, "status");

    // Pages.
    let (walked, sizes) = walk_pages(&app, &list("limit=1"), &admin, "order_id", min).await;
    assert_eq!(sizes, vec![1, 1, 1]);
    assert_eq!(walked.len(), 3);
    assert_eq!(set(&walked), set(&[rental, sale, bobs_id]));
    let (walked, sizes) = walk_pages(
        &app,
        &list("limit=1&status=placed"),
        &alice,
        "order_id",
        min,
    )
    .await;
    assert_eq!(sizes, vec![1, 1]);
    assert_eq!(set(&walked), set(&[rental, sale]));
    for bad in ["limit=0", "limit=501"] {
        assert_invalid_field(&app.get_at(&list(bad), &admin, None).await, "limit");
    }
    for bad in ["cursor=zzz", "colour=red"] {
        let answer = app.get_at(&list(bad), &admin, None).await;
        assert_problem(&answer, StatusCode::BAD_REQUEST, "bad-request");
    }
    for token in [app.analyst(), app.auditor()] {
        let answer = app.get_at(&list(""), &token, None).await;
        assert_problem(&answer, StatusCode::FORBIDDEN, "forbidden");
    }
    app.stop().await;
}

// ---------------------------------------------------------------------------
// Projections and health
// ---------------------------------------------------------------------------

#[tokio::test]
async fn projections_report_each_consumers_position_and_lag_to_admins_and_analysts() {
    let app = TestApp::spawn().await;
    let shop = Marketplace::new(&app).with_harbour_and_alpine(5, 20).await;
    let placed = app.place("alice", shop.mixed_order()).await;
    let paid = app.pay(&placed).await;
    let last = position(&paid);

    for token in [app.admin(), app.analyst()] {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let answer = app.get_at("/v1/projections", &token, None).await;
            assert_ok(&answer);
            let list = answer.body.as_array().expect("a list").clone();
            for p in &list {
                let position = p["position"].as_i64().expect("position");
                let head = p["head"].as_i64().expect("head");
                let lag = p["lag_events"].as_i64().expect("lag_events");
                let seconds = p["lag_seconds"].as_f64().expect("lag_seconds");
                let state = p["state"].as_str().expect("state");
                assert!(
                    position <= head && head >= last,
                    "position {position}, head {head}"
                );
                assert!(lag >= 0 && seconds >= 0.0, "{p}");
                assert_eq!(lag == 0, state == "live", "{p}");
                if lag == 0 {
                    assert_eq!(seconds, 0.0, "{p}");
                }
            }
            let names: HashSet<&str> = list.iter().filter_map(|p| p["name"].as_str()).collect();
            let caught_up = ["availability", "orders", "policies"].iter().all(|name| {
                list.iter().any(|p| {
                    p["name"] == *name && p["state"] == "live" && p["position"] == p["head"]
                })
            });
            if caught_up {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the consumers did not catch up within 10 s ({names:?}): {list:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for token in [
        app.customer("alice"),
        app.vendor(shop.harbour),
        app.auditor(),
    ] {
        let answer = app.get_at("/v1/projections", &token, None).await;
        assert_problem(&answer, StatusCode::FORBIDDEN, "forbidden");
    }
    app.stop().await;
}

#[tokio::test]
async fn health_needs_no_token_and_queries_need_one() {
    let app = TestApp::spawn().await;
    let live = app.send(Method::GET, "/health/live", None, None, &[]).await;
    assert_ok(&live);
    let ready = app
        .send(Method::GET, "/health/ready", None, None, &[])
        .await;
    assert_ok(&ready);
    assert_eq!(ready.body["checks"]["postgres"], "ok", "{:?}", ready.body);
    assert_eq!(ready.body["checks"]["nats"], "ok", "{:?}", ready.body);

    for path in ["/v1/listings", "/v1/orders", "/v1/projections"] {
        let anonymous = app.send(Method::GET, path, None, None, &[]).await;
        assert_problem(&anonymous, StatusCode::UNAUTHORIZED, "unauthorized");
        let forged = app
            .send(Method::GET, path, Some("not.a.token"), None, &[])
            .await;
        assert_eq!(forged.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    app.stop().await;
}

// ---------------------------------------------------------------------------
// Bugs found while writing these tests, fixed since
// ---------------------------------------------------------------------------

#[tokio::test]
async fn projections_list_every_consumer_even_before_the_first_event() {
    let app = TestApp::spawn().await;
    // Give the consumers time to start (nothing to apply).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let answer = app.get_at("/v1/projections", &app.admin(), None).await;
    assert_ok(&answer);
    let list = answer.body.as_array().expect("a list");
    for name in ["availability", "orders", "policies"] {
        let entry = list
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("`{name}` missing from {list:?}"));
        assert_eq!(entry["position"], 0);
        assert_eq!(entry["head"], 0);
        assert_eq!(entry["lag_events"], 0);
        assert_eq!(entry["state"], "live");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_not_found_query_answer_also_says_where_the_read_model_stood() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Harbour").await;
    let (_, published_at) = published(&app, vendor, sale_body("Rope", "Rope", "gear", 1)).await;
    let c = app.customer("alice");
    for path in [
        format!("/v1/listings/{}", Uuid::now_v7()),
        format!("/v1/orders/{}", Uuid::now_v7()),
        format!(
            "/v1/listings/{}/availability?from={}&to={}",
            Uuid::now_v7(),
            at(0, 0),
            at(1, 0)
        ),
    ] {
        let answer = app.get_at(&path, &c, Some(published_at)).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            answer
                .header("ledger-position")
                .and_then(|p| p.parse::<i64>().ok())
                .is_some_and(|p| p >= published_at),
            "{path}: no Ledger-Position on the 404: {:?}",
            answer.headers
        );
    }
    app.stop().await;
}
