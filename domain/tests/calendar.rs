//! The calendar a schedule and day pricing run on (API.md "Rentals"): ISO
//! 8601 durations, local times, calendar days and opening hours across DST
//! changes in Europe/Berlin and America/New_York.

use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::schedule::*;
use domain::*;

fn iso(text: &str) -> IsoDuration {
    IsoDuration::parse(text).unwrap()
}
fn time(text: &str) -> LocalTime {
    LocalTime::parse(text).unwrap()
}

// ---- Durations and the calendar

#[test]
fn iso_durations_parse_and_print_canonically() {
    assert_eq!(iso("PT1H").seconds(), 3600);
    assert_eq!(iso("P1W").seconds(), 7 * 86_400);
    assert_eq!(iso("P1DT2H30M").to_string(), "P1DT2H30M");
    assert_eq!(iso("PT90M").to_string(), "PT1H30M");
    assert_eq!(iso("PT0S").to_string(), "PT0S");
    for bad in [
        "", "P", "PT", "1H", "P1M", "P1Y", "PT1.5H", "P1H", "PT1D", "P99999D",
    ] {
        assert!(IsoDuration::parse(bad).is_err(), "{bad}");
    }
    assert!(LocalTime::parse("24:00").is_ok());
    for bad in ["24:01", "9:00", "12:60", "noon"] {
        assert!(LocalTime::parse(bad).is_err(), "{bad}");
    }
}

fn berlin() -> Tz {
    "Europe/Berlin".parse().unwrap()
}
fn new_york() -> Tz {
    "America/New_York".parse().unwrap()
}
fn at(tz: Tz, y: i32, mo: u32, d: u32, h: u32) -> DateTime<Utc> {
    tz.with_ymd_and_hms(y, mo, d, h, 0, 0)
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn a_local_day_of_23_hours_is_one_day_in_berlin() {
    // Clocks go forward on Sunday 2030-03-31: Saturday 10:00 to Sunday
    // 10:00 is 23 hours, one calendar day.
    let p = Period::new(at(berlin(), 2030, 3, 30, 10), at(berlin(), 2030, 3, 31, 10)).unwrap();
    assert_eq!(p.duration(), Duration::hours(23));
    assert_eq!(billable_units_in(&p, PricingUnit::Day, berlin()), 1);
    assert_eq!(billable_units_in(&p, PricingUnit::Hour, berlin()), 23);
    // One hour more is a second day.
    let longer = Period::new(p.start, p.end + Duration::hours(1)).unwrap();
    assert_eq!(billable_units_in(&longer, PricingUnit::Day, berlin()), 2);
}

#[test]
fn a_local_day_of_25_hours_is_one_day_in_berlin_and_new_york() {
    // Berlin falls back on 2030-10-27, New York on 2030-11-03.
    for (tz, d) in [(berlin(), 27), (new_york(), 3)] {
        let mo = if d == 27 { 10 } else { 11 };
        let p = Period::new(at(tz, 2030, mo, d - 1, 10), at(tz, 2030, mo, d, 10)).unwrap();
        assert_eq!(p.duration(), Duration::hours(25), "{tz}");
        assert_eq!(billable_units_in(&p, PricingUnit::Day, tz), 1, "{tz}");
        // In UTC the same 25 hours are two days.
        assert_eq!(billable_units_in(&p, PricingUnit::Day, Tz::UTC), 2, "{tz}");
    }
}

#[test]
fn a_week_across_the_spring_change_in_new_york_is_seven_days() {
    let p = Period::new(
        at(new_york(), 2030, 3, 7, 9),
        at(new_york(), 2030, 3, 14, 9),
    )
    .unwrap();
    assert_eq!(p.duration(), Duration::hours(7 * 24 - 1));
    assert_eq!(calendar_days(&p, new_york()), 7);
}

#[test]
fn opening_hours_follow_the_clock_across_a_dst_change() {
    // Open 09:00–18:00 every day in Berlin: after the change 09:00 local is
    // 07:00 UTC, before it 08:00 UTC.
    let s = Schedule {
        weekly: Some(
            [
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
                Weekday::Sat,
                Weekday::Sun,
            ]
            .into_iter()
            .map(|weekday| WeeklyHours {
                weekday,
                start: time("09:00"),
                end: time("18:00"),
            })
            .collect(),
        ),
        ..Schedule::always_open(berlin())
    };
    let now = at(berlin(), 2030, 3, 1, 0);
    let sat = Period::new(at(berlin(), 2030, 3, 30, 9), at(berlin(), 2030, 3, 30, 18)).unwrap();
    let sun = Period::new(at(berlin(), 2030, 3, 31, 9), at(berlin(), 2030, 3, 31, 18)).unwrap();
    assert_eq!(sat.start.format("%H").to_string(), "08");
    assert_eq!(sun.start.format("%H").to_string(), "07");
    assert!(s.check(&sat, now, PricingUnit::Hour).is_empty());
    assert!(s.check(&sun, now, PricingUnit::Hour).is_empty());
    let early = Period::new(sun.start - Duration::hours(1), sun.end).unwrap();
    assert_eq!(
        s.check(&early, now, PricingUnit::Hour)[0].code.as_deref(),
        Some("closed")
    );
}
