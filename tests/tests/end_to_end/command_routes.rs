//! The command routes of API.md "Commands", driven over HTTP against the real
//! ledger: every route's happy path with the fields of its answer, and the
//! rejections (400, 404, 409, 413, 415, 422) with their problem documents
//! and the guarantee that a rejected command records nothing.

use chrono::Utc;
use ledger_tests::answer::{dec, instant, money, position};
use ledger_tests::{assert_invalid_field, assert_problem};
use ledger_tests::{at, rental_item, sale_item, Answer, TestApp};
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

#[track_caller]
fn assert_created_order(answer: &Answer) {
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    assert_eq!(answer.body["status"], "placed");
}

// ---------------------------------------------------------------------------
// Vendors, listings, inventory
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_admin_registers_a_vendor_201_with_its_id_and_position_and_the_event_carries_the_request_metadata(
) {
    let app = TestApp::spawn().await;
    let before = app.head().await;
    let answer = app
        .send(
            Method::POST,
            "/v1/vendors",
            Some(&app.admin()),
            Some(&json!({"name": "Alpine Outfitters"})),
            &[
                ("x-request-id", "req-register-vendor-1"),
                ("Idempotency-Key", "key-register-vendor-1"),
            ],
        )
        .await;

    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    let vendor_id = answer.uuid("vendor_id");
    let position = position(&answer);
    assert!(position > before);
    assert_eq!(answer.header("x-request-id"), Some("req-register-vendor-1"));

    let events = app.events_of("Vendor", vendor_id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let (event_type, metadata) = &events[0];
    assert_eq!(event_type, "VendorRegistered");
    assert_eq!(metadata["principal"], "admin-1");
    assert_eq!(metadata["principal_role"], "admin");
    assert_eq!(metadata["correlation_id"], "req-register-vendor-1");
    assert!(metadata["causation_id"]
        .as_str()
        .is_some_and(|c| !c.is_empty()));
    assert_eq!(metadata["idempotency_key"], "key-register-vendor-1");
    assert_eq!(app.head().await, position);
}

#[tokio::test]
async fn events_of_a_request_without_an_idempotency_key_carry_no_key_and_a_generated_correlation_id(
) {
    let app = TestApp::spawn().await;
    let answer = app
        .post("/v1/vendors", &app.admin(), json!({"name": "No Key Ltd"}))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    let events = app.events_of("Vendor", answer.uuid("vendor_id")).await;
    let metadata = &events[0].1;
    assert!(metadata.get("idempotency_key").is_none(), "{metadata}");
    let correlation = metadata["correlation_id"].as_str().unwrap_or("");
    assert!(!correlation.is_empty(), "{metadata}");
    assert_eq!(answer.header("x-request-id"), Some(correlation));
}

#[tokio::test]
async fn a_vendor_creates_a_rental_and_an_admin_a_sale_listing_for_a_vendor_both_201_draft() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let start = app.head().await;

    let rental = app
        .create_listing(
            &app.vendor(vendor_id),
            json!({"title": "Kayak", "description": "Two-seat", "category": "boats",
                   "kind": "rental", "pricing_unit": "day", "price_per_unit": "45.00",
                   "deposit": "100.00", "units": 3}),
        )
        .await;
    assert_eq!(rental.status, StatusCode::CREATED, "{:?}", rental.body);
    assert_eq!(rental.body["status"], "draft");
    let rental_id = rental.uuid("listing_id");
    let rental_position = position(&rental);
    assert!(rental_position > start);

    let sale = app
        .create_listing(
            &app.admin(),
            json!({"vendor_id": vendor_id, "title": "Paddle", "description": "Carbon",
                   "category": "gear", "kind": "sale", "unit_price": "19.99", "stock": 7}),
        )
        .await;
    assert_eq!(sale.status, StatusCode::CREATED, "{:?}", sale.body);
    assert_eq!(sale.body["status"], "draft");
    assert_eq!(sale.body["vendor_id"], vendor_id.to_string());
    let sale_id = sale.uuid("listing_id");
    assert_ne!(sale_id, rental_id);
    assert!(position(&sale) > rental_position);

    for (listing_id, principal) in [
        (rental_id, format!("vendor-user-{vendor_id}")),
        (sale_id, "admin-1".to_owned()),
    ] {
        let listing = app.events_of("Listing", listing_id).await;
        assert_eq!(listing.len(), 1);
        assert_eq!(listing[0].0, "ListingCreated");
        assert_eq!(listing[0].1["principal"], principal.as_str());
        let inventory = app.events_of("Inventory", listing_id).await;
        assert_eq!(inventory.len(), 1);
        assert_eq!(inventory[0].0, "InventoryInitialized");
    }

    // A draft cannot be ordered yet.
    let before = app.event_count().await;
    let order = app.place_order("c1", vec![sale_item(sale_id, 1)]).await;
    assert_invalid_field(&order, "items[0].listing_id");
    app.assert_nothing_recorded(before, "ordering a draft")
        .await;
}

