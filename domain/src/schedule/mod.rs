//! A rental listing's schedule (API.md "Rentals"): opening hours in an IANA
//! time zone, date exceptions, and the rules a booking's period must meet
//! (duration bounds, a slot grid, turnover buffer, notice and horizon).
//!
//! Pure values and the questions asked of them. The Inventory aggregate
//! records the schedule (`ScheduleSet`) and asks [`Schedule::check`] when it
//! places a hold, so racing orders are judged by the schedule in force when
//! each is held; a change applies to new holds only.
//!
//! Local times that do not exist (a spring-forward gap) are moved to the
//! first instant after the gap; ambiguous ones (fall-back) take the earlier.

mod values;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::period::{Period, PricingUnit, IN_PAST};
pub use values::{IsoDuration, LocalTime, Weekday};

/// Rule names (`errors[].code`) of API.md "Rentals".
pub const MIN_NOTICE: &str = "min_notice";
pub const MAX_ADVANCE: &str = "max_advance";
pub const OFF_GRID: &str = "off_grid";
pub const TOO_SHORT: &str = "too_short";
pub const TOO_LONG: &str = "too_long";
pub const CLOSED: &str = "closed";

/// Most weekly rules and date exceptions one schedule may have.
pub const MAX_WEEKLY_RULES: usize = 7 * 24;
pub const MAX_EXCEPTIONS: usize = 1000;

/// Open hours on one day, `[start, end)` local.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hours {
    pub start: LocalTime,
    pub end: LocalTime,
}

/// Open hours on every such weekday; several rules per day are allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeeklyHours {
    pub weekday: Weekday,
    pub start: LocalTime,
    pub end: LocalTime,
}

/// A local date closed all day, or open with its own hours instead of the
/// weekly ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateException {
    pub date: NaiveDate,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub closed: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hours: Vec<Hours>,
}

/// The schedule of a rental listing. `weekly` absent = open all day every
/// day (exceptions still apply); present = open only in those hours.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub time_zone: Tz,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly: Option<Vec<WeeklyHours>>,
    #[serde(default)]
    pub exceptions: Vec<DateException>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_duration: Option<IsoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<IsoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot_step: Option<IsoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffer: Option<IsoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_notice: Option<IsoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_advance: Option<IsoDuration>,
}

impl Schedule {
    /// A schedule open all the time, with no rules, in `time_zone`.
    pub fn always_open(time_zone: Tz) -> Schedule {
        Schedule {
            time_zone,
            weekly: None,
            exceptions: Vec::new(),
            min_duration: None,
            max_duration: None,
            slot_step: None,
            buffer: None,
            min_notice: None,
            max_advance: None,
        }
    }

