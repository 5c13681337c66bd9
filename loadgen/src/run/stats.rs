//! Latency histograms and error counts per operation, and what they become in
//! the report.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::client::Outcome;

/// Highest latency a histogram tracks (µs): one hour.
const MAX_TRACKED_US: u64 = 3_600_000_000;

pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKED_US, 3)
        .expect("constant bounds that hdrhistogram accepts")
}

pub fn record_us(h: &mut Histogram<u64>, latency: Duration) {
    let us = u64::try_from(latency.as_micros())
        .unwrap_or(MAX_TRACKED_US)
        .clamp(1, MAX_TRACKED_US);
    h.saturating_record(us);
}

/// What one operation did.
#[derive(Clone)]
pub struct OpStats {
    pub count: u64,
    pub successes: u64,
    /// Latency of every answered request (any status), µs.
    pub latency: Histogram<u64>,
    pub errors: BTreeMap<String, u64>,
}

impl Default for OpStats {
    fn default() -> Self {
        Self {
            count: 0,
            successes: 0,
            latency: histogram(),
            errors: BTreeMap::new(),
        }
    }
}

/// One client's measurements; merged at the end.
#[derive(Default, Clone)]
pub struct Recorder {
    /// Nothing started before this instant counts (warm-up).
    pub measure_from: Option<Instant>,
    /// Nothing started at or after this instant counts (the run's end).
    pub measure_until: Option<Instant>,
    pub ops: BTreeMap<&'static str, OpStats>,
}

impl Recorder {
    pub fn new(measure_from: Instant, measure_until: Instant) -> Self {
        Self {
            measure_from: Some(measure_from),
            measure_until: Some(measure_until),
            ops: BTreeMap::new(),
        }
    }

    /// Records one outcome whose request started at `started`.
    pub fn record(&mut self, op: &'static str, outcome: &Outcome) {
        self.record_as(op, outcome, outcome.ok());
    }

    /// Records one outcome, `success` deciding whether it counts as one.
    pub fn record_as(&mut self, op: &'static str, outcome: &Outcome, success: bool) {
        let started = outcome.done - outcome.latency;
        if self.measure_from.is_some_and(|from| started < from)
            || self.measure_until.is_some_and(|until| started >= until)
        {
            return;
        }
        let stats = self.ops.entry(op).or_default();
        stats.count += 1;
        if outcome.status.is_some() {
            record_us(&mut stats.latency, outcome.latency);
        }
        if success {
            stats.successes += 1;
        } else {
            *stats.errors.entry(outcome.error_label()).or_default() += 1;
        }
    }

    pub fn merge(&mut self, other: Recorder) {
        for (op, stats) in other.ops {
            let mine = self.ops.entry(op).or_default();
            mine.count += stats.count;
            mine.successes += stats.successes;
            // Same bounds on both sides: adding cannot fail.
            let _ = mine.latency.add(&stats.latency);
            for (label, n) in stats.errors {
                *mine.errors.entry(label).or_default() += n;
            }
        }
    }
}

/// Latency percentiles, in microseconds.
#[derive(Serialize, Clone, Debug, Default)]
pub struct Percentiles {
    pub samples: u64,
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            samples: h.len(),
            p50_us: h.value_at_quantile(0.50),
            p95_us: h.value_at_quantile(0.95),
            p99_us: h.value_at_quantile(0.99),
            max_us: h.max(),
        }
    }
}

#[derive(Serialize, Clone, Debug)]
pub struct OpReport {
    pub operation: String,
    pub count: u64,
    pub successes: u64,
    /// Requests per second over the measured window.
    pub per_second: f64,
    pub successes_per_second: f64,
    pub latency: Percentiles,
    /// Failed requests by HTTP status, or `transport`.
    pub errors: BTreeMap<String, u64>,
}

pub fn op_reports(recorder: &Recorder, window: Duration) -> Vec<OpReport> {
    let secs = window.as_secs_f64().max(1e-9);
    recorder
        .ops
        .iter()
        .map(|(op, s)| OpReport {
            operation: (*op).to_owned(),
            count: s.count,
            successes: s.successes,
            per_second: s.count as f64 / secs,
            successes_per_second: s.successes as f64 / secs,
            latency: Percentiles::of(&s.latency),
            errors: s.errors.clone(),
        })
        .collect()
}

pub fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}