#[tokio::test]
async fn publish_then_archive_answer_200_with_the_new_status_and_an_archived_listing_cannot_be_published_409(
) {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let created = app
        .create_listing(
            &app.vendor(vendor_id),
            json!({"title": "Tent", "category": "camping", "kind": "sale",
                   "unit_price": "120.00", "stock": 2}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let listing_id = created.uuid("listing_id");

    let published = app
        .publish_listing(&app.vendor(vendor_id), listing_id)
        .await;
    assert_eq!(published.status, StatusCode::OK, "{:?}", published.body);
    assert_eq!(published.body["listing_id"], listing_id.to_string());
    assert_eq!(published.body["status"], "published");
    assert!(position(&published) > position(&created));

    // Published listings can be ordered.
    let order = app.place_order("c1", vec![sale_item(listing_id, 1)]).await;
    assert_created_order(&order);

    let archived = app.archive_listing(&app.admin(), listing_id).await;
    assert_eq!(archived.status, StatusCode::OK, "{:?}", archived.body);
    assert_eq!(archived.body["status"], "archived");
    assert!(position(&archived) > position(&order));

    let before = app.event_count().await;
    let again = app
        .publish_listing(&app.vendor(vendor_id), listing_id)
        .await;
    assert_problem(&again, StatusCode::CONFLICT, "invalid-state");
    let ordered = app.place_order("c1", vec![sale_item(listing_id, 1)]).await;
    assert_invalid_field(&ordered, "items[0].listing_id");
    app.assert_nothing_recorded(before, "publishing an archived listing")
        .await;
}

#[tokio::test]
async fn a_price_change_answers_200_with_the_new_price_and_applies_to_new_orders_for_rentals_and_sales(
) {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let rental = app
        .rental_listing(vendor_id, "day", "45.00", "0.00", 2)
        .await;
    let sale = app.sale_listing(vendor_id, "10.00", 5).await;

    let rental_price = app
        .change_price(
            &app.vendor(vendor_id),
            rental,
            json!({"price_per_unit": "50.5"}),
        )
        .await;
    assert_eq!(
        rental_price.status,
        StatusCode::OK,
        "{:?}",
        rental_price.body
    );
    assert_eq!(rental_price.body["listing_id"], rental.to_string());
    assert_eq!(rental_price.body["price_per_unit"], "50.50");
    let first = position(&rental_price);

    let sale_price = app
        .change_price(&app.admin(), sale, json!({"unit_price": "12.25"}))
        .await;
    assert_eq!(sale_price.status, StatusCode::OK, "{:?}", sale_price.body);
    assert_eq!(sale_price.body["unit_price"], "12.25");
    assert!(position(&sale_price) > first);

    let order = app
        .place_order(
            "c1",
            vec![
                rental_item(rental, 1, &at(1, 0), &at(3, 0)),
                sale_item(sale, 2),
            ],
        )
        .await;
    assert_created_order(&order);
    let lines = order.body["lines"].as_array().expect("lines");
    assert_eq!(money(&lines[0], "unit_price"), dec("50.50"));
    assert_eq!(money(&lines[0], "subtotal"), dec("101.00"));
    assert_eq!(money(&lines[1], "unit_price"), dec("12.25"));
    assert_eq!(money(&lines[1], "subtotal"), dec("24.50"));

    // The wrong price field for the kind, or a bad amount, is 422.
    let before = app.event_count().await;
    let wrong_field = app
        .change_price(&app.admin(), rental, json!({"unit_price": "1.00"}))
        .await;
    assert_invalid_field(&wrong_field, "price_per_unit");
    let bad_amount = app
        .change_price(&app.admin(), sale, json!({"unit_price": "0.001"}))
        .await;
    assert_invalid_field(&bad_amount, "unit_price");
    let zero = app
        .change_price(&app.admin(), sale, json!({"unit_price": "0.00"}))
        .await;
    assert_invalid_field(&zero, "unit_price");
    app.assert_nothing_recorded(before, "an invalid price")
        .await;
}

#[tokio::test]
async fn stock_changes_set_rental_units_and_adjust_sale_stock_and_bound_what_can_be_ordered() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let rental = app
        .rental_listing(vendor_id, "day", "10.00", "0.00", 1)
        .await;
    let sale = app.sale_listing(vendor_id, "5.00", 1).await;

    let units = app
        .change_stock(&app.vendor(vendor_id), rental, json!({"units": 3}))
        .await;
    assert_eq!(units.status, StatusCode::OK, "{:?}", units.body);
    assert_eq!(units.body["listing_id"], rental.to_string());
    assert_eq!(units.body["units"], 3);
    let first = position(&units);

    let stock = app
        .change_stock(&app.admin(), sale, json!({"delta": 4}))
        .await;
    assert_eq!(stock.status, StatusCode::OK, "{:?}", stock.body);
    assert_eq!(stock.body["stock"], 5);
    assert!(position(&stock) > first);

    let order = app
        .place_order(
            "c1",
            vec![
                rental_item(rental, 3, &at(1, 0), &at(2, 0)),
                sale_item(sale, 5),
            ],
        )
        .await;
    assert_created_order(&order);

    // The wrong field for the kind is 422.
    let before = app.event_count().await;
    let wrong = app
        .change_stock(&app.admin(), sale, json!({"units": 3}))
        .await;
    assert_invalid_field(&wrong, "delta");
    let wrong = app
        .change_stock(&app.admin(), rental, json!({"delta": 1}))
        .await;
    assert_invalid_field(&wrong, "units");
    let zero_units = app
        .change_stock(&app.admin(), rental, json!({"units": 0}))
        .await;
    assert_invalid_field(&zero_units, "units");
    app.assert_nothing_recorded(before, "an invalid stock change")
        .await;
}

#[tokio::test]
async fn a_stock_change_that_would_undercut_held_units_is_409_would_undercut_and_records_nothing() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let rental = app
        .rental_listing(vendor_id, "day", "10.00", "0.00", 3)
        .await;
    let sale = app.sale_listing(vendor_id, "5.00", 5).await;
    let order = app
        .place_order(
            "c1",
            vec![
                rental_item(rental, 2, &at(1, 0), &at(2, 0)),
                sale_item(sale, 4),
            ],
        )
        .await;
    assert_created_order(&order);

    let before = app.event_count().await;
    let units = app
        .change_stock(&app.vendor(vendor_id), rental, json!({"units": 1}))
        .await;
    assert_problem(&units, StatusCode::CONFLICT, "would-undercut");
    // Stock 5 with 4 held: taking 2 away leaves 3 < 4.
    let stock = app
        .change_stock(&app.vendor(vendor_id), sale, json!({"delta": -2}))
        .await;
    assert_problem(&stock, StatusCode::CONFLICT, "would-undercut");
    let negative = app
        .change_stock(&app.vendor(vendor_id), sale, json!({"delta": -50}))
        .await;
    assert_problem(&negative, StatusCode::CONFLICT, "would-undercut");
    app.assert_nothing_recorded(before, "an undercutting stock change")
        .await;

    // What is not held can still go.
    let fits = app
        .change_stock(&app.vendor(vendor_id), rental, json!({"units": 2}))
        .await;
    assert_eq!(fits.status, StatusCode::OK, "{:?}", fits.body);
    let fits = app
        .change_stock(&app.vendor(vendor_id), sale, json!({"delta": -1}))
        .await;
    assert_eq!(fits.status, StatusCode::OK, "{:?}", fits.body);
}

#[tokio::test]
async fn a_blackout_is_added_201_blocks_its_units_and_is_removed_200_freeing_them() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let rental = app
        .rental_listing(vendor_id, "day", "10.00", "0.00", 2)
        .await;

    let added = app
        .add_blackout(
            &app.vendor(vendor_id),
            rental,
            json!({"start": at(1, 0), "end": at(3, 0), "units": 1, "reason": "maintenance"}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{:?}", added.body);
    let blackout_id = added.uuid("blackout_id");
    let added_position = position(&added);

    // One unit is left during the blackout: two are unavailable.
    let before = app.event_count().await;
    let refused = app
        .place_order("c1", vec![rental_item(rental, 2, &at(2, 0), &at(2, 12))])
        .await;
    assert_problem(&refused, StatusCode::CONFLICT, "unavailable");
    assert_eq!(refused.body["conflicts"][0]["free"], 1);
    app.assert_nothing_recorded(before, "an unavailable order")
        .await;

    // A blackout of every unit (no `units`) beside it, then both removed.
    let whole = app
        .add_blackout(
            &app.admin(),
            rental,
            json!({"start": at(5, 0), "end": at(6, 0), "reason": "inspection"}),
        )
        .await;
    assert_eq!(whole.status, StatusCode::CREATED, "{:?}", whole.body);
    assert!(position(&whole) > added_position);
    let refused = app
        .place_order("c1", vec![rental_item(rental, 1, &at(5, 6), &at(5, 7))])
        .await;
    assert_problem(&refused, StatusCode::CONFLICT, "unavailable");
    assert_eq!(refused.body["conflicts"][0]["free"], 0);

    let removed = app
        .remove_blackout(&app.vendor(vendor_id), rental, blackout_id)
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{:?}", removed.body);
    assert_eq!(removed.body["blackout_id"], blackout_id.to_string());
    assert!(position(&removed) > position(&whole));
    let order = app
        .place_order("c1", vec![rental_item(rental, 2, &at(2, 0), &at(2, 12))])
        .await;
    assert_created_order(&order);

    // Removing it again: no such blackout.
    let before = app.event_count().await;
    let again = app
        .remove_blackout(&app.vendor(vendor_id), rental, blackout_id)
        .await;
    assert_problem(&again, StatusCode::NOT_FOUND, "not-found");
    app.assert_nothing_recorded(before, "removing a removed blackout")
        .await;
}

#[tokio::test]
async fn a_blackout_that_held_or_booked_units_would_not_fit_is_409_and_records_nothing() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let rental = app
        .rental_listing(vendor_id, "day", "10.00", "0.00", 2)
        .await;
    let order = app
        .place_order("c1", vec![rental_item(rental, 1, &at(1, 0), &at(2, 0))])
        .await;
    assert_created_order(&order);
    app.pay(&order).await;

    let before = app.event_count().await;
    let whole = app
        .add_blackout(
            &app.vendor(vendor_id),
            rental,
            json!({"start": at(1, 12), "end": at(4, 0), "reason": "repair"}),
        )
        .await;
    assert_problem(&whole, StatusCode::CONFLICT, "would-undercut");
    let two = app
        .add_blackout(
            &app.vendor(vendor_id),
            rental,
            json!({"start": at(0, 0), "end": at(1, 1), "units": 2, "reason": "repair"}),
        )
        .await;
    assert_problem(&two, StatusCode::CONFLICT, "would-undercut");
    app.assert_nothing_recorded(before, "a blackout over booked units")
        .await;

    // The free unit can be blacked out; so can every unit after the booking.
    let one = app
        .add_blackout(
            &app.vendor(vendor_id),
            rental,
            json!({"start": at(1, 12), "end": at(4, 0), "units": 1, "reason": "repair"}),
        )
        .await;
    assert_eq!(one.status, StatusCode::CREATED, "{:?}", one.body);
    let after = app
        .add_blackout(
            &app.vendor(vendor_id),
            rental,
            json!({"start": at(4, 0), "end": at(5, 0), "reason": "repair"}),
        )
        .await;
    assert_eq!(after.status, StatusCode::CREATED, "{:?}", after.body);
}

