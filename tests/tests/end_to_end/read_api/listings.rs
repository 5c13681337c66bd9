//! One listing: its detail (current price, units, free stock) and its
//! availability as maximal slots of constant free units.

use super::*;

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
