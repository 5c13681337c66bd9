//! A poison event never stops a consumer silently (DESIGN.md invariant 8,
//! issue 20 item 1). A stored event that a consumer cannot apply is retried
//! with backoff, then the consumer is reported stalled at that event in
//! `GET /v1/projections`, `/metrics` and `/health/ready`, while the other
//! consumers go on; once a fix makes the event applicable, or a rebuild
//! moves the checkpoint past it, the consumer goes on and the fault clears.
//!
//! The events are appended to the table behind the command side, as a bad
//! upstream (or an older, laxer version of the ledger) would have written
//! them: the command side refuses to make them.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use ledger_nats::faults::{self, Fault};
use ledger_nats::{EventEnvelope, StreamSettings};
use ledger_tests::events::head;
use ledger_tests::pipeline::checkpoint;
use ledger_tests::pipeline::{commit_probes, eventually, insert_probe, RelayTask};
use ledger_tests::stream::nats_client;
use ledger_tests::{fresh_database, fresh_stream_name, TestApp};
use ledger_tests::{sale_item, Marketplace};
use projectors::rebuild::{differences, rebuild_and_swap, rebuild_into, READ_MODEL_TABLES};
use projectors::{Consumer, RetryPolicy, Runner, RunnerConfig};
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Retries short enough for a test: stalled after three attempts.
fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        first_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        stalled_retry: Duration::from_millis(200),
    }
}

