//! Invariant 5 (DESIGN.md "Invariants"): every read model equals a rebuild
//! from the log after any crash or restart of any part; no event is lost or
//! applied twice.
//!
//! The ledger runs as separate "processes" on one database: an HTTP instance
//! (command and read API, with the policies and the sweeper), the relay, and
//! one projector runner per read model. The relay and the projectors are
//! tokio tasks with their own database pool and NATS connection; a crash
//! aborts the task wherever it is (mid-publish, between the acks and the
//! stored position, inside a projector's transaction) and drops its
//! connections, as a killed process would. Meanwhile many clients drive a
//! load of orders, payments, cancellations and blackouts over HTTP.
//!
//! The NATS tests run a private `nats-server` (never the shared one on
//! 4222), stop it with SIGTERM or kill it with SIGKILL mid-load, and restart
//! it on the same port with its store, with an empty store (everything it
//! acknowledged is gone) or with its message store rolled back to an older
//! copy while the consumers' state is kept (acknowledged messages lost
//! behind consumers that had seen them).
//!
//! Every test ends the same way: wait until the relay and every consumer
//! have reached the head of the log, rebuild the read models from the
//! events table into a fresh schema and require no difference, and check
//! independently that nothing was applied twice or lost.
//!
//! Set `FAULTS_SEED` to replay a run's random choices (each test prints its
//! seed).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ledger_nats::{Relay, RelayConfig, StreamSettings};
use ledger_tests::database::scalar;
use ledger_tests::events::head;
use ledger_tests::pipeline::{checkpoints, published, wait_converged};
use ledger_tests::scenario::seed;
use ledger_tests::services::{copy_dir, PrivateNats};
use ledger_tests::{at, nats_url, TestApp, WEBHOOK_SECRET};
use projectors::rebuild::{differences, rebuild_into, READ_MODEL_TABLES};
use projectors::{Consumer, Runner, RunnerConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Concurrent clients of the load.
const CLIENTS: usize = 16;

/// The tests of this file run one at a time: each is a heavy load on its
/// own, and together they would exhaust the database's connections.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------
// The relay and the projectors as crashable "processes".
// ---------------------------------------------------------------------------

#[derive(Clone)]
enum Kind {
    Relay,
    Projector(Arc<dyn Consumer>),
}

struct Part {
    name: &'static str,
    kind: Kind,
    running: Option<(watch::Sender<bool>, JoinHandle<()>)>,
    crashes: u32,
}

/// Where the parts find the database and NATS.
#[derive(Clone)]
struct Env {
    database: PgConnectOptions,
    nats_url: String,
    stream: String,
}

impl Part {
    fn new(name: &'static str, kind: Kind) -> Part {
        Part {
            name,
            kind,
            running: None,
            crashes: 0,
        }
    }

    /// Starts the part with its own pool and NATS connection.
    async fn start(&mut self, env: &Env) {
        assert!(self.running.is_none(), "{} is running", self.name);
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(env.database.clone())
            .await
            .expect("a pool for the part");
        let client = ledger::connect_nats(&env.nats_url)
            .await
            .expect("a NATS client");
        let settings = StreamSettings::new(env.stream.clone());
        let (stop, shutdown) = watch::channel(false);
        let task = match &self.kind {
            Kind::Relay => {
                tokio::spawn(Relay::new(pool, client, RelayConfig::new(settings)).run(shutdown))
            }
            Kind::Projector(consumer) => tokio::spawn(
                Runner::new(pool, client, RunnerConfig::new(settings), consumer.clone())
                    .run(shutdown),
            ),
        };
        self.running = Some((stop, task));
    }

    /// Kills the part wherever it is: its task is dropped at its current
    /// await point, with its transaction, connections and NATS client.
    async fn crash(&mut self) {
        let (_stop, task) = self.running.take().expect("the part is running");
        task.abort();
        let _ = task.await;
        self.crashes += 1;
    }

    async fn stop(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            let _ = stop.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

/// The HTTP instance plus the crashable parts, all on one database.
struct Pipeline {
    app: TestApp,
    env: Env,
    parts: Vec<Part>,
}

impl Pipeline {
    async fn start(nats_url: &str) -> Pipeline {
        let parts = ledger::Parts {
            command_api: true,
            read_api: true,
            ..ledger::Parts::NONE
        };
        let app = TestApp::spawn_parts(nats_url, parts).await;
        let env = Env {
            database: (*app.pool.connect_options()).clone(),
            nats_url: nats_url.to_owned(),
            stream: app.stream.clone(),
        };
        let mut parts = vec![Part::new("relay", Kind::Relay)];
        for model in projectors::read_models() {
            parts.push(Part::new(model.name(), Kind::Projector(model)));
        }
        for part in &mut parts {
            part.start(&env).await;
        }
        Pipeline { app, env, parts }
    }

    async fn stop(mut self) {
        for part in &mut self.parts {
            part.stop().await;
        }
        self.app.stop().await;
    }
}

// ---------------------------------------------------------------------------
// The load: many clients placing, paying and cancelling orders over HTTP.
// ---------------------------------------------------------------------------

struct Catalog {
    vendors: Vec<Uuid>,
    /// (listing, vendor) of sale listings with plenty of stock.
    sale: Vec<Uuid>,
    /// (listing, vendor) of rental listings with plenty of units.
    rental: Vec<(Uuid, Uuid)>,
}

async fn catalog(app: &TestApp) -> Catalog {
    let names: Vec<String> = (0..4).map(|i| format!("Fault vendor {i}")).collect();
    let vendors =
        futures::future::join_all(names.iter().map(|name| app.register_vendor(name))).await;
    let mut sale = Vec::new();
    let mut rental = Vec::new();
    for &vendor in &vendors {
        let sales =
            futures::future::join_all((0..4).map(|_| app.sale_listing(vendor, "7.25", 1_000_000)))
                .await;
        sale.extend(sales);
        let rentals = futures::future::join_all(
            (0..4).map(|_| app.rental_listing(vendor, "day", "19.90", "50.00", 100_000)),
        )
        .await;
        rental.extend(rentals.into_iter().map(|l| (l, vendor)));
    }
    Catalog {
        vendors,
        sale,
        rental,
    }
}

#[derive(Default)]
struct Stats {
    placed: AtomicU64,
    paid: AtomicU64,
    cancelled: AtomicU64,
    blackouts: AtomicU64,
    /// Every answer that was not the expected success, with what was sent.
    failures: Mutex<Vec<String>>,
}

impl Stats {
    fn commands(&self) -> u64 {
        self.placed.load(Ordering::Relaxed)
            + self.paid.load(Ordering::Relaxed)
            + self.cancelled.load(Ordering::Relaxed)
            + self.blackouts.load(Ordering::Relaxed)
    }

    fn failures(&self) -> Vec<String> {
        self.failures.lock().expect("not poisoned").clone()
    }

    fn summary(&self) -> String {
        format!(
            "placed {}, paid {}, cancelled {}, blackout commands {}, failures {}",
            self.placed.load(Ordering::Relaxed),
            self.paid.load(Ordering::Relaxed),
            self.cancelled.load(Ordering::Relaxed),
            self.blackouts.load(Ordering::Relaxed),
            self.failures().len()
        )
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    stats: Arc<Stats>,
}

impl Client {
    /// Sends a command; its answer's body when it answered `expected`.
    async fn command(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
        expected: StatusCode,
    ) -> Option<Value> {
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                let body: Value = response
                    .bytes()
                    .await
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or(Value::Null);
                if status == expected {
                    Some(body)
                } else {
                    self.fail(format!("{what}: {status} {body}"));
                    None
                }
            }
            Err(err) => {
                self.fail(format!("{what}: {err}"));
                None
            }
        }
    }

    fn fail(&self, failure: String) {
        let mut failures = self.stats.failures.lock().expect("not poisoned");
        if failures.len() < 50 {
            failures.push(failure);
        } else {
            failures.push(String::new());
        }
    }

    fn post(&self, path: &str, token: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
    }

    async fn pay(&self, order: &Value) -> bool {
        let order_id = order["order_id"].as_str().unwrap_or_default();
        let total: rust_decimal::Decimal = order["total"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or_default();
        let minor: i64 = (total * rust_decimal::Decimal::from(100))
            .trunc()
            .to_string()
            .parse()
            .unwrap_or(0);
        let event = format!("evt_{}", Uuid::new_v4().simple());
        let body = json!({
            "id": event,
            "type": "payment_intent.succeeded",
            "data": {"object": {
                "id": format!("pi_{event}"),
                "amount": minor,
                "currency": "usd",
                "metadata": {"order_id": order_id},
            }}
        });
        let raw = serde_json::to_vec(&body).expect("serialise");
        let signature = command_api::routes::webhooks::sign(
            &raw,
            WEBHOOK_SECRET,
            chrono::Utc::now().timestamp(),
        );
        let request = self
            .http
            .post(format!("{}/v1/webhooks/payments", self.base))
            .header("content-type", "application/json")
            .header("stripe-signature", signature)
            .body(raw);
        self.command("pay", request, StatusCode::OK).await.is_some()
    }
}

/// A running load: `CLIENTS` tasks issuing commands until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
    stats: Arc<Stats>,
}

impl Load {
    async fn start(app: &TestApp, seed: u64) -> Load {
        let catalog = Arc::new(catalog(app).await);
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Stats::default());
        let vendor_tokens: Arc<Vec<String>> =
            Arc::new(catalog.vendors.iter().map(|&v| app.vendor(v)).collect());
        let mut tasks = Vec::new();
        for worker in 0..CLIENTS {
            let client = Client {
                http: app.client.clone(),
                base: app.base_url.clone(),
                stats: stats.clone(),
            };
            let token = app.customer(&format!("fault-customer-{worker}"));
            let catalog = catalog.clone();
            let vendor_tokens = vendor_tokens.clone();
            let stop = stop.clone();
            let rng = StdRng::seed_from_u64(seed ^ (worker as u64).wrapping_mul(0x9E37_79B9));
            tasks.push(tokio::spawn(async move {
                client_loop(client, token, catalog, vendor_tokens, stop, rng).await
            }));
        }
        Load { stop, tasks, stats }
    }

    async fn finish(self) -> Arc<Stats> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.expect("a load client does not panic");
        }
        self.stats
    }
}

