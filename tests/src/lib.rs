//! Test support: spawns the real ledger on a random port against a fresh
//! PostgreSQL database and drives it over HTTP, like any client would.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use command_api::{Authenticator, CommandApiConfig, Role};
use futures::StreamExt;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use uuid::Uuid;

pub const JWT_SECRET: &str = "test-jwt-secret";
pub const WEBHOOK_SECRET: &str = "whsec_test";

/// The maintenance database of the test server; tests create their own
/// databases beside it.
pub fn admin_database_url() -> String {
    std::env::var("LEDGER_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let base = match base.rfind('/') {
        Some(slash) if slash > "postgres://".len() => &base[..slash],
        _ => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Creates a fresh, migrated database and returns a pool on it. Databases
/// left behind by test runs more than an hour old are dropped on the way.
pub async fn fresh_database() -> anyhow::Result<(PgPool, String)> {
    let admin_url = admin_database_url();
    let mut admin = PgConnection::connect(&admin_url).await?;
    let stale: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'ledger_test_%'")
            .fetch_all(&mut admin)
            .await?;
    let hour_ago = unix_now().saturating_sub(3600);
    for name in stale {
        let created = name
            .split('_')
            .nth(2)
            .and_then(|ts| ts.parse::<u64>().ok())
            .unwrap_or(u64::MAX);
        if created < hour_ago {
            let _ = admin
                .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
                .await;
        }
    }
    let name = format!("ledger_test_{}_{}", unix_now(), Uuid::new_v4().simple());
    admin
        .execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await?;
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&with_database(&admin_url, &name))
        .await?;
    migrations::run(&pool).await?;
    Ok((pool, name))
}

/// NATS with JetStream for tests.
pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A stream name no other test uses. Streams left by test runs more than
/// an hour old are deleted on the way.
pub async fn fresh_stream_name() -> String {
    if let Ok(client) = async_nats::connect(nats_url()).await {
        let js = async_nats::jetstream::new(client);
        let names: Vec<String> = js
            .stream_names()
            .filter_map(|n| async { n.ok() })
            .collect()
            .await;
        let hour_ago = unix_now().saturating_sub(3600);
        for name in names {
            let created = name
                .strip_prefix("LT_")
                .and_then(|rest| rest.split('_').next())
                .and_then(|ts| ts.parse::<u64>().ok());
            if created.is_some_and(|t| t < hour_ago) {
                let _ = js.delete_stream(&name).await;
            }
        }
    }
    format!(
        "LT_{}_{}",
        unix_now(),
        &Uuid::new_v4().simple().to_string()[..12]
    )
}

/// An answer: status, headers and the JSON body (Null when not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The last segment of a problem's `type`.
    pub fn problem_type(&self) -> &str {
        self.body["type"]
            .as_str()
            .and_then(|t| t.rsplit('/').next())
            .unwrap_or("")
    }

    pub fn uuid(&self, field: &str) -> Uuid {
        self.body[field]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .unwrap_or_else(|| panic!("answer has no uuid `{field}`: {:?}", self.body))
    }
}

pub struct TestApp {
    pub base_url: String,
    pub client: reqwest::Client,
    pub pool: PgPool,
    pub database: String,
    /// This test's own JetStream stream.
    pub stream: String,
    pub config: ledger::ServerConfig,
    auth: Authenticator,
    server: Option<ledger::RunningServer>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// Spawns with a tweaked command configuration (e.g. a short hold TTL).
    pub async fn spawn_with(configure: impl FnOnce(&mut CommandApiConfig)) -> TestApp {
        Self::spawn_server(|server| configure(&mut server.command_api)).await
    }

    /// Spawns with a tweaked server configuration (e.g. audit keys).
    pub async fn spawn_server(configure: impl FnOnce(&mut ledger::ServerConfig)) -> TestApp {
        let (pool, database) = fresh_database().await.expect("create a test database");
        let stream = fresh_stream_name().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a port");
        let mut server_config = ledger::ServerConfig {
            command_api: CommandApiConfig::for_tests(JWT_SECRET, WEBHOOK_SECRET),
            request_timeout: Duration::from_secs(10),
            nats_url: nats_url(),
            stream: ledger_nats::StreamSettings::new(stream.clone()),
            parts: ledger::Parts::ALL,
            audit: ledger::AuditKeys::default(),
            // Load tests come from one address: limits are tested on their own.
            rate_limits: ledger::limits::RateLimits::OFF,
            consumer_retry: Default::default(),
            shutdown_timeout: Duration::from_secs(30),
        };
        configure(&mut server_config);
        let server = ledger::spawn(Some(listener), pool.clone(), server_config.clone())
            .await
            .expect("start the ledger");
        let addr = server.addr.expect("an HTTP address");
        let app = TestApp {
            base_url: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .expect("http client"),
            pool,
            database,
            stream,
            config: server_config,
            auth: Authenticator::new(JWT_SECRET),
            server: Some(server),
        };
        app.wait_until_ready().await;
        app
    }

