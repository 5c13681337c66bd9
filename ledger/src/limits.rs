//! Request limits: a body size limit on every route and token-bucket rate
//! limits per client IP and per principal, each answered as a problem
//! (413, 429 with `Retry-After`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use command_api::ApiError;

/// Largest request body (API.md "Conventions").
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Requests per second and burst of one bucket; a rate of 0 turns it off.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

impl Rate {
    pub const OFF: Rate = Rate {
        per_second: 0.0,
        burst: 0,
    };

    pub fn new(per_second: f64, burst: u32) -> Self {
        Self { per_second, burst }
    }

    fn is_off(&self) -> bool {
        self.per_second <= 0.0
    }
}

/// The rate limits of an HTTP server.
#[derive(Clone, Copy, Debug)]
pub struct RateLimits {
    pub per_ip: Rate,
    pub per_principal: Rate,
}

impl Default for RateLimits {
    /// Generous: far above what one client of a marketplace needs.
    fn default() -> Self {
        Self {
            per_ip: Rate::new(500.0, 1000),
            per_principal: Rate::new(200.0, 400),
        }
    }
}

impl RateLimits {
    pub const OFF: RateLimits = RateLimits {
        per_ip: Rate::OFF,
        per_principal: Rate::OFF,
    };
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets by key, in memory (per process). Full buckets are dropped
/// when the map grows, so memory stays bounded by the active clients.
pub struct TokenBuckets {
    rate: Rate,
    buckets: Mutex<HashMap<String, Bucket>>,
}

const PRUNE_ABOVE: usize = 10_000;

impl TokenBuckets {
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key`, or tells how long until one is there.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        if self.rate.is_off() {
            return Ok(());
        }
        let burst = f64::from(self.rate.burst.max(1));
        let per_second = self.rate.per_second;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            let refill = Duration::from_secs_f64(burst / per_second);
            buckets.retain(|_, b| now.duration_since(b.last) < refill);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }
}

/// The limiter state shared by the middleware.
#[derive(Clone)]
pub struct Limiter {
    per_ip: Arc<TokenBuckets>,
    per_principal: Arc<TokenBuckets>,
    authenticator: Arc<command_api::auth::Authenticator>,
}

impl Limiter {
    pub fn new(limits: RateLimits, jwt_secret: &str) -> Self {
        Self {
            per_ip: Arc::new(TokenBuckets::new(limits.per_ip)),
            per_principal: Arc::new(TokenBuckets::new(limits.per_principal)),
            authenticator: Arc::new(command_api::auth::Authenticator::new(jwt_secret)),
        }
    }
}

fn too_many(wait: Duration, scope: &'static str) -> Response {
    metrics::counter!("ledger_rate_limited_total", "scope" => scope).increment(1);
    ApiError::RateLimited {
        // Whole seconds, rounded up (`Retry-After` has no fractions).
        retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
    }
    .into_response()
}

/// Per client IP (the socket's address: no proxy header is trusted), and
/// per principal. The principal comes from the bearer token only when the
/// token verifies (the same check as the auth middleware, which still
/// answers 401 for a bad one); unauthenticated requests count per IP only.
/// Health probes and metrics scrapes are never limited: load balancers and
/// Prometheus poll them, and refusing them would take a healthy instance out.
pub async fn rate_limit(State(limiter): State<Limiter>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path.starts_with("/health/") || path == "/metrics" {
        return next.run(request).await;
    }
    if let Some(ConnectInfo(addr)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
        if let Err(wait) = limiter.per_ip.check(&addr.ip().to_string()) {
            return too_many(wait, "ip");
        }
    }
    let token = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    if let Some(principal) = token.and_then(|t| limiter.authenticator.verify(t.trim()).ok()) {
        if let Err(wait) = limiter.per_principal.check(&principal.subject) {
            return too_many(wait, "principal");
        }
    }
    next.run(request).await
}

/// The body limit of every route, and the one place a 413 is mapped: a
/// declared body over the limit is refused before anything reads it; a
/// streamed one (no `Content-Length`) is read up to the limit first; and
/// the 413 of axum's own body limit (`DefaultBodyLimit`, in extractors)
/// becomes our problem.
pub async fn limit_body(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return ApiError::PayloadTooLarge.into_response();
    }
    let request = if declared.is_none() && request.headers().contains_key(TRANSFER_ENCODING) {
        let (parts, body) = request.into_parts();
        match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
            Ok(bytes) => Request::from_parts(parts, axum::body::Body::from(bytes)),
            Err(_) => return ApiError::PayloadTooLarge.into_response(),
        }
    } else {
        request
    };
    let response = next.run(request).await;
    let is_problem = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_problem {
        return ApiError::PayloadTooLarge.into_response();
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_the_burst_then_refuses_with_a_wait() {
        let buckets = TokenBuckets::new(Rate::new(1.0, 3));
        for _ in 0..3 {
            assert!(buckets.check("a").is_ok());
        }
        let wait = buckets.check("a").expect_err("over the burst");
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        assert!(
            buckets.check("b").is_ok(),
            "other keys have their own bucket"
        );
    }

    #[test]
    fn zero_rate_is_off() {
        let buckets = TokenBuckets::new(Rate::OFF);
        for _ in 0..1000 {
            assert!(buckets.check("a").is_ok());
        }
    }
}
