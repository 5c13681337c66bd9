//! Request limits: bounds on the request head (an oversized bearer token is
//! refused before anything decodes it), a body size limit on every route and
//! token-bucket rate limits per client IP and per principal, each answered
//! as a problem (401, 431, 413, 429 with `Retry-After`).
//!
//! A refused body is still read, and thrown away, up to a bound: a client
//! that writes its whole body before reading the answer (most HTTP
//! libraries) would otherwise have its write cut by the connection's reset
//! and never see the 413.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{
    AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, EXPECT, TRANSFER_ENCODING,
};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use ledger_http::ApiError;

/// Largest request body (API.md "Conventions").
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Longest `Authorization` header: a bearer token of this ledger is a few
/// hundred bytes; a longer one is refused (401) without being decoded.
pub const MAX_AUTHORIZATION_BYTES: usize = 8 * 1024;

/// Largest request head (every header's name and value); past it, 431.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// How much of a refused body is read and discarded before the connection
/// closes, and for how long at most: enough for a client that sends a few
/// MiB before reading its answer; a larger or slower one is cut.
pub const DISCARD_MAX_BYTES: usize = 8 * 1024 * 1024;
pub const DISCARD_MAX_TIME: Duration = Duration::from_secs(10);

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
    authenticator: Arc<ledger_http::Authenticator>,
}

