//! Structured logs: JSON lines by default, human-readable on request. Each
//! request gets a span carrying its request id; the same id is recorded in
//! event metadata as the correlation id.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{MakeSpan, OnResponse, TraceLayer};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG` overrides the default level.
pub fn init(pretty: bool) {
    init_with_writer(pretty, std::io::stdout);
}

/// [`init`], writing the lines to `writer` (tests read them back).
pub fn init_with_writer<W>(pretty: bool, writer: W)
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info,async_nats=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let result = if pretty {
        builder.try_init()
    } else {
        // One context object per line: `span`, the innermost span's
        // fields (the request's, on a request's lines), not that and the
        // list of all spans again.
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    };
    // Already installed (tests start several servers): keep the first.
    let _ = result;
}

#[derive(Clone, Copy)]
pub struct RequestSpan;

impl MakeSpan<Body> for RequestSpan {
    fn make_span(&mut self, request: &Request<Body>) -> tracing::Span {
        let request_id = request
            .headers()
            .get(ledger_http::request_id::REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        // The route template (the router's layers run after matching), so
        // logs group by endpoint; `path` keeps the concrete one.
        let route = request
            .extensions()
            .get::<axum::extract::MatchedPath>()
            .map_or("unmatched", |p| p.as_str());
        // `principal` is recorded by the auth middleware once the token
        // verifies; the completion line then carries it with the status and
        // latency (`finished processing request`).
        // Probes and scrapes come every few seconds: their lines are DEBUG.
        if SCRAPED_ROUTES.contains(&route) {
            return tracing::debug_span!(
                SCRAPE_SPAN,
                method = %request.method(),
                route,
                path = %request.uri().path(),
                request_id,
            );
        }
        tracing::info_span!(
            "request",
            method = %request.method(),
            route,
            path = %request.uri().path(),
            request_id,
            principal = tracing::field::Empty,
            tenant = tracing::field::Empty,
        )
    }
}

/// Routes that monitoring calls on a schedule.
const SCRAPED_ROUTES: &[&str] = &["/health/live", "/health/ready", "/metrics"];
const SCRAPE_SPAN: &str = "scrape";

/// The completion line of a request: `status` and `latency_ms` as numbers
/// (dashboards and log queries compare them), at INFO, at DEBUG for
/// probes and scrapes, at ERROR for a 5xx (in place of tower-http's
/// separate failure line, whose latency was a string).
#[derive(Clone, Copy)]
pub struct RequestCompleted;

impl<B> OnResponse<B> for RequestCompleted {
    fn on_response(self, response: &Response<B>, latency: Duration, span: &tracing::Span) {
        let status = response.status().as_u16();
        let latency_ms = (latency.as_secs_f64() * 1_000_000.0).round() / 1_000.0;
        // A disabled span is a DEBUG one filtered out: a scrape.
        let scrape = span
            .metadata()
            .is_none_or(|metadata| metadata.name() == SCRAPE_SPAN);
        if status >= 500 {
            tracing::error!(status, latency_ms, "finished processing request");
        } else if scrape {
            tracing::debug!(status, latency_ms, "finished processing request");
        } else {
            tracing::info!(status, latency_ms, "finished processing request");
        }
    }
}

pub fn trace_layer() -> TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    RequestSpan,
    (),
    RequestCompleted,
    (),
    (),
    (),
> {
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_request(())
        .on_response(RequestCompleted)
        .on_body_chunk(())
        .on_eos(())
        .on_failure(())
}