#[tokio::test]
async fn blackout_bodies_with_a_bad_period_or_zero_units_are_422_and_record_nothing() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let rental = app
        .rental_listing(vendor_id, "day", "10.00", "0.00", 2)
        .await;
    let path = format!("/v1/listings/{rental}/blackouts");
    let before = app.event_count().await;

    let backwards = app
        .post(
            &path,
            &app.admin(),
            json!({"start": at(3, 0), "end": at(1, 0), "reason": "x"}),
        )
        .await;
    assert_invalid_field(&backwards, "end");
    let empty = app
        .post(
            &path,
            &app.admin(),
            json!({"start": at(3, 0), "end": at(3, 0), "reason": "x"}),
        )
        .await;
    assert_invalid_field(&empty, "end");
    let zero = app
        .post(
            &path,
            &app.admin(),
            json!({"start": at(1, 0), "end": at(2, 0), "units": 0, "reason": "x"}),
        )
        .await;
    assert_invalid_field(&zero, "units");
    let not_a_time = app
        .post(
            &path,
            &app.admin(),
            json!({"start": "tomorrow", "end": at(2, 0), "reason": "x"}),
        )
        .await;
    assert_invalid_field(&not_a_time, "start");
    let missing = app
        .post(&path, &app.admin(), json!({"end": at(2, 0), "reason": "x"}))
        .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    app.assert_nothing_recorded(before, "an invalid blackout")
        .await;
}

// ---------------------------------------------------------------------------
// Orders
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_multi_vendor_order_is_201_placed_with_every_line_priced_and_the_fee_split_per_vendor() {
    let app = TestApp::spawn().await;
    let alpine = app.register_vendor("Alpine").await;
    let coast = app.register_vendor("Coast").await;
    let kayak = app
        .rental_listing(alpine, "day", "45.00", "100.00", 3)
        .await;
    let sup = app.rental_listing(coast, "hour", "12.35", "20.00", 2).await;
    let paddle = app.sale_listing(coast, "11.99", 10).await;
    let before_position = app.head().await;

    let started = Utc::now();
    let answer = app
        .send(
            Method::POST,
            "/v1/orders",
            Some(&app.customer("customer-7")),
            Some(&json!({"items": [
                // 2.5 days → 3 billable days.
                rental_item(kayak, 2, "2030-01-02T00:00:00Z", "2030-01-04T12:00:00Z"),
                // 5.5 hours → 6 billable hours.
                rental_item(sup, 1, "2030-01-02T00:00:00Z", "2030-01-02T05:30:00Z"),
                sale_item(paddle, 5),
            ]})),
            &[
                ("x-request-id", "req-order-1"),
                ("Idempotency-Key", "order-key-1"),
            ],
        )
        .await;
    let finished = Utc::now();

    assert_created_order(&answer);
    let body = &answer.body;
    let order_id = answer.uuid("order_id");
    assert_eq!(body["currency"], "USD");
    // 45 × 3 × 2 = 270.00; 12.35 × 6 = 74.10; 11.99 × 5 = 59.95.
    assert_eq!(money(body, "subtotal"), dec("404.05"));
    assert_eq!(money(body, "tax"), dec("0.00"));
    assert_eq!(money(body, "deposit"), dec("220.00"));
    assert_eq!(money(body, "total"), dec("624.05"));
    let hold_expires_at = instant(&body["hold_expires_at"]);
    let ttl = chrono::Duration::minutes(15);
    let slack = chrono::Duration::seconds(2);
    assert!(
        hold_expires_at >= started + ttl - slack && hold_expires_at <= finished + ttl + slack,
        "hold_expires_at {hold_expires_at} is not 15 minutes from now"
    );
    let order_position = position(&answer);
    assert!(order_position > before_position);

    let lines = body["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 3, "{body}");
    let line_ids: std::collections::HashSet<&str> =
        lines.iter().filter_map(|l| l["line_id"].as_str()).collect();
    assert_eq!(line_ids.len(), 3, "distinct line ids: {body}");
    for id in &line_ids {
        Uuid::parse_str(id).expect("line_id is a uuid");
    }

    let kayak_line = &lines[0];
    assert_eq!(kayak_line["listing_id"], kayak.to_string());
    assert_eq!(kayak_line["vendor_id"], alpine.to_string());
    assert_eq!(kayak_line["kind"], "rental");
    assert_eq!(
        instant(&kayak_line["start"]),
        instant(&json!("2030-01-02T00:00:00Z"))
    );
    assert_eq!(
        instant(&kayak_line["end"]),
        instant(&json!("2030-01-04T12:00:00Z"))
    );
    assert_eq!(kayak_line["quantity"], 2);
    assert_eq!(kayak_line["billable_units"], 3);
    assert_eq!(money(kayak_line, "unit_price"), dec("45.00"));
    assert_eq!(money(kayak_line, "subtotal"), dec("270.00"));
    assert_eq!(money(kayak_line, "tax"), dec("0.00"));
    assert_eq!(money(kayak_line, "deposit"), dec("200.00"));

    let sup_line = &lines[1];
    assert_eq!(sup_line["listing_id"], sup.to_string());
    assert_eq!(sup_line["vendor_id"], coast.to_string());
    assert_eq!(sup_line["kind"], "rental");
    assert_eq!(
        instant(&sup_line["end"]),
        instant(&json!("2030-01-02T05:30:00Z"))
    );
    assert_eq!(sup_line["quantity"], 1);
    assert_eq!(sup_line["billable_units"], 6);
    assert_eq!(money(sup_line, "unit_price"), dec("12.35"));
    assert_eq!(money(sup_line, "subtotal"), dec("74.10"));
    assert_eq!(money(sup_line, "deposit"), dec("20.00"));

    let paddle_line = &lines[2];
    assert_eq!(paddle_line["listing_id"], paddle.to_string());
    assert_eq!(paddle_line["vendor_id"], coast.to_string());
    assert_eq!(paddle_line["kind"], "sale");
    assert!(
        paddle_line.get("start").is_none_or(Value::is_null),
        "{paddle_line}"
    );
    assert!(
        paddle_line.get("end").is_none_or(Value::is_null),
        "{paddle_line}"
    );
    assert!(
        paddle_line.get("billable_units").is_none_or(Value::is_null),
        "{paddle_line}"
    );
    assert_eq!(paddle_line["quantity"], 5);
    assert_eq!(money(paddle_line, "unit_price"), dec("11.99"));
    assert_eq!(money(paddle_line, "subtotal"), dec("59.95"));
    assert_eq!(money(paddle_line, "deposit"), dec("0.00"));

    let vendors = body["vendors"].as_array().expect("vendors");
    assert_eq!(vendors.len(), 2, "{body}");
    let split = |vendor: Uuid| {
        vendors
            .iter()
            .find(|v| v["vendor_id"] == vendor.to_string())
            .unwrap_or_else(|| panic!("no split for {vendor}: {body}"))
    };
    let a = split(alpine);
    assert_eq!(money(a, "subtotal"), dec("270.00"));
    assert_eq!(money(a, "platform_fee"), dec("27.00"));
    assert_eq!(money(a, "net"), dec("243.00"));
    // 134.05 × 0.10 = 13.405 → 13.41 (half away from zero), net 120.64.
    let c = split(coast);
    assert_eq!(money(c, "subtotal"), dec("134.05"));
    assert_eq!(money(c, "platform_fee"), dec("13.41"));
    assert_eq!(money(c, "net"), dec("120.64"));
    let subtotals: Decimal = vendors.iter().map(|v| money(v, "subtotal")).sum();
    let fees_and_nets: Decimal = vendors
        .iter()
        .map(|v| money(v, "platform_fee") + money(v, "net"))
        .sum();
    assert_eq!(subtotals, money(body, "subtotal"));
    assert_eq!(fees_and_nets, subtotals);

    // Recorded: a hold per line and the order, each with the request's metadata.
    let events = app.events_after(before_position).await;
    let types: Vec<(&str, &str)> = events
        .iter()
        .map(|(t, _, e, _)| (t.as_str(), e.as_str()))
        .collect();
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == ("Inventory", "HoldPlaced"))
            .count(),
        3,
        "{types:?}"
    );
    assert_eq!(types.last(), Some(&("Order", "OrderPlaced")), "{types:?}");
    assert_eq!(
        events.last().map(|e| e.1.clone()),
        Some(order_id.to_string())
    );
    for (_, _, _, metadata) in &events {
        assert_eq!(metadata["principal"], "customer-7", "{metadata}");
        assert_eq!(metadata["principal_role"], "customer", "{metadata}");
        assert_eq!(metadata["correlation_id"], "req-order-1", "{metadata}");
        assert!(metadata["causation_id"]
            .as_str()
            .is_some_and(|c| !c.is_empty()));
        assert_eq!(metadata["idempotency_key"], "order-key-1", "{metadata}");
    }
    assert_eq!(app.head().await, order_position);
}

