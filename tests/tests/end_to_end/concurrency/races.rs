//! Orders, purchases and payouts racing on one ledger: however they
//! interleave, no unit is booked twice, no stock sold twice, no balance paid
//! out twice, and no order deadlocks or keeps the lines of a refused one.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_racing_orders_on_three_units_book_exactly_three() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Racing Rentals").await;
    let listing = app.rental_listing(vendor, "day", "20.00", "5.00", 3).await;

    // Random sub-periods of days [0, 10) that all contain day 5.
    let mut rng = Rng::new(0x5EED_0001);
    let mut periods = Vec::new();
    let requests = (0..50)
        .map(|i| {
            let (start, end) = (at(rng.range(0, 5), 0), at(rng.range(6, 10), 0));
            periods.push((start.clone(), end.clone()));
            (
                app.customer(&format!("racer-{i}")),
                "/v1/orders".to_owned(),
                order_body(vec![rental_item(listing, 1, &start, &end)]),
            )
        })
        .collect();
    let answers = race(&app, requests).await;

    assert_no_server_errors(&answers);
    let accepted = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    assert_eq!(accepted, 3, "exactly the three units are booked");
    for (answer, (start, end)) in answers.iter().zip(&periods) {
        if answer.status != StatusCode::CONFLICT {
            continue;
        }
        let conflicts = unavailable_conflicts(answer);
        assert_eq!(conflicts.len(), 1, "{:?}", answer.body);
        let conflict = &conflicts[0];
        assert_eq!(conflict["listing_id"], json!(listing), "{:?}", answer.body);
        assert_eq!(conflict["requested"], json!(1), "{:?}", answer.body);
        assert_eq!(
            conflict["free"],
            json!(0),
            "all three units are taken on day 5: {:?}",
            answer.body
        );
        let named = |field: &str, expected: &str| {
            conflict[field]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                == chrono::DateTime::parse_from_rfc3339(expected).ok()
        };
        assert!(
            named("start", start) && named("end", end),
            "the conflict names the requested period {start}..{end}: {:?}",
            answer.body
        );
    }

    // Independently of the answers: what the Inventory recorded.
    let holds = app.holds_of(listing).await;
    let live = live(&holds);
    assert_eq!(live.len(), 3, "three live holds: {holds:?}");
    assert!(peak_use(&live) <= 3, "holds overbook: {live:?}");
    let held_orders: BTreeSet<Uuid> = live.iter().map(|h| h.order_id).collect();
    assert_eq!(
        held_orders,
        order_ids_of(&answers),
        "the live holds are exactly those of the accepted orders"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_racing_orders_of_random_periods_and_quantities_never_overbook_any_hour() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Hourly Rentals").await;
    let listing = app.rental_listing(vendor, "hour", "3.00", "0.00", 3).await;

    // Periods of 1..=12 hours inside hours [0, 72), quantity 1 or 2.
    let mut rng = Rng::new(0x5EED_0002);
    let mut wanted = Vec::new();
    let requests = (0..50)
        .map(|i| {
            let start = rng.range(0, 66);
            let end = (start + rng.range(1, 12)).min(72);
            let quantity = rng.range(1, 2) as u32;
            wanted.push((start, end, quantity));
            (
                app.customer(&format!("hourly-{i}")),
                "/v1/orders".to_owned(),
                order_body(vec![rental_item(
                    listing,
                    quantity,
                    &at(0, start),
                    &at(0, end),
                )]),
            )
        })
        .collect();
    let answers = race(&app, requests).await;
    assert_no_server_errors(&answers);

    // A brute-force model, hour by hour, of the holds the Inventory recorded.
    let holds = app.holds_of(listing).await;
    let live = live(&holds);
    let base = chrono::DateTime::parse_from_rfc3339(&at(0, 0)).expect("base");
    let hour_of =
        |t: chrono::DateTime<chrono::Utc>| (t - base.with_timezone(&chrono::Utc)).num_hours();
    let mut use_per_hour = [0u32; 72];
    for h in &live {
        let (start, end) = h.period.expect("rental hold");
        for hour in hour_of(start)..hour_of(end) {
            use_per_hour[hour as usize] += h.quantity;
        }
    }
    for (hour, used) in use_per_hour.iter().enumerate() {
        assert!(*used <= 3, "hour {hour} uses {used} of 3 units: {live:?}");
    }

    let accepted = order_ids_of(&answers);
    assert!(!accepted.is_empty(), "some orders fit");
    assert_eq!(
        live.len(),
        accepted.len(),
        "one live hold per accepted order"
    );
    let held_orders: BTreeSet<Uuid> = live.iter().map(|h| h.order_id).collect();
    assert_eq!(
        held_orders, accepted,
        "every accepted order holds its units"
    );

    // Nothing is released in this race, so the holds a refused order saw
    // are all still live: adding a refused request must overbook some hour.
    for (answer, (start, end, quantity)) in answers.iter().zip(&wanted) {
        if answer.status == StatusCode::CREATED {
            continue;
        }
        let conflict = &unavailable_conflicts(answer)[0];
        assert_eq!(conflict["requested"], json!(quantity), "{:?}", answer.body);
        assert!(
            conflict["free"].as_u64().expect("free") < u64::from(*quantity),
            "{:?}",
            answer.body
        );
        assert!(
            (*start..*end).any(|hour| use_per_hour[hour as usize] + quantity > 3),
            "hours {start}..{end} × {quantity} were refused but fit: {:?}",
            answer.body
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_racing_purchases_of_five_in_stock_sell_exactly_five() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Paddle Shop").await;
    let listing = app.sale_listing(vendor, "15.00", 5).await;

    let requests = (0..20)
        .map(|i| {
            (
                app.customer(&format!("buyer-{i}")),
                "/v1/orders".to_owned(),
                order_body(vec![json!({"listing_id": listing, "quantity": 1})]),
            )
        })
        .collect();
    let answers = race(&app, requests).await;

    assert_no_server_errors(&answers);
    let accepted = order_ids_of(&answers);
    assert_eq!(accepted.len(), 5, "exactly the stock is sold");
    for answer in answers.iter().filter(|a| a.status == StatusCode::CONFLICT) {
        let conflicts = unavailable_conflicts(answer);
        assert_eq!(conflicts[0]["listing_id"], json!(listing));
        assert_eq!(conflicts[0]["requested"], json!(1));
        assert_eq!(conflicts[0]["free"], json!(0), "{:?}", answer.body);
    }

    let holds = app.holds_of(listing).await;
    assert_eq!(holds.len(), 5, "exactly five HoldPlaced: {holds:?}");
    let held: u32 = live(&holds).iter().map(|h| h.quantity).sum();
    assert_eq!(held, 5, "stock never goes below zero");
    let held_orders: BTreeSet<Uuid> = holds.iter().map(|h| h.order_id).collect();
    assert_eq!(held_orders, accepted);

    // And nothing is left to sell.
    let late = app
        .post(
            "/v1/orders",
            &app.customer("late-buyer"),
            order_body(vec![json!({"listing_id": listing, "quantity": 1})]),
        )
        .await;
    unavailable_conflicts(&late);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_racing_payouts_of_sixty_percent_pay_out_once() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Payout Vendor").await;
    let listing = app.sale_listing(vendor, "100.00", 1).await;

    // A paid, delivered sale: the vendor's net (90.00 after the 10 % fee)
    // becomes available.
    let order = app
        .post(
            "/v1/orders",
            &app.customer("payout-customer"),
            order_body(vec![json!({"listing_id": listing, "quantity": 1})]),
        )
        .await;
    assert_eq!(order.status, StatusCode::CREATED, "{:?}", order.body);
    app.pay(&order).await;
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
    let vendor_events = app.event_payloads("Vendor", vendor).await;
    let available: Decimal = vendor_events
        .iter()
        .filter(|(kind, _)| kind == "EarningsMadeAvailable")
        .map(|(_, p)| decimal(&p["amount"]))
        .sum();
    assert_eq!(available, Decimal::new(9000, 2), "the net is available");

    let amount = available * Decimal::new(60, 2);
    let requests = (0..10)
        .map(|_| {
            (
                app.admin(),
                format!("/v1/vendors/{vendor}/payouts"),
                json!({"amount": format!("{amount:.2}")}),
            )
        })
        .collect();
    let answers = race(&app, requests).await;

    assert_no_server_errors(&answers);
    let paid = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    assert_eq!(paid, 1, "one payout fits the balance");
    for refused in answers.iter().filter(|a| a.status == StatusCode::CONFLICT) {
        assert_eq!(
            refused.problem_type(),
            "insufficient-balance",
            "{:?}",
            refused.body
        );
    }

    let recorded: Vec<Decimal> = app
        .event_payloads("Vendor", vendor)
        .await
        .iter()
        .filter(|(kind, _)| kind == "PayoutRecorded")
        .map(|(_, p)| decimal(&p["amount"]))
        .collect();
    assert_eq!(recorded, vec![amount], "one PayoutRecorded of the amount");
    assert!(recorded.iter().sum::<Decimal>() <= available);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orders_racing_over_two_listings_in_opposite_item_orders_never_deadlock_or_share_a_unit() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Pairs").await;
    let a = app.rental_listing(vendor, "day", "10.00", "0.00", 1).await;
    let b = app.rental_listing(vendor, "day", "12.00", "0.00", 1).await;
    let (start, end) = (at(1, 0), at(3, 0));

    let customers: Vec<String> = (0..12).map(|i| format!("pair-{i}")).collect();
    let requests = customers
        .iter()
        .enumerate()
        .map(|(i, customer)| {
            let items = if i % 2 == 0 {
                vec![
                    rental_item(a, 1, &start, &end),
                    rental_item(b, 1, &start, &end),
                ]
            } else {
                vec![
                    rental_item(b, 1, &start, &end),
                    rental_item(a, 1, &start, &end),
                ]
            };
            (
                app.customer(customer),
                "/v1/orders".to_owned(),
                order_body(items),
            )
        })
        .collect();
    let answers = race(&app, requests).await;
    assert_no_server_errors(&answers);

    let winners: Vec<usize> = (0..answers.len())
        .filter(|&i| answers[i].status == StatusCode::CREATED)
        .collect();
    assert!(winners.len() <= 1, "a unit went to two orders: {winners:?}");
    let winner_order = winners.first().map(|&i| answers[i].uuid("order_id"));
    for answer in answers.iter().filter(|a| a.status == StatusCode::CONFLICT) {
        unavailable_conflicts(answer);
    }

    for listing in [a, b] {
        let holds = app.holds_of(listing).await;
        let live = live(&holds);
        assert!(live.len() <= 1, "one unit, one live hold: {holds:?}");
        match winner_order {
            Some(order_id) => {
                assert_eq!(live.len(), 1, "{holds:?}");
                assert_eq!(live[0].order_id, order_id, "the winner holds the unit");
            }
            None => assert!(live.is_empty(), "refused orders released: {holds:?}"),
        }
    }

    // Once the winner (if any) cancels, both units are orderable again:
    // no refused order left a hold behind.
    if let Some(&i) = winners.first() {
        let cancel = app
            .cancel_order(
                &app.customer(&customers[i]),
                answers[i].uuid("order_id"),
                json!({}),
            )
            .await;
        assert_eq!(cancel.status, StatusCode::OK, "{:?}", cancel.body);
    }
    let again = app
        .post(
            "/v1/orders",
            &app.customer("pair-late"),
            order_body(vec![
                rental_item(b, 1, &start, &end),
                rental_item(a, 1, &start, &end),
            ]),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{:?}", again.body);
}

#[tokio::test]
async fn an_order_refused_on_one_line_holds_none_of_its_lines() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Half Free").await;
    let a = app.rental_listing(vendor, "day", "10.00", "0.00", 1).await;
    let b = app.rental_listing(vendor, "day", "10.00", "0.00", 1).await;
    let (start, end) = (at(2, 0), at(4, 0));

    let taken = app
        .post(
            "/v1/orders",
            &app.customer("holder-of-b"),
            order_body(vec![rental_item(b, 1, &start, &end)]),
        )
        .await;
    assert_eq!(taken.status, StatusCode::CREATED, "{:?}", taken.body);

    // Whatever the order of the items, the free line is never held: the
    // holds and the order are recorded together or not at all.
    for (n, items) in [
        vec![
            rental_item(a, 1, &start, &end),
            rental_item(b, 1, &start, &end),
        ],
        vec![
            rental_item(b, 1, &start, &end),
            rental_item(a, 1, &start, &end),
        ],
    ]
    .into_iter()
    .enumerate()
    {
        let refused = app
            .post(
                "/v1/orders",
                &app.customer(&format!("both-{n}")),
                order_body(items),
            )
            .await;
        let conflicts = unavailable_conflicts(&refused);
        assert_eq!(conflicts.len(), 1, "only B conflicts: {:?}", refused.body);
        assert_eq!(conflicts[0]["listing_id"], json!(b));
        assert!(
            app.holds_of(a).await.is_empty(),
            "the refused order placed no hold on A"
        );
    }
    let alone = app
        .post(
            "/v1/orders",
            &app.customer("just-a"),
            order_body(vec![rental_item(a, 1, &start, &end)]),
        )
        .await;
    assert_eq!(alone.status, StatusCode::CREATED, "{:?}", alone.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orders_blackouts_and_unit_cuts_racing_on_one_listing_never_overbook() {
    // Holds, blackouts and the number of units all change at once; the
    // Inventory must keep holds + blackouts within its units at every instant.
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Busy Vendor").await;
    let listing = app.rental_listing(vendor, "day", "20.00", "0.00", 4).await;

    let mut rng = Rng::new(0x5EED_0005);
    let mut requests: Vec<(String, String, Value)> = (0..16)
        .map(|i| {
            let (start, end) = (at(rng.range(0, 5), 0), at(rng.range(6, 10), 0));
            (
                app.customer(&format!("mixed-{i}")),
                "/v1/orders".to_owned(),
                order_body(vec![rental_item(listing, 1, &start, &end)]),
            )
        })
        .collect();
    for i in 0..4 {
        requests.insert(
            i * 4,
            (
                app.vendor(vendor),
                format!("/v1/listings/{listing}/blackouts"),
                json!({"start": at(5, 0), "end": at(6, 0), "units": 1, "reason": "service"}),
            ),
        );
    }
    requests.insert(
        10,
        (
            app.vendor(vendor),
            format!("/v1/listings/{listing}/stock"),
            json!({"units": 3}),
        ),
    );
    let paths = requests.clone();
    let answers = race(&app, requests).await;
    for a in &answers {
        assert!(
            [StatusCode::OK, StatusCode::CREATED, StatusCode::CONFLICT].contains(&a.status),
            "{}: {:?}",
            a.status,
            a.body
        );
    }

    // Replay the Inventory: final units, live blackouts and live holds.
    let events = app.event_payloads("Inventory", listing).await;
    let mut units = None;
    let mut blackouts: BTreeMap<String, (String, String, u32)> = BTreeMap::new();
    for (kind, p) in &events {
        match kind.as_str() {
            "InventoryInitialized" => units = p["capacity"]["units"].as_u64(),
            "UnitsChanged" => units = p["units"].as_u64(),
            "BlackoutAdded" => {
                let id = p["blackout_id"].as_str().expect("id").to_owned();
                let qty = p["units"].as_u64().or(units).expect("units") as u32;
                let period = &p["period"];
                let (start, end) = (period["start"].to_string(), period["end"].to_string());
                blackouts.insert(id, (start, end, qty));
            }
            "BlackoutRemoved" => {
                blackouts.remove(p["blackout_id"].as_str().expect("id"));
            }
            _ => {}
        }
    }
    let units = units.expect("an initialized inventory") as u32;
    let holds = app.holds_of(listing).await;
    let mut live: Vec<HoldRecord> = live(&holds).into_iter().cloned().collect();
    let placed = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED && a.body.get("order_id").is_some())
        .count();
    assert_eq!(live.len(), placed, "one live hold per accepted order");
    let added = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED && a.body.get("blackout_id").is_some())
        .count();
    assert_eq!(blackouts.len(), added, "one blackout per 201");
    for (start, end, qty) in blackouts.values() {
        let parse = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s.trim_matches('"'))
                .expect("instant")
                .with_timezone(&chrono::Utc)
        };
        live.push(HoldRecord {
            hold_id: Uuid::nil(),
            order_id: Uuid::nil(),
            quantity: *qty,
            period: Some((parse(start), parse(end))),
            last: "Blackout".to_owned(),
        });
    }
    let used = peak_use(&live.iter().collect::<Vec<_>>());
    assert!(
        used <= units,
        "holds and blackouts use {used} of {units} units: {live:?}"
    );
    // Blackouts and the unit cut may take every unit of day 5 first, so no
    // order has to fit; a refused one is refused as unavailable.
    for (answer, (_, path, _)) in answers.iter().zip(&paths) {
        if answer.status == StatusCode::CONFLICT && path == "/v1/orders" {
            unavailable_conflicts(answer);
        }
    }
}
