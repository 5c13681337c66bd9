//! Search by period and the listings' schedules: a rental listing whose
//! schedule would refuse the period is left out, judged by the same pure
//! function the Inventory asks when it places a hold
//! ([`domain::Schedule::check`]), so search and the aggregate agree.

use chrono::{DateTime, Utc};

use super::ListingRow;

/// Whether a booking of `[from, to)` made at `now` meets the listing's
/// schedule: every rule of the schedule (`closed`, `off_grid`, `too_short`,
/// `too_long`, `min_notice`, `max_advance`), but not `in_past`, which is no
/// rule of the schedule and which search never applied to any listing. A
/// sale listing, or a rental listing without a schedule, is allowed.
pub(super) fn allows(
    row: &ListingRow,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    if row.kind != "rental" {
        return true;
    }
    let Some(schedule) = row
        .schedule
        .as_ref()
        .and_then(|s| serde_json::from_value::<domain::Schedule>(s.clone()).ok())
    else {
        return true;
    };
    let unit = match row.pricing_unit.as_deref() {
        Some("day") => domain::PricingUnit::Day,
        _ => domain::PricingUnit::Hour,
    };
    let period = domain::Period {
        start: from,
        end: to,
    };
    schedule
        .check(&period, now, unit)
        .iter()
        .all(|e| e.code.as_deref() == Some(domain::IN_PAST))
}