    /// Every problem of the schedule itself, fields as in the HTTP body.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let weekly = self.weekly.as_deref().unwrap_or_default();
        if weekly.len() > MAX_WEEKLY_RULES {
            errors.push(FieldError::new(
                "weekly",
                format!("at most {MAX_WEEKLY_RULES} rules"),
            ));
        }
        for (i, rule) in weekly.iter().enumerate() {
            if rule.end <= rule.start {
                errors.push(FieldError::new(
                    format!("weekly[{i}].end"),
                    "must be after start (split hours past midnight into two rules)",
                ));
            }
        }
        if self.exceptions.len() > MAX_EXCEPTIONS {
            errors.push(FieldError::new(
                "exceptions",
                format!("at most {MAX_EXCEPTIONS} exceptions"),
            ));
        }
        let mut dates = std::collections::BTreeSet::new();
        for (i, exception) in self.exceptions.iter().enumerate() {
            if !dates.insert(exception.date) {
                errors.push(FieldError::new(
                    format!("exceptions[{i}].date"),
                    "a date may have one exception only",
                ));
            }
            if exception.closed != exception.hours.is_empty() {
                errors.push(FieldError::new(
                    format!("exceptions[{i}]"),
                    "takes either `closed: true` or non-empty `hours`",
                ));
            }
            for (j, h) in exception.hours.iter().enumerate() {
                if h.end <= h.start {
                    errors.push(FieldError::new(
                        format!("exceptions[{i}].hours[{j}].end"),
                        "must be after start",
                    ));
                }
            }
        }
        for (field, value) in [
            ("min_duration", self.min_duration),
            ("max_duration", self.max_duration),
            ("slot_step", self.slot_step),
            ("max_advance", self.max_advance),
        ] {
            if value.is_some_and(|d| d.seconds() <= 0) {
                errors.push(FieldError::new(field, "must be longer than zero"));
            }
        }
        if let (Some(min), Some(max)) = (self.min_duration, self.max_duration) {
            if min > max {
                errors.push(FieldError::new(
                    "max_duration",
                    "must be at least min_duration",
                ));
            }
        }
        if let Some(step) = self.slot_step {
            let s = step.seconds();
            if !(60..=86_400).contains(&s) || 86_400 % s != 0 || s % 60 != 0 {
                errors.push(FieldError::new(
                    "slot_step",
                    "must be whole minutes from PT1M to P1D that divide a day (PT15M, PT1H, P1D)",
                ));
            }
        }
        errors
    }

    /// The turnover time a hold placed now keeps free after its end.
    pub fn buffer(&self) -> Option<IsoDuration> {
        self.buffer.filter(|b| b.seconds() > 0)
    }

    /// The open hours of one local date.
    fn hours_on(&self, date: NaiveDate) -> Vec<(u16, u16)> {
        if let Some(e) = self.exceptions.iter().find(|e| e.date == date) {
            return e
                .hours
                .iter()
                .map(|h| (h.start.minutes(), h.end.minutes()))
                .collect();
        }
        match &self.weekly {
            None => vec![(0, 24 * 60)],
            Some(rules) => {
                let day = Weekday::from(date.weekday());
                rules
                    .iter()
                    .filter(|r| r.weekday == day)
                    .map(|r| (r.start.minutes(), r.end.minutes()))
                    .collect()
            }
        }
    }

    /// The instants the listing is open, merged into maximal `[start, end)`
    /// intervals, for every local date touched by `[from, to)` (and one on
    /// each side, so that intervals across midnight merge).
    pub fn open_intervals(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Period> {
        let tz = self.time_zone;
        let first = from.with_timezone(&tz).date_naive().pred_opt();
        let last = to.with_timezone(&tz).date_naive().succ_opt();
        let (Some(mut date), Some(last)) = (first, last) else {
            return Vec::new();
        };
        let mut open: Vec<Period> = Vec::new();
        while date <= last {
            let mut day: Vec<Period> = self
                .hours_on(date)
                .into_iter()
                .filter_map(|(s, e)| {
                    let start = instant_at(tz, date, s)?;
                    let end = instant_at(tz, date, e)?;
                    (end > start).then_some(Period { start, end })
                })
                .collect();
            day.sort_by_key(|p| p.start);
            for p in day {
                match open.last_mut() {
                    Some(last) if p.start <= last.end => last.end = last.end.max(p.end),
                    _ => open.push(p),
                }
            }
            match date.succ_opt() {
                Some(next) => date = next,
                None => break,
            }
        }
        open
    }

    /// Whether the listing is open at instant `t` (`closing_edge`: an
    /// instant equal to a closing time counts as open, for a return).
    fn is_open_at(&self, t: DateTime<Utc>, closing_edge: bool) -> bool {
        self.open_intervals(t, t).iter().any(|p| {
            if closing_edge {
                p.start < t && t <= p.end
            } else {
                p.contains_instant(t)
            }
        })
    }

    /// Every rule a booking of `period` made at `now` breaks, on fields
    /// `start` and `end`. An hourly booking must lie wholly within opening
    /// hours; a day booking must start and end while the listing is open
    /// (pick-up and return), the days between may be closed.
    pub fn check(
        &self,
        period: &Period,
        now: DateTime<Utc>,
        pricing_unit: PricingUnit,
    ) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let length = period.duration();
        if period.start < now {
            errors.push(FieldError::with_code(
                "start",
                IN_PAST,
                "the period starts in the past",
            ));
        } else if let Some(notice) = self.min_notice {
            if period.start < now + notice.delta() {
                errors.push(FieldError::with_code(
                    "start",
                    MIN_NOTICE,
                    format!("bookings must be made at least {notice} ahead"),
                ));
            }
        }
        if let Some(horizon) = self.max_advance {
            if period.end > now + horizon.delta() {
                errors.push(FieldError::with_code(
                    "end",
                    MAX_ADVANCE,
                    format!("bookings may end at most {horizon} from now"),
                ));
            }
        }
        if let Some(min) = self.min_duration {
            if length < min.delta() {
                errors.push(FieldError::with_code(
                    "end",
                    TOO_SHORT,
                    format!("a booking lasts at least {min}"),
                ));
            }
        }
        if let Some(max) = self.max_duration {
            if length > max.delta() {
                errors.push(FieldError::with_code(
                    "end",
                    TOO_LONG,
                    format!("a booking lasts at most {max}"),
                ));
            }
        }
        if let Some(step) = self.slot_step {
            for (field, t) in [("start", period.start), ("end", period.end)] {
                if !self.on_grid(t, step) {
                    errors.push(FieldError::with_code(
                        field,
                        OFF_GRID,
                        format!("must fall on the {step} grid from local midnight"),
                    ));
                }
            }
        }
        errors.extend(self.closed_problems(period, pricing_unit));
        errors
    }

    fn on_grid(&self, t: DateTime<Utc>, step: IsoDuration) -> bool {
        let local = t.with_timezone(&self.time_zone);
        local.nanosecond() == 0
            && i64::from(local.num_seconds_from_midnight()) % step.seconds() == 0
    }

    fn closed_problems(&self, period: &Period, unit: PricingUnit) -> Vec<FieldError> {
        let closed = |field: &str| {
            FieldError::with_code(field, CLOSED, "the listing is closed at that time")
        };
        match unit {
            PricingUnit::Hour => {
                let open = self.open_intervals(period.start, period.start);
                match open.iter().find(|p| p.contains_instant(period.start)) {
                    None => vec![closed("start")],
                    Some(_) => {
                        let spans = self.open_intervals(period.start, period.end);
                        let covered = spans
                            .iter()
                            .any(|p| p.start <= period.start && period.end <= p.end);
                        if covered {
                            vec![]
                        } else {
                            vec![closed("end")]
                        }
                    }
                }
            }
            PricingUnit::Day => {
                let mut errors = Vec::new();
                if !self.is_open_at(period.start, false) {
                    errors.push(closed("start"));
                }
                if !self.is_open_at(period.end, true) {
                    errors.push(closed("end"));
                }
                errors
            }
        }
    }
}

