//! Read-your-writes: every query answer carries `Ledger-Position`, a query
//! with a command's position already reflects the command, and a minimum
//! beyond the head answers after about two seconds with where it stood.

use super::*;

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