async fn projections(app: &TestApp) -> Vec<Value> {
    let answer = app
        .send(
            Method::GET,
            "/v1/projections",
            Some(&app.admin()),
            None,
            &[],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    answer.body.as_array().cloned().unwrap_or_default()
}

/// `GET /v1/projections` until `check` holds (true) or 30 s have passed
/// (false), with the last answer.
async fn wait_for_projections(
    app: &TestApp,
    check: impl Fn(&[Value]) -> bool,
) -> (bool, Vec<Value>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let shown = projections(app).await;
        if check(&shown) {
            return (true, shown);
        }
        if tokio::time::Instant::now() >= deadline {
            return (false, shown);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn is_live(projection: &Value) -> bool {
    projection["state"] == "live" && projection["position"] == projection["head"]
}

fn named<'a>(all: &'a [Value], name: &str) -> &'a Value {
    all.iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no consumer `{name}` in {all:?}"))
}

/// Whether a scrape shows every one of `series` within a few seconds
/// (the recorder is the process's: another test's scrape may sample its
/// own database in between).
async fn scraped(app: &TestApp, series: &[&str]) -> bool {
    eventually(Duration::from_secs(5), || async {
        let metrics = app.metrics().await;
        series.iter().all(|s| metrics.contains(s))
    })
    .await
}

async fn readiness(app: &TestApp) -> (StatusCode, Value) {
    let response = app
        .client
        .get(format!("{}/health/ready", app.base_url))
        .send()
        .await
        .expect("readiness");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Appends an `OrderPlaced` for the whole stock of a sale listing at the
/// highest price, as the command side accepted before amounts were
/// bounded: 10 000 000 × 1 000 000 000.00. Its line's share of the platform
/// fee (10^15) does not fit `an_order_lines.platform_fee` (numeric(20, 6)),
/// so the analytics cannot store it; every other consumer can. Returns its
/// position.
async fn append_oversized_order(app: &TestApp, vendor_id: Uuid, listing_id: Uuid) -> i64 {
    let rates = domain::Rates {
        tax_rate: Decimal::ZERO,
        platform_fee_rate: Decimal::new(10, 2),
    };
    let order_id = Uuid::new_v4();
    let priced = domain::price_order(
        &[domain::LineInput {
            line_id: Uuid::new_v4(),
            hold_id: Uuid::new_v4(),
            listing_id,
            vendor_id,
            terms: domain::LineTerms::Sale {
                unit_price: Decimal::from(1_000_000_000u32),
            },
            quantity: 10_000_000,
        }],
        rates,
    );
    let now = chrono::Utc::now();
    let placed = domain::OrderEvent::OrderPlaced {
        order_id,
        customer_id: "cust-poison".into(),
        currency: "USD".into(),
        priced,
        rates,
        hold_expires_at: now + chrono::Duration::minutes(15),
        placed_at: now,
    };
    let mut conn = app.pool.acquire().await.expect("a connection");
    let position: i64 = sqlx::query_scalar(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                             event_version, payload, metadata)
         VALUES ('Order', $1, 1, 'OrderPlaced', $2, $3, $4)
         RETURNING global_position",
    )
    .bind(order_id.to_string())
    .bind(domain::EVENT_VERSION)
    .bind(serde_json::to_value(&placed).expect("the event as JSON"))
    .bind(json!({"correlation_id": "poison", "causation_id": "poison"}))
    .fetch_one(&mut *conn)
    .await
    .expect("append the order");
    ledger_nats::notify_relays(&mut *conn)
        .await
        .expect("wake the relay");
    position
}

#[tokio::test]
async fn an_event_a_projector_cannot_store_stalls_it_visibly_while_the_others_go_on_until_fixed() {
    let app = TestApp::spawn_server(|server| server.consumer_retry = quick_retries()).await;
    let vendor = app.register_vendor("Poison Paddles").await;
    let listing = app.sale_listing(vendor, "3.99", 100).await;
    Marketplace::new(&app)
        .with_paid_order("cust-before", vec![sale_item(listing, 1)])
        .await;

    let poison = append_oversized_order(&app, vendor, listing).await;
    Marketplace::new(&app)
        .with_paid_order("cust-after", vec![sale_item(listing, 1)])
        .await;
    assert!(head(&app.pool).await > poison);

    // The analytics stall at the event; every other consumer reaches the head.
    let (stalled, shown) = wait_for_projections(&app, |shown| {
        named(shown, "analytics")["state"] == "stalled"
            && shown
                .iter()
                .filter(|p| p["name"] != "analytics")
                .all(is_live)
    })
    .await;
    assert!(stalled, "{shown:#?}");
    let analytics = named(&shown, "analytics");
    assert_eq!(analytics["stalled_at"], poison, "{analytics}");
    assert!(analytics["position"].as_i64().expect("a position") < poison);
    let error = analytics["error"].as_str().expect("an error");
    assert!(error.contains("numeric field overflow"), "{error}");
    for name in ["availability", "orders", "ledger", "policies"] {
        assert!(named(&shown, name).get("error").is_none(), "{shown:#?}");
    }

    let stalled_series = [
        "ledger_consumer_stalled{consumer=\"analytics\"} 1\n",
        "ledger_consumer_stalled{consumer=\"orders\"} 0\n",
    ];
    assert!(
        scraped(&app, &stalled_series).await,
        "{}",
        app.metrics().await
    );

    let (status, ready) = readiness(&app).await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!(ready["status"], "degraded", "{ready}");
    let degraded = ready["degraded"].as_array().expect("what is degraded");
    assert_eq!(degraded.len(), 1, "{ready}");
    assert_eq!(degraded[0]["component"], "consumer:analytics");
    assert_eq!(degraded[0]["kind"], "stalled");
    assert_eq!(degraded[0]["position"], poison);

    // The fix: a migration that widens the column. The stalled consumer's
    // next slow retry applies the event and clears the fault.
    sqlx::query("ALTER TABLE an_order_lines ALTER COLUMN platform_fee TYPE numeric(30, 6)")
        .execute(&app.pool)
        .await
        .expect("widen the column");
    let (recovered, shown) = wait_for_projections(&app, |shown| shown.iter().all(is_live)).await;
    assert!(recovered, "{shown:#?}");
    assert!(named(&shown, "analytics").get("error").is_none());
    assert!(named(&shown, "analytics").get("stalled_at").is_none());
    assert!(
        scraped(
            &app,
            &["ledger_consumer_stalled{consumer=\"analytics\"} 0\n"]
        )
        .await,
        "{}",
        app.metrics().await
    );
    let (status, ready) = readiness(&app).await;
    assert_eq!((status, &ready["status"]), (StatusCode::OK, &json!("ok")));
    assert!(faults::list(&app.pool).await.expect("faults").is_empty());

    // Nothing was skipped: every read model equals a rebuild of the log.
    rebuild_into(
        &app.pool,
        &app.stream,
        "verify_poison",
        &projectors::read_models(),
    )
    .await
    .expect("a fresh rebuild");
    for table in READ_MODEL_TABLES {
        let differing = differences(&app.pool, "verify_poison", table)
            .await
            .expect("compare");
        assert_eq!(differing, 0, "{table} differs from a fresh rebuild");
    }
    let fee: Decimal = sqlx::query_scalar(
        "SELECT l.platform_fee FROM an_order_lines l JOIN events e
             ON e.aggregate_id = l.order_id::text AND e.global_position = $1",
    )
    .bind(poison)
    .fetch_one(&app.pool)
    .await
    .expect("the oversized line");
    assert_eq!(fee, Decimal::from(1_000_000_000_000_000u64));
}

/// A consumer whose code panics on the events of one aggregate (a bug), or,
/// as the fixed binary would, applies them.
struct Brittle {
    poison: &'static str,
    fixed: bool,
}

const BRITTLE: &str = "brittle";

impl Consumer for Brittle {
    fn name(&self) -> &'static str {
        BRITTLE
    }

    fn tables(&self) -> &'static [&'static str] {
        &["brittle_applied"]
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [EventEnvelope],
    ) -> BoxFuture<'a, Result<(), projectors::Error>> {
        Box::pin(async move {
            for event in events {
                if event.aggregate_id == self.poison && !self.fixed {
                    let parts: Vec<u32> = Vec::new();
                    // An index out of bounds, as a bug would have it.
                    let _ = parts[event.sequence as usize];
                }
                sqlx::query("INSERT INTO brittle_applied (position) VALUES ($1)")
                    .bind(event.position)
                    .execute(&mut *tx)
                    .await?;
            }
            Ok(())
        })
    }
}

