//! Rental periods (half-open `[start, end)`), the range of instants a
//! period may touch, and billable units.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{DomainError, FieldError};

/// The longest period a rental or blackout may span (about ten years):
/// bounds billable units, and with them every price.
pub const MAX_PERIOD_DAYS: i64 = 3660;

/// The most pricing units a period can bill: [`MAX_PERIOD_DAYS`] in hours.
pub const MAX_BILLABLE_UNITS: u32 = (MAX_PERIOD_DAYS * 24) as u32;

/// 2000-01-01T00:00:00Z: no period starts before it.
pub const EARLIEST_UNIX: i64 = 946_684_800;
/// 2200-01-01T00:00:00Z: no period ends after it.
///
/// Periods, blackouts and the read side's period queries stay within
/// [`EARLIEST_UNIX`, `LATEST_UNIX`]: wide enough for any booking and any
/// history, and far from the ends of `chrono` and PostgreSQL time, so no
/// projector or query adds a length to an instant near year 9999.
pub const LATEST_UNIX: i64 = 7_258_118_400;

/// Rule name (`errors[].code`) of an instant outside the allowed range.
pub const OUT_OF_RANGE: &str = "out_of_range";
/// Rule name (`errors[].code`) of a booking that starts before now.
pub const IN_PAST: &str = "in_past";

fn max_length() -> chrono::Duration {
    chrono::Duration::days(MAX_PERIOD_DAYS)
}