/// The instant of local `date` + `minutes` (up to 24:00) in `tz`.
fn instant_at(tz: Tz, date: NaiveDate, minutes: u16) -> Option<DateTime<Utc>> {
    let naive = date.and_hms_opt(0, 0, 0)? + Duration::minutes(i64::from(minutes));
    resolve(tz, naive)
}

/// A local wall-clock time as an instant: the earlier of an ambiguous pair,
/// the first instant after a gap for one that does not exist.
pub fn resolve(tz: Tz, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
    if let Some(t) = tz.from_local_datetime(&naive).earliest() {
        return Some(t.with_timezone(&Utc));
    }
    // In a gap (at most a few hours long): the first local minute after it.
    (1..=24 * 60).find_map(|m| {
        tz.from_local_datetime(&(naive + Duration::minutes(m)))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    })
}

/// The calendar days `period` spans in `tz`, rounded up: the fewest `n`
/// such that the same wall-clock time `n` local days after the start is at
/// or after the end. A local day of 23 or 25 hours counts as one day.
pub fn calendar_days(period: &Period, tz: Tz) -> u32 {
    if period.end <= period.start {
        return 0;
    }
    let start = period.start.with_timezone(&tz).naive_local();
    let end_date = period.end.with_timezone(&tz).date_naive();
    let after = |n: i64| resolve(tz, start + Duration::days(n));
    let mut n = (end_date - start.date()).num_days().max(1);
    while n > 1 && after(n - 1).is_some_and(|t| t >= period.end) {
        n -= 1;
    }
    while after(n).is_some_and(|t| t < period.end) {
        n += 1;
    }
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Billable units of `period` for a listing in `tz`: calendar days for day
/// listings, hours (rounded up) for hour listings.
pub fn billable_units_in(period: &Period, unit: PricingUnit, tz: Tz) -> u32 {
    match unit {
        PricingUnit::Day => calendar_days(period, tz),
        PricingUnit::Hour => crate::period::billable_units(period, unit),
    }
}

/// The instant written in `tz` with its offset, as lines show it.
pub fn local(t: DateTime<Utc>, tz: Tz) -> DateTime<chrono::FixedOffset> {
    t.with_timezone(&tz).fixed_offset()
}
