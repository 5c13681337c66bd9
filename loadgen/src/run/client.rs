//! The HTTP side of the load generator: tokens, signed webhooks, timed calls.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;
use uuid::Uuid;

use crate::BenchError;

/// How long one request may take before it counts as a transport error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    role: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    vendor_id: Option<Uuid>,
    exp: u64,
}

/// The outcome of one timed request.
pub struct Outcome {
    /// `None` for a transport error (connection, timeout, unreadable body).
    pub status: Option<StatusCode>,
    pub body: Value,
    pub latency: Duration,
    /// When the answer was complete.
    pub done: Instant,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| s.is_success())
    }
    /// The `position` field of a command's answer.
    pub fn position(&self) -> Option<i64> {
        self.body.get("position").and_then(Value::as_i64)
    }
    /// The label errors are grouped under: the status code, or `transport`.
    pub fn error_label(&self) -> String {
        match self.status {
            Some(s) => s.as_u16().to_string(),
            None => "transport".to_owned(),
        }
    }
    pub fn str_field(&self, field: &str) -> Option<&str> {
        self.body.get(field).and_then(Value::as_str)
    }
    pub fn uuid_field(&self, field: &str) -> Option<Uuid> {
        self.str_field(field).and_then(|s| s.parse().ok())
    }
}

/// One ledger, reached over HTTP, with the secrets to act as anyone on it.
///
/// Queries (GET) go to the read base; commands and webhooks go round-robin
/// to the command bases, so that a ledger split into processes (several
/// `ledger command-api`, one `ledger read-api`) is driven through all of
/// them. A single `ledger serve` is the same URL for both.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    command_bases: Arc<[String]>,
    next_command: Arc<AtomicUsize>,
    jwt_secret: String,
    webhook_secret: String,
}

impl Api {
    /// Queries to `read_url`, commands to `command_urls` (none: `read_url`).
    pub fn split(
        read_url: &str,
        command_urls: &[String],
        jwt_secret: &str,
        webhook_secret: &str,
        pool: usize,
    ) -> Result<Self, BenchError> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(pool.max(8))
            .timeout(REQUEST_TIMEOUT)
            .tcp_nodelay(true)
            .build()?;
        let base = read_url.trim_end_matches('/').to_owned();
        let command_bases: Arc<[String]> = if command_urls.is_empty() {
            Arc::from(vec![base.clone()])
        } else {
            command_urls
                .iter()
                .map(|url| url.trim_end_matches('/').to_owned())
                .collect()
        };
        Ok(Self {
            http,
            base,
            command_bases,
            next_command: Arc::new(AtomicUsize::new(0)),
            jwt_secret: jwt_secret.to_owned(),
            webhook_secret: webhook_secret.to_owned(),
        })
    }

    /// Where a request goes: queries to the read base, the rest in turn to
    /// each command base.
    fn base_for(&self, method: &Method) -> &str {
        if *method == Method::GET {
            return &self.base;
        }
        let turn = self.next_command.fetch_add(1, Ordering::Relaxed);
        &self.command_bases[turn % self.command_bases.len()]
    }

    /// An HS256 token valid for a day.
    pub fn token(
        &self,
        role: &str,
        sub: &str,
        vendor_id: Option<Uuid>,
    ) -> Result<String, BenchError> {
        let exp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| BenchError::Config(format!("clock before 1970: {e}")))?
            .as_secs()
            + 24 * 3600;
        let claims = Claims {
            sub,
            role,
            vendor_id,
            exp,
        };
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(self.jwt_secret.as_bytes()),
        )
        .map_err(|e| BenchError::Config(format!("cannot sign a token: {e}")))
    }

    /// Sends one request and times it; never fails: a transport error is an
    /// outcome like any status.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, String)],
    ) -> Outcome {
        let url = format!("{}{}", self.base_for(&method), path);
        let mut request = self.http.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        timed(request).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Outcome {
        self.call(Method::GET, path, Some(token), None, &[]).await
    }

    pub async fn get_at(&self, path: &str, token: &str, min_position: i64) -> Outcome {
        self.call(
            Method::GET,
            path,
            Some(token),
            None,
            &[("Ledger-Min-Position", min_position.to_string())],
        )
        .await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Outcome {
        self.call(Method::POST, path, Some(token), Some(body), &[])
            .await
    }

    /// Posts a payment event signed as the provider would.
    pub async fn webhook(&self, event: &Value) -> Outcome {
        let raw = event.to_string();
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let signature = match Hmac::<Sha256>::new_from_slice(self.webhook_secret.as_bytes()) {
            Ok(mut mac) => {
                mac.update(t.to_string().as_bytes());
                mac.update(b".");
                mac.update(raw.as_bytes());
                format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
            }
            Err(_) => String::new(),
        };
        let request = self
            .http
            .post(format!(
                "{}/v1/webhooks/payments",
                self.base_for(&Method::POST)
            ))
            .header("content-type", "application/json")
            .header("stripe-signature", signature)
            .body(raw);
        timed(request).await
    }

    /// A setup request that must succeed.
    pub async fn must(
        &self,
        what: &str,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Result<Value, BenchError> {
        let outcome = self.call(method, path, Some(token), body, &[]).await;
        match outcome.status {
            Some(s) if s.is_success() => Ok(outcome.body),
            Some(s) => Err(BenchError::Unexpected(format!(
                "{what}: {} {}",
                s.as_u16(),
                outcome.body
            ))),
            None => Err(BenchError::Unexpected(format!(
                "{what}: no answer from {}",
                self.base
            ))),
        }
    }
}

async fn timed(request: reqwest::RequestBuilder) -> Outcome {
    let started = Instant::now();
    let (status, body) = match request.send().await {
        Ok(response) => {
            let status = response.status();
            match response.bytes().await {
                Ok(bytes) => (
                    Some(status),
                    serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                ),
                Err(_) => (None, Value::Null),
            }
        }
        Err(_) => (None, Value::Null),
    };
    let done = Instant::now();
    Outcome {
        status,
        body,
        latency: done - started,
        done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_go_to_the_read_base_and_commands_to_each_command_base_in_turn() {
        let commands = ["http://c1/".to_owned(), "http://c2".to_owned()];
        let api = Api::split("http://read/", &commands, "s", "w", 1).expect("a client");
        assert_eq!(api.base_for(&Method::GET), "http://read");
        let sent: Vec<&str> = (0..4).map(|_| api.base_for(&Method::POST)).collect();
        assert_eq!(sent, ["http://c1", "http://c2", "http://c1", "http://c2"]);
        // Clones (one per client) share the turn, so the load stays even.
        let clone = api.clone();
        assert_eq!(clone.base_for(&Method::POST), "http://c1");
        assert_eq!(api.base_for(&Method::POST), "http://c2");
    }

    #[test]
    fn one_url_serves_both() {
        let api = Api::split("http://one", &[], "s", "w", 1).expect("a client");
        assert_eq!(api.base_for(&Method::GET), "http://one");
        assert_eq!(api.base_for(&Method::POST), "http://one");
    }
}