#[tokio::test]
async fn tax_is_rounded_per_line_and_added_to_the_total_when_a_tax_rate_is_configured() {
    let app = TestApp::spawn_with(|config| config.tax_rate = dec("0.0825")).await;
    let vendor_id = app.register_vendor("Alpine").await;
    let sale = app.sale_listing(vendor_id, "9.99", 10).await;
    let rental = app
        .rental_listing(vendor_id, "hour", "3.33", "50.00", 1)
        .await;
    let order = app
        .place_order(
            "c1",
            vec![
                sale_item(sale, 3),
                rental_item(rental, 1, &at(1, 0), &at(1, 1)),
            ],
        )
        .await;
    assert_created_order(&order);
    let lines = order.body["lines"].as_array().expect("lines");
    // 29.97 × 0.0825 = 2.472525 → 2.47; 3.33 × 0.0825 = 0.274725 → 0.27.
    assert_eq!(money(&lines[0], "tax"), dec("2.47"));
    assert_eq!(money(&lines[1], "tax"), dec("0.27"));
    assert_eq!(money(&order.body, "subtotal"), dec("33.30"));
    assert_eq!(money(&order.body, "tax"), dec("2.74"));
    assert_eq!(money(&order.body, "deposit"), dec("50.00"));
    assert_eq!(money(&order.body, "total"), dec("86.04"));
    // Tax is not part of the vendor's subtotal: fee 3.33, net 29.97.
    let vendor = &order.body["vendors"][0];
    assert_eq!(money(vendor, "subtotal"), dec("33.30"));
    assert_eq!(money(vendor, "platform_fee"), dec("3.33"));
    assert_eq!(money(vendor, "net"), dec("29.97"));
}

#[tokio::test]
async fn ordering_more_than_is_free_is_409_unavailable_naming_each_conflict_and_holds_nothing() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let kayak = app
        .rental_listing(vendor_id, "day", "45.00", "0.00", 2)
        .await;
    let paddle = app.sale_listing(vendor_id, "10.00", 3).await;
    let free_kayak = app
        .rental_listing(vendor_id, "day", "5.00", "0.00", 5)
        .await;
    let first = app
        .place_order("c1", vec![rental_item(kayak, 1, &at(1, 0), &at(3, 0))])
        .await;
    assert_created_order(&first);

    // One line alone: nothing at all is recorded.
    let before = app.event_count().await;
    let alone = app
        .place_order("c2", vec![rental_item(kayak, 2, &at(2, 0), &at(4, 0))])
        .await;
    assert_problem(&alone, StatusCode::CONFLICT, "unavailable");
    let conflicts = alone.body["conflicts"].as_array().expect("conflicts");
    assert_eq!(conflicts.len(), 1, "{:?}", alone.body);
    assert_eq!(conflicts[0]["listing_id"], kayak.to_string());
    assert_eq!(conflicts[0]["requested"], 2);
    assert_eq!(conflicts[0]["free"], 1);
    let conflict = &alone.body["conflicts"][0];
    assert_eq!(instant(&conflict["start"]), instant(&json!(at(2, 0))));
    assert_eq!(instant(&conflict["end"]), instant(&json!(at(4, 0))));
    app.assert_nothing_recorded(before, "an unavailable single-line order")
        .await;

    // Several lines: every conflicting one is named, in item order; the
    // line that could be held is released again.
    let several = app
        .place_order(
            "c2",
            vec![
                sale_item(paddle, 4),
                rental_item(free_kayak, 5, &at(1, 0), &at(2, 0)),
                rental_item(kayak, 2, &at(1, 0), &at(2, 0)),
            ],
        )
        .await;
    assert_problem(&several, StatusCode::CONFLICT, "unavailable");
    let conflicts = several.body["conflicts"].as_array().expect("conflicts");
    assert_eq!(conflicts.len(), 2, "{:?}", several.body);
    assert_eq!(conflicts[0]["listing_id"], paddle.to_string());
    assert_eq!(conflicts[0]["requested"], 4);
    assert_eq!(conflicts[0]["free"], 3);
    assert!(conflicts[0].get("start").is_none_or(Value::is_null));
    assert_eq!(conflicts[1]["listing_id"], kayak.to_string());
    assert_eq!(conflicts[1]["requested"], 2);
    assert_eq!(conflicts[1]["free"], 1);
    assert!(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events WHERE aggregate_type = 'Order'")
            .fetch_one(&app.pool)
            .await
            .expect("count orders")
            == 1,
        "no order was recorded for the refused placement"
    );

    // Nothing stays held: all five units and all three in stock are free.
    let after = app
        .place_order(
            "c3",
            vec![
                rental_item(free_kayak, 5, &at(1, 0), &at(2, 0)),
                sale_item(paddle, 3),
                rental_item(kayak, 1, &at(2, 0), &at(4, 0)),
            ],
        )
        .await;
    assert_created_order(&after);
}

#[tokio::test]
async fn a_placed_order_is_cancelled_200_and_its_units_are_free_again() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let kayak = app
        .rental_listing(vendor_id, "day", "45.00", "10.00", 1)
        .await;
    let paddle = app.sale_listing(vendor_id, "10.00", 1).await;
    let items = vec![
        rental_item(kayak, 1, &at(1, 0), &at(2, 0)),
        sale_item(paddle, 1),
    ];
    let order = app.place_order("c1", items.clone()).await;
    assert_created_order(&order);
    let order_id = order.uuid("order_id");

    let taken = app.place_order("c2", items.clone()).await;
    assert_problem(&taken, StatusCode::CONFLICT, "unavailable");

    let cancelled = app
        .cancel_order(
            &app.customer("c1"),
            order_id,
            json!({"reason": "changed my mind"}),
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{:?}", cancelled.body);
    assert_eq!(cancelled.body["order_id"], order_id.to_string());
    assert_eq!(cancelled.body["status"], "cancelled");
    assert!(position(&cancelled) > position(&order));
    let events = app.events_of("Order", order_id).await;
    assert_eq!(events.last().map(|e| e.0.as_str()), Some("OrderCancelled"));

    let again = app.place_order("c2", items).await;
    assert_created_order(&again);

    // An admin may cancel too, with no body at all.
    let by_admin = app
        .send_bytes(
            Method::POST,
            &format!("/v1/orders/{}/cancel", again.uuid("order_id")),
            Some(&app.admin()),
            None,
            Vec::new(),
            &[],
        )
        .await;
    assert_eq!(by_admin.status, StatusCode::OK, "{:?}", by_admin.body);
    assert_eq!(by_admin.body["status"], "cancelled");
}

#[tokio::test]
async fn a_paid_order_cancelled_before_fulfilment_is_refunded_and_after_fulfilment_started_is_409()
{
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let paddle = app.sale_listing(vendor_id, "10.00", 5).await;

    let refunded = app.place_order("c1", vec![sale_item(paddle, 1)]).await;
    assert_created_order(&refunded);
    app.pay(&refunded).await;
    let answer = app
        .cancel_order(&app.customer("c1"), refunded.uuid("order_id"), json!({}))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body["status"], "refunded");

    let shipped = app.place_order("c1", vec![sale_item(paddle, 1)]).await;
    assert_created_order(&shipped);
    app.pay(&shipped).await;
    let order_id = shipped.uuid("order_id");
    let ship = app.ship(&app.vendor(vendor_id), order_id, vendor_id).await;
    assert_eq!(ship.status, StatusCode::OK, "{:?}", ship.body);

    let before = app.event_count().await;
    let refused = app
        .cancel_order(&app.customer("c1"), order_id, json!({}))
        .await;
    assert_problem(&refused, StatusCode::CONFLICT, "invalid-state");
    let by_admin = app.cancel_order(&app.admin(), order_id, json!({})).await;
    assert_problem(&by_admin, StatusCode::CONFLICT, "invalid-state");
    app.assert_nothing_recorded(before, "cancelling after shipment")
        .await;
}

