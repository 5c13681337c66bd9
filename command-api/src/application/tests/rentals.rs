//! The placement saga with schedules (API.md "Rentals"): the Inventory's
//! rules answered per item, and day lines priced by the listing's calendar.

use chrono::{TimeZone, Utc};
use domain::schedule::{LocalTime, Weekday, WeeklyHours};
use domain::{DomainError, HoldStatus, InventoryCommand, PricingUnit, Schedule, Tz};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::{admin, rental, Marketplace};
use crate::application::place_order::OrderItem;
use crate::bus::CommandError;
use ledger_clock::Clock;

impl Marketplace {
    async fn set_schedule(&self, listing_id: Uuid, schedule: Schedule) {
        let command = InventoryCommand::SetSchedule {
            schedule,
            pricing_unit: PricingUnit::Day,
        };
        self.app
            .inventory
            .execute(&listing_id.to_string(), command, &admin(), "SetSchedule")
            .await
            .expect("schedule set");
    }
}

/// Open 09:00–18:00 on Mondays only.
fn mondays() -> Schedule {
    Schedule {
        weekly: Some(vec![WeeklyHours {
            weekday: Weekday::Mon,
            start: LocalTime::parse("09:00").expect("time"),
            end: LocalTime::parse("18:00").expect("time"),
        }]),
        ..Schedule::always_open(Tz::UTC)
    }
}

#[tokio::test]
async fn a_line_the_schedule_refuses_is_422_on_its_item_and_nothing_stays_held() {
    let m = Marketplace::new().await;
    let open = m.rental_listing(1, true).await;
    let shop = m.rental_listing(1, true).await;
    m.set_schedule(shop, mondays()).await;
    // February 2030: the 4th is a Monday; the 2nd a Saturday.
    let monday_10 = Utc.with_ymd_and_hms(2030, 2, 4, 10, 0, 0).unwrap();
    let err = m
        .place(
            "carol",
            vec![
                rental(open, 2, 3),
                OrderItem {
                    listing_id: shop,
                    quantity: 1,
                    start: Some(Utc.with_ymd_and_hms(2030, 2, 2, 10, 0, 0).unwrap()),
                    end: Some(monday_10),
                    payment_plan: None,
                },
            ],
        )
        .await
        .err()
        .expect("refused");
    let CommandError::Rejected(DomainError::Validation { errors }) = err else {
        panic!("expected a validation error, got {err:?}");
    };
    let found: Vec<(&str, Option<&str>)> = errors
        .iter()
        .map(|e| (e.field.as_str(), e.code.as_deref()))
        .collect();
    assert_eq!(found, [("items[1].start", Some("closed"))]);
    // The line that was held first is released again.
    let inventory = m
        .app
        .inventory
        .load(&open.to_string(), &crate::Principal::system("test"))
        .await
        .expect("inventory");
    assert!(inventory.holds().all(|h| h.status == HoldStatus::Released));
    // Monday to Monday is within the hours.
    let week = OrderItem {
        listing_id: shop,
        quantity: 1,
        start: Some(monday_10),
        end: Some(monday_10 + chrono::Duration::days(7)),
        payment_plan: None,
    };
    let placed = m.place("carol", vec![week]).await.expect("placed");
    assert_eq!(placed.priced.lines[0].billable_units, Some(7));
}

#[tokio::test]
async fn a_day_line_bills_calendar_days_of_the_listings_zone_and_shows_local_times() {
    let m = Marketplace::new().await;
    let listing = m.rental_listing(1, true).await;
    let berlin: Tz = "Europe/Berlin".parse().expect("zone");
    m.set_schedule(listing, Schedule::always_open(berlin)).await;
    // Saturday 10:00 to Sunday 10:00 across the spring change: 23 hours.
    let start = berlin
        .with_ymd_and_hms(2030, 3, 30, 10, 0, 0)
        .unwrap()
        .with_timezone(&Utc);
    let end = berlin
        .with_ymd_and_hms(2030, 3, 31, 10, 0, 0)
        .unwrap()
        .with_timezone(&Utc);
    let item = OrderItem {
        listing_id: listing,
        quantity: 1,
        start: Some(start),
        end: Some(end),
        payment_plan: None,
    };
    let placed = m.place("carol", vec![item]).await.expect("placed");
    let line = &placed.priced.lines[0];
    assert_eq!(line.billable_units, Some(1));
    assert_eq!(line.subtotal, Decimal::new(1000, 2));
    assert_eq!(line.time_zone, Some(berlin));
    let shown = |t: Option<chrono::DateTime<chrono::FixedOffset>>| t.map(|t| t.to_rfc3339());
    assert_eq!(
        shown(line.local_start).as_deref(),
        Some("2030-03-30T10:00:00+01:00")
    );
    assert_eq!(
        shown(line.local_end).as_deref(),
        Some("2030-03-31T10:00:00+02:00")
    );
}

#[tokio::test]
async fn a_line_not_returned_by_its_end_is_marked_overdue_by_the_sweeper_and_keeps_its_unit() {
    use crate::application::overdue::record_return_due;
    use crate::application::sweep::sweep_once;
    use crate::deadlines::ReturnDue;
    use domain::{LineStatus, OrderCommand};

    let m = Marketplace::new().await;
    let listing = m.rental_listing(1, true).await;
    let placed = m
        .place("carol", vec![rental(listing, 2, 3)])
        .await
        .expect("placed");
    m.pay(placed.order_id).await;
    let line = placed.priced.lines[0].clone();
    // Picked up at its start (earlier would need those hours held first).
    m.clock.set(line.start.expect("a rental line"));
    m.app
        .orders
        .execute(
            &placed.order_id.to_string(),
            OrderCommand::PickUpLine {
                line_id: line.line_id,
                at: m.clock.now(),
            },
            &admin(),
            "PickUpLine",
        )
        .await
        .expect("picked up");
    let end = line.end.expect("a rental line");
    record_return_due(
        &m.app,
        ReturnDue {
            order_id: placed.order_id,
            line_id: line.line_id,
            listing_id: listing,
            hold_id: line.hold_id,
            due_at: end,
        },
    )
    .await
    .expect("recorded");

    // Before its end the sweeper leaves it alone.
    m.clock.set(end - chrono::Duration::seconds(1));
    sweep_once(&m.app).await.expect("swept");
    let order = m.order(placed.order_id).await;
    assert_eq!(order.line_status(line.line_id), Some(LineStatus::PickedUp));

    // Past its end it is overdue, on the order and on the inventory.
    m.clock.set(end + chrono::Duration::hours(1));
    sweep_once(&m.app).await.expect("swept");
    let order = m.order(placed.order_id).await;
    assert_eq!(order.line_status(line.line_id), Some(LineStatus::Overdue));
    let inventory = m
        .app
        .inventory
        .load(&listing.to_string(), &crate::Principal::system("test"))
        .await
        .expect("inventory");
    assert!(inventory.hold(line.hold_id).expect("hold").overdue);
    // The unit is still out: the next days cannot be booked.
    let err = m
        .place("dave", vec![rental(listing, 5, 6)])
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(err, CommandError::Rejected(DomainError::Unavailable { .. })),
        "{err:?}"
    );
    // A second sweep records nothing more.
    let before = m.memory.recorded();
    sweep_once(&m.app).await.expect("swept");
    assert_eq!(m.memory.recorded(), before);
}