/// The earliest instant a period may touch.
pub fn earliest() -> DateTime<Utc> {
    DateTime::from_timestamp(EARLIEST_UNIX, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The latest instant a period may touch.
pub fn latest() -> DateTime<Utc> {
    DateTime::from_timestamp(LATEST_UNIX, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Whether `t` lies in the allowed range, both ends included.
pub fn is_in_range(t: DateTime<Utc>) -> bool {
    earliest() <= t && t <= latest()
}

/// The message of an instant outside the range: it names the range.
pub fn range_message() -> String {
    format!(
        "must lie between {} and {}",
        earliest().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        latest().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

/// `Ok` when `t` lies in the allowed range, else the problem with `field`.
pub fn check_in_range(field: &str, t: DateTime<Utc>) -> Result<(), FieldError> {
    if is_in_range(t) {
        Ok(())
    } else {
        Err(FieldError::with_code(field, OUT_OF_RANGE, range_message()))
    }
}

/// A half-open period `[start, end)` in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Period {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Period {
    /// A period: `start` and `end` in the allowed range (else Validation on
    /// that field), `end` after `start` and at most [`MAX_PERIOD_DAYS`]
    /// later (else Validation on field `end`).
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Period, DomainError> {
        let mut errors = Vec::new();
        errors.extend(check_in_range("start", start).err());
        errors.extend(check_in_range("end", end).err());
        DomainError::check(errors)?;
        if end <= start {
            return Err(DomainError::invalid("end", "end must be after start"));
        }
        if end - start > max_length() {
            return Err(DomainError::invalid(
                "end",
                format!("a period lasts at most {MAX_PERIOD_DAYS} days"),
            ));
        }
        Ok(Period { start, end })
    }

    /// What [`Period::new`] checks: in range, `end > start`, and no longer
    /// than [`MAX_PERIOD_DAYS`].
    pub fn is_valid(&self) -> bool {
        is_in_range(self.start)
            && is_in_range(self.end)
            && self.end > self.start
            && self.end - self.start <= max_length()
    }

    /// Whether a booking of this period, made at `now`, starts in the past.
    pub fn starts_before(&self, now: DateTime<Utc>) -> bool {
        self.start < now
    }

    /// Whether the two half-open periods share at least one instant.
    pub fn overlaps(&self, other: &Period) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// `start <= t < end`.
    pub fn contains_instant(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    pub fn duration(&self) -> chrono::Duration {
        self.end - self.start
    }
}

/// The unit a rental is priced in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PricingUnit {
    Day,
    Hour,
}

impl PricingUnit {
    pub fn seconds(self) -> i64 {
        match self {
            PricingUnit::Day => 86_400,
            PricingUnit::Hour => 3_600,
        }
    }
}

/// The period's length in pricing units, rounded up (25 h → 25 hours or 2
/// days; 24 h → 1 day). An empty or inverted period bills 0. Saturates at
/// `u32::MAX`.
pub fn billable_units(period: &Period, unit: PricingUnit) -> u32 {
    let d = period.end - period.start;
    let secs = d.num_seconds();
    let has_fraction = d.subsec_nanos() > 0;
    if secs < 0 || (secs == 0 && !has_fraction) {
        return 0;
    }
    let per = unit.seconds();
    let mut units = secs / per;
    if secs % per != 0 || has_fraction {
        units += 1;
    }
    u32::try_from(units).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn period_end_must_be_after_start() {
        assert!(Period::new(t0(), t0() + Duration::hours(1)).is_ok());
        let err = Period::new(t0(), t0()).unwrap_err();
        assert_eq!(err, DomainError::invalid("end", "end must be after start"));
    }

    #[test]
    fn periods_are_half_open() {
        let a = Period::new(t0(), t0() + Duration::hours(2)).unwrap();
        let b = Period::new(t0() + Duration::hours(2), t0() + Duration::hours(3)).unwrap();
        let c = Period::new(t0() + Duration::hours(1), t0() + Duration::hours(3)).unwrap();
        assert!(!a.overlaps(&b));
        assert!(a.overlaps(&c) && c.overlaps(&a) && b.overlaps(&c));
        assert!(a.contains_instant(t0()));
        assert!(!a.contains_instant(t0() + Duration::hours(2)));
    }

    #[test]
    fn billable_units_round_up() {
        let p25 = Period::new(t0(), t0() + Duration::hours(25)).unwrap();
        assert_eq!(billable_units(&p25, PricingUnit::Hour), 25);
        assert_eq!(billable_units(&p25, PricingUnit::Day), 2);
        let p24 = Period::new(t0(), t0() + Duration::hours(24)).unwrap();
        assert_eq!(billable_units(&p24, PricingUnit::Day), 1);
        let p1m = Period::new(t0(), t0() + Duration::minutes(1)).unwrap();
        assert_eq!(billable_units(&p1m, PricingUnit::Hour), 1);
        assert_eq!(billable_units(&p1m, PricingUnit::Day), 1);
    }

    #[test]
    fn pricing_unit_serializes_snake_case() {
        assert_eq!(serde_json::to_string(&PricingUnit::Day).unwrap(), "\"day\"");
        assert_eq!(
            serde_json::to_string(&PricingUnit::Hour).unwrap(),
            "\"hour\""
        );
    }
}

#[cfg(test)]
mod bounds {
    use super::*;

    #[test]
    fn a_period_longer_than_the_maximum_is_refused() {
        let start = earliest();
        let longest = start + chrono::Duration::days(MAX_PERIOD_DAYS);
        assert!(Period::new(start, longest).is_ok());
        let too_long = longest + chrono::Duration::seconds(1);
        assert!(Period::new(start, too_long).is_err());
        assert!(!Period {
            start,
            end: too_long
        }
        .is_valid());
    }
}

#[cfg(test)]
mod range {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_period_may_touch_both_ends_of_the_range() {
        let first_day = earliest() + chrono::Duration::days(1);
        assert!(Period::new(earliest(), first_day).is_ok());
        let last_day = latest() - chrono::Duration::days(1);
        assert!(Period::new(last_day, latest()).is_ok());
        assert_eq!(
            earliest(),
            Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(latest(), Utc.with_ymd_and_hms(2200, 1, 1, 0, 0, 0).unwrap());
    }

    #[test]
    fn a_period_ending_in_year_9999_is_refused_naming_the_range() {
        let start = Utc.with_ymd_and_hms(9999, 1, 1, 0, 0, 0).unwrap();
        let end = Utc.with_ymd_and_hms(9999, 12, 31, 0, 0, 0).unwrap();
        let DomainError::Validation { errors } = Period::new(start, end).unwrap_err() else {
            panic!("a validation error");
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["start", "end"]);
        assert!(errors
            .iter()
            .all(|e| e.code.as_deref() == Some(OUT_OF_RANGE)));
        assert_eq!(
            errors[0].message,
            "must lie between 2000-01-01T00:00:00Z and 2200-01-01T00:00:00Z"
        );
        assert!(!Period { start, end }.is_valid());
    }

    #[test]
    fn an_instant_a_nanosecond_past_either_end_is_out_of_range() {
        let nano = chrono::Duration::nanoseconds(1);
        assert!(is_in_range(earliest()) && is_in_range(latest()));
        assert!(!is_in_range(earliest() - nano));
        assert!(!is_in_range(latest() + nano));
        let year_one = Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap();
        assert!(check_in_range("from", year_one).is_err());
    }

    #[test]
    fn the_longest_period_bills_at_most_the_maximum_units() {
        let longest = Period::new(
            earliest(),
            earliest() + chrono::Duration::days(MAX_PERIOD_DAYS),
        )
        .unwrap();
        assert_eq!(
            billable_units(&longest, PricingUnit::Hour),
            MAX_BILLABLE_UNITS
        );
        assert!(billable_units(&longest, PricingUnit::Day) <= MAX_BILLABLE_UNITS);
    }
}