/// Applies nothing; only its checkpoint moves.
struct Steady;

impl Consumer for Steady {
    fn name(&self) -> &'static str {
        "steady"
    }

    fn apply<'a>(
        &'a self,
        _tx: &'a mut PgConnection,
        _events: &'a [EventEnvelope],
    ) -> BoxFuture<'a, Result<(), projectors::Error>> {
        Box::pin(async { Ok(()) })
    }
}

async fn fault_of(pool: &PgPool, name: &str) -> Option<Fault> {
    let component = faults::consumer_component(name);
    faults::list(pool)
        .await
        .expect("faults")
        .into_iter()
        .find(|f| f.component == component)
}

async fn brittle_applied(pool: &PgPool) -> Vec<i64> {
    sqlx::query_scalar("SELECT position FROM brittle_applied ORDER BY position")
        .fetch_all(pool)
        .await
        .expect("brittle_applied")
}

#[tokio::test]
async fn a_panicking_consumer_is_stalled_at_the_event_and_goes_on_once_a_rebuild_moves_past_it() {
    let (pool, _database) = fresh_database().await.expect("a database");
    sqlx::query("CREATE TABLE brittle_applied (position bigint PRIMARY KEY)")
        .execute(&pool)
        .await
        .expect("create brittle_applied");
    let stream = fresh_stream_name().await;
    let client = nats_client().await;
    let relay = RelayTask::start(&pool, &client, &stream);
    let mut config = RunnerConfig::new(StreamSettings::new(stream.clone()));
    config.idle_check = Duration::from_millis(200);
    config.retry = quick_retries();
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let mut runners = Vec::new();
    let consumers: [Arc<dyn Consumer>; 2] = [
        Arc::new(Brittle {
            poison: "poison",
            fixed: false,
        }),
        Arc::new(Steady),
    ];
    for consumer in consumers {
        let runner = Runner::new(pool.clone(), client.clone(), config.clone(), consumer);
        runners.push(tokio::spawn(runner.run(stopped.clone())));
    }

    // Three good events, the poison one, three more: one batch or several.
    let mut before = commit_probes(&pool, "good", 1, 3).await;
    let mut conn = pool.acquire().await.expect("a connection");
    let (poison, _) = insert_probe(&mut conn, "poison", 1)
        .await
        .expect("the poison event");
    drop(conn);
    let after = commit_probes(&pool, "good", 4, 3).await;
    let last = *after.last().expect("events after the poison");

    // Stalled at the poison event, with what precedes it applied; the
    // other consumer reaches the head.
    let stalled = eventually(Duration::from_secs(30), || async {
        fault_of(&pool, BRITTLE).await.is_some() && checkpoint(&pool, "steady").await == last
    })
    .await;
    assert!(
        stalled,
        "no stall recorded, or the other consumer at {}",
        checkpoint(&pool, "steady").await
    );
    let fault = fault_of(&pool, BRITTLE).await.expect("a fault");
    assert_eq!(
        (fault.kind.as_str(), fault.position),
        ("stalled", Some(poison))
    );
    assert!(fault.detail.contains("panicked"), "{}", fault.detail);
    assert!(
        fault.detail.contains("index out of bounds"),
        "{}",
        fault.detail
    );
    assert_eq!(checkpoint(&pool, BRITTLE).await, poison - 1);
    assert_eq!(brittle_applied(&pool).await, before);
    assert!(fault_of(&pool, "steady").await.is_none());

    // The fixed binary rebuilds the read model and swaps it in past the
    // poison event; the stalled runner (still the old code) goes on from
    // there and clears its fault.
    let fixed: Arc<dyn Consumer> = Arc::new(Brittle {
        poison: "poison",
        fixed: true,
    });
    let reached = rebuild_and_swap(&pool, &stream, &fixed, |_| {})
        .await
        .expect("the rebuild swaps in");
    assert!(reached >= last, "rebuilt up to {reached}");
    let cleared = eventually(Duration::from_secs(30), || async {
        fault_of(&pool, BRITTLE).await.is_none()
    })
    .await;
    assert!(cleared, "{:?}", fault_of(&pool, BRITTLE).await);
    let later = commit_probes(&pool, "good", 7, 2).await;
    let newest = *later.last().expect("later events");
    let caught_up = eventually(Duration::from_secs(30), || async {
        checkpoint(&pool, BRITTLE).await == newest
    })
    .await;
    assert!(caught_up, "at {}", checkpoint(&pool, BRITTLE).await);
    before.push(poison);
    before.extend(after.iter().chain(&later));
    assert_eq!(brittle_applied(&pool).await, before);
    assert!(fault_of(&pool, BRITTLE).await.is_none());

    stop.cancel();
    for runner in runners {
        runner.await.expect("a runner stops");
    }
    relay.stop().await;
}
