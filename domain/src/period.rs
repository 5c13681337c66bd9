//! Rental periods (half-open `[start, end)`) and billable units.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// The longest period a rental or blackout may span (about ten years):
/// bounds billable units, and with them every price.
pub const MAX_PERIOD_DAYS: i64 = 3660;

fn max_length() -> chrono::Duration {
    chrono::Duration::days(MAX_PERIOD_DAYS)
}

/// A half-open period `[start, end)` in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Period {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Period {
    /// A period; `end` must be after `start` (else Validation on field `end`).
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Period, DomainError> {
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

    /// `end > start`, and no longer than [`MAX_PERIOD_DAYS`].
    pub fn is_valid(&self) -> bool {
        self.end > self.start && self.end - self.start <= max_length()
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
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
        let start = DateTime::from_timestamp(0, 0).expect("valid");
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