async fn client_loop(
    client: Client,
    token: String,
    catalog: Arc<Catalog>,
    vendor_tokens: Arc<Vec<String>>,
    stop: Arc<AtomicBool>,
    mut rng: StdRng,
) {
    while !stop.load(Ordering::Relaxed) {
        if rng.gen_ratio(1, 25) {
            // A vendor blocks a unit for a while, and sometimes lifts it again.
            let v = rng.gen_range(0..catalog.rental.len());
            let (listing, vendor) = catalog.rental[v];
            let vendor_index = catalog
                .vendors
                .iter()
                .position(|&x| x == vendor)
                .expect("a known vendor");
            let vendor_token = &vendor_tokens[vendor_index];
            let day = rng.gen_range(0..2_000);
            let body = json!({"start": at(day, 0), "end": at(day + 2, 0), "units": 1,
                              "reason": "maintenance"});
            let added = client
                .command(
                    "add blackout",
                    client.post(
                        &format!("/v1/listings/{listing}/blackouts"),
                        vendor_token,
                        &body,
                    ),
                    StatusCode::CREATED,
                )
                .await;
            if let Some(added) = added {
                client.stats.blackouts.fetch_add(1, Ordering::Relaxed);
                if rng.gen_bool(0.5) {
                    let blackout = added["blackout_id"].as_str().unwrap_or_default();
                    let request = client
                        .http
                        .delete(format!(
                            "{}/v1/listings/{listing}/blackouts/{blackout}",
                            client.base
                        ))
                        .bearer_auth(vendor_token);
                    if client
                        .command("remove blackout", request, StatusCode::OK)
                        .await
                        .is_some()
                    {
                        client.stats.blackouts.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            continue;
        }
        // An order of 2 to 6 lines over distinct listings.
        let lines = rng.gen_range(2..=6);
        let mut items = Vec::new();
        let mut used = Vec::new();
        while items.len() < lines {
            if rng.gen_bool(0.5) {
                let listing = catalog.sale[rng.gen_range(0..catalog.sale.len())];
                if used.contains(&listing) {
                    continue;
                }
                used.push(listing);
                items.push(json!({"listing_id": listing, "quantity": rng.gen_range(1..=3)}));
            } else {
                let (listing, _) = catalog.rental[rng.gen_range(0..catalog.rental.len())];
                if used.contains(&listing) {
                    continue;
                }
                used.push(listing);
                let day = rng.gen_range(0..2_000);
                let days = rng.gen_range(1..=5);
                items.push(json!({"listing_id": listing, "quantity": 1,
                                  "start": at(day, 0), "end": at(day + days, 0)}));
            }
        }
        let placed = client
            .command(
                "place order",
                client.post("/v1/orders", &token, &json!({ "items": items })),
                StatusCode::CREATED,
            )
            .await;
        let Some(order) = placed else { continue };
        client.stats.placed.fetch_add(1, Ordering::Relaxed);
        let roll = rng.gen_range(0..100);
        if roll < 25 {
            if client.pay(&order).await {
                client.stats.paid.fetch_add(1, Ordering::Relaxed);
            }
        } else if roll < 40 {
            let order_id = order["order_id"].as_str().unwrap_or_default();
            let cancelled = client
                .command(
                    "cancel order",
                    client.post(
                        &format!("/v1/orders/{order_id}/cancel"),
                        &token,
                        &json!({"reason": "changed my mind"}),
                    ),
                    StatusCode::OK,
                )
                .await;
            if cancelled.is_some() {
                client.stats.cancelled.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Checks.
// ---------------------------------------------------------------------------

/// Every read model equals a fresh rebuild from the events table, and
/// nothing was lost or applied twice.
async fn assert_read_models_match_the_log(pipeline: &Pipeline, label: &str) {
    let pool = &pipeline.app.pool;
    let stream = &pipeline.app.stream;
    let started = Instant::now();
    eprintln!(
        "[{label}] load stopped at position {}: relay at {}, checkpoints {:?}",
        head(pool).await,
        published(pool, stream).await,
        checkpoints(pool).await
    );
    let head = wait_converged(pool, stream, Duration::from_secs(90)).await;
    let events = scalar(pool, "SELECT count(*) FROM events").await;
    eprintln!(
        "[{label}] converged at position {head} ({events} events) in {:?}",
        started.elapsed()
    );

    let schema = format!("rebuild_{}", &Uuid::new_v4().simple().to_string()[..12]);
    let rebuilt = rebuild_into(pool, stream, &schema, &projectors::read_models())
        .await
        .expect("rebuild the read models");
    assert!(rebuilt > 0, "the rebuild applied events");
    for table in READ_MODEL_TABLES {
        let diff = differences(pool, &schema, table)
            .await
            .expect("compare with the rebuild");
        assert_eq!(
            diff, 0,
            "[{label}] {table} differs from a fresh rebuild in {diff} rows"
        );
    }

    // Independently of the projectors' code: counts the log implies.
    let orders = scalar(pool, "SELECT count(*) FROM rm_orders").await;
    let placed = scalar(
        pool,
        "SELECT count(*) FROM events WHERE aggregate_type = 'Order' AND event_type = 'OrderPlaced'",
    )
    .await;
    assert_eq!(
        orders, placed,
        "[{label}] one rm_orders row per OrderPlaced"
    );

    let allocations = scalar(pool, "SELECT count(*) FROM rm_allocations").await;
    let expected_allocations = scalar(
        pool,
        "SELECT count(*) FILTER (WHERE event_type IN ('HoldPlaced', 'BlackoutAdded'))
              - count(*) FILTER (WHERE event_type = 'BlackoutRemoved')
           FROM events WHERE aggregate_type = 'Inventory'",
    )
    .await;
    assert_eq!(
        allocations, expected_allocations,
        "[{label}] rm_allocations rows = holds + blackouts added - removed"
    );

    // Each order's document was last written by its last event, and holds
    // each payment event once.
    let stale = scalar(
        pool,
        "SELECT count(*) FROM rm_orders o
           JOIN (SELECT aggregate_id, max(global_position) AS last FROM events
                  WHERE aggregate_type = 'Order' GROUP BY aggregate_id) e
             ON e.aggregate_id = o.order_id::text
          WHERE (o.document->>'position')::bigint <> e.last",
    )
    .await;
    assert_eq!(stale, 0, "[{label}] orders not at their last event");
    let payments = scalar(
        pool,
        "SELECT coalesce(sum(jsonb_array_length(document->'payments')), 0)::bigint FROM rm_orders",
    )
    .await;
    let payment_events = scalar(
        pool,
        "SELECT count(*) FROM events WHERE aggregate_type = 'Order'
            AND event_type IN ('PaymentCaptured', 'PaymentFailed', 'PaymentAmountMismatch')",
    )
    .await;
    assert_eq!(
        payments, payment_events,
        "[{label}] each payment event recorded once"
    );

    // Sale stock held = the quantities of live sale holds and bookings.
    let wrong_stock = scalar(
        pool,
        "SELECT count(*) FROM rm_listings l
          WHERE l.kind = 'sale' AND l.stock_held <> coalesce(
                (SELECT sum(a.quantity) FROM rm_allocations a
                  WHERE a.listing_id = l.listing_id AND a.start_at IS NULL
                    AND a.kind IN ('hold', 'booking')), 0)",
    )
    .await;
    assert_eq!(
        wrong_stock, 0,
        "[{label}] sale listings with a wrong stock_held"
    );
    let held_units = scalar(
        pool,
        "SELECT coalesce(sum(stock_held), 0)::bigint FROM rm_listings",
    )
    .await;
    let expected_held = scalar(
        pool,
        "WITH placed AS (
             SELECT payload::jsonb->'HoldPlaced'->>'hold_id' AS hold,
                    (payload::jsonb->'HoldPlaced'->'request'->>'quantity')::bigint AS quantity
               FROM events
              WHERE event_type = 'HoldPlaced'
                AND coalesce(jsonb_typeof(payload::jsonb->'HoldPlaced'->'request'->'period'),
                             'null') = 'null'),
         last AS (
             SELECT DISTINCT ON (hold) hold, event_type FROM (
                 SELECT e.payload::jsonb->e.event_type->>'hold_id' AS hold, e.event_type,
                        e.global_position
                   FROM events e
                  WHERE e.aggregate_type = 'Inventory'
                    AND (e.payload::jsonb->e.event_type) ? 'hold_id') x
             ORDER BY hold, global_position DESC)
         SELECT coalesce(sum(p.quantity), 0)::bigint FROM placed p JOIN last l USING (hold)
          WHERE l.event_type NOT IN ('HoldReleased', 'HoldExpired')",
    )
    .await;
    assert_eq!(
        held_units, expected_held,
        "[{label}] stock held = quantities of live sale holds in the log"
    );

    let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(pool)
        .await;
}

/// The position header of every message on the stream, in stream order.
async fn stream_positions(nats_url: &str, stream: &str) -> Vec<i64> {
    use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
    use futures::StreamExt;

    let client = async_nats::connect(nats_url)
        .await
        .expect("connect to NATS");
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(stream).await.expect("the stream exists");
    let total = stream.info().await.expect("stream info").state.messages as usize;
    let consumer = stream
        .create_consumer(pull::Config {
            ack_policy: AckPolicy::None,
            deliver_policy: DeliverPolicy::All,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .expect("an ephemeral consumer");
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(2_000)
        .messages()
        .await
        .expect("read the stream");
    let mut positions = Vec::with_capacity(total);
    while positions.len() < total {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("the stream delivers its messages")
            .expect("a message")
            .expect("a message");
        let position = message
            .headers
            .as_ref()
            .and_then(|h| h.get(ledger_nats::envelope::POSITION_HEADER))
            .and_then(|v| v.as_str().parse::<i64>().ok())
            .expect("a position header");
        positions.push(position);
    }
    positions
}

/// Runs of consecutive numbers, for messages: `[(first, last)]`.
fn ranges(sorted: &[i64]) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    for &p in sorted {
        match out.last_mut() {
            Some((_, last)) if *last + 1 == p => *last = p,
            _ => out.push((p, p)),
        }
    }
    out
}

/// The stream holds every event of the log exactly once: nothing lost on
/// the way (or republished when JetStream lost it), republished copies
/// dropped as duplicates. Other consumers of the stream than the runner
/// (which fills holes from the table) depend on this.
async fn assert_stream_holds_the_log(pipeline: &Pipeline, label: &str) {
    let pool = &pipeline.app.pool;
    wait_converged(pool, &pipeline.app.stream, Duration::from_secs(90)).await;
    let logged: Vec<i64> = sqlx::query_scalar("SELECT global_position FROM events ORDER BY 1")
        .fetch_all(pool)
        .await
        .expect("read the log's positions");
    let mut on_stream = stream_positions(&pipeline.env.nats_url, &pipeline.app.stream).await;
    on_stream.sort_unstable();
    let mut twice: Vec<i64> = on_stream
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    twice.dedup();
    on_stream.dedup();
    let missing: Vec<i64> = logged
        .iter()
        .copied()
        .filter(|p| on_stream.binary_search(p).is_err())
        .collect();
    let missing_ranges = ranges(&missing);
    assert!(
        missing.is_empty() && twice.is_empty(),
        "[{label}] the stream lacks {} of the log's {} events (positions {:?}) and holds {} twice",
        missing.len(),
        logged.len(),
        &missing_ranges[..missing_ranges.len().min(10)],
        twice.len()
    );
}

/// Polls until the log holds at least `count` events.
async fn wait_for_events(pool: &PgPool, count: i64, timeout: Duration, stats: &Stats) {
    let deadline = Instant::now() + timeout;
    loop {
        let now = scalar(pool, "SELECT count(*) FROM events").await;
        if now >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {now} of {count} events within {timeout:?} ({})",
            stats.summary()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the relay has published past `position`; returns how long
/// that took.
async fn wait_relay_past(
    pool: &PgPool,
    stream: &str,
    position: i64,
    timeout: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let relay = published(pool, stream).await;
        if relay > position {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < timeout,
            "the relay did not publish past {position} within {timeout:?} (at {relay})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Messages on the stream now, with its first and last sequence.
async fn stream_state(nats_url: &str, stream: &str) -> (u64, u64, u64) {
    let client = async_nats::connect(nats_url)
        .await
        .expect("connect to NATS");
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(stream).await.expect("the stream exists");
    let state = stream.info().await.expect("stream info").state.clone();
    (state.messages, state.first_sequence, state.last_sequence)
}

async fn event_count(pool: &PgPool) -> i64 {
    scalar(pool, "SELECT count(*) FROM events").await
}

fn assert_no_failures(stats: &Stats, label: &str) {
    let failures = stats.failures();
    assert!(
        failures.is_empty(),
        "[{label}] {} commands failed, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
}

// ---------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------

/// The relay and each projector are killed at random points, several times
/// each, while clients record at least 20,000 events; every read model then
/// equals a fresh rebuild and nothing was lost or applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relay_and_projectors_killed_at_random_points_under_load() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let seed = seed("FAULTS_SEED");
    eprintln!("FAULTS_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let mut pipeline = Pipeline::start(&nats_url()).await;
    let load = Load::start(&pipeline.app, seed).await;

    let target = 20_000;
    while event_count(&pipeline.app.pool).await < target
        || pipeline.parts.iter().any(|p| p.crashes < 3)
    {
        assert!(
            started.elapsed() < Duration::from_secs(150),
            "the load is too slow: {} events ({})",
            event_count(&pipeline.app.pool).await,
            load.stats.summary()
        );
        tokio::time::sleep(Duration::from_millis(rng.gen_range(100..1_500))).await;
        // One part, or sometimes all of them at once.
        let victims: Vec<usize> = if rng.gen_ratio(1, 5) {
            (0..pipeline.parts.len()).collect()
        } else {
            vec![rng.gen_range(0..pipeline.parts.len())]
        };
        for &v in &victims {
            pipeline.parts[v].crash().await;
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..600))).await;
        for &v in &victims {
            let env = pipeline.env.clone();
            pipeline.parts[v].start(&env).await;
        }
    }
    let stats = load.finish().await;
    eprintln!(
        "load done in {:?}: {} events; {}; crashes: {}",
        started.elapsed(),
        event_count(&pipeline.app.pool).await,
        stats.summary(),
        pipeline
            .parts
            .iter()
            .map(|p| format!("{} {}", p.name, p.crashes))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert_no_failures(&stats, "crashes");
    assert_read_models_match_the_log(&pipeline, "crashes").await;
    assert_stream_holds_the_log(&pipeline, "crashes").await;
    pipeline.stop().await;
    eprintln!("total {:?}", started.elapsed());
}

/// nats-server is stopped (SIGTERM) mid-load: commands keep succeeding
/// while it is down, and once it is back the read models catch up with
/// nothing lost or applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_stopped_during_load_commands_succeed_and_read_models_catch_up() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let seed = seed("FAULTS_SEED");
    eprintln!("FAULTS_SEED={seed}");
    let started = Instant::now();
    let mut nats = PrivateNats::start().await;
    let pipeline = Pipeline::start(&nats.url()).await;
    let pool = pipeline.app.pool.clone();
    let load = Load::start(&pipeline.app, seed).await;

    wait_for_events(&pool, 2_500, Duration::from_secs(60), &load.stats).await;
    nats.terminate();
    let down_at = Instant::now();
    let (events_before, commands_before) = (event_count(&pool).await, load.stats.commands());
    let relay_before = published(&pool, &pipeline.app.stream).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (events_during, commands_during) = (event_count(&pool).await, load.stats.commands());
    let relay_during = published(&pool, &pipeline.app.stream).await;
    assert_no_failures(&load.stats, "nats down");
    assert!(
        commands_during - commands_before >= 50 && events_during - events_before >= 100,
        "commands kept succeeding while NATS was down: {} commands, {} events in {:?}",
        commands_during - commands_before,
        events_during - events_before,
        down_at.elapsed()
    );
    assert!(
        relay_during <= relay_before + 2_000,
        "nothing much was published while NATS was down ({relay_before} -> {relay_during})"
    );
    eprintln!(
        "while NATS was down: {} commands, {} events",
        commands_during - commands_before,
        events_during - events_before
    );
    nats.spawn().await;
    let resumed = wait_relay_past(
        &pool,
        &pipeline.app.stream,
        events_during,
        Duration::from_secs(60),
    )
    .await;
    eprintln!(
        "the relay published what was recorded while NATS was down {resumed:?} after its restart"
    );
    wait_for_events(&pool, 4_000, Duration::from_secs(90), &load.stats).await;
    let stats = load.finish().await;
    eprintln!("load done in {:?}: {}", started.elapsed(), stats.summary());
    assert_no_failures(&stats, "nats stop");
    assert_read_models_match_the_log(&pipeline, "nats stop").await;
    assert_stream_holds_the_log(&pipeline, "nats stop").await;
    pipeline.stop().await;
    drop(nats);
    eprintln!("total {:?}", started.elapsed());
}

/// nats-server is killed with SIGKILL mid-load, twice: first restarted on
/// its store as the crash left it, then restarted with an EMPTY store (the
/// worst case of JetStream losing what it acknowledged but had not synced:
/// the stream and the durable consumers are gone). The relay re-provisions
/// and republishes, and the read models end equal to a rebuild with
/// nothing lost or applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_killed_and_its_store_lost_during_load_nothing_lost_or_applied_twice() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let seed = seed("FAULTS_SEED");
    eprintln!("FAULTS_SEED={seed}");
    let started = Instant::now();
    let mut nats = PrivateNats::start().await;
    let pipeline = Pipeline::start(&nats.url()).await;
    let pool = pipeline.app.pool.clone();
    let load = Load::start(&pipeline.app, seed).await;

    let stream = pipeline.app.stream.clone();

    // 1. kill -9 mid-load, restart on the store as the crash left it.
    wait_for_events(&pool, 2_000, Duration::from_secs(60), &load.stats).await;
    wait_relay_past(&pool, &stream, 1_000, Duration::from_secs(60)).await;
    nats.kill9();
    let before = load.stats.commands();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_no_failures(&load.stats, "after kill -9");
    assert!(
        load.stats.commands() > before,
        "commands succeed while NATS is dead"
    );
    let recorded = event_count(&pool).await;
    nats.spawn().await;
    let resumed = wait_relay_past(&pool, &stream, recorded, Duration::from_secs(60)).await;
    eprintln!("the relay caught up {resumed:?} after the restart");

    // 2. kill -9 again, and the store is lost.
    wait_for_events(&pool, 3_000, Duration::from_secs(60), &load.stats).await;
    let relay_at_kill = published(&pool, &stream).await;
    nats.kill9();
    std::fs::remove_dir_all(&nats.store).expect("wipe the store");
    std::fs::create_dir_all(&nats.store).expect("an empty store");
    let before = load.stats.commands();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_no_failures(&load.stats, "after kill -9");
    assert!(
        load.stats.commands() > before,
        "commands succeed while NATS is dead"
    );
    let recorded = event_count(&pool).await;
    nats.spawn().await;
    let resumed = wait_relay_past(&pool, &stream, recorded, Duration::from_secs(60)).await;
    eprintln!(
        "the store was lost with {relay_at_kill} events published; the relay republished \
         the whole log {resumed:?} after the restart"
    );

    wait_for_events(&pool, 4_500, Duration::from_secs(90), &load.stats).await;
    let stats = load.finish().await;
    eprintln!("load done in {:?}: {}", started.elapsed(), stats.summary());
    assert_no_failures(&stats, "kill -9");
    assert_read_models_match_the_log(&pipeline, "kill -9").await;
    assert_stream_holds_the_log(&pipeline, "kill -9").await;
    pipeline.stop().await;
    drop(nats);
    eprintln!("total {:?}", started.elapsed());
}

/// Acknowledged messages vanish behind consumers that had already seen
/// them: nats-server is killed with SIGKILL and restarts with its stream's
/// messages rolled back to an older copy while the consumers' state (their
/// delivered and acknowledged sequences) is the newer one. The projectors
/// must neither skip the lost events nor apply anything twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_killed_and_acknowledged_tail_lost_behind_consumers() {
    lost_tail("lost tail", false).await;
}

/// As above, and the stream itself must end holding every event: the
/// relay has to notice that JetStream lost what it had acknowledged and
/// publish it again (DESIGN.md "NATS", nats/src/relay.rs module docs).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relay_republishes_what_jetstream_lost_while_it_stayed_connected() {
    lost_tail("lost tail, stream", true).await;
}

async fn lost_tail(label: &str, check_stream: bool) {
    let _serial = ONE_AT_A_TIME.lock().await;
    let seed = seed("FAULTS_SEED");
    eprintln!("FAULTS_SEED={seed}");
    let started = Instant::now();
    let mut nats = PrivateNats::start().await;
    let pipeline = Pipeline::start(&nats.url()).await;
    let pool = pipeline.app.pool.clone();
    let stream = pipeline.app.stream.clone();
    let load = Load::start(&pipeline.app, seed).await;

    // An old copy of the stream's messages, taken from a cleanly stopped
    // server so that it is consistent.
    wait_for_events(&pool, 2_000, Duration::from_secs(60), &load.stats).await;
    wait_relay_past(&pool, &stream, 1_000, Duration::from_secs(60)).await;
    nats.terminate();
    let old_messages = nats.dir.path().join("old-msgs");
    copy_dir(&nats.stream_dir(&stream).join("msgs"), &old_messages);
    nats.spawn().await;
    let (kept, _, _) = stream_state(&nats.url(), &stream).await;
    let kept = kept as i64;

    // Later, once the relay and the projectors are well past the copy:
    // kill -9, and the messages since the copy are gone while the
    // consumers' state survives.
    wait_relay_past(&pool, &stream, kept + 2_000, Duration::from_secs(60)).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while checkpoints(&pool)
        .await
        .iter()
        .any(|(name, position)| name != command_api::policies::NAME && *position <= kept + 1_000)
    {
        assert!(Instant::now() < deadline, "the projectors move on");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let relay_at_kill = published(&pool, &stream).await;
    nats.kill9();
    let msgs = nats.stream_dir(&stream).join("msgs");
    std::fs::remove_dir_all(&msgs).expect("drop the newer messages");
    copy_dir(&old_messages, &msgs);
    nats.spawn().await;
    let (after_restore, first, last) = stream_state(&nats.url(), &stream).await;
    let after_restore = after_restore as i64;
    eprintln!(
        "the relay had published {relay_at_kill} events; the stream came back with \
         {after_restore} (sequences {first}..={last}; the copy had {kept})"
    );
    assert!(
        after_restore < relay_at_kill,
        "the stream lost acknowledged messages"
    );
    let recorded = event_count(&pool).await;
    let resumed = wait_relay_past(&pool, &stream, recorded, Duration::from_secs(60)).await;
    eprintln!("the relay went past what was recorded {resumed:?} after the restart");

    wait_for_events(&pool, 4_000, Duration::from_secs(90), &load.stats).await;
    let stats = load.finish().await;
    eprintln!("load done in {:?}: {}", started.elapsed(), stats.summary());
    assert_no_failures(&stats, label);
    assert_read_models_match_the_log(&pipeline, label).await;
    if check_stream {
        assert_stream_holds_the_log(&pipeline, label).await;
    }
    pipeline.stop().await;
    drop(nats);
    eprintln!("total {:?}", started.elapsed());
}
