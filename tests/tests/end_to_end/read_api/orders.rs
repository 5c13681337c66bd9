//! Orders as each principal sees them: the owning customer the whole order
//! through its lifecycle, a vendor only its lines and part, lists scoped to
//! who asks and filtered by status.

use super::*;

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
            json!({"damage_withheld": "12.50"}),
        )
        .await;
    assert_ok(&returned);
    let shown = order_as(&app, order_id, &alice, position(&returned)).await;
    let line = line_of(&shown, shop.harbour);
    assert_eq!(line["status"], "returned");
    assert_eq!(line["deposit_refunded"], "37.50");
    assert_eq!(line["damage_withheld"], "12.50");
    // Returned now (a return is never recorded in the future).
    assert!(line["returned_at"].is_string(), "{line}");
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
