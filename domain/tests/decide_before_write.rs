//! The rule every aggregate's `handle` keeps (`domain::aggregate`): it
//! decides before it writes, so a rejected command leaves the aggregate
//! exactly as it was and writes nothing. The command bus decides a batch of
//! commands one after the other on the same loaded aggregate and relies on
//! it. One case per aggregate; the inventory and order cases are commands
//! that would write two events, rejected by a check on the second.

use std::fmt::Debug;

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use domain::*;
use rust_decimal_macros::dec;
use uuid::Uuid;

fn t(h: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap() + Duration::hours(h)
}
fn u(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// Builds the aggregate from `given`, handles `command`, and checks the
/// rejection left it untouched with nothing written.
fn rejected_without_a_trace<A>(given: Vec<A::Event>, command: A::Command) -> A::Error
where
    A: Aggregate<Services = ()> + Clone + PartialEq + Debug,
{
    let mut aggregate = A::default();
    for event in given {
        aggregate.apply(event);
    }
    let before = aggregate.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (result, written) = runtime.block_on(async {
        let sink = EventSink::default();
        let result = aggregate.handle(command, &(), &sink).await;
        (result, sink.collect().await)
    });
    assert_eq!(aggregate, before, "a rejection changed the aggregate");
    assert!(written.is_empty(), "a rejection wrote {written:?}");
    match result {
        Err(error) => error,
        Ok(()) => panic!("the command was accepted"),
    }
}

#[test]
fn a_payout_above_the_balance_leaves_the_vendor_untouched() {
    let error = rejected_without_a_trace::<Vendor>(
        vec![
            VendorEvent::VendorRegistered {
                vendor_id: u(1),
                name: "Acme".into(),
                registered_at: t(0),
            },
            VendorEvent::EarningsMadeAvailable {
                order_id: u(2),
                amount: dec!(90.00),
            },
        ],
        VendorCommand::RequestPayout {
            payout_id: u(3),
            amount: dec!(90.01),
            at: t(1),
        },
    );
    assert!(matches!(error, DomainError::InsufficientBalance { .. }));
}

#[test]
fn publishing_an_archived_listing_leaves_it_untouched() {
    let error = rejected_without_a_trace::<Listing>(
        vec![
            ListingEvent::ListingCreated {
                listing_id: u(10),
                vendor_id: u(1),
                title: "Kayak".into(),
                description: String::new(),
                category: "outdoor".into(),
                terms: ListingTerms::Sale {
                    unit_price: dec!(5.00),
                    stock: 3,
                },
            },
            ListingEvent::ListingArchived,
        ],
        ListingCommand::Publish,
    );
    assert!(matches!(error, DomainError::InvalidState(_)));
}

/// Confirming an expired hold would reinstate it, then confirm it; its unit
/// went to another hold meanwhile, so neither happens.
#[test]
fn confirming_an_expired_hold_whose_units_are_gone_leaves_the_inventory_untouched() {
    let period = Period::new(t(0), t(10)).unwrap();
    let request = HoldRequest::Rental {
        period,
        quantity: 1,
    };
    let error = rejected_without_a_trace::<Inventory>(
        vec![
            InventoryEvent::InventoryInitialized {
                listing_id: u(10),
                capacity: Capacity::Rental { units: 1 },
            },
            InventoryEvent::HoldPlaced {
                buffer: None,
                hold_id: u(31),
                order_id: u(41),
                request,
                expires_at: t(-5),
            },
            InventoryEvent::HoldExpired { hold_id: u(31) },
            InventoryEvent::HoldPlaced {
                buffer: None,
                hold_id: u(32),
                order_id: u(42),
                request,
                expires_at: t(100),
            },
        ],
        InventoryCommand::ConfirmHold {
            hold_id: u(31),
            now: t(-4),
        },
    );
    assert!(matches!(error, DomainError::Unavailable { .. }));
}

/// Cancelling a paid order would cancel it, then refund it; a line was
/// already picked up, so neither happens.
#[test]
fn cancelling_an_order_once_fulfilment_started_leaves_it_untouched() {
    let rates = Rates {
        tax_rate: dec!(0),
        platform_fee_rate: dec!(0.10),
    };
    let lines = vec![LineInput {
        line_id: u(21),
        hold_id: u(31),
        listing_id: u(10),
        vendor_id: u(1),
        terms: LineTerms::Rental {
            late_fee_per_unit: Default::default(),
            cancellation_policy: Vec::new(),
            time_zone: domain::Tz::UTC,
            period: Period::new(t(0), t(24)).unwrap(),
            pricing_unit: PricingUnit::Day,
            price_per_unit: dec!(10.00),
            deposit_per_unit: dec!(0),
        },
        quantity: 1,
    }];
    let error = rejected_without_a_trace::<Order>(
        vec![
            OrderEvent::OrderPlaced {
                order_id: u(1),
                customer_id: "cust-1".into(),
                currency: "USD".into(),
                priced: price_order(&lines, rates),
                rates,
                hold_expires_at: t(-1),
                placed_at: t(-2),
            },
            OrderEvent::PaymentCaptured {
                payment_id: "evt_1".into(),
                intent_id: "pi_1".into(),
                amount: dec!(10.00),
            },
            OrderEvent::OrderConfirmed {
                confirmed_at: t(-1),
            },
            OrderEvent::LinePickedUp {
                line_id: u(21),
                at: t(0),
            },
        ],
        OrderCommand::Cancel {
            reason: None,
            at: t(1),
        },
    );
    assert!(matches!(error, DomainError::InvalidState(_)));
}
