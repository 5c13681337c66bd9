//! The report of a run: serialized as JSON, printed as a table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::check::CheckReport;
use super::stats::{ms, OpReport, Percentiles};
use super::Scenario;

#[derive(Serialize, Clone, Debug)]
pub struct Report {
    pub scenario: Scenario,
    pub url: String,
    pub concurrency: usize,
    pub warmup_seconds: f64,
    pub measured_seconds: f64,
    /// `--rate`, when the load was paced.
    pub target_rate: Option<f64>,
    pub vendors: usize,
    pub listings: usize,
    pub operations: Vec<OpReport>,
    /// Failed requests of every operation by HTTP status, or `transport`.
    pub errors_by_status: BTreeMap<String, u64>,
    pub commands: CommandsReport,
    pub projection_lag: LagReport,
    /// Peak VmRSS of `--server-pid` during the run.
    pub peak_rss_bytes: Option<u64>,
    /// The live feeds held open during the run (`--feeds`).
    pub feeds: Option<super::FeedsReport>,
    /// Requests answered 429.
    pub rate_limited: u64,
    pub hot_listing: Option<HotListingReport>,
    pub deep_listing: Option<DeepListingReport>,
    pub check: CheckReport,
    pub notes: Vec<String>,
}

#[derive(Serialize, Clone, Debug)]
pub struct CommandsReport {
    /// Successful command requests (orders, payments, cancellations).
    pub successful: u64,
    pub per_second: f64,
    /// Events the log grew by over the measured window (the head position's
    /// growth, policies' follow-ups included).
    pub events_recorded: Option<i64>,
    pub events_per_second: Option<f64>,
}

/// Commit (a command's answer) → visible in every read model.
#[derive(Serialize, Clone, Debug, Default)]
pub struct LagReport {
    pub samples: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// Probes that gave up waiting.
    pub timeouts: u64,
    /// Median time `GET /v1/projections` took while probing: the
    /// resolution of these figures.
    pub poll_p50_us: u64,
}

#[derive(Serialize, Clone, Debug)]
pub struct HotListingReport {
    pub holds: u64,
    pub holds_per_second: f64,
}

#[derive(Serialize, Clone, Debug)]
pub struct DeepListingReport {
    /// Bookings on the deep listing before measuring.
    pub bookings: usize,
    pub deep: Percentiles,
    pub fresh: Percentiles,
    /// Deep p50 / fresh p50.
    pub ratio_p50: f64,
    pub ratio_p99: f64,
}

impl Report {
    /// The human-readable form.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "scenario {} against {}: {} clients, {:.1} s measured after {:.1} s warm-up{}",
            self.scenario.name(),
            self.url,
            self.concurrency,
            self.measured_seconds,
            self.warmup_seconds,
            self.target_rate
                .map(|r| format!(", paced at {r:.0} req/s"))
                .unwrap_or_default()
        );
        let _ = writeln!(out, "{} vendors, {} listings", self.vendors, self.listings);
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<20} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}  errors",
            "operation", "count", "ok", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms"
        );
        for op in &self.operations {
            let errors = if op.errors.is_empty() {
                "-".to_owned()
            } else {
                op.errors
                    .iter()
                    .map(|(k, v)| format!("{k}×{v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let _ = writeln!(
                out,
                "{:<20} {:>8} {:>8} {:>9.1} {:>9} {:>9} {:>9} {:>9}  {}",
                op.operation,
                op.count,
                op.successes,
                op.per_second,
                ms(op.latency.p50_us),
                ms(op.latency.p95_us),
                ms(op.latency.p99_us),
                ms(op.latency.max_us),
                errors
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "successful commands: {} ({:.1}/s){}",
            self.commands.successful,
            self.commands.per_second,
            match (
                self.commands.events_recorded,
                self.commands.events_per_second
            ) {
                (Some(e), Some(r)) => format!("; events recorded: {e} ({r:.1}/s)"),
                _ => String::new(),
            }
        );
        let lag = &self.projection_lag;
        let _ = writeln!(
            out,
            "projection lag (commit → every read model): p50 {} ms, p99 {} ms, max {} ms over {} samples (polls took {} ms){}",
            ms(lag.p50_us),
            ms(lag.p99_us),
            ms(lag.max_us),
            lag.samples,
            ms(lag.poll_p50_us),
            if lag.timeouts > 0 {
                format!(", {} timed out", lag.timeouts)
            } else {
                String::new()
            }
        );
        if let Some(rss) = self.peak_rss_bytes {
            let _ = writeln!(
                out,
                "server peak RSS: {:.1} MiB",
                rss as f64 / (1024.0 * 1024.0)
            );
        }
        if let Some(feeds) = &self.feeds {
            let _ = writeln!(
                out,
                "live feeds: {} of {} open, {} still open at the end; {} events received ({} to {} per feed)",
                feeds.opened,
                feeds.requested,
                feeds.open_at_end,
                feeds.events_received,
                feeds.min_events_per_feed,
                feeds.max_events_per_feed
            );
        }
        if let Some(hot) = &self.hot_listing {
            let _ = writeln!(
                out,
                "hot listing: {} holds ({:.1} holds/s)",
                hot.holds, hot.holds_per_second
            );
        }
        if let Some(deep) = &self.deep_listing {
            let _ = writeln!(
                out,
                "deep listing ({} bookings): p50 {} ms / p99 {} ms; fresh listing: p50 {} ms / p99 {} ms; ratio p50 {:.2}, p99 {:.2}",
                deep.bookings,
                ms(deep.deep.p50_us),
                ms(deep.deep.p99_us),
                ms(deep.fresh.p50_us),
                ms(deep.fresh.p99_us),
                deep.ratio_p50,
                deep.ratio_p99
            );
        }
        if self.rate_limited > 0 {
            let _ = writeln!(
                out,
                "RATE LIMITED: {} requests answered 429",
                self.rate_limited
            );
        }
        let c = &self.check;
        let _ = writeln!(
            out,
            "consistency check: {} ({} rental listings checked, trial balance {} = {})",
            if c.passed { "passed" } else { "FAILED" },
            c.listings_checked,
            c.total_debit.as_deref().unwrap_or("?"),
            c.total_credit.as_deref().unwrap_or("?"),
        );
        for problem in &c.problems {
            let _ = writeln!(out, "  problem: {problem}");
        }
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        out
    }
}
