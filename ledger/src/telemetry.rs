//! Structured logs: JSON lines by default, human-readable on request. Each
//! request gets a span carrying its request id; the same id is recorded in
//! event metadata as the correlation id.

use axum::body::Body;
use axum::http::Request;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnResponse, MakeSpan, TraceLayer};
use tower_http::LatencyUnit;
use tracing::Level;
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
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
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
        tracing::info_span!(
            "request",
            method = %request.method(),
            route,
            path = %request.uri().path(),
            request_id,
            principal = tracing::field::Empty,
        )
    }
}

pub fn trace_layer(
) -> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, RequestSpan, (), DefaultOnResponse> {
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_request(())
        .on_response(
            DefaultOnResponse::new()
                .level(Level::INFO)
                .latency_unit(LatencyUnit::Millis),
        )
}
