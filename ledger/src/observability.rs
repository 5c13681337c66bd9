//! `GET /metrics`: Prometheus text from the `metrics` facade. One recorder
//! per process (tests start several servers in one process, so it is
//! installed once and its handle reused). Request latencies are recorded by
//! [`record_request`]; command outcomes by the command bus; relay and
//! consumer progress by the relay and the runners; the pool, the backlogs
//! and the consumers' stalls are sampled from the database on each scrape.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;

/// Seconds, from 1 ms to 30 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder handle, installing the recorder on first use.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("ledger_http_request_duration_seconds".to_owned()),
                    LATENCY_BUCKETS,
                )
                .expect("latency buckets are not empty");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                // Someone else's recorder is installed: /metrics renders
                // only what reaches ours (nothing), but the process runs.
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            crate::metrics_catalog::describe_and_register();
            process_collector().describe();
            process_collector().collect();
            handle
        })
        .clone()
}

/// The `process_*` series (CPU seconds, resident memory, open files, start
/// time: the Prometheus client conventions), refreshed on each scrape.
fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

/// What the scrape samples.
#[derive(Clone)]
pub struct MetricsState {
    pub pool: PgPool,
    pub stream: String,
}

/// Middleware: one histogram sample per request, by route template (never
/// the raw path, whose ids would explode the series), method and status.
pub async fn record_request(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    metrics::histogram!(
        "ledger_http_request_duration_seconds",
        "method" => method,
        "route" => route,
        "status" => response.status().as_u16().to_string()
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics` (no token).
pub async fn scrape(State(state): State<MetricsState>) -> Response {
    let handle = handle();
    process_collector().collect();
    sample(&state).await;
    handle.run_upkeep();
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        handle.render(),
    )
        .into_response()
}

async fn sample(state: &MetricsState) {
    let pool = &state.pool;
    metrics::gauge!("ledger_db_pool_connections").set(f64::from(pool.size()));
    metrics::gauge!("ledger_db_pool_idle_connections").set(pool.num_idle() as f64);
    metrics::gauge!("ledger_db_pool_max_connections")
        .set(f64::from(pool.options().get_max_connections()));
    // A scrape never waits long on a sick database: the gauges keep their
    // last values and `ledger_metrics_sample_failures_total` counts.
    let sampled = tokio::time::timeout(Duration::from_secs(2), sample_backlogs(state)).await;
    if !matches!(sampled, Ok(Ok(()))) {
        metrics::counter!("ledger_metrics_sample_failures_total").increment(1);
    }
}

async fn sample_backlogs(state: &MetricsState) -> Result<(), sqlx::Error> {
    let (head, published, oldest_unpublished) =
        event_log::statements::positions::relay_backlog(&state.pool, &state.stream).await?;
    let lag = (head - published).max(0) as f64;
    metrics::gauge!("ledger_events_head_position").set(head as f64);
    metrics::gauge!("ledger_relay_position").set(published as f64);
    metrics::gauge!("ledger_relay_lag_events").set(lag);
    metrics::gauge!("ledger_relay_backlog_events").set(lag);
    metrics::gauge!("ledger_relay_lag_seconds").set(oldest_unpublished.unwrap_or(0.0).max(0.0));

    let mut consumers: Vec<(String, i64)> =
        sqlx::query_as("SELECT name, position FROM consumer_checkpoints ORDER BY name")
            .fetch_all(&state.pool)
            .await?;
    // A consumer that has not checkpointed yet stands at 0, its lag the
    // whole stream: the series exist from the first scrape.
    for name in crate::metrics_catalog::CONSUMERS {
        if !consumers.iter().any(|(known, _)| known == name) {
            consumers.push(((*name).to_owned(), 0));
        }
    }
    // A stall as recorded, so that every replica reports what the stalled
    // runner found.
    let stalled: std::collections::HashSet<String> = ledger_nats::faults::list(&state.pool)
        .await?
        .into_iter()
        .filter(|f| f.kind == ledger_nats::faults::FaultKind::Stalled.as_str())
        .map(|f| f.component)
        .collect();
    for (name, position) in consumers {
        let is_stalled = stalled.contains(&ledger_nats::faults::consumer_component(&name));
        metrics::gauge!("ledger_consumer_stalled", "consumer" => name.clone()).set(if is_stalled {
            1.0
        } else {
            0.0
        });
        metrics::gauge!("ledger_consumer_position", "consumer" => name.clone())
            .set(position as f64);
        metrics::gauge!("ledger_consumer_lag_events", "consumer" => name)
            .set((published - position).max(0) as f64);
    }
    Ok(())
}
