//! Projections and health: each consumer's position and lag for admins and
//! analysts (every consumer listed even before the first event), and health
//! without a token.

use super::*;

#[tokio::test]
async fn projections_report_each_consumers_position_and_lag_to_admins_and_analysts() {
    let app = TestApp::spawn().await;
    let shop = Marketplace::new(&app).with_harbour_and_alpine(5, 20).await;
    let placed = app.place("alice", shop.mixed_order()).await;
    let paid = app.pay(&placed).await;
    let last = position(&paid);

    for token in [app.admin(), app.analyst()] {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let answer = app.get_at("/v1/projections", &token, None).await;
            assert_ok(&answer);
            let list = answer.body.as_array().expect("a list").clone();
            for p in &list {
                let position = p["position"].as_i64().expect("position");
                let head = p["head"].as_i64().expect("head");
                let lag = p["lag_events"].as_i64().expect("lag_events");
                let seconds = p["lag_seconds"].as_f64().expect("lag_seconds");
                let state = p["state"].as_str().expect("state");
                assert!(
                    position <= head && head >= last,
                    "position {position}, head {head}"
                );
                assert!(lag >= 0 && seconds >= 0.0, "{p}");
                assert_eq!(lag == 0, state == "live", "{p}");
                if lag == 0 {
                    assert_eq!(seconds, 0.0, "{p}");
                }
            }
            let names: HashSet<&str> = list.iter().filter_map(|p| p["name"].as_str()).collect();
            let caught_up = ["availability", "orders", "policies"].iter().all(|name| {
                list.iter().any(|p| {
                    p["name"] == *name && p["state"] == "live" && p["position"] == p["head"]
                })
            });
            if caught_up {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the consumers did not catch up within 10 s ({names:?}): {list:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for token in [
        app.customer("alice"),
        app.vendor(shop.harbour),
        app.auditor(),
    ] {
        let answer = app.get_at("/v1/projections", &token, None).await;
        assert_problem(&answer, StatusCode::FORBIDDEN, "forbidden");
    }
    app.stop().await;
}

#[tokio::test]
async fn health_needs_no_token_and_queries_need_one() {
    let app = TestApp::spawn().await;
    let live = app.send(Method::GET, "/health/live", None, None, &[]).await;
    assert_ok(&live);
    let ready = app
        .send(Method::GET, "/health/ready", None, None, &[])
        .await;
    assert_ok(&ready);
    assert_eq!(ready.body["checks"]["postgres"], "ok", "{:?}", ready.body);
    assert_eq!(ready.body["checks"]["nats"], "ok", "{:?}", ready.body);

    for path in ["/v1/listings", "/v1/orders", "/v1/projections"] {
        let anonymous = app.send(Method::GET, path, None, None, &[]).await;
        assert_problem(&anonymous, StatusCode::UNAUTHORIZED, "unauthorized");
        let forged = app
            .send(Method::GET, path, Some("not.a.token"), None, &[])
            .await;
        assert_eq!(forged.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn projections_list_every_consumer_even_before_the_first_event() {
    let app = TestApp::spawn().await;
    // Give the consumers time to start (nothing to apply).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let answer = app.get_at("/v1/projections", &app.admin(), None).await;
    assert_ok(&answer);
    let list = answer.body.as_array().expect("a list");
    for name in ["availability", "orders", "policies"] {
        let entry = list
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("`{name}` missing from {list:?}"));
        assert_eq!(entry["position"], 0);
        assert_eq!(entry["head"], 0);
        assert_eq!(entry["lag_events"], 0);
        assert_eq!(entry["state"], "live");
    }
    app.stop().await;
}
