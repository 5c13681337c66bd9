//! Listings: creation as a draft, publish and archive, price and stock
//! changes, and what each does to what can be ordered.

use ledger_tests::answer::{dec, money, position};
use ledger_tests::{assert_invalid_field, assert_problem};
use ledger_tests::{at, rental_item, sale_item, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use super::assert_created_order;

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
