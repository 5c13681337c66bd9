//! Unit tests of the availability read model's pure parts.

use super::*;
use chrono::TimeZone;
use domain::Period;

const LISTING: Uuid = Uuid::from_u128(1);
const HOLD: Uuid = Uuid::from_u128(2);

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, hour, 0, 0).unwrap()
}

fn sale_listing(stock: u32) -> Change {
    Change::Listing(ListingEvent::ListingCreated {
        listing_id: LISTING,
        vendor_id: Uuid::from_u128(9),
        title: "Kettle".into(),
        description: "Steel".into(),
        category: "kitchen".into(),
        terms: ListingTerms::Sale {
            unit_price: Decimal::new(1999, 2),
            stock,
        },
    })
}

fn inventory(event: InventoryEvent) -> Change {
    Change::Inventory(event)
}

/// Given the rows as loaded (none) and `events`, the rows after them.
fn given(events: Vec<Change>) -> Rows {
    given_in(event_log::DEFAULT_TENANT, events)
}

/// [`given`], the events recorded in `tenant`.
fn given_in(tenant: &str, events: Vec<Change>) -> Rows {
    let mut rows = Rows::default();
    rows.listings.insert(LISTING, None);
    rows.allocations.insert((LISTING, HOLD), None);
    for (hour, change) in events.into_iter().enumerate() {
        rows.apply(tenant, LISTING, at(hour as u32), change)
            .expect("applies");
    }
    rows
}

fn listing(rows: &Rows) -> &ListingRow {
    rows.listings[&LISTING].as_ref().expect("the listing")
}

fn allocation(rows: &Rows) -> Option<&AllocationRow> {
    rows.allocations[&(LISTING, HOLD)].as_ref()
}

fn sale_hold(quantity: u32) -> InventoryEvent {
    InventoryEvent::HoldPlaced {
        buffer: None,
        hold_id: HOLD,
        order_id: Uuid::from_u128(7),
        request: HoldRequest::Sale { quantity },
        expires_at: at(20),
    }
}

#[test]
fn a_sale_hold_holds_stock_until_released_and_again_when_reinstated() {
    let rows = given(vec![sale_listing(5), inventory(sale_hold(3))]);
    assert_eq!(listing(&rows).stock_held, 3);
    assert_eq!(allocation(&rows).expect("held").expires_at, Some(at(20)));

    let rows = given(vec![
        sale_listing(5),
        inventory(sale_hold(3)),
        inventory(InventoryEvent::HoldReleased {
            hold_id: HOLD,
            reason: "payment failed".into(),
        }),
    ]);
    assert_eq!(listing(&rows).stock_held, 0);
    let released = allocation(&rows).expect("kept");
    assert_eq!(
        (released.kind.as_str(), released.expires_at),
        ("released", None)
    );

    let rows = given(vec![
        sale_listing(5),
        inventory(sale_hold(3)),
        inventory(InventoryEvent::HoldExpired { hold_id: HOLD }),
        inventory(InventoryEvent::HoldReinstated { hold_id: HOLD }),
        inventory(InventoryEvent::HoldConfirmed { hold_id: HOLD }),
    ]);
    assert_eq!(listing(&rows).stock_held, 3);
    assert_eq!(allocation(&rows).expect("booked").kind, "booking");
}

#[test]
fn a_return_frees_the_units_from_the_return_but_never_before_the_start() {
    let rental_hold = |start: u32, end: u32| {
        inventory(InventoryEvent::HoldPlaced {
            buffer: None,
            hold_id: HOLD,
            order_id: Uuid::from_u128(7),
            request: HoldRequest::Rental {
                period: Period {
                    start: at(start),
                    end: at(end),
                },
                quantity: 1,
            },
            expires_at: at(23),
        })
    };
    let returned = |hour: u32| {
        inventory(InventoryEvent::ReturnRecorded {
            hold_id: HOLD,
            returned_at: at(hour),
        })
    };
    let rows = given(vec![rental_hold(10, 16), returned(12)]);
    assert_eq!(allocation(&rows).expect("booked").end_at, Some(at(12)));
    let rows = given(vec![rental_hold(10, 16), returned(8)]);
    assert_eq!(allocation(&rows).expect("booked").end_at, Some(at(10)));
    let rows = given(vec![rental_hold(10, 16), returned(18)]);
    assert_eq!(allocation(&rows).expect("booked").end_at, Some(at(16)));
}

#[test]
fn a_removed_blackout_is_deleted_and_a_second_hold_with_one_id_is_refused() {
    let blackout = inventory(InventoryEvent::BlackoutAdded {
        blackout_id: HOLD,
        period: Period {
            start: at(1),
            end: at(2),
        },
        units: None,
        reason: "repair".into(),
    });
    let rows = given(vec![
        blackout,
        inventory(InventoryEvent::BlackoutRemoved { blackout_id: HOLD }),
    ]);
    assert_eq!(allocation(&rows), None);
    assert_eq!(
        rows.changed_allocations,
        vec![(LISTING, HOLD), (LISTING, HOLD)]
    );

    let mut rows = given(vec![sale_listing(5), inventory(sale_hold(1))]);
    assert!(rows
        .apply(
            event_log::DEFAULT_TENANT,
            LISTING,
            at(3),
            inventory(sale_hold(1))
        )
        .is_err());
}

#[test]
fn counts_out_of_the_columns_range_are_an_error_not_a_panic() {
    let mut rows = given(vec![sale_listing(5)]);
    let adjusted = inventory(InventoryEvent::StockAdjusted {
        delta: i64::from(i32::MAX),
        stock: 0,
    });
    assert!(rows
        .apply(event_log::DEFAULT_TENANT, LISTING, at(1), adjusted)
        .is_err());
    let adjusted = inventory(InventoryEvent::StockAdjusted {
        delta: i64::MAX,
        stock: 0,
    });
    assert!(rows
        .apply(event_log::DEFAULT_TENANT, LISTING, at(1), adjusted)
        .is_err());
    assert_eq!(listing(&rows).stock, Some(5));
    assert!(rows
        .apply(
            event_log::DEFAULT_TENANT,
            LISTING,
            at(2),
            inventory(sale_hold(u32::MAX))
        )
        .is_err());
}

#[test]
fn events_of_a_listing_not_in_the_model_change_nothing() {
    let rows = given(vec![
        Change::Listing(ListingEvent::ListingPublished),
        inventory(InventoryEvent::StockAdjusted { delta: 4, stock: 9 }),
        inventory(InventoryEvent::HoldConfirmed { hold_id: HOLD }),
    ]);
    assert_eq!(rows.listings[&LISTING], None);
    assert!(rows.changed_listings.is_empty() && rows.changed_allocations.is_empty());
}

#[test]
fn the_rows_an_event_creates_are_its_tenants() {
    let rows = given_in("acme", vec![sale_listing(3), inventory(sale_hold(1))]);
    assert_eq!(listing(&rows).tenant, "acme");
    assert_eq!(allocation(&rows).expect("the hold").tenant, "acme");
    let rows = given(vec![sale_listing(3), inventory(sale_hold(1))]);
    assert_eq!(listing(&rows).tenant, "default");
    assert_eq!(allocation(&rows).expect("the hold").tenant, "default");
}
