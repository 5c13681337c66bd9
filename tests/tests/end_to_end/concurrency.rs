//! Invariant 1 (DESIGN.md "Invariants"): no overbooking, no negative stock,
//! under any concurrency. Many clients race over HTTP; the answers are
//! checked, and independently of them the Inventory's events are replayed
//! to prove that the recorded holds never use more units than exist.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use ledger_tests::answer::decimal;
use ledger_tests::client::read;
use ledger_tests::events::{peak_use, HoldRecord};
use ledger_tests::rental_item;
use ledger_tests::{at, Answer, TestApp};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio::sync::Barrier;
use uuid::Uuid;

/// Deterministic pseudo-random numbers (xorshift64*), so a failure replays.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }
}

/// One HTTP client for every racing task, with room for all of them.
fn racing_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

async fn post(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    token: &str,
    body: Value,
) -> Answer {
    let response = client
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("the ledger answers");
    read(response).await
}

/// Sends every `(token, path, body)` at once (released together by a
/// barrier) and returns the answers in the same order.
async fn race(app: &TestApp, requests: Vec<(String, String, Value)>) -> Vec<Answer> {
    race_on(std::slice::from_ref(&app.base_url), requests).await
}

/// Like [`race`], spreading the requests over several replicas in turn.
async fn race_on(bases: &[String], requests: Vec<(String, String, Value)>) -> Vec<Answer> {
    let client = racing_client();
    let barrier = Arc::new(Barrier::new(requests.len()));
    let tasks: Vec<_> = requests
        .into_iter()
        .enumerate()
        .map(|(i, (token, path, body))| {
            let (client, barrier) = (client.clone(), barrier.clone());
            let base = bases[i % bases.len()].clone();
            tokio::spawn(async move {
                barrier.wait().await;
                post(&client, &base, &path, &token, body).await
            })
        })
        .collect();
    let all = futures::future::join_all(tasks);
    let answers = tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("every racing request is answered within 60 s (no deadlock)");
    answers
        .into_iter()
        .map(|a| a.expect("racing task"))
        .collect()
}

fn order_body(items: Vec<Value>) -> Value {
    json!({ "items": items })
}

#[track_caller]
fn assert_no_server_errors(answers: &[Answer]) {
    for a in answers {
        assert!(
            a.status == StatusCode::CREATED || a.status == StatusCode::CONFLICT,
            "only 201 or 409 are acceptable answers to a race, got {}: {:?}",
            a.status,
            a.body
        );
    }
}