    /// Waits until `/health/ready` answers 200: the ledger connects to NATS
    /// in the background, so a test must not race that connection.
    pub async fn wait_until_ready(&self) {
        for _ in 0..200 {
            let ready = self
                .client
                .get(format!("{}/health/ready", self.base_url))
                .send()
                .await
                .map(|r| r.status() == StatusCode::OK)
                .unwrap_or(false);
            if ready {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the ledger did not become ready within 10 s");
    }

    /// Stops the server gracefully.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("server stops cleanly");
        }
    }

    pub fn token(&self, role: Role, subject: &str, vendor_id: Option<Uuid>) -> String {
        self.auth
            .issue(subject, role, vendor_id, Duration::from_secs(3600))
            .expect("issue a token")
    }

    pub fn admin(&self) -> String {
        self.token(Role::Admin, "admin-1", None)
    }

    pub fn customer(&self, subject: &str) -> String {
        self.token(Role::Customer, subject, None)
    }

    pub fn vendor(&self, vendor_id: Uuid) -> String {
        self.token(
            Role::Vendor,
            &format!("vendor-user-{vendor_id}"),
            Some(vendor_id),
        )
    }

    /// Sends a request with optional token, JSON body and extra headers.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("the ledger answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.send(reqwest::Method::POST, path, Some(token), Some(&body), &[])
            .await
    }

    pub async fn post_with_key(&self, path: &str, token: &str, body: Value, key: &str) -> Answer {
        self.send(
            reqwest::Method::POST,
            path,
            Some(token),
            Some(&body),
            &[("Idempotency-Key", key)],
        )
        .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Answer {
        self.send(reqwest::Method::DELETE, path, Some(token), None, &[])
            .await
    }

    pub async fn register_vendor(&self, name: &str) -> Uuid {
        let answer = self
            .post("/v1/vendors", &self.admin(), json!({"name": name}))
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
        answer.uuid("vendor_id")
    }

    /// A published rental listing.
    pub async fn rental_listing(
        &self,
        vendor_id: Uuid,
        pricing_unit: &str,
        price: &str,
        deposit: &str,
        units: u32,
    ) -> Uuid {
        let answer = self
            .post(
                "/v1/listings",
                &self.vendor(vendor_id),
                json!({"title": "Kayak", "description": "Two-seat kayak", "category": "boats",
                       "kind": "rental", "pricing_unit": pricing_unit,
                       "price_per_unit": price, "deposit": deposit, "units": units}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
        let listing_id = answer.uuid("listing_id");
        self.publish(vendor_id, listing_id).await;
        listing_id
    }

    /// A published sale listing.
    pub async fn sale_listing(&self, vendor_id: Uuid, price: &str, stock: u32) -> Uuid {
        let answer = self
            .post(
                "/v1/listings",
                &self.vendor(vendor_id),
                json!({"title": "Paddle", "description": "Carbon paddle", "category": "gear",
                       "kind": "sale", "unit_price": price, "stock": stock}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
        let listing_id = answer.uuid("listing_id");
        self.publish(vendor_id, listing_id).await;
        listing_id
    }

    pub async fn publish(&self, vendor_id: Uuid, listing_id: Uuid) {
        let answer = self
            .post(
                &format!("/v1/listings/{listing_id}/publish"),
                &self.vendor(vendor_id),
                json!({}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    }

    /// Sends a signed payment webhook for `order_id`.
    pub async fn payment_webhook(
        &self,
        event_id: &str,
        kind: &str,
        order_id: Uuid,
        amount_minor: i64,
        failure: Option<&str>,
    ) -> Answer {
        let body = json!({
            "id": event_id,
            "type": kind,
            "data": {"object": {
                "id": format!("pi_{event_id}"),
                "amount": amount_minor,
                "currency": "usd",
                "metadata": {"order_id": order_id.to_string()},
                "last_payment_error": failure.map(|m| json!({"message": m})),
            }}
        });
        let raw = serde_json::to_vec(&body).expect("serialise");
        let signature = command_api::routes::webhooks::sign(
            &raw,
            WEBHOOK_SECRET,
            chrono::Utc::now().timestamp(),
        );
        self.send_raw_webhook(raw, &signature).await
    }

    pub async fn send_raw_webhook(&self, raw: Vec<u8>, signature: &str) -> Answer {
        let response = self
            .client
            .post(format!("{}/v1/webhooks/payments", self.base_url))
            .header("content-type", "application/json")
            .header("stripe-signature", signature)
            .body(raw)
            .send()
            .await
            .expect("the ledger answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a body");
        Answer {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// Pays an order in full.
    pub async fn pay(&self, order: &Answer) -> Answer {
        let order_id = order.uuid("order_id");
        let total: rust_decimal::Decimal = order.body["total"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .expect("order total");
        let minor = (total * rust_decimal::Decimal::from(100))
            .trunc()
            .to_string()
            .parse::<i64>()
            .expect("minor units");
        let answer = self
            .payment_webhook(
                &format!("evt_{}", Uuid::new_v4().simple()),
                "payment_intent.succeeded",
                order_id,
                minor,
                None,
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        answer
    }

    /// Events of one aggregate, straight from the events table.
    pub async fn events_of(
        &self,
        aggregate_type: &str,
        aggregate_id: Uuid,
    ) -> Vec<(String, Value)> {
        sqlx::query_as::<_, (String, Value)>(
            "SELECT event_type, metadata::jsonb FROM events
              WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence",
        )
        .bind(aggregate_type)
        .bind(aggregate_id.to_string())
        .fetch_all(&self.pool)
        .await
        .expect("read events")
    }

    pub async fn event_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.pool)
            .await
            .expect("count events")
    }
}

/// RFC 3339 instant `days` days and `hours` hours from a fixed future base.
pub fn at(days: i64, hours: i64) -> String {
    let base = chrono::DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
        .expect("valid base")
        .with_timezone(&chrono::Utc);
    (base + chrono::Duration::days(days) + chrono::Duration::hours(hours))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

// ---------------------------------------------------------------------------
// Support for command_routes.rs, authorization.rs and idempotency.rs.
// Kept in its own module so that names never clash with other additions.
// ---------------------------------------------------------------------------
pub mod command_support {
    use super::{Answer, TestApp};
    use reqwest::StatusCode;
    use serde_json::Value;

    /// Sends a raw body with an optional content type (no JSON encoding).
    pub async fn send_bytes(
        app: &TestApp,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = app
            .client
            .request(method, format!("{}{path}", app.base_url))
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("the ledger answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a body");
        Answer {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// Global position of the newest event (0 on an empty log).
    pub async fn head_position(app: &TestApp) -> i64 {
        sqlx::query_scalar("SELECT coalesce(max(global_position), 0) FROM events")
            .fetch_one(&app.pool)
            .await
            .expect("read the head position")
    }

    /// Events recorded after `position`, in log order:
    /// (aggregate_type, aggregate_id, event_type, metadata).
    pub async fn events_after(
        app: &TestApp,
        position: i64,
    ) -> Vec<(String, String, String, Value)> {
        sqlx::query_as::<_, (String, String, String, Value)>(
            "SELECT aggregate_type, aggregate_id, event_type, metadata::jsonb FROM events
              WHERE global_position > $1 ORDER BY global_position",
        )
        .bind(position)
        .fetch_all(&app.pool)
        .await
        .expect("read events")
    }

    /// Asserts an RFC 7807 problem answer with this status and `type` ending.
    #[track_caller]
    pub fn assert_problem(answer: &Answer, status: StatusCode, type_ending: &str) {
        assert_eq!(answer.status, status, "status of {:?}", answer.body);
        let content_type = answer.header("content-type").unwrap_or("");
        assert!(
            content_type.starts_with("application/problem+json"),
            "content-type `{content_type}` of {:?}",
            answer.body
        );
        assert_eq!(answer.problem_type(), type_ending, "{:?}", answer.body);
        assert!(answer.body["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert_eq!(answer.body["status"], Value::from(status.as_u16()));
        assert!(
            answer.body["detail"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{:?}",
            answer.body
        );
    }

    /// Asserts a 422 problem whose `errors` name `field`.
    #[track_caller]
    pub fn assert_invalid_field(answer: &Answer, field: &str) {
        assert_problem(answer, StatusCode::UNPROCESSABLE_ENTITY, "validation");
        let errors = answer.body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("422 without errors: {:?}", answer.body));
        assert!(
            errors
                .iter()
                .all(|e| e["field"].is_string()
                    && e["message"].as_str().is_some_and(|m| !m.is_empty())),
            "every error has a field and a message: {:?}",
            answer.body
        );
        assert!(
            errors.iter().any(|e| e["field"] == field),
            "no error names `{field}`: {:?}",
            answer.body
        );
    }
}

// ---------------------------------------------------------------------------
// Support for concurrency.rs and payments_and_expiry.rs.
// Kept in its own module so that names never clash with other additions.
// ---------------------------------------------------------------------------
pub mod ledger_support {
    use std::time::Duration;

    use chrono::{DateTime, Utc};
    use rust_decimal::Decimal;
    use serde_json::Value;
    use uuid::Uuid;

    use super::{Answer, TestApp, JWT_SECRET, WEBHOOK_SECRET};

    /// `(event_type, payload)` of one aggregate's events, in sequence order.
    /// The payload is the event's fields (the outer `{"<EventType>": …}` tag
    /// that cqrs-es writes is taken off).
    pub async fn event_payloads(
        app: &TestApp,
        aggregate_type: &str,
        aggregate_id: Uuid,
    ) -> Vec<(String, Value)> {
        let rows = sqlx::query_as::<_, (String, Value)>(
            "SELECT event_type, payload::jsonb FROM events
              WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence",
        )
        .bind(aggregate_type)
        .bind(aggregate_id.to_string())
        .fetch_all(&app.pool)
        .await
        .expect("read events");
        rows.into_iter()
            .map(|(kind, payload)| {
                let inner = payload.get(&kind).cloned().unwrap_or(payload);
                (kind, inner)
            })
            .collect()
    }

    /// Event types of one aggregate, in sequence order.
    pub async fn event_types(
        app: &TestApp,
        aggregate_type: &str,
        aggregate_id: Uuid,
    ) -> Vec<String> {
        app.events_of(aggregate_type, aggregate_id)
            .await
            .into_iter()
            .map(|(kind, _)| kind)
            .collect()
    }

    /// A command side of its own on the test's database (like a second
    /// replica): reads aggregates and issues commands behind the HTTP API.
    pub fn command_app(app: &TestApp) -> command_api::AppState {
        command_api::CommandApp::new(
            command_api::CommandApiConfig::for_tests(JWT_SECRET, WEBHOOK_SECRET),
            app.pool.clone(),
        )
    }

    /// The order's status as its aggregate says (`"placed"`, `"confirmed"`, …).
    pub async fn order_status(app: &TestApp, order_id: Uuid) -> String {
        let order = command_app(app)
            .orders
            .load(&order_id.to_string())
            .await
            .expect("load the order");
        serde_json::to_value(order.status())
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .expect("a status name")
    }

    /// Polls until the aggregate has an event of `event_type`; false on timeout.
    pub async fn wait_for_event(
        app: &TestApp,
        aggregate_type: &str,
        aggregate_id: Uuid,
        event_type: &str,
        timeout: Duration,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let types = event_types(app, aggregate_type, aggregate_id).await;
            if types.iter().any(|t| t == event_type) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A decimal written as a JSON string (or number).
    pub fn decimal(value: &Value) -> Decimal {
        match value {
            Value::String(s) => s.parse().unwrap_or_else(|_| panic!("not a decimal: {s}")),
            Value::Number(n) => n.to_string().parse().expect("a decimal number"),
            other => panic!("not a decimal: {other}"),
        }
    }

    /// The total of an order answer in minor units.
    pub fn total_minor(order: &Answer) -> i64 {
        let total = decimal(&order.body["total"]) * Decimal::from(100);
        total.trunc().to_string().parse().expect("minor units")
    }

    /// A hold of an Inventory, as its events tell.
    #[derive(Clone, Debug, PartialEq)]
    pub struct HoldRecord {
        pub hold_id: Uuid,
        pub order_id: Uuid,
        pub quantity: u32,
        /// `None` for sale holds.
        pub period: Option<(DateTime<Utc>, DateTime<Utc>)>,
        /// Last status event after HoldPlaced (`HoldConfirmed`, `HoldReleased`, …).
        pub last: String,
    }

    impl HoldRecord {
        /// Counts against capacity: not released, expired or returned.
        pub fn is_live(&self) -> bool {
            !matches!(
                self.last.as_str(),
                "HoldReleased" | "HoldExpired" | "ReturnRecorded"
            )
        }
    }

    fn uuid_of(value: &Value) -> Uuid {
        value
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .unwrap_or_else(|| panic!("not a uuid: {value}"))
    }

    fn instant(value: &Value) -> DateTime<Utc> {
        value
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| panic!("not an instant: {value}"))
    }

    /// Every hold of a listing's Inventory, in the order they were placed.
    pub async fn holds_of(app: &TestApp, listing_id: Uuid) -> Vec<HoldRecord> {
        let mut holds: Vec<HoldRecord> = Vec::new();
        for (kind, payload) in event_payloads(app, "Inventory", listing_id).await {
            if kind == "HoldPlaced" {
                let request = &payload["request"];
                let period = request
                    .get("period")
                    .filter(|p| !p.is_null())
                    .map(|p| (instant(&p["start"]), instant(&p["end"])));
                holds.push(HoldRecord {
                    hold_id: uuid_of(&payload["hold_id"]),
                    order_id: uuid_of(&payload["order_id"]),
                    quantity: request["quantity"].as_u64().expect("a quantity") as u32,
                    period,
                    last: kind,
                });
            } else if let Some(hold_id) = payload.get("hold_id") {
                let hold_id = uuid_of(hold_id);
                if let Some(hold) = holds.iter_mut().find(|h| h.hold_id == hold_id) {
                    hold.last = kind;
                }
            }
        }
        holds
    }

    /// The event types that touched one hold, in order.
    pub async fn hold_history(app: &TestApp, listing_id: Uuid, hold_id: Uuid) -> Vec<String> {
        event_payloads(app, "Inventory", listing_id)
            .await
            .into_iter()
            .filter(|(_, p)| {
                p.get("hold_id")
                    .and_then(Value::as_str)
                    .is_some_and(|id| id == hold_id.to_string())
            })
            .map(|(kind, _)| kind)
            .collect()
    }

    /// Peak units used at any instant by these rental holds (half-open periods).
    pub fn peak_use(holds: &[&HoldRecord]) -> u32 {
        let mut changes: Vec<(DateTime<Utc>, i64)> = Vec::new();
        for h in holds {
            let (start, end) = h.period.expect("a rental hold");
            changes.push((start, i64::from(h.quantity)));
            changes.push((end, -i64::from(h.quantity)));
        }
        // At equal instants ends (negative) sort before starts.
        changes.sort();
        let (mut current, mut peak) = (0i64, 0i64);
        for (_, delta) in changes {
            current += delta;
            peak = peak.max(current);
        }
        peak as u32
    }
}

/// More support for concurrency.rs: a second replica of the ledger.
pub mod replica_support {
    use std::time::Duration;

    use super::{TestApp, JWT_SECRET, WEBHOOK_SECRET};

    /// A second ledger server on the same database as `app` (as a second
    /// replica behind a load balancer would be). Keep it alive while used.
    pub async fn spawn_replica(app: &TestApp) -> (String, ledger::RunningServer) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a port");
        let mut config = app.config.clone();
        config.command_api = command_api::CommandApiConfig::for_tests(JWT_SECRET, WEBHOOK_SECRET);
        config.request_timeout = Duration::from_secs(10);
        let server = ledger::spawn(Some(listener), app.pool.clone(), config)
            .await
            .expect("start a replica");
        let addr = server.addr.expect("an HTTP address");
        (format!("http://{addr}"), server)
    }
}

// ---------------------------------------------------------------------------
// Support for relay.rs and projector_runner.rs: the relay as a task, the
// stream read back message by message, and events written straight into
// the events table. Kept in its own module so that names never clash.
// ---------------------------------------------------------------------------
pub mod pipeline_support {
    use std::future::Future;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use async_nats::jetstream;
    use futures::StreamExt;
    use ledger_nats::envelope::{subject_prefix, ENVELOPE_COLUMNS, POSITION_HEADER};
    use ledger_nats::{EventEnvelope, Relay, RelayConfig, StreamSettings};
    use sqlx::{PgConnection, PgPool};
    use tokio::sync::watch;
    use tokio::task::JoinHandle;
    use uuid::Uuid;

    use super::nats_url;

    /// A NATS client on the test server.
    pub async fn nats_client() -> async_nats::Client {
        async_nats::connect(nats_url())
            .await
            .expect("connect to NATS")
    }

    /// A relay running as a task, as `ledger relay` would run it.
    pub struct RelayTask {
        shutdown: watch::Sender<bool>,
        task: JoinHandle<()>,
    }

    impl RelayTask {
        pub fn start(pool: &PgPool, client: &async_nats::Client, stream: &str) -> RelayTask {
            Self::start_with(pool, client, RelayConfig::new(StreamSettings::new(stream)))
        }

        pub fn start_with(
            pool: &PgPool,
            client: &async_nats::Client,
            config: RelayConfig,
        ) -> RelayTask {
            let (shutdown, receiver) = watch::channel(false);
            let relay = Relay::new(pool.clone(), client.clone(), config);
            let task = tokio::spawn(relay.run(receiver));
            RelayTask { shutdown, task }
        }

        /// Asks the relay to stop and waits until it has.
        pub async fn stop(self) {
            let _ = self.shutdown.send(true);
            tokio::time::timeout(Duration::from_secs(10), self.task)
                .await
                .expect("the relay stops within 10 s")
                .expect("the relay task does not panic");
        }

        /// Kills the relay wherever it is (a crash): the task is dropped
        /// mid-flight and its connections close.
        pub async fn kill(self) {
            self.task.abort();
            let _ = self.task.await;
        }

        pub fn is_finished(&self) -> bool {
            self.task.is_finished()
        }
    }

    /// One message read back from the stream.
    #[derive(Clone, Debug)]
    pub struct StreamedEvent {
        pub stream_sequence: u64,
        pub subject: String,
        pub msg_id: Option<String>,
        pub position_header: Option<i64>,
        pub event: EventEnvelope,
    }

    /// Every message the stream holds now, in stream order (deleted
    /// sequences are passed over).
    pub async fn stream_events(client: &async_nats::Client, stream: &str) -> Vec<StreamedEvent> {
        let js = jetstream::new(client.clone());
        let stream = js.get_stream(stream).await.expect("the stream exists");
        let info = stream.get_info().await.expect("stream info");
        let mut out = Vec::with_capacity(info.state.messages as usize);
        if info.state.messages == 0 {
            return out;
        }
        for sequence in info.state.first_sequence..=info.state.last_sequence {
            let Ok(message) = stream.get_raw_message(sequence).await else {
                continue;
            };
            let event = EventEnvelope::decode(&message.payload).expect("an event envelope");
            out.push(StreamedEvent {
                stream_sequence: message.sequence,
                subject: message.subject.to_string(),
                msg_id: message
                    .headers
                    .get("Nats-Msg-Id")
                    .map(|v| v.as_str().to_owned()),
                position_header: message
                    .headers
                    .get(POSITION_HEADER)
                    .and_then(|v| v.as_str().parse().ok()),
                event,
            });
        }
        out
    }

    /// Messages on the stream now (0 if it does not exist).
    pub async fn stream_count(client: &async_nats::Client, stream: &str) -> u64 {
        let js = jetstream::new(client.clone());
        match js.get_stream(stream).await {
            Ok(stream) => stream.get_info().await.map_or(0, |i| i.state.messages),
            Err(_) => 0,
        }
    }

    /// Waits until the stream holds at least `count` messages; returns how
    /// many it holds (fewer on timeout).
    pub async fn wait_for_stream_count(
        client: &async_nats::Client,
        stream: &str,
        count: u64,
        timeout: Duration,
    ) -> u64 {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let now = stream_count(client, stream).await;
            if now >= count || tokio::time::Instant::now() >= deadline {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls `check` every 25 ms until it is true; false on timeout.
    pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if check().await {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The relay's stored position for `stream` (None before it started).
    pub async fn relay_position(pool: &PgPool, stream: &str) -> Option<i64> {
        sqlx::query_scalar("SELECT position FROM relay_positions WHERE stream = $1")
            .bind(stream)
            .fetch_optional(pool)
            .await
            .expect("read relay_positions")
    }

    /// Sets the relay's stored position (as a crash before storing it, or an
    /// operator, would leave it).
    pub async fn set_relay_position(pool: &PgPool, stream: &str, position: i64) {
        sqlx::query(
            "INSERT INTO relay_positions (stream, position) VALUES ($1, $2)
             ON CONFLICT (stream) DO UPDATE SET position = EXCLUDED.position",
        )
        .bind(stream)
        .bind(position)
        .execute(pool)
        .await
        .expect("set relay_positions");
    }

    /// Global position of the newest event (0 on an empty log).
    pub async fn head(pool: &PgPool) -> i64 {
        sqlx::query_scalar("SELECT coalesce(max(global_position), 0) FROM events")
            .fetch_one(pool)
            .await
            .expect("read the head")
    }

    /// Aggregate type of the events these tests write behind the domain.
    pub const PROBE: &str = "Probe";

    /// Inserts one probe event the way postgres-es does; returns its global
    /// position and event id (both assigned by the database).
    pub async fn insert_probe(
        conn: &mut PgConnection,
        aggregate_id: &str,
        sequence: i64,
    ) -> Result<(i64, Uuid), sqlx::Error> {
        let row = sqlx::query_as(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                                 event_version, payload, metadata)
             VALUES ($1, $2, $3, 'Probed', '1.0', $4, '{}')
             RETURNING global_position, event_id",
        )
        .bind(PROBE)
        .bind(aggregate_id)
        .bind(sequence)
        .bind(serde_json::json!({"Probed": {"n": sequence}}))
        .fetch_one(&mut *conn)
        .await?;
        // Writers wake the relay themselves (ledger_nats::wakeup); inside a
        // transaction the notification goes out at its commit.
        ledger_nats::notify_relays(&mut *conn).await?;
        Ok(row)
    }

    /// Commits `count` probe events of one aggregate (sequences 1..=count),
    /// one transaction each; returns their positions.
    pub async fn commit_probes(
        pool: &PgPool,
        aggregate_id: &str,
        first_sequence: i64,
        count: i64,
    ) -> Vec<i64> {
        let mut conn = pool.acquire().await.expect("a connection");
        let mut positions = Vec::new();
        for sequence in first_sequence..first_sequence + count {
            let (position, _) = insert_probe(&mut conn, aggregate_id, sequence)
                .await
                .expect("insert a probe event");
            positions.push(position);
        }
        positions
    }

    /// The envelopes of the events table with positions in `from..=to`.
    pub async fn envelopes(pool: &PgPool, from: i64, to: i64) -> Vec<EventEnvelope> {
        let sql = format!(
            "SELECT {ENVELOPE_COLUMNS} FROM events
              WHERE global_position BETWEEN $1 AND $2 ORDER BY global_position"
        );
        sqlx::query(&sql)
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await
            .expect("read events")
            .iter()
            .map(|row| EventEnvelope::from_row(row).expect("an envelope"))
            .collect()
    }

    /// Every raw publish on a stream's subjects, duplicates included (a core
    /// NATS subscription sees what JetStream's dedup later drops).
    pub struct PublishTap {
        seen: Arc<Mutex<Vec<String>>>,
        task: JoinHandle<()>,
    }

    impl PublishTap {
        pub async fn start(client: &async_nats::Client, stream: &str) -> PublishTap {
            let mut subscription = client
                .subscribe(format!("{}.>", subject_prefix(stream)))
                .await
                .expect("subscribe");
            client.flush().await.expect("flush the subscription");
            let seen = Arc::new(Mutex::new(Vec::new()));
            let sink = seen.clone();
            let task = tokio::spawn(async move {
                while let Some(message) = subscription.next().await {
                    let id = message
                        .headers
                        .as_ref()
                        .and_then(|h| h.get("Nats-Msg-Id"))
                        .map(|v| v.as_str().to_owned())
                        .unwrap_or_default();
                    sink.lock().expect("tap lock").push(id);
                }
            });
            PublishTap { seen, task }
        }

        /// Message ids of every publish seen so far, in arrival order.
        pub fn seen(&self) -> Vec<String> {
            self.seen.lock().expect("tap lock").clone()
        }
    }

    impl Drop for PublishTap {
        fn drop(&mut self) {
            self.task.abort();
        }
    }
}

// ---------------------------------------------------------------------------
// Support for faults.rs: a ledger that runs only some of its parts, against
// a NATS server of the test's choosing (the shared one or a private one).
// Kept in its own module so that names never clash with other additions.
// ---------------------------------------------------------------------------
pub mod fault_support {
    use std::time::Duration;

    use command_api::{Authenticator, CommandApiConfig};

    use super::{fresh_database, fresh_stream_name, TestApp, JWT_SECRET, WEBHOOK_SECRET};

    /// A ledger on a fresh database and stream that runs only `parts` and
    /// talks to the NATS server at `nats_url`. The other parts (relay,
    /// projectors) are for the test to run, crash and restart itself.
    pub async fn spawn_parts(nats_url: &str, parts: ledger::Parts) -> TestApp {
        let (pool, database) = fresh_database().await.expect("create a test database");
        let stream = fresh_stream_name().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a port");
        let server_config = ledger::ServerConfig {
            command_api: CommandApiConfig::for_tests(JWT_SECRET, WEBHOOK_SECRET),
            request_timeout: Duration::from_secs(10),
            nats_url: nats_url.to_owned(),
            stream: ledger_nats::StreamSettings::new(stream.clone()),
            parts,
            audit: ledger::AuditKeys::default(),
            // Load tests come from one address: limits are tested on their own.
            rate_limits: ledger::limits::RateLimits::OFF,
            consumer_retry: Default::default(),
            shutdown_timeout: Duration::from_secs(30),
        };
        let server = ledger::spawn(Some(listener), pool.clone(), server_config.clone())
            .await
            .expect("start the ledger");
        let addr = server.addr.expect("an HTTP address");
        TestApp {
            base_url: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
            pool,
            database,
            stream,
            config: server_config,
            auth: Authenticator::new(JWT_SECRET),
            server: Some(server),
        }
    }
}

// ---------------------------------------------------------------------------
// Support for money.rs and reconciliation.rs: the money checker.
// ---------------------------------------------------------------------------
pub mod raw_http;
pub mod reconcile;

// ---------------------------------------------------------------------------
// Support for hardening.rs: a ledger on a pool the test made (a private
// PostgreSQL), and control of the server's lifetime.
// ---------------------------------------------------------------------------
pub mod hardening_support {
    use super::{Authenticator, TestApp, JWT_SECRET, WEBHOOK_SECRET};
    use command_api::CommandApiConfig;
    use sqlx::PgPool;
    use std::time::Duration;

    /// Spawns the ledger on `pool` (already migrated), with the usual test
    /// configuration tweaked by `configure`.
    pub async fn spawn_on_pool(
        pool: PgPool,
        database: &str,
        configure: impl FnOnce(&mut ledger::ServerConfig),
    ) -> TestApp {
        let stream = super::fresh_stream_name().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a port");
        let mut server_config = ledger::ServerConfig {
            command_api: CommandApiConfig::for_tests(JWT_SECRET, WEBHOOK_SECRET),
            request_timeout: Duration::from_secs(10),
            nats_url: super::nats_url(),
            stream: ledger_nats::StreamSettings::new(stream.clone()),
            parts: ledger::Parts::ALL,
            audit: ledger::AuditKeys::default(),
            rate_limits: ledger::limits::RateLimits::OFF,
            consumer_retry: Default::default(),
            shutdown_timeout: Duration::from_secs(30),
        };
        configure(&mut server_config);
        let server = ledger::spawn(Some(listener), pool.clone(), server_config.clone())
            .await
            .expect("start the ledger");
        let addr = server.addr.expect("an HTTP address");
        TestApp {
            base_url: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
            pool,
            database: database.to_owned(),
            stream,
            config: server_config,
            auth: Authenticator::new(JWT_SECRET),
            server: Some(server),
        }
    }

    /// Takes the running server out of the app, to stop it while requests
    /// are in flight.
    pub fn take_server(app: &mut TestApp) -> ledger::RunningServer {
        app.server.take().expect("a running server")
    }
}

// ---------------------------------------------------------------------------
// Support for stream_history.rs: databases dropped, created and restored
// under the same name, as an operator's restore leaves them.
// ---------------------------------------------------------------------------
pub mod history_support {
    use std::time::Duration;

    use sqlx::postgres::PgPoolOptions;
    use sqlx::{Connection, Executor, PgConnection, PgPool};

    /// The URL of database `name` on the test server.
    pub fn database_url(name: &str) -> String {
        super::with_database(&super::admin_database_url(), name)
    }

    /// A pool on database `name`.
    pub async fn connect(name: &str, max_connections: u32) -> PgPool {
        PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&database_url(name))
            .await
            .expect("connect to the database")
    }

    /// Drops database `name` (whoever is connected) and creates it empty.
    pub async fn drop_and_create(name: &str) {
        let mut admin = PgConnection::connect(&super::admin_database_url())
            .await
            .expect("connect to the maintenance database");
        admin
            .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
            .await
            .expect("drop the database");
        admin
            .execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .expect("create the database");
    }
}
