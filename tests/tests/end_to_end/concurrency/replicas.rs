//! Two replicas of the ledger on one database, each with its own cache of
//! aggregates: racing through both books, sells and pays out no more than
//! one would, and a stale cache neither refuses nor overbooks.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_orders_racing_through_two_replicas_book_exactly_three_units() {
    // Replicas share nothing but the database: only optimistic concurrency
    // on the events table keeps them from overbooking.
    let app = TestApp::spawn().await;
    let (replica, _server) = app.spawn_replica().await;
    let vendor = app.register_vendor("Replicated Rentals").await;
    let listing = app.rental_listing(vendor, "day", "20.00", "5.00", 3).await;

    let mut rng = Rng::new(0x5EED_0004);
    let requests = (0..50)
        .map(|i| {
            let (start, end) = (at(rng.range(0, 5), 0), at(rng.range(6, 10), 0));
            (
                app.customer(&format!("replica-racer-{i}")),
                "/v1/orders".to_owned(),
                order_body(vec![rental_item(listing, 1, &start, &end)]),
            )
        })
        .collect();
    let answers = race_on(&[app.base_url.clone(), replica], requests).await;

    assert_no_server_errors(&answers);
    for answer in answers.iter().filter(|a| a.status == StatusCode::CONFLICT) {
        unavailable_conflicts(answer);
    }
    let accepted = order_ids_of(&answers);
    assert_eq!(accepted.len(), 3, "exactly the three units are booked");
    let holds = app.holds_of(listing).await;
    let live = live(&holds);
    assert!(peak_use(&live) <= 3, "holds overbook: {live:?}");
    let held_orders: BTreeSet<Uuid> = live.iter().map(|h| h.order_id).collect();
    assert_eq!(held_orders, accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn purchases_and_payouts_racing_through_two_replicas_never_oversell_or_overpay() {
    let app = TestApp::spawn().await;
    let (replica, _server) = app.spawn_replica().await;
    let bases = [app.base_url.clone(), replica];
    let vendor = app.register_vendor("Replicated Shop").await;
    let listing = app.sale_listing(vendor, "50.00", 5).await;

    let requests = (0..20)
        .map(|i| {
            (
                app.customer(&format!("replica-buyer-{i}")),
                "/v1/orders".to_owned(),
                order_body(vec![json!({"listing_id": listing, "quantity": 1})]),
            )
        })
        .collect();
    let answers = race_on(&bases, requests).await;
    assert_no_server_errors(&answers);
    let sold: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .collect();
    assert_eq!(sold.len(), 5, "exactly the stock is sold");
    let holds = app.holds_of(listing).await;
    assert_eq!(holds.len(), 5, "{holds:?}");

    // Fulfil one sale: 45.00 becomes available; racing payouts of 30.00.
    let order = sold[0];
    app.pay(order).await;
    let order_id = order.uuid("order_id");
    for step in ["ship", "deliver"] {
        let answer = app
            .post(
                &format!("/v1/orders/{order_id}/vendors/{vendor}/{step}"),
                &app.vendor(vendor),
                json!({}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{step}: {:?}", answer.body);
    }
    let requests = (0..10)
        .map(|_| {
            (
                app.admin(),
                format!("/v1/vendors/{vendor}/payouts"),
                json!({"amount": "30.00"}),
            )
        })
        .collect();
    let answers = race_on(&bases, requests).await;
    assert_no_server_errors(&answers);
    let paid = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    assert_eq!(paid, 1, "one payout fits the balance of 45.00");
    let recorded: Decimal = app
        .event_payloads("Vendor", vendor)
        .await
        .iter()
        .filter(|(kind, _)| kind == "PayoutRecorded")
        .map(|(_, p)| decimal(&p["amount"]))
        .sum();
    assert_eq!(recorded, Decimal::new(3000, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_whose_cached_inventory_is_stale_neither_refuses_nor_overbooks() {
    // Each replica keeps the aggregates it last wrote in memory; the other
    // replica's writes make that copy stale. A stale copy must neither turn
    // a free hour away nor let a taken one be booked again.
    let app = TestApp::spawn().await;
    let (replica, _server) = app.spawn_replica().await;
    let vendor = app.register_vendor("Cached Rentals").await;
    let listing = app.rental_listing(vendor, "hour", "10.00", "0.00", 1).await;
    let hour = order_body(vec![rental_item(listing, 1, &at(3, 10), &at(3, 11))]);
    let client = racing_client();
    let (first_base, second_base) = (app.base_url.as_str(), replica.as_str());

    let vendor_token = app.vendor(vendor);
    let blackouts = format!("/v1/listings/{listing}/blackouts");
    let blackout = json!({"start": at(3, 10), "end": at(3, 11), "reason": "maintenance"});

    // The first replica blacks the hour out and caches the inventory (no
    // policy touches blackouts, so nothing else refreshes that copy).
    let added = post(
        &client,
        first_base,
        &blackouts,
        &vendor_token,
        blackout.clone(),
    )
    .await;
    assert_eq!(added.status, StatusCode::CREATED, "{:?}", added.body);
    // The second replica lifts it: the first one's copy still shows it.
    let lifted = client
        .delete(format!(
            "{second_base}{blackouts}/{}",
            added.uuid("blackout_id")
        ))
        .bearer_auth(&vendor_token)
        .send()
        .await
        .expect("lift the blackout");
    assert_eq!(lifted.status(), StatusCode::OK);
    // The first replica must see that the hour is free again.
    let booked = post(&client, first_base, "/v1/orders", &app.customer("c"), hour).await;
    assert_eq!(
        booked.status,
        StatusCode::CREATED,
        "a free hour refused: {:?}",
        booked.body
    );
    // The second replica's copy shows the hour free, but it is booked.
    let refused = post(&client, second_base, &blackouts, &vendor_token, blackout).await;
    assert_eq!(
        refused.status,
        StatusCode::CONFLICT,
        "a booked hour blacked out: {:?}",
        refused.body
    );

    let holds = app.holds_of(listing).await;
    let live = live(&holds);
    assert_eq!(live.len(), 1, "{holds:?}");
    assert_eq!(live[0].order_id, booked.uuid("order_id"));
}

/// `execute_new` skips the load for an id the caller just made up. Given an
/// id that is in fact taken (here: by another process's bus, so this one
/// has nothing cached), the append conflicts and the stored state decides:
/// the second registration is refused and nothing is recorded twice.
#[tokio::test]
async fn a_command_for_a_new_id_that_is_taken_after_all_is_decided_on_the_stored_state() {
    let app = TestApp::spawn().await;
    let vendor_id = Uuid::now_v7();
    let register = |name: &str| domain::VendorCommand::Register {
        vendor_id,
        name: name.into(),
        at: chrono::Utc::now(),
    };
    let context = command_api::context::CommandContext::background(
        command_api::Principal::system("test"),
        "execute-new",
    );
    let first = app.command_app();
    first
        .vendors
        .execute_new(
            &vendor_id.to_string(),
            register("First"),
            &context,
            "RegisterVendor",
        )
        .await
        .expect("the first registration is recorded");

    let second = app.command_app();
    let refused = second
        .vendors
        .execute_new(
            &vendor_id.to_string(),
            register("Second"),
            &context,
            "RegisterVendor",
        )
        .await;
    assert!(
        matches!(
            refused
                .as_ref()
                .map_err(|e| command_api::ApiError::from(e.clone())),
            Err(command_api::ApiError::Conflict { .. })
        ),
        "a second registration is refused, not recorded: {:?}",
        refused.as_ref().map(|c| c.position)
    );
    let recorded = app.event_types("Vendor", vendor_id).await;
    assert_eq!(recorded, vec!["VendorRegistered"], "recorded once");
}