// ---------------------------------------------------------------------------
// Fulfilment and payouts
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_sale_part_is_shipped_then_delivered_and_its_net_becomes_available_for_payout_exactly() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let paddle = app.sale_listing(vendor_id, "33.35", 5).await;
    let order = app.place_order("c1", vec![sale_item(paddle, 3)]).await;
    assert_created_order(&order);
    // 100.05: fee 10.01 (10.005 half away from zero), net 90.04.
    assert_eq!(money(&order.body["vendors"][0], "net"), dec("90.04"));
    app.pay(&order).await;
    let order_id = order.uuid("order_id");
    let paid_position = app.head().await;

    // Nothing is available before delivery.
    let early = app.request_payout(vendor_id, "0.01").await;
    assert_problem(&early, StatusCode::CONFLICT, "insufficient-balance");

    let ship = app.ship(&app.vendor(vendor_id), order_id, vendor_id).await;
    assert_eq!(ship.status, StatusCode::OK, "{:?}", ship.body);
    assert_eq!(ship.body["order_id"], order_id.to_string());
    assert_eq!(ship.body["vendor_id"], vendor_id.to_string());
    assert_eq!(ship.body["order_status"], "confirmed");
    let ship_position = position(&ship);
    assert!(ship_position > paid_position);

    let deliver = app.deliver(&app.admin(), order_id, vendor_id).await;
    assert_eq!(deliver.status, StatusCode::OK, "{:?}", deliver.body);
    assert_eq!(deliver.body["order_status"], "completed");
    let deliver_position = position(&deliver);
    assert!(deliver_position > ship_position);
    let order_events: Vec<String> = app
        .events_of("Order", order_id)
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    for expected in [
        "PartShipped",
        "PartDelivered",
        "VendorPartFulfilled",
        "OrderCompleted",
    ] {
        assert!(
            order_events.iter().any(|e| e == expected),
            "{order_events:?}"
        );
    }

    let payout = app.request_payout(vendor_id, "50.00").await;
    assert_eq!(payout.status, StatusCode::CREATED, "{:?}", payout.body);
    payout.uuid("payout_id");
    let payout_position = position(&payout);
    assert!(payout_position > deliver_position);

    let before = app.event_count().await;
    let above = app.request_payout(vendor_id, "40.05").await;
    assert_problem(&above, StatusCode::CONFLICT, "insufficient-balance");
    app.assert_nothing_recorded(before, "a payout above the balance")
        .await;

    let rest = app.request_payout(vendor_id, "40.04").await;
    assert_eq!(rest.status, StatusCode::CREATED, "{:?}", rest.body);
    assert_ne!(rest.uuid("payout_id"), payout.uuid("payout_id"));
    assert!(position(&rest) > payout_position);

    let before = app.event_count().await;
    let empty = app.request_payout(vendor_id, "0.01").await;
    assert_problem(&empty, StatusCode::CONFLICT, "insufficient-balance");
    app.assert_nothing_recorded(before, "a payout from an empty balance")
        .await;
}

#[tokio::test]
async fn a_rental_line_is_picked_up_and_returned_refunding_the_deposit_minus_damage_which_is_credited_to_the_vendor(
) {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let kayak = app
        .rental_listing(vendor_id, "day", "40.00", "150.00", 2)
        .await;
    let order = app
        .place_order("c1", vec![rental_item(kayak, 1, &at(1, 0), &at(3, 0))])
        .await;
    assert_created_order(&order);
    // 80.00: fee 8.00, net 72.00.
    app.pay(&order).await;
    let order_id = order.uuid("order_id");
    let line_id = Uuid::parse_str(order.body["lines"][0]["line_id"].as_str().expect("line"))
        .expect("line uuid");

    // Returning before pickup is refused.
    let before = app.event_count().await;
    let early = app
        .return_line(&app.vendor(vendor_id), order_id, line_id, json!({}))
        .await;
    assert_problem(&early, StatusCode::CONFLICT, "invalid-state");
    app.assert_nothing_recorded(before, "a return before pickup")
        .await;

    let pickup = app.pickup(&app.vendor(vendor_id), order_id, line_id).await;
    assert_eq!(pickup.status, StatusCode::OK, "{:?}", pickup.body);
    assert_eq!(pickup.body["order_id"], order_id.to_string());
    assert_eq!(pickup.body["line_id"], line_id.to_string());
    assert_eq!(pickup.body["vendor_id"], vendor_id.to_string());
    let pickup_position = position(&pickup);

    // Withholding more than the deposit is 422.
    let before = app.event_count().await;
    let too_much = app
        .return_line(
            &app.vendor(vendor_id),
            order_id,
            line_id,
            json!({"damage_withheld": "150.01"}),
        )
        .await;
    assert_invalid_field(&too_much, "damage_withheld");
    app.assert_nothing_recorded(before, "withholding more than the deposit")
        .await;

    let returned = app
        .return_line(
            &app.vendor(vendor_id),
            order_id,
            line_id,
            json!({"returned_at": at(3, 0), "damage_withheld": "35.50"}),
        )
        .await;
    assert_eq!(returned.status, StatusCode::OK, "{:?}", returned.body);
    assert_eq!(money(&returned.body, "deposit_refunded"), dec("114.50"));
    assert_eq!(money(&returned.body, "damage_withheld"), dec("35.50"));
    assert_eq!(returned.body["order_status"], "completed");
    let returned_position = position(&returned);
    assert!(returned_position > pickup_position);
    let vendor_events: Vec<String> = app
        .events_of("Vendor", vendor_id)
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert!(
        vendor_events.iter().any(|e| e == "DamageCredited"),
        "{vendor_events:?}"
    );
    assert!(
        vendor_events.iter().any(|e| e == "EarningsMadeAvailable"),
        "{vendor_events:?}"
    );

    // Available: net 72.00 + damage 35.50 = 107.50.
    let before = app.event_count().await;
    let above = app.request_payout(vendor_id, "107.51").await;
    assert_problem(&above, StatusCode::CONFLICT, "insufficient-balance");
    assert_eq!(
        above.body["available"].as_str().map(dec),
        Some(dec("107.50"))
    );
    app.assert_nothing_recorded(before, "a payout above the balance")
        .await;
    let exact = app.request_payout(vendor_id, "107.50").await;
    assert_eq!(exact.status, StatusCode::CREATED, "{:?}", exact.body);
    assert!(position(&exact) > returned_position);
}

#[tokio::test]
async fn fulfilment_of_an_unpaid_order_is_409_and_a_sale_line_cannot_be_picked_up() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let kayak = app
        .rental_listing(vendor_id, "day", "40.00", "0.00", 2)
        .await;
    let paddle = app.sale_listing(vendor_id, "10.00", 5).await;
    let order = app
        .place_order(
            "c1",
            vec![
                rental_item(kayak, 1, &at(1, 0), &at(3, 0)),
                sale_item(paddle, 1),
            ],
        )
        .await;
    assert_created_order(&order);
    let order_id = order.uuid("order_id");
    let rental_line = order.body["lines"][0]["line_id"]
        .as_str()
        .expect("line")
        .to_owned();
    let sale_line = order.body["lines"][1]["line_id"]
        .as_str()
        .expect("line")
        .to_owned();

    let before = app.event_count().await;
    let ship = app.ship(&app.vendor(vendor_id), order_id, vendor_id).await;
    assert_problem(&ship, StatusCode::CONFLICT, "invalid-state");
    let pickup = app
        .pickup(&app.vendor(vendor_id), order_id, rental_line)
        .await;
    assert_problem(&pickup, StatusCode::CONFLICT, "invalid-state");
    app.assert_nothing_recorded(before, "fulfilling an unpaid order")
        .await;

    app.pay(&order).await;
    let before = app.event_count().await;
    let sale_pickup = app
        .pickup(&app.vendor(vendor_id), order_id, sale_line)
        .await;
    assert_problem(&sale_pickup, StatusCode::CONFLICT, "invalid-state");
    let deliver = app
        .deliver(&app.vendor(vendor_id), order_id, vendor_id)
        .await;
    assert_problem(&deliver, StatusCode::CONFLICT, "invalid-state");
    app.assert_nothing_recorded(before, "out-of-order fulfilment")
        .await;
}

