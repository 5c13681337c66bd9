//! Given/when/then tests of a rental listing's schedule as the Inventory
//! aggregate decides it (API.md "Rentals"), and of the calendar it prices by.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use domain::schedule::*;
use domain::*;
use uuid::Uuid;

type F = TestFramework<Inventory>;
use InventoryCommand as C;
use InventoryEvent as E;

/// 2030-01-07 is a Monday; `h` hours after its midnight, UTC.
fn t(h: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 7, 0, 0, 0).unwrap() + Duration::hours(h)
}
fn m(minutes: i64) -> DateTime<Utc> {
    t(0) + Duration::minutes(minutes)
}
fn lid() -> Uuid {
    Uuid::from_u128(10)
}
fn hid(n: u128) -> Uuid {
    Uuid::from_u128(1000 + n)
}
fn rental(units: u32) -> E {
    E::InventoryInitialized {
        listing_id: lid(),
        capacity: Capacity::Rental { units },
    }
}
fn iso(text: &str) -> IsoDuration {
    IsoDuration::parse(text).unwrap()
}
fn time(text: &str) -> LocalTime {
    LocalTime::parse(text).unwrap()
}
/// Open 09:00–18:00 on weekdays, in UTC.
fn shop() -> Schedule {
    let weekly = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
    ]
    .into_iter()
    .map(|weekday| WeeklyHours {
        weekday,
        start: time("09:00"),
        end: time("18:00"),
    })
    .collect();
    Schedule {
        weekly: Some(weekly),
        ..Schedule::always_open(Tz::UTC)
    }
}
fn scheduled(schedule: Schedule, unit: PricingUnit) -> E {
    E::ScheduleSet {
        schedule,
        pricing_unit: unit,
    }
}
fn place(n: u128, start: DateTime<Utc>, end: DateTime<Utc>, now: DateTime<Utc>) -> C {
    C::PlaceHold {
        hold_id: hid(n),
        order_id: hid(n),
        request: HoldRequest::Rental {
            period: Period::new(start, end).unwrap(),
            quantity: 1,
        },
        expires_at: now + Duration::minutes(15),
        now,
    }
}
/// `(field, code)` of each problem of a rejected command.
fn problems(given: Vec<E>, command: C) -> Vec<(String, String)> {
    match F::with(()).given(given).when(command).inspect_result() {
        Err(DomainError::Validation { errors }) => errors
            .into_iter()
            .map(|e| (e.field, e.code.unwrap_or_default()))
            .collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}
fn one(field: &str, code: &str) -> Vec<(String, String)> {
    vec![(field.to_owned(), code.to_owned())]
}
fn accepted(given: Vec<E>, command: C) -> Vec<E> {
    F::with(())
        .given(given)
        .when(command)
        .inspect_result()
        .expect("accepted")
}

// ---- SetSchedule

#[test]
fn a_schedule_is_recorded_and_a_repeat_records_nothing() {
    F::with(())
        .given(vec![rental(1)])
        .when(C::SetSchedule {
            schedule: shop(),
            pricing_unit: PricingUnit::Hour,
        })
        .then_expect_events(vec![scheduled(shop(), PricingUnit::Hour)]);
    F::with(())
        .given(vec![rental(1), scheduled(shop(), PricingUnit::Hour)])
        .when(C::SetSchedule {
            schedule: shop(),
            pricing_unit: PricingUnit::Hour,
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_sale_listing_takes_no_schedule() {
    let r = F::with(())
        .given(vec![E::InventoryInitialized {
            listing_id: lid(),
            capacity: Capacity::Sale { stock: 3 },
        }])
        .when(C::SetSchedule {
            schedule: shop(),
            pricing_unit: PricingUnit::Day,
        })
        .inspect_result();
    assert!(matches!(r, Err(DomainError::InvalidState(_))));
}

#[test]
fn a_bad_schedule_names_each_field() {
    let mut bad = shop();
    bad.weekly.as_mut().unwrap()[1].end = time("08:00");
    bad.exceptions = vec![
        DateException {
            date: t(0).date_naive(),
            closed: true,
            hours: vec![],
        },
        DateException {
            date: t(0).date_naive(),
            closed: false,
            hours: vec![],
        },
    ];
    bad.min_duration = Some(iso("PT2H"));
    bad.max_duration = Some(iso("PT1H"));
    bad.slot_step = Some(iso("PT7M"));
    let fields: Vec<String> = match F::with(())
        .given(vec![rental(1)])
        .when(C::SetSchedule {
            schedule: bad,
            pricing_unit: PricingUnit::Hour,
        })
        .inspect_result()
    {
        Err(DomainError::Validation { errors }) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        fields,
        [
            "weekly[1].end",
            "exceptions[1].date",
            "exceptions[1]",
            "max_duration",
            "slot_step"
        ]
    );
}

// ---- The rules, one by one

#[test]
fn without_a_schedule_any_future_period_is_open() {
    let events = accepted(
        vec![rental(1)],
        place(1, m(3 * 60 + 17), m(3 * 60 + 24), t(0)),
    );
    assert_eq!(events.len(), 1);
}

#[test]
fn a_period_in_the_past_is_in_past() {
    let given = vec![rental(1), scheduled(shop(), PricingUnit::Hour)];
    assert_eq!(
        problems(given, place(1, t(10), t(11), t(10) + Duration::seconds(1))),
        one("start", "in_past")
    );
}

#[test]
fn within_the_minimum_notice_is_min_notice() {
    let s = Schedule {
        min_notice: Some(iso("PT2H")),
        ..shop()
    };
    let given = vec![rental(1), scheduled(s, PricingUnit::Hour)];
    assert_eq!(
        problems(given.clone(), place(1, t(10), t(11), t(9))),
        one("start", "min_notice")
    );
    accepted(given, place(1, t(11), t(12), t(9)));
}

#[test]
fn beyond_the_horizon_is_max_advance() {
    let s = Schedule {
        max_advance: Some(iso("P30D")),
        ..Schedule::always_open(Tz::UTC)
    };
    let given = vec![rental(1), scheduled(s, PricingUnit::Day)];
    assert_eq!(
        problems(given.clone(), place(1, t(24 * 29), t(24 * 31), t(0))),
        one("end", "max_advance")
    );
    accepted(given, place(1, t(24 * 29), t(24 * 30), t(0)));
}

#[test]
fn off_the_slot_grid_is_off_grid_on_each_end() {
    let s = Schedule {
        slot_step: Some(iso("PT1H")),
        ..shop()
    };
    let given = vec![rental(1), scheduled(s, PricingUnit::Hour)];
    assert_eq!(
        problems(
            given.clone(),
            place(1, m(10 * 60 + 17), m(10 * 60 + 24), t(0))
        ),
        vec![
            ("start".to_owned(), "off_grid".to_owned()),
            ("end".to_owned(), "off_grid".to_owned())
        ]
    );
    accepted(given, place(1, t(10), t(12), t(0)));
}

#[test]
fn shorter_or_longer_than_allowed_is_too_short_or_too_long() {
    let s = Schedule {
        min_duration: Some(iso("PT1H")),
        max_duration: Some(iso("PT4H")),
        ..shop()
    };
    let given = vec![rental(1), scheduled(s, PricingUnit::Hour)];
    assert_eq!(
        problems(given.clone(), place(1, m(10 * 60), m(10 * 60 + 7), t(0))),
        one("end", "too_short")
    );
    assert_eq!(
        problems(given.clone(), place(1, t(9), t(14), t(0))),
        one("end", "too_long")
    );
    accepted(given, place(1, t(9), t(13), t(0)));
}

#[test]
fn outside_opening_hours_is_closed() {
    let given = vec![rental(1), scheduled(shop(), PricingUnit::Hour)];
    // Sunday 2030-01-13 03:00.
    assert_eq!(
        problems(given.clone(), place(1, t(6 * 24 + 3), t(6 * 24 + 4), t(0))),
        one("start", "closed")
    );
    // Monday 17:00 to 19:00 runs past closing.
    assert_eq!(
        problems(given.clone(), place(1, t(17), t(19), t(0))),
        one("end", "closed")
    );
    accepted(given, place(1, t(17), t(18), t(0)));
}

#[test]
fn a_day_rental_starts_and_ends_in_opening_hours_and_may_span_closed_days() {
    let given = vec![rental(1), scheduled(shop(), PricingUnit::Day)];
    // Friday 10:00 to Monday 10:00: the weekend between is closed.
    accepted(
        given.clone(),
        place(1, t(4 * 24 + 10), t(7 * 24 + 10), t(0)),
    );
    // Saturday pick-up is refused; a return at closing time is fine.
    assert_eq!(
        problems(
            given.clone(),
            place(1, t(5 * 24 + 10), t(7 * 24 + 10), t(0))
        ),
        one("start", "closed")
    );
    accepted(given, place(2, t(10), t(24 + 18), t(0)));
}

#[test]
fn a_closed_date_and_a_date_with_its_own_hours_override_the_week() {
    let mut s = shop();
    s.exceptions = vec![
        // Tuesday closed.
        DateException {
            date: t(24).date_naive(),
            closed: true,
            hours: vec![],
        },
        // Saturday open 10:00–12:00.
        DateException {
            date: t(5 * 24).date_naive(),
            closed: false,
            hours: vec![Hours {
                start: time("10:00"),
                end: time("12:00"),
            }],
        },
    ];
    let given = vec![rental(1), scheduled(s, PricingUnit::Hour)];
    assert_eq!(
        problems(given.clone(), place(1, t(24 + 10), t(24 + 11), t(0))),
        one("start", "closed")
    );
    accepted(given, place(1, t(5 * 24 + 10), t(5 * 24 + 12), t(0)));
}

#[test]
fn opening_hours_are_local_to_the_time_zone() {
    // 09:00–18:00 in New York is 14:00–23:00 UTC in January.
    let s = Schedule {
        time_zone: "America/New_York".parse().unwrap(),
        ..shop()
    };
    let given = vec![rental(1), scheduled(s, PricingUnit::Hour)];
    assert_eq!(
        problems(given.clone(), place(1, t(10), t(11), t(0))),
        one("start", "closed")
    );
    accepted(given, place(1, t(14), t(23), t(0)));
}

#[test]
fn every_broken_rule_is_reported_at_once() {
    let s = Schedule {
        slot_step: Some(iso("PT1H")),
        min_duration: Some(iso("PT1H")),
        ..shop()
    };
    let given = vec![rental(1), scheduled(s, PricingUnit::Hour)];
    let codes: Vec<String> = problems(
        given,
        place(1, m(7 * 24 * 60 - 57), m(7 * 24 * 60 - 50), t(0)),
    )
    .into_iter()
    .map(|(_, code)| code)
    .collect();
    assert_eq!(codes, ["too_short", "off_grid", "off_grid", "closed"]);
}

// ---- Buffers

#[test]
fn a_buffer_keeps_the_unit_free_after_each_booking() {
    let s = Schedule {
        buffer: Some(iso("PT1H")),
        ..Schedule::always_open(Tz::UTC)
    };
    let first = accepted(
        vec![rental(1), scheduled(s.clone(), PricingUnit::Hour)],
        place(1, t(10), t(12), t(0)),
    );
    let mut given = vec![rental(1), scheduled(s, PricingUnit::Hour)];
    given.extend(first);
    let r = F::with(())
        .given(given.clone())
        .when(place(2, t(12), t(13), t(0)))
        .inspect_result();
    assert!(matches!(r, Err(DomainError::Unavailable { .. })), "{r:?}");
    accepted(given, place(2, t(13), t(14), t(0)));
}

#[test]
fn a_schedule_change_applies_to_new_holds_only() {
    // Held with a 2 h buffer, which the new schedule drops.
    let with_buffer = Schedule {
        buffer: Some(iso("PT2H")),
        ..Schedule::always_open(Tz::UTC)
    };
    let mut given = vec![rental(1), scheduled(with_buffer, PricingUnit::Hour)];
    given.extend(accepted(given.clone(), place(1, t(10), t(12), t(0))));
    given.push(scheduled(shop(), PricingUnit::Hour));
    // The old hold keeps its buffer: 12:00–14:00 stays taken.
    let r = F::with(())
        .given(given.clone())
        .when(place(2, t(13), t(14), t(0)))
        .inspect_result();
    assert!(matches!(r, Err(DomainError::Unavailable { .. })), "{r:?}");
    // And the new hours apply to the next hold.
    assert_eq!(
        problems(given, place(3, t(19), t(20), t(0))),
        one("start", "closed")
    );
}

// ---- Overdue

fn booked(start: i64, end: i64) -> Vec<E> {
    vec![
        rental(1),
        E::HoldPlaced {
            hold_id: hid(1),
            order_id: hid(1),
            request: HoldRequest::Rental {
                period: Period::new(t(start), t(end)).unwrap(),
                quantity: 1,
            },
            expires_at: t(0) + Duration::minutes(15),
            buffer: None,
        },
        E::HoldConfirmed { hold_id: hid(1) },
    ]
}

#[test]
fn an_overdue_rental_keeps_its_unit_until_returned() {
    F::with(())
        .given(booked(1, 5))
        .when(C::MarkOverdue {
            hold_id: hid(1),
            now: t(6),
        })
        .then_expect_events(vec![E::HoldOverdue { hold_id: hid(1) }]);
    let mut given = booked(1, 5);
    given.push(E::HoldOverdue { hold_id: hid(1) });
    let r = F::with(())
        .given(given.clone())
        .when(place(2, t(30), t(31), t(6)))
        .inspect_result();
    assert!(matches!(r, Err(DomainError::Unavailable { .. })), "{r:?}");
    given.push(E::ReturnRecorded {
        hold_id: hid(1),
        returned_at: t(7),
    });
    accepted(given, place(2, t(30), t(31), t(7)));
}

#[test]
fn a_rental_not_yet_ended_is_not_overdue() {
    let r = F::with(())
        .given(booked(1, 5))
        .when(C::MarkOverdue {
            hold_id: hid(1),
            now: t(4),
        })
        .inspect_result();
    assert!(matches!(r, Err(DomainError::InvalidState(_))));
}
