//! Test support: spawns the real ledger on a random port against a fresh
//! PostgreSQL database and drives it over HTTP, like any client would.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use command_api::{Authenticator, CommandApiConfig, Role};
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
        .max_connections(24)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&with_database(&admin_url, &name))
        .await?;
    migrations::run(&pool).await?;
    Ok((pool, name))
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
    auth: Authenticator,
    server: Option<ledger::RunningServer>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// Spawns with a tweaked configuration (e.g. a short hold TTL).
    pub async fn spawn_with(configure: impl FnOnce(&mut CommandApiConfig)) -> TestApp {
        let (pool, database) = fresh_database().await.expect("create a test database");
        let mut config = CommandApiConfig::for_tests(JWT_SECRET, WEBHOOK_SECRET);
        configure(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a port");
        let server = ledger::spawn(
            listener,
            pool.clone(),
            ledger::ServerConfig {
                command_api: config,
                request_timeout: Duration::from_secs(10),
            },
        )
        .await
        .expect("start the ledger");
        TestApp {
            base_url: format!("http://{}", server.addr),
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .expect("http client"),
            pool,
            database,
            auth: Authenticator::new(JWT_SECRET),
            server: Some(server),
        }
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
