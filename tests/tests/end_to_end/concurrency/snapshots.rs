//! Snapshots of an Inventory: holds survive them while orders race, and an
//! aggregate loaded from its snapshot equals a full replay.

use super::*;

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
        .load(&id, &command_api::Principal::system("test"))
        .await
        .expect("load from the snapshot");
    let replayed = command_api::bus::CommandBus::<domain::Inventory>::new(
        app.pool.clone(),
        ledger_nats::CommitNotifier::new(),
    )
    .load(&id, &command_api::Principal::system("test"))
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