// ---------------------------------------------------------------------------
// Rejections
// ---------------------------------------------------------------------------

#[tokio::test]
async fn malformed_json_is_400_and_records_nothing() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let listing = app
        .rental_listing(vendor_id, "day", "10.00", "0.00", 1)
        .await;
    let before = app.event_count().await;
    for (path, token) in [
        ("/v1/vendors".to_owned(), app.admin()),
        ("/v1/listings".to_owned(), app.vendor(vendor_id)),
        (
            format!("/v1/listings/{listing}/price"),
            app.vendor(vendor_id),
        ),
        (format!("/v1/listings/{listing}/blackouts"), app.admin()),
        ("/v1/orders".to_owned(), app.customer("c1")),
        (format!("/v1/vendors/{vendor_id}/payouts"), app.admin()),
    ] {
        for body in [&b"{"[..], b"{not json}", b"{,}", b"nope"] {
            let answer = app
                .send_bytes(
                    Method::POST,
                    &path,
                    Some(&token),
                    Some("application/json"),
                    body.to_vec(),
                    &[],
                )
                .await;
            assert_problem(&answer, StatusCode::BAD_REQUEST, "bad-request");
        }
    }
    app.assert_nothing_recorded(before, "a malformed body")
        .await;
}

#[tokio::test]
async fn a_body_that_is_not_declared_json_is_415_and_records_nothing() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let before = app.event_count().await;
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
    ] {
        let answer = app
            .send_bytes(
                Method::POST,
                "/v1/vendors",
                Some(&app.admin()),
                Some(content_type),
                br#"{"name": "Sneaky"}"#.to_vec(),
                &[],
            )
            .await;
        assert_problem(
            &answer,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
        );
    }
    let order = app
        .send_bytes(
            Method::POST,
            "/v1/orders",
            Some(&app.customer("c1")),
            Some("text/plain"),
            br#"{"items": []}"#.to_vec(),
            &[],
        )
        .await;
    assert_problem(
        &order,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    );
    let payout = app
        .send_bytes(
            Method::POST,
            &format!("/v1/vendors/{vendor_id}/payouts"),
            Some(&app.admin()),
            Some("text/plain"),
            br#"{"amount": "1.00"}"#.to_vec(),
            &[],
        )
        .await;
    assert_problem(
        &payout,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    );
    app.assert_nothing_recorded(before, "a non-JSON body").await;
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_413_and_records_nothing() {
    let app = TestApp::spawn().await;
    let before = app.event_count().await;
    let name = "x".repeat(1024 * 1024 + 16);
    let body = serde_json::to_vec(&json!({ "name": name })).expect("serialise");
    for headers in [&[][..], &[("Idempotency-Key", "big-body-1")][..]] {
        let answer = app
            .send_bytes(
                Method::POST,
                "/v1/vendors",
                Some(&app.admin()),
                Some("application/json"),
                body.clone(),
                headers,
            )
            .await;
        assert_problem(&answer, StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large");
    }
    app.assert_nothing_recorded(before, "an oversized body")
        .await;
}

#[tokio::test]
async fn invalid_vendor_and_payout_bodies_are_422_naming_the_field_and_record_nothing() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let before = app.event_count().await;
    let payouts = format!("/v1/vendors/{vendor_id}/payouts");
    let cases = [
        ("/v1/vendors", json!({"name": "   "}), "name"),
        ("/v1/vendors", json!({}), "body"),
        ("/v1/vendors", json!({"name": 7}), "name"),
        (payouts.as_str(), json!({"amount": "12.345"}), "amount"),
        (payouts.as_str(), json!({"amount": "-1"}), "amount"),
        (payouts.as_str(), json!({"amount": "0.00"}), "amount"),
        (payouts.as_str(), json!({"amount": 12.5}), "amount"),
        (payouts.as_str(), json!({"amount": "twelve"}), "amount"),
    ];
    for (path, body, field) in cases {
        let answer = app.post(path, &app.admin(), body.clone()).await;
        if field == "body" {
            assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation");
        } else {
            assert_invalid_field(&answer, field);
        }
    }
    app.assert_nothing_recorded(before, "an invalid vendor or payout")
        .await;
}

#[tokio::test]
async fn invalid_listing_bodies_are_422_naming_each_bad_field_and_record_nothing() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let rental = json!({"title": "Kayak", "description": "d", "category": "boats",
                        "kind": "rental", "pricing_unit": "day", "price_per_unit": "45.00",
                        "deposit": "100.00", "units": 3});
    let sale = json!({"title": "Paddle", "description": "d", "category": "gear",
                      "kind": "sale", "unit_price": "19.99", "stock": 7});
    let with = |base: &Value, field: &str, value: Value| {
        let mut body = base.clone();
        body[field] = value;
        body
    };
    let without = |base: &Value, field: &str| {
        let mut body = base.clone();
        body.as_object_mut().expect("object").remove(field);
        body
    };
    let cases = vec![
        (
            with(&rental, "price_per_unit", json!("12.345")),
            "price_per_unit",
        ),
        (
            with(&rental, "price_per_unit", json!("-1")),
            "price_per_unit",
        ),
        (
            with(&rental, "price_per_unit", json!("0")),
            "price_per_unit",
        ),
        (
            with(&rental, "price_per_unit", json!(45.0)),
            "price_per_unit",
        ),
        (with(&rental, "deposit", json!("-0.01")), "deposit"),
        (with(&rental, "deposit", json!("abc")), "deposit"),
        (with(&rental, "units", json!(0)), "units"),
        (with(&rental, "units", json!(-2)), "units"),
        (with(&rental, "units", json!("3")), "units"),
        (without(&rental, "units"), "units"),
        (without(&rental, "pricing_unit"), "pricing_unit"),
        (with(&rental, "pricing_unit", json!("week")), "pricing_unit"),
        (with(&rental, "kind", json!("lease")), "kind"),
        (with(&rental, "title", json!("")), "title"),
        (with(&rental, "title", json!("   ")), "title"),
        (with(&rental, "category", json!("")), "category"),
        (with(&rental, "unit_price", json!("5.00")), "unit_price"),
        (with(&sale, "pricing_unit", json!("day")), "pricing_unit"),
        (with(&sale, "units", json!(3)), "units"),
        (with(&sale, "unit_price", json!("19.999")), "unit_price"),
        (with(&sale, "unit_price", json!(19.99)), "unit_price"),
        (without(&sale, "stock"), "stock"),
        (with(&sale, "stock", json!(-1)), "stock"),
    ];
    let before = app.event_count().await;
    for (body, field) in cases {
        let answer = app
            .create_listing(&app.vendor(vendor_id), body.clone())
            .await;
        assert_invalid_field(&answer, field);
    }
    // An admin must name an existing vendor.
    let no_vendor = app.create_listing(&app.admin(), sale.clone()).await;
    assert_invalid_field(&no_vendor, "vendor_id");
    let unknown = app
        .post(
            "/v1/listings",
            &app.admin(),
            with(&sale, "vendor_id", json!(Uuid::now_v7())),
        )
        .await;
    assert_invalid_field(&unknown, "vendor_id");
    app.assert_nothing_recorded(before, "an invalid listing")
        .await;
}

