//! The consistency check after the load: the read models catch up, no
//! rental listing the run touched is overbooked (in its Inventory aggregate)
//! or shows negative free units (in the availability read model), and the
//! trial balance balances.

use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use futures::stream::{self, StreamExt};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::probe::projections;
use super::setup::rfc3339;
use super::{Shared, Span};

/// A listing and the outcome of its inventory and availability checks.
type Checked = (Uuid, Result<(), String>, Result<(), String>);

/// How long the read models get to catch up with the log's head.
const CATCH_UP: Duration = Duration::from_secs(60);
/// Listings checked at once.
const PARALLELISM: usize = 8;
/// The availability route takes at most 400 days at once: ask by years.
const CHUNK_DAYS: i64 = 365;

#[derive(Serialize, Clone, Debug, Default)]
pub struct CheckReport {
    pub passed: bool,
    /// Whether every projection reached the head before checking.
    pub caught_up: bool,
    /// The position the read models were checked at.
    pub position: i64,
    pub listings_checked: usize,
    pub overbooked: Vec<Uuid>,
    pub negative_availability: Vec<Uuid>,
    pub trial_balance_ok: bool,
    pub total_debit: Option<String>,
    pub total_credit: Option<String>,
    pub problems: Vec<String>,
}

/// Waits for every projection to reach the head (twice in a row, as the
/// policies record follow-ups); the position reached.
async fn catch_up(shared: &Shared) -> (bool, i64) {
    let give_up = Instant::now() + CATCH_UP;
    let target = shared
        .max_position
        .load(std::sync::atomic::Ordering::Relaxed);
    let mut settled = 0;
    let mut last = 0;
    loop {
        if let Some((min, head)) = projections(&shared.api, &shared.admin).await {
            last = min;
            if min >= head && min >= target {
                settled += 1;
                if settled >= 2 {
                    return (true, min);
                }
            } else {
                settled = 0;
            }
        }
        if Instant::now() >= give_up {
            return (false, last);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn check(shared: &Shared) -> CheckReport {
    let mut report = CheckReport::default();
    let (caught_up, position) = catch_up(shared).await;
    report.caught_up = caught_up;
    report.position = position;
    if !caught_up {
        report.problems.push(format!(
            "the read models did not reach the log's head within {CATCH_UP:?} (at {position})"
        ));
    }

    let touched: Vec<(Uuid, Span)> = shared
        .touched
        .lock()
        .map(|t| t.iter().map(|(k, v)| (*k, *v)).collect())
        .unwrap_or_default();
    report.listings_checked = touched.len();
    let results: Vec<Checked> = stream::iter(touched)
        .map(|(listing_id, span)| async move {
            let inventory = inventory_ok(shared, listing_id).await;
            let availability = availability_ok(shared, listing_id, span, position).await;
            (listing_id, inventory, availability)
        })
        .buffer_unordered(PARALLELISM)
        .collect()
        .await;
    for (listing_id, inventory, availability) in results {
        if let Err(problem) = inventory {
            report.overbooked.push(listing_id);
            report.problems.push(problem);
        }
        if let Err(problem) = availability {
            report.negative_availability.push(listing_id);
            report.problems.push(problem);
        }
    }

    match trial_balance(shared).await {
        Ok((debit, credit)) => {
            report.trial_balance_ok = debit == credit;
            if !report.trial_balance_ok {
                report
                    .problems
                    .push(format!("trial balance: debits {debit} ≠ credits {credit}"));
            }
            report.total_debit = Some(debit.to_string());
            report.total_credit = Some(credit.to_string());
        }
        Err(problem) => report.problems.push(problem),
    }
    report.passed = report.problems.is_empty();
    report
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Sweeps the Inventory aggregate's holds and blackouts: at no instant may
/// the units in use exceed the listing's units.
async fn inventory_ok(shared: &Shared, listing_id: Uuid) -> Result<(), String> {
    let path = format!("/v1/aggregates/Inventory/{listing_id}/state");
    let answer = shared.api.get(&path, &shared.admin).await;
    if !answer.ok() {
        return Err(format!(
            "inventory {listing_id}: state answered {} {}",
            answer.error_label(),
            answer.body
        ));
    }
    let state = answer
        .body
        .get("state")
        .ok_or_else(|| format!("inventory {listing_id}: no state"))?;
    let capacity = state.get("capacity");
    if capacity.and_then(|c| c.get("kind")).and_then(Value::as_str) != Some("rental") {
        return Ok(());
    }
    let units = capacity
        .and_then(|c| c.get("units"))
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("inventory {listing_id}: no units"))?;
    let now = Utc::now();
    // (instant, +/- units); at one instant releases come first (half-open).
    let mut changes: Vec<(DateTime<Utc>, i64)> = Vec::new();
    let holds = state.get("holds").and_then(Value::as_object);
    for hold in holds.into_iter().flat_map(|h| h.values()) {
        let status = hold.get("status").and_then(Value::as_str).unwrap_or("");
        let counts = match status {
            "confirmed" | "returned" => true,
            "active" => hold
                .get("expires_at")
                .and_then(time)
                .is_some_and(|t| t > now),
            _ => false,
        };
        if !counts {
            continue;
        }
        let request = hold.get("request");
        let period = request.and_then(|r| r.get("period"));
        let (Some(start), Some(mut end)) = (
            period.and_then(|p| p.get("start")).and_then(time),
            period.and_then(|p| p.get("end")).and_then(time),
        ) else {
            continue;
        };
        if status == "returned" {
            if let Some(returned) = hold.get("returned_at").and_then(time) {
                end = returned.clamp(start, end);
            }
        }
        let quantity = request
            .and_then(|r| r.get("quantity"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if end > start {
            changes.push((start, quantity));
            changes.push((end, -quantity));
        }
    }
    let blackouts = state.get("blackouts").and_then(Value::as_object);
    for blackout in blackouts.into_iter().flat_map(|b| b.values()) {
        let period = blackout.get("period");
        let (Some(start), Some(end)) = (
            period.and_then(|p| p.get("start")).and_then(time),
            period.and_then(|p| p.get("end")).and_then(time),
        ) else {
            continue;
        };
        let quantity = blackout
            .get("units")
            .and_then(Value::as_i64)
            .unwrap_or(units);
        changes.push((start, quantity));
        changes.push((end, -quantity));
    }
    changes.sort();
    let mut used = 0;
    for (at, delta) in changes {
        used += delta;
        if used > units {
            return Err(format!(
                "listing {listing_id} overbooked: {used} of {units} units in use at {}",
                rfc3339(at)
            ));
        }
    }
    Ok(())
}

/// The availability read model over the span the run asked never shows
/// fewer than zero free units.
async fn availability_ok(
    shared: &Shared,
    listing_id: Uuid,
    (from, to): Span,
    position: i64,
) -> Result<(), String> {
    let mut start = from;
    while start < to {
        let end = to.min(start + TimeDelta::days(CHUNK_DAYS));
        availability_chunk_ok(shared, listing_id, (start, end), position).await?;
        start = end;
    }
    Ok(())
}

async fn availability_chunk_ok(
    shared: &Shared,
    listing_id: Uuid,
    (from, to): Span,
    position: i64,
) -> Result<(), String> {
    let path = format!(
        "/v1/listings/{listing_id}/availability?from={}&to={}",
        rfc3339(from),
        rfc3339(to)
    );
    let answer = shared.api.get_at(&path, &shared.admin, position).await;
    if !answer.ok() {
        return Err(format!(
            "availability of {listing_id}: answered {} {}",
            answer.error_label(),
            answer.body
        ));
    }
    let free_min = answer.body.get("free_min").and_then(Value::as_i64);
    let negative_slot = answer
        .body
        .get("slots")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("free").and_then(Value::as_i64))
        .any(|free| free < 0);
    if free_min.is_some_and(|f| f < 0) || negative_slot {
        return Err(format!(
            "availability of {listing_id} over [{}, {}) shows negative free units (free_min {free_min:?})",
            rfc3339(from),
            rfc3339(to)
        ));
    }
    Ok(())
}

async fn trial_balance(shared: &Shared) -> Result<(Decimal, Decimal), String> {
    let answer = shared
        .api
        .get("/v1/ledger/trial-balance", &shared.admin)
        .await;
    if !answer.ok() {
        return Err(format!("trial balance: answered {}", answer.error_label()));
    }
    let amount = |field: &str| {
        answer
            .body
            .get(field)
            .and_then(|v| match v {
                Value::String(s) => Decimal::from_str(s).ok(),
                Value::Number(n) => Decimal::from_str(&n.to_string()).ok(),
                _ => None,
            })
            .ok_or_else(|| format!("trial balance: no `{field}`"))
    };
    Ok((amount("total_debit")?, amount("total_credit")?))
}
