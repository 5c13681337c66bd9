//! Background probes: projection lag, the log's head, the server's RSS.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::client::Api;
use super::report::LagReport;
use super::stats::{histogram, record_us};
use super::Shared;

/// How often the probe takes the latest commit.
const PROBE_EVERY: Duration = Duration::from_millis(20);
/// How often it polls the projections while waiting.
const POLL_EVERY: Duration = Duration::from_millis(2);
/// When a probe gives up.
pub const LAG_TIMEOUT: Duration = Duration::from_secs(10);

/// The consumer of `GET /v1/projections` that is not a read model.
const POLICIES: &str = "policies";

/// `(min position over every read model, head)` from `GET /v1/projections`.
/// The policies consumer is listed there too but builds no read model: the
/// lag asked for is commit → visible in the read models.
pub async fn projections(api: &Api, admin: &str) -> Option<(i64, i64)> {
    projections_timed(api, admin).await.0
}

/// [`projections`] and how long the answer took.
async fn projections_timed(api: &Api, admin: &str) -> (Option<(i64, i64)>, Duration) {
    let outcome = api.get("/v1/projections", admin).await;
    let latency = outcome.latency;
    if !outcome.ok() {
        return (None, latency);
    }
    (parse_projections(&outcome.body), latency)
}

fn parse_projections(body: &Value) -> Option<(i64, i64)> {
    let items = body.as_array()?;
    let mut min = i64::MAX;
    let mut head = 0;
    for item in items {
        if item.get("name").and_then(Value::as_str) == Some(POLICIES) {
            continue;
        }
        min = min.min(item.get("position").and_then(Value::as_i64)?);
        head = head.max(item.get("head").and_then(Value::as_i64).unwrap_or(0));
    }
    (!items.is_empty()).then_some((min, head))
}

/// Waits until every projection has reached `position`; whether it did
/// within `timeout`.
pub async fn wait_for(api: &Api, admin: &str, position: i64, timeout: Duration) -> bool {
    let give_up = Instant::now() + timeout;
    loop {
        if let Some((min, _)) = projections(api, admin).await {
            if min >= position {
                return true;
            }
        }
        if Instant::now() >= give_up {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The log's head position.
pub async fn head(api: &Api, admin: &str) -> Option<i64> {
    projections(api, admin).await.map(|(_, head)| head)
}

/// The head position at `at`.
pub async fn head_at(api: Api, admin: String, at: Instant) -> Option<i64> {
    tokio::time::sleep_until(at.into()).await;
    head(&api, &admin).await
}

/// Every ~20 ms of the measured window: the latest committed position, and
/// how long until every projection has reached it, counted from the
/// command's answer.
pub async fn lag_probe(shared: Arc<Shared>) -> LagReport {
    let mut lags = histogram();
    let mut polls = histogram();
    let mut timeouts = 0;
    let mut probed = 0;
    tokio::time::sleep_until(shared.measure_from.into()).await;
    while Instant::now() < shared.deadline {
        let latest = shared.latest.lock().ok().and_then(|l| *l);
        if let Some((position, answered)) = latest {
            if position > probed && answered >= shared.measure_from {
                probed = position;
                let give_up = Instant::now() + LAG_TIMEOUT;
                loop {
                    let (answer, took) = projections_timed(&shared.api, &shared.admin).await;
                    record_us(&mut polls, took);
                    if let Some((min, _)) = answer {
                        if min >= position {
                            record_us(&mut lags, answered.elapsed());
                            break;
                        }
                    }
                    if Instant::now() >= give_up {
                        timeouts += 1;
                        break;
                    }
                    tokio::time::sleep(POLL_EVERY).await;
                }
            }
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
    let poll_p50_us = if polls.is_empty() {
        0
    } else {
        polls.value_at_quantile(0.50)
    };
    if lags.is_empty() {
        return LagReport {
            timeouts,
            poll_p50_us,
            ..LagReport::default()
        };
    }
    LagReport {
        samples: lags.len(),
        p50_us: lags.value_at_quantile(0.50),
        p99_us: lags.value_at_quantile(0.99),
        max_us: lags.max(),
        timeouts,
        poll_p50_us,
    }
}

/// Samples a process's VmRSS every 200 ms.
pub struct RssSampler {
    stop: watch::Sender<bool>,
    task: JoinHandle<Option<u64>>,
}

impl RssSampler {
    pub fn start(pid: u32) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut peak: Option<u64> = None;
            let mut every = tokio::time::interval(Duration::from_millis(200));
            loop {
                tokio::select! {
                    _ = every.tick() => {
                        if let Some(rss) = vm_rss(pid).await {
                            peak = Some(peak.map_or(rss, |p| p.max(rss)));
                        }
                    }
                    _ = stopped.changed() => break,
                }
            }
            peak
        });
        Self { stop, task }
    }

    /// The peak seen, in bytes.
    pub async fn stop(self) -> Option<u64> {
        let _ = self.stop.send(true);
        self.task.await.ok().flatten()
    }
}

async fn vm_rss(pid: u32) -> Option<u64> {
    let status = tokio::fs::read_to_string(format!("/proc/{pid}/status"))
        .await
        .ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