#[tokio::test]
async fn invalid_order_bodies_are_422_naming_the_item_field_and_record_nothing() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let kayak = app
        .rental_listing(vendor_id, "day", "45.00", "0.00", 3)
        .await;
    let paddle = app.sale_listing(vendor_id, "10.00", 3).await;
    let draft = app
        .create_listing(
            &app.vendor(vendor_id),
            json!({"title": "Draft", "category": "gear", "kind": "sale",
                   "unit_price": "1.00", "stock": 1}),
        )
        .await
        .uuid("listing_id");

    let cases = vec![
        (json!({"items": []}), "items"),
        (json!({}), "body"),
        (
            json!({"items": [{"listing_id": kayak, "quantity": 1}]}),
            "items[0].start",
        ),
        (
            json!({"items": [{"listing_id": kayak, "quantity": 1, "start": at(1, 0)}]}),
            "items[0].start",
        ),
        (
            json!({"items": [rental_item(kayak, 1, &at(3, 0), &at(1, 0))]}),
            "items[0].end",
        ),
        (
            json!({"items": [rental_item(kayak, 1, &at(1, 0), &at(1, 0))]}),
            "items[0].end",
        ),
        (
            json!({"items": [rental_item(kayak, 0, &at(1, 0), &at(2, 0))]}),
            "items[0].quantity",
        ),
        (
            json!({"items": [sale_item(paddle, 1), sale_item(paddle, 0)]}),
            "items[1].quantity",
        ),
        (
            json!({"items": [{"listing_id": paddle, "quantity": -1}]}),
            "items[0].quantity",
        ),
        (
            json!({"items": [{"listing_id": paddle, "quantity": "1"}]}),
            "items[0].quantity",
        ),
        (
            json!({"items": [sale_item(draft, 1)]}),
            "items[0].listing_id",
        ),
        (
            json!({"items": [sale_item(paddle, 1), sale_item(Uuid::now_v7(), 1)]}),
            "items[1].listing_id",
        ),
        (
            json!({"items": [{"listing_id": "not-a-uuid", "quantity": 1}]}),
            "items[0].listing_id",
        ),
        (
            json!({"items": [{"listing_id": kayak, "quantity": 1, "start": "soon", "end": at(2, 0)}]}),
            "items[0].start",
        ),
    ];
    let before = app.event_count().await;
    for (body, field) in cases {
        let answer = app
            .post("/v1/orders", &app.customer("c1"), body.clone())
            .await;
        if field == "body" {
            assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation");
        } else {
            assert_invalid_field(&answer, field);
        }
    }
    app.assert_nothing_recorded(before, "an invalid order")
        .await;
    // No hold was left behind: every unit is still free.
    let order = app
        .place_order(
            "c2",
            vec![
                rental_item(kayak, 3, &at(1, 0), &at(5, 0)),
                sale_item(paddle, 3),
            ],
        )
        .await;
    assert_created_order(&order);
}

#[tokio::test]
async fn unknown_and_non_uuid_ids_in_paths_are_404_and_record_nothing() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let listing = app
        .rental_listing(vendor_id, "day", "10.00", "0.00", 1)
        .await;
    let unknown = Uuid::now_v7();
    let admin = app.admin();
    let before = app.event_count().await;

    let posts: Vec<(String, Value, String)> = vec![
        (
            format!("/v1/listings/{unknown}/publish"),
            json!({}),
            admin.clone(),
        ),
        (
            format!("/v1/listings/{unknown}/archive"),
            json!({}),
            admin.clone(),
        ),
        (
            format!("/v1/listings/{unknown}/price"),
            json!({"unit_price": "1.00"}),
            admin.clone(),
        ),
        (
            format!("/v1/listings/{unknown}/stock"),
            json!({"delta": 1}),
            admin.clone(),
        ),
        (
            format!("/v1/listings/{unknown}/blackouts"),
            json!({"start": at(1, 0), "end": at(2, 0), "reason": "x"}),
            admin.clone(),
        ),
        (
            format!("/v1/orders/{unknown}/cancel"),
            json!({}),
            admin.clone(),
        ),
        (
            format!("/v1/orders/{unknown}/cancel"),
            json!({}),
            app.customer("c1"),
        ),
        (
            format!("/v1/orders/{unknown}/vendors/{vendor_id}/ship"),
            json!({}),
            admin.clone(),
        ),
        (
            format!("/v1/orders/{unknown}/vendors/{vendor_id}/deliver"),
            json!({}),
            admin.clone(),
        ),
        (
            format!("/v1/orders/{unknown}/lines/{unknown}/pickup"),
            json!({}),
            admin.clone(),
        ),
        (
            format!("/v1/orders/{unknown}/lines/{unknown}/return"),
            json!({}),
            admin.clone(),
        ),
        (
            format!("/v1/vendors/{unknown}/payouts"),
            json!({"amount": "1.00"}),
            admin.clone(),
        ),
        // Ids that are not UUIDs cannot name anything.
        (
            "/v1/listings/kayak/publish".to_owned(),
            json!({}),
            admin.clone(),
        ),
        (
            "/v1/listings/123/archive".to_owned(),
            json!({}),
            admin.clone(),
        ),
        (
            "/v1/listings/kayak/price".to_owned(),
            json!({"unit_price": "1.00"}),
            admin.clone(),
        ),
        (
            "/v1/listings/kayak/stock".to_owned(),
            json!({"delta": 1}),
            admin.clone(),
        ),
        (
            "/v1/orders/not-an-order/cancel".to_owned(),
            json!({}),
            admin.clone(),
        ),
        (
            format!("/v1/orders/x/vendors/{vendor_id}/ship"),
            json!({}),
            admin.clone(),
        ),
        (
            format!("/v1/orders/{unknown}/vendors/y/deliver"),
            json!({}),
            admin.clone(),
        ),
        (
            "/v1/orders/x/lines/y/pickup".to_owned(),
            json!({}),
            admin.clone(),
        ),
        (
            "/v1/vendors/alpine/payouts".to_owned(),
            json!({"amount": "1.00"}),
            admin.clone(),
        ),
    ];
    for (path, body, token) in posts {
        let answer = app.post(&path, &token, body).await;
        assert_problem(&answer, StatusCode::NOT_FOUND, "not-found");
    }
    for path in [
        format!("/v1/listings/{listing}/blackouts/{unknown}"),
        format!("/v1/listings/{unknown}/blackouts/{unknown}"),
        format!("/v1/listings/{listing}/blackouts/not-a-uuid"),
    ] {
        let answer = app.delete(&path, &admin).await;
        assert_problem(&answer, StatusCode::NOT_FOUND, "not-found");
    }
    app.assert_nothing_recorded(before, "a command on an unknown id")
        .await;
}

#[tokio::test]
async fn a_line_or_vendor_that_is_not_part_of_the_order_is_404() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let other = app.register_vendor("Other").await;
    let paddle = app.sale_listing(vendor_id, "10.00", 5).await;
    let order = app.place_order("c1", vec![sale_item(paddle, 1)]).await;
    assert_created_order(&order);
    app.pay(&order).await;
    let order_id = order.uuid("order_id");
    let before = app.event_count().await;
    let line = Uuid::now_v7();
    let pickup = app.pickup(&app.admin(), order_id, line).await;
    assert_problem(&pickup, StatusCode::NOT_FOUND, "not-found");
    let ship = app.ship(&app.admin(), order_id, other).await;
    assert_problem(&ship, StatusCode::NOT_FOUND, "not-found");
    app.assert_nothing_recorded(before, "fulfilling a part that does not exist")
        .await;
}

/// Sends a command with a request id and an idempotency key, and checks
/// that every event it recorded carries them, the principal and a causation.
async fn traced(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
    principal: (&str, &str),
) -> Answer {
    let before = app.head().await;
    let request_id = format!("trace-{}", Uuid::new_v4().simple());
    let key = format!("key-{request_id}");
    let answer = app
        .send(
            method,
            path,
            Some(token),
            body.as_ref(),
            &[("x-request-id", &request_id), ("Idempotency-Key", &key)],
        )
        .await;
    assert!(answer.status.is_success(), "{path}: {:?}", answer.body);
    let events = app.events_after(before).await;
    assert!(!events.is_empty(), "{path} recorded no event");
    for (aggregate_type, _, event_type, metadata) in &events {
        let what = format!("{path}: {aggregate_type}/{event_type} {metadata}");
        // A follow-up command (confirm, release, credit) is recorded by the
        // request or by the stream-fed policies, whichever gets there first;
        // either way it carries the request's correlation id.
        if metadata["principal"] == "system:policies" {
            assert_eq!(metadata["principal_role"], "admin", "{what}");
        } else {
            assert_eq!(metadata["principal"], principal.0, "{what}");
            assert_eq!(metadata["principal_role"], principal.1, "{what}");
        }
        assert_eq!(metadata["correlation_id"], request_id.as_str(), "{what}");
        assert!(
            metadata["causation_id"]
                .as_str()
                .is_some_and(|c| !c.is_empty()),
            "{what}"
        );
        if metadata["principal"] != "system:policies" {
            assert_eq!(metadata["idempotency_key"], key.as_str(), "{what}");
        }
    }
    answer
}

