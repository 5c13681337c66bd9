//! Orders: placing (priced lines, the fee split per vendor, tax, money with
//! two places even for huge amounts), what is not free, and cancelling.

use chrono::Utc;
use ledger_tests::answer::{dec, instant, money, position};
use ledger_tests::{assert_invalid_field, assert_problem};
use ledger_tests::{at, rental_item, sale_item, TestApp};
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use super::assert_created_order;

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
    ledger_tests::pipeline::settle(&app, std::time::Duration::from_secs(30))
        .await
        .expect("the policies settle");

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