impl Limiter {
    pub fn new(limits: RateLimits, jwt_secret: &str) -> Self {
        Self {
            per_ip: Arc::new(TokenBuckets::new(limits.per_ip)),
            per_principal: Arc::new(TokenBuckets::new(limits.per_principal)),
            authenticator: Arc::new(ledger_http::Authenticator::new(jwt_secret)),
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
        // The same subject in two tenants is two principals.
        let key = format!("{}/{}", principal.tenant, principal.subject);
        if let Err(wait) = limiter.per_principal.check(&key) {
            return too_many(wait, "principal");
        }
    }
    next.run(request).await
}

/// Bounds the request head before anything parses a header's value: an
/// `Authorization` header over [`MAX_AUTHORIZATION_BYTES`] is 401 (its
/// token is never decoded: not here, not by the rate limiter, not by the
/// auth middleware), a head over [`MAX_HEADER_BYTES`] is 431.
pub async fn limit_headers(request: Request, next: Next) -> Response {
    let authorization = request
        .headers()
        .get_all(AUTHORIZATION)
        .iter()
        .map(HeaderValue::len)
        .sum::<usize>();
    if authorization > MAX_AUTHORIZATION_BYTES {
        let refusal = ApiError::Unauthorized(format!(
            "the Authorization header is longer than {MAX_AUTHORIZATION_BYTES} bytes"
        ));
        return refuse_unread(request, refusal);
    }
    if head_bytes(request.headers()) > MAX_HEADER_BYTES {
        let refusal = ApiError::HeaderFieldsTooLarge {
            limit_bytes: MAX_HEADER_BYTES,
        };
        return refuse_unread(request, refusal);
    }
    next.run(request).await
}

/// The size of the headers as sent: `name: value\r\n` for each.
fn head_bytes(headers: &axum::http::HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}

/// The body limit of every route, and the one place a 413 is mapped: a
/// declared body over the limit is refused before anything reads it; a
/// streamed one (no `Content-Length`) is read up to the limit first; and
/// the 413 of axum's own body limit (`DefaultBodyLimit`, in extractors)
/// becomes our problem. Either way the rest of the body is discarded up to
/// a bound (see [`refuse_unread`]).
pub async fn limit_body(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return refuse_unread(request, ApiError::PayloadTooLarge);
    }
    let request = if declared.is_none() && request.headers().contains_key(TRANSFER_ENCODING) {
        let (parts, body) = request.into_parts();
        match read_up_to(body, MAX_BODY_BYTES).await {
            Ok(bytes) => Request::from_parts(parts, Body::from(bytes)),
            Err(Unread::TooLarge(rest)) => {
                return refuse_and_discard(rest, ApiError::PayloadTooLarge);
            }
            Err(Unread::Failed) => return ApiError::PayloadTooLarge.into_response(),
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

/// Why a body was not read whole.
enum Unread {
    /// Past the limit: the rest of the body, still to be read.
    TooLarge(futures::stream::BoxStream<'static, Result<Bytes, axum::Error>>),
    /// The client's stream broke (or was malformed).
    Failed,
}

/// Reads a body of at most `limit` bytes.
async fn read_up_to(body: Body, limit: usize) -> Result<Bytes, Unread> {
    let mut stream = body.into_data_stream().boxed();
    let mut read = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| Unread::Failed)?;
        if read.len() + chunk.len() > limit {
            return Err(Unread::TooLarge(stream));
        }
        read.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(read))
}

/// Answers `refusal` to a request whose body nothing has read.
fn refuse_unread(request: Request, refusal: ApiError) -> Response {
    // A client that sent `Expect: 100-continue` waits for this answer
    // before it sends the body: there is nothing to discard.
    let waits_to_send = request
        .headers()
        .get(EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if waits_to_send {
        let mut response = refusal.into_response();
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    refuse_and_discard(request.into_body().into_data_stream().boxed(), refusal)
}

/// Answers `refusal` at once, and reads the rest of the body in the
/// background (discarding it) up to [`DISCARD_MAX_BYTES`] or
/// [`DISCARD_MAX_TIME`]. Closing the connection with unread bytes in the
/// socket's buffer resets it, and a client still writing its body then
/// fails with a broken pipe before it reads the answer; a client that
/// finishes its body within the bounds reads the answer, and the
/// connection closes after it (`Connection: close`).
fn refuse_and_discard(
    rest: futures::stream::BoxStream<'static, Result<Bytes, axum::Error>>,
    refusal: ApiError,
) -> Response {
    tokio::spawn(discard(rest, DISCARD_MAX_BYTES, DISCARD_MAX_TIME));
    let mut response = refusal.into_response();
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Reads and drops a body until it ends, `max_bytes` have been read, or
/// `max_time` has passed; returns how many bytes were read.
async fn discard(
    mut body: futures::stream::BoxStream<'static, Result<Bytes, axum::Error>>,
    max_bytes: usize,
    max_time: Duration,
) -> usize {
    let mut read = 0usize;
    let _ = tokio::time::timeout(max_time, async {
        while let Some(Ok(chunk)) = body.next().await {
            read += chunk.len();
            if read > max_bytes {
                break;
            }
        }
    })
    .await;
    tracing::debug!(read, "discarded a refused request body");
    read
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole_and_a_longer_one_is_not() {
        let body = Body::from(vec![b'x'; 100]);
        let read = read_up_to(body, 100).await.ok().expect("within the limit");
        assert_eq!(read.len(), 100);
        let body = Body::from(vec![b'x'; 101]);
        assert!(matches!(
            read_up_to(body, 100).await,
            Err(Unread::TooLarge(_))
        ));
    }

    #[tokio::test]
    async fn discarding_stops_at_the_end_of_the_body_or_past_its_bound() {
        let chunks = || {
            futures::stream::iter(
                (0..10).map(|_| Ok::<_, axum::Error>(Bytes::from(vec![0u8; 1000]))),
            )
            .boxed()
        };
        assert_eq!(
            discard(chunks(), 1_000_000, Duration::from_secs(5)).await,
            10_000
        );
        assert_eq!(
            discard(chunks(), 2_500, Duration::from_secs(5)).await,
            3_000
        );
        let endless = futures::stream::pending().boxed();
        assert_eq!(discard(endless, 1000, Duration::from_millis(10)).await, 0);
    }

    #[test]
    fn the_head_size_counts_names_values_and_separators() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("x-a", HeaderValue::from_static("12345"));
        assert_eq!(head_bytes(&headers), 3 + 5 + 4);
    }

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