#[tokio::test]
async fn positions_grow_across_a_whole_lifecycle_and_every_event_carries_its_request_metadata() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    let as_admin = ("admin-1", "admin");
    let mut positions = Vec::new();

    let vendor = traced(
        &app,
        Method::POST,
        "/v1/vendors",
        &admin,
        Some(json!({"name": "Alpine"})),
        as_admin,
    )
    .await;
    positions.push(position(&vendor));
    let vendor_id = vendor.uuid("vendor_id");
    let vendor_token = app.vendor(vendor_id);
    let vendor_subject = format!("vendor-user-{vendor_id}");
    let as_vendor = (vendor_subject.as_str(), "vendor");
    let listing = traced(
        &app,
        Method::POST,
        "/v1/listings",
        &vendor_token,
        Some(
            json!({"title": "Kayak", "category": "boats", "kind": "rental",
                    "pricing_unit": "hour", "price_per_unit": "7.50", "deposit": "20.00",
                    "units": 2}),
        ),
        as_vendor,
    )
    .await;
    positions.push(position(&listing));
    let listing_id = listing.uuid("listing_id");
    let base = format!("/v1/listings/{listing_id}");
    let steps = [
        (format!("{base}/publish"), json!({})),
        (format!("{base}/price"), json!({"price_per_unit": "8.00"})),
        (format!("{base}/stock"), json!({"units": 3})),
        (
            format!("{base}/blackouts"),
            json!({"start": at(9, 0), "end": at(10, 0), "reason": "x"}),
        ),
    ];
    let mut blackout = None;
    for (path, body) in steps {
        let answer = traced(
            &app,
            Method::POST,
            &path,
            &vendor_token,
            Some(body),
            as_vendor,
        )
        .await;
        if answer.body.get("blackout_id").is_some() {
            blackout = Some(answer.uuid("blackout_id"));
        }
        positions.push(position(&answer));
    }
    let removed = traced(
        &app,
        Method::DELETE,
        &format!("{base}/blackouts/{}", blackout.expect("a blackout")),
        &vendor_token,
        None,
        as_vendor,
    )
    .await;
    positions.push(position(&removed));
    let order = traced(
        &app,
        Method::POST,
        "/v1/orders",
        &app.customer("c1"),
        Some(json!({"items": [rental_item(listing_id, 1, &at(1, 0), &at(1, 3))]})),
        ("c1", "customer"),
    )
    .await;
    assert_created_order(&order);
    positions.push(position(&order));
    app.pay(&order).await;
    let order_id = order.uuid("order_id");
    let line_id = order.body["lines"][0]["line_id"]
        .as_str()
        .expect("line")
        .to_owned();
    for step in ["pickup", "return"] {
        let answer = traced(
            &app,
            Method::POST,
            &format!("/v1/orders/{order_id}/lines/{line_id}/{step}"),
            &vendor_token,
            Some(json!({})),
            as_vendor,
        )
        .await;
        positions.push(position(&answer));
    }
    // 3 hours × 8.00 = 24.00; fee 2.40; net 21.60 available.
    let payout = traced(
        &app,
        Method::POST,
        &format!("/v1/vendors/{vendor_id}/payouts"),
        &admin,
        Some(json!({"amount": "21.60"})),
        as_admin,
    )
    .await;
    assert_eq!(payout.status, StatusCode::CREATED, "{:?}", payout.body);
    positions.push(position(&payout));

    // A second order, cancelled by its customer.
    let second = app
        .place_order("c2", vec![rental_item(listing_id, 1, &at(2, 0), &at(2, 1))])
        .await;
    assert_created_order(&second);
    positions.push(position(&second));
    let cancelled = traced(
        &app,
        Method::POST,
        &format!("/v1/orders/{}/cancel", second.uuid("order_id")),
        &app.customer("c2"),
        Some(json!({})),
        ("c2", "customer"),
    )
    .await;
    positions.push(position(&cancelled));
    let archived = traced(
        &app,
        Method::POST,
        &format!("{base}/archive"),
        &admin,
        Some(json!({})),
        as_admin,
    )
    .await;
    positions.push(position(&archived));

    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "positions must increase: {positions:?}"
    );
    assert_eq!(positions.last().copied(), Some(app.head().await));
}

#[tokio::test]
async fn shipping_and_delivering_record_events_with_the_request_metadata() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let paddle = app.sale_listing(vendor_id, "10.00", 5).await;
    let order = app.place_order("c1", vec![sale_item(paddle, 1)]).await;
    assert_created_order(&order);
    app.pay(&order).await;
    let order_id = order.uuid("order_id");
    let mut last = 0;
    for step in ["ship", "deliver"] {
        let answer = traced(
            &app,
            Method::POST,
            &format!("/v1/orders/{order_id}/vendors/{vendor_id}/{step}"),
            &app.admin(),
            Some(json!({})),
            ("admin-1", "admin"),
        )
        .await;
        assert!(position(&answer) > last);
        last = position(&answer);
    }
}

// ---------------------------------------------------------------------------
// Extreme amounts: still a clear answer, never a 500, money always 2 places.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_order_whose_total_would_overflow_is_a_4xx_and_records_nothing() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let created = app
        .create_listing(
            &app.vendor(vendor_id),
            json!({"title": "Gold", "category": "luxury", "kind": "sale",
                   "unit_price": "79228162514264337593543950335", "stock": 5}),
        )
        .await;
    if created.status == StatusCode::UNPROCESSABLE_ENTITY {
        // Refusing the price up front is as good.
        assert_invalid_field(&created, "unit_price");
        return;
    }
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let listing_id = created.uuid("listing_id");
    app.publish(vendor_id, listing_id).await;

    let before = app.event_count().await;
    let order = app.place_order("c1", vec![sale_item(listing_id, 2)]).await;
    assert!(
        order.status.is_client_error(),
        "an order too large to price is bad input, not a server error: {} {:?}",
        order.status,
        order.body
    );
    app.assert_nothing_recorded(before, "an order too large to price")
        .await;
}

#[tokio::test]
async fn money_in_an_order_answer_always_has_two_places_even_for_huge_amounts() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    // Above the largest amount a price may state: refused, naming the field.
    let too_big = app
        .create_listing(
            &app.vendor(vendor_id),
            json!({"title": "Yacht", "category": "boats", "kind": "rental",
                   "pricing_unit": "hour", "price_per_unit": "1000000000.01",
                   "deposit": "0.00", "units": 1}),
        )
        .await;
    assert_eq!(
        too_big.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        too_big.body
    );
    assert_eq!(too_big.body["errors"][0]["field"], "price_per_unit");
    // The largest price over the longest period exceeds the order bound
    // (10^12, issue 20); the largest order within it still prices exactly.
    let listing = app
        .rental_listing(vendor_id, "hour", "1000000000.00", "0.00", 1)
        .await;
    let beyond = app
        .place_order("c1", vec![rental_item(listing, 1, &at(0, 0), &at(3660, 0))])
        .await;
    assert_eq!(
        beyond.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        beyond.body
    );
    assert_eq!(beyond.body["errors"][0]["code"], "too_large");
    let order = app
        .place_order("c1", vec![rental_item(listing, 1, &at(0, 0), &at(41, 16))])
        .await;
    assert_created_order(&order);
    assert_eq!(order.body["subtotal"], "1000000000000.00");
    assert_eq!(order.body["lines"][0]["billable_units"], 1000);
    for field in ["subtotal", "tax", "deposit", "total"] {
        money(&order.body, field);
    }
    for field in ["unit_price", "subtotal", "tax", "deposit"] {
        money(&order.body["lines"][0], field);
    }
    for field in ["subtotal", "platform_fee", "net"] {
        money(&order.body["vendors"][0], field);
    }
    // A period longer than the longest is refused.
    let too_long = app
        .place_order("c2", vec![rental_item(listing, 1, &at(0, 0), &at(3661, 0))])
        .await;
    assert_eq!(
        too_long.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        too_long.body
    );
}

#[tokio::test]
async fn the_insufficient_balance_problem_names_available_and_requested_as_money() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let before = app.event_count().await;
    let answer = app.request_payout(vendor_id, "5").await;
    assert_problem(&answer, StatusCode::CONFLICT, "insufficient-balance");
    assert_eq!(money(&answer.body, "available"), dec("0.00"));
    assert_eq!(money(&answer.body, "requested"), dec("5.00"));
    app.assert_nothing_recorded(before, "a payout above the balance")
        .await;
}