/// The conflicts of a 409 `unavailable` answer.
#[track_caller]
fn unavailable_conflicts(answer: &Answer) -> &Vec<Value> {
    assert_eq!(answer.status, StatusCode::CONFLICT, "{:?}", answer.body);
    assert!(
        answer.body["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("unavailable")),
        "409 of type unavailable: {:?}",
        answer.body
    );
    let conflicts = answer.body["conflicts"]
        .as_array()
        .unwrap_or_else(|| panic!("unavailable without conflicts: {:?}", answer.body));
    assert!(!conflicts.is_empty(), "{:?}", answer.body);
    conflicts
}

fn order_ids_of(answers: &[Answer]) -> BTreeSet<Uuid> {
    answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .map(|a| a.uuid("order_id"))
        .collect()
}

fn live(holds: &[HoldRecord]) -> Vec<&HoldRecord> {
    holds.iter().filter(|h| h.is_live()).collect()
}

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
async fn an_order_refused_on_one_line_releases_the_lines_it_held() {
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

    // Whatever the order of the items, the free line is held, then released.
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
            live(&app.holds_of(a).await).is_empty(),
            "the refused order left no hold on A"
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
async fn holds_survive_inventory_snapshots_when_orders_race_over_booked_hours() {
    // More events than the snapshot interval (50): the racing orders are
    // checked against an Inventory loaded from a snapshot.
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Busy Hours").await;
    let listing = app.rental_listing(vendor, "hour", "2.00", "0.00", 1).await;
    for hour in 0..60 {
        let answer = app
            .post(
                "/v1/orders",
                &app.customer(&format!("early-{hour}")),
                order_body(vec![rental_item(
                    listing,
                    1,
                    &at(0, hour),
                    &at(0, hour + 1),
                )]),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::CREATED,
            "hour {hour}: {:?}",
            answer.body
        );
    }

    // 20 orders on booked hours, 6 racing for the one free hour 70.
    let mut rng = Rng::new(0x5EED_0003);
    let mut requests: Vec<(String, String, Value)> = (0..20)
        .map(|i| {
            let hour = rng.range(0, 59);
            (
                app.customer(&format!("late-{i}")),
                "/v1/orders".to_owned(),
                order_body(vec![rental_item(
                    listing,
                    1,
                    &at(0, hour),
                    &at(0, hour + 1),
                )]),
            )
        })
        .collect();
    requests.extend((0..6).map(|i| {
        (
            app.customer(&format!("free-hour-{i}")),
            "/v1/orders".to_owned(),
            order_body(vec![rental_item(listing, 1, &at(0, 70), &at(0, 71))]),
        )
    }));
    let answers = race(&app, requests).await;
    assert_no_server_errors(&answers);
    for answer in &answers[..20] {
        unavailable_conflicts(answer);
    }
    let free_hour_wins = answers[20..]
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    assert_eq!(free_hour_wins, 1, "the free hour is booked once");

    let holds = app.holds_of(listing).await;
    let live = live(&holds);
    assert_eq!(live.len(), 61, "{} holds recorded", holds.len());
    assert!(peak_use(&live) <= 1, "a unit booked twice");
    let per_hour: BTreeMap<_, usize> = live.iter().fold(BTreeMap::new(), |mut m, h| {
        *m.entry(h.period).or_default() += 1;
        m
    });
    assert!(per_hour.values().all(|&n| n == 1));
}

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
        name: name.to_owned(),
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
        matches!(refused, Err(command_api::ApiError::Conflict { .. })),
        "a second registration is refused, not recorded: {:?}",
        refused.as_ref().map(|c| c.position)
    );
    let recorded = app.event_types("Vendor", vendor_id).await;
    assert_eq!(recorded, vec!["VendorRegistered"], "recorded once");
}

/// Snapshots are written by a task of their own after the append. Once the
/// inventory's has landed, a process that loads the listing from it (plus
/// the events after it) holds the same state as one that replays every
/// event, and it goes on refusing the booked hours.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_inventory_loaded_from_its_snapshot_equals_a_full_replay() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Snapshotted Hours").await;
    let listing = app.rental_listing(vendor, "hour", "2.00", "0.00", 1).await;
    for hour in 0..70 {
        let answer = app
            .post(
                "/v1/orders",
                &app.customer(&format!("c-{hour}")),
                order_body(vec![rental_item(
                    listing,
                    1,
                    &at(0, hour),
                    &at(0, hour + 1),
                )]),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    }
    let snapshotted_at = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT last_sequence FROM snapshots
              WHERE aggregate_type = 'Inventory' AND aggregate_id = $1",
        )
        .bind(listing.to_string())
        .fetch_optional(&app.pool)
        .await
        .expect("read snapshots")
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while snapshotted_at().await.is_none() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let at_sequence = snapshotted_at().await.expect("a snapshot was written");
    assert!(at_sequence >= 50, "snapshot at {at_sequence}");

    let id = listing.to_string();
    let from_snapshot = app
        .command_app()
        .inventory
        .load(&id)
        .await
        .expect("load from the snapshot");
    let replayed = command_api::bus::CommandBus::<domain::Inventory>::new(
        app.pool.clone(),
        ledger_nats::CommitNotifier::new(),
    )
    .load(&id)
    .await
    .expect("replay every event");
    assert_eq!(
        serde_json::to_value(&from_snapshot).expect("encode"),
        serde_json::to_value(&replayed).expect("encode"),
        "the snapshot and the replay disagree"
    );

    let (replica, _server) = app.spawn_replica().await;
    let refused = post(
        &racing_client(),
        &replica,
        "/v1/orders",
        &app.customer("late"),
        order_body(vec![rental_item(listing, 1, &at(0, 10), &at(0, 11))]),
    )
    .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{:?}", refused.body);
}
