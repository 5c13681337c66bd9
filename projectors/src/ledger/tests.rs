//! Unit tests of the ledger read model's pure parts.

use super::*;
use domain::{price_order, LineInput, LineTerms, Rates};

fn order() -> PricedOrder {
    let line = |vendor: u128, price: i64| LineInput {
        line_id: Uuid::from_u128(vendor * 10),
        hold_id: Uuid::from_u128(vendor * 100),
        listing_id: Uuid::from_u128(vendor * 1000),
        vendor_id: Uuid::from_u128(vendor),
        terms: LineTerms::Sale {
            unit_price: Decimal::new(price, 2),
        },
        quantity: 3,
    };
    price_order(
        &[line(1, 3333), line(2, 1999), line(1, 17)],
        Rates {
            tax_rate: Decimal::new(825, 4),
            platform_fee_rate: Decimal::new(125, 3),
        },
    )
}

#[test]
fn the_allocation_of_a_confirmed_order_is_balanced() {
    assert!(is_balanced(&allocation(&order())));
}

#[test]
fn a_reversal_undoes_the_allocation_line_by_line() {
    let priced = order();
    let mut sums: BTreeMap<String, Decimal> = BTreeMap::new();
    for line in allocation(&priced).into_iter().chain(reversal(&priced)) {
        *sums.entry(line.account).or_default() += line.debit - line.credit;
    }
    assert!(sums.values().all(Decimal::is_zero), "{sums:?}");
    assert!(is_balanced(&reversal(&priced)));
}

fn vendor_event(position: i64) -> EventEnvelope {
    EventEnvelope {
        position,
        event_id: Uuid::from_u128(position as u128),
        aggregate_type: "Vendor".into(),
        aggregate_id: Uuid::from_u128(5).to_string(),
        sequence: position,
        event_type: "DamageCredited".into(),
        event_version: domain::EVENT_VERSION.into(),
        payload: serde_json::Value::Null,
        metadata: serde_json::Value::Null,
        recorded_at: DateTime::<Utc>::UNIX_EPOCH,
    }
}

#[test]
fn sums_that_overflow_are_the_events_error_not_a_panic() {
    let huge = vec![
        Line::debit(CASH, None, Decimal::MAX),
        Line::debit(CASH, None, Decimal::MAX),
        Line::credit(CUSTOMER_FUNDS, None, Decimal::MAX),
    ];
    assert_eq!(totals(&huge), None);
    assert!(!is_balanced(&huge));

    let mut journal = Journal::default();
    let credit = |journal: &mut Journal, position| {
        apply_vendor(
            journal,
            &vendor_event(position),
            Uuid::from_u128(5),
            VendorEvent::DamageCredited {
                order_id: Uuid::from_u128(6),
                line_id: Uuid::from_u128(7),
                amount: Decimal::MAX,
            },
        )
    };
    credit(&mut journal, 1).expect("one credit fits");
    match credit(&mut journal, 2) {
        Err(Error::Apply { position, .. }) => assert_eq!(position, 2),
        other => panic!("expected the event's error, got {other:?}"),
    }
}

#[test]
fn an_unbalanced_entry_is_detected() {
    let mut lines = allocation(&order());
    lines[0].debit += Decimal::new(1, 2);
    assert!(!is_balanced(&lines));
}
