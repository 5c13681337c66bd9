//! Unit tests of the analytics read model's pure parts.

use super::*;
use domain::{price_order, LineInput, LineTerms, Rates};

const VENDOR: Uuid = Uuid::from_u128(9);

fn sale_line(n: u128, unit_price: Decimal, quantity: u32) -> LineInput {
    LineInput {
        line_id: Uuid::from_u128(n),
        hold_id: Uuid::from_u128(100 + n),
        listing_id: Uuid::from_u128(1_000 + n),
        vendor_id: VENDOR,
        terms: LineTerms::Sale { unit_price },
        quantity,
    }
}

fn rates() -> Rates {
    Rates {
        tax_rate: Decimal::new(825, 4),
        platform_fee_rate: Decimal::new(10, 2),
    }
}

fn placed(priced: domain::PricedOrder) -> (EventEnvelope, OrderEvent) {
    let order_id = Uuid::from_u128(77);
    let at = DateTime::<Utc>::UNIX_EPOCH;
    let event = OrderEvent::OrderPlaced {
        order_id,
        customer_id: "cust".into(),
        currency: "USD".into(),
        priced,
        rates: rates(),
        hold_expires_at: at,
        placed_at: at,
    };
    let envelope = EventEnvelope {
        position: 42,
        event_id: Uuid::from_u128(1),
        aggregate_type: "Order".into(),
        aggregate_id: order_id.to_string(),
        sequence: 1,
        event_type: "OrderPlaced".into(),
        event_version: domain::EVENT_VERSION.into(),
        payload: serde_json::Value::Null,
        metadata: serde_json::Value::Null,
        recorded_at: at,
        tenant: event_log::DEFAULT_TENANT.into(),
    };
    (envelope, event)
}

/// The highest price the command side accepted (1 000 000 000.00).
fn highest_price() -> Decimal {
    Decimal::from(1_000_000_000u32)
}

/// The largest order the command side accepted (issue 20): a sale
/// listing at the highest price with the most stock (10 000 000), all
/// of it in one order. `fee × line subtotal` is 10^31, past `Decimal`'s
/// 7.9 × 10^28: the product panicked ("Multiplication overflowed").
#[test]
fn the_fee_share_of_the_largest_accepted_order_is_computed_without_overflow() {
    let priced = price_order(&[sale_line(1, highest_price(), 10_000_000)], rates());
    let (line, vendor) = (&priced.lines[0], &priced.vendors[0]);
    assert_eq!(
        vendor.platform_fee.checked_mul(line.subtotal),
        None,
        "the product overflows"
    );
    assert_eq!(
        fee_share(vendor.platform_fee, line.subtotal, vendor.subtotal),
        Some(vendor.platform_fee)
    );

    let (envelope, event) = placed(priced.clone());
    let mut facts = Facts {
        orders: [(Uuid::from_u128(77), None)].into(),
        ..Facts::default()
    };
    facts
        .apply_order(&envelope, Uuid::from_u128(77), event)
        .expect("applies");
    assert_eq!(facts.lines[0].platform_fee, vendor.platform_fee);
}

#[test]
fn the_shares_of_a_vendors_lines_add_up_to_its_fee_at_any_size() {
    for (price, quantities) in [
        (Decimal::new(1999, 2), [3, 1, 7]),
        (highest_price(), [3_000_000, 1, 6_999_999]),
    ] {
        let lines: Vec<LineInput> = quantities
            .iter()
            .enumerate()
            .map(|(n, q)| sale_line(n as u128, price, *q))
            .collect();
        let priced = price_order(&lines, rates());
        let vendor = &priced.vendors[0];
        let shares: Vec<Decimal> = priced
            .lines
            .iter()
            .map(|l| fee_share(vendor.platform_fee, l.subtotal, vendor.subtotal).expect("fits"))
            .collect();
        let sum: Decimal = shares.iter().sum();
        assert!(
            (sum - vendor.platform_fee).abs() <= Decimal::new(3, 6),
            "{shares:?} add up to {sum}, the fee is {}",
            vendor.platform_fee
        );
    }
}

#[test]
fn a_fee_share_out_of_any_range_is_the_events_error_not_a_panic() {
    assert_eq!(
        fee_share(Decimal::MAX, Decimal::MAX, Decimal::new(1, 2)),
        None
    );
    assert_eq!(
        fee_share(Decimal::MAX, Decimal::MAX, Decimal::ZERO),
        Some(Decimal::ZERO)
    );

    // A stored order no pricing makes: a line larger than its vendor.
    let mut priced = price_order(&[sale_line(1, Decimal::ONE, 1)], rates());
    priced.lines[0].subtotal = Decimal::MAX;
    priced.vendors[0].platform_fee = Decimal::MAX;
    priced.vendors[0].subtotal = Decimal::new(1, 2);
    let (envelope, event) = placed(priced);
    let mut facts = Facts {
        orders: [(Uuid::from_u128(77), None)].into(),
        ..Facts::default()
    };
    match facts.apply_order(&envelope, Uuid::from_u128(77), event) {
        Err(Error::Apply {
            position, reason, ..
        }) => {
            assert_eq!(position, 42);
            assert!(reason.contains("platform fee"), "{reason}");
        }
        other => panic!("expected the event's error, got {other:?}"),
    }
}

fn hour(h: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_900_000_000 + h * 3600, 0).expect("a time")
}

fn envelope_of(event: &EventEnvelope, position: i64, event_type: &str) -> EventEnvelope {
    EventEnvelope {
        position,
        event_type: event_type.into(),
        ..event.clone()
    }
}

#[test]
fn a_confirmed_extension_changes_the_orders_gmv_and_its_lines_period_and_fee() {
    let rental = LineInput {
        line_id: Uuid::from_u128(5),
        hold_id: Uuid::from_u128(105),
        listing_id: Uuid::from_u128(1_005),
        vendor_id: VENDOR,
        terms: LineTerms::Rental {
            period: domain::Period {
                start: hour(0),
                end: hour(2),
            },
            pricing_unit: domain::PricingUnit::Hour,
            price_per_unit: Decimal::new(1000, 2),
            deposit_per_unit: Decimal::ZERO,
            time_zone: domain::Tz::UTC,
            late_fee_per_unit: Decimal::ZERO,
            cancellation_policy: Vec::new(),
        },
        quantity: 1,
    };
    let priced = price_order(&[rental], rates());
    let (placed_envelope, event) = placed(priced);
    let order_id = Uuid::from_u128(77);
    let mut facts = Facts {
        orders: [(order_id, None)].into(),
        ..Facts::default()
    };
    facts
        .apply_order(&placed_envelope, order_id, event)
        .expect("applies");
    // Extended by an hour: +10.00 subtotal, +0.83 tax, +1.00 fee.
    let adjustment = domain::Adjustment {
        adjustment_id: Uuid::from_u128(6),
        line_id: Uuid::from_u128(5),
        vendor_id: VENDOR,
        kind: domain::AdjustmentKind::Extension,
        start: hour(0),
        end: hour(3),
        billable_units: 3,
        unit_price: Decimal::new(1000, 2),
        subtotal: Decimal::new(1000, 2),
        tax: Decimal::new(83, 2),
        platform_fee: Decimal::new(100, 2),
        net: Decimal::new(900, 2),
        amount_due: Decimal::new(1083, 2),
        hold_expires_at: hour(0),
    };
    let confirmed = OrderEvent::AdjustmentConfirmed {
        adjustment,
        at: hour(0),
    };
    facts
        .apply_order(
            &envelope_of(&placed_envelope, 43, "AdjustmentConfirmed"),
            order_id,
            confirmed,
        )
        .expect("applies");
    let order = facts.orders[&order_id].as_ref().expect("the order");
    assert_eq!(order.subtotal, Decimal::new(3000, 2));
    assert_eq!(order.total, Decimal::new(3248, 2));
    let change = facts
        .line_changes
        .get(Uuid::from_u128(5))
        .expect("a change");
    assert_eq!(change.subtotal, Decimal::new(1000, 2));
    assert_eq!(change.platform_fee, Decimal::new(100, 2));
    assert_eq!(change.period, Some((hour(0), hour(3))));
    assert_eq!(change.returned_at, None);

    // Returned early, at 01:30: the line's rental time ends there.
    let returned = OrderEvent::LineReturned {
        line_id: Uuid::from_u128(5),
        vendor_id: VENDOR,
        returned_at: hour(1) + chrono::Duration::minutes(30),
        deposit_refunded: Decimal::ZERO,
        damage_withheld: Decimal::ZERO,
        late_fee: Decimal::ZERO,
        late_fee_owed: Decimal::ZERO,
        refund: Decimal::ZERO,
    };
    facts
        .apply_order(
            &envelope_of(&placed_envelope, 44, "LineReturned"),
            order_id,
            returned,
        )
        .expect("applies");
    let change = facts
        .line_changes
        .get(Uuid::from_u128(5))
        .expect("a change");
    assert_eq!(change.period, Some((hour(0), hour(3))));
    assert_eq!(
        change.returned_at,
        Some(hour(1) + chrono::Duration::minutes(30))
    );
}

/// Issue 15: an order's facts and its lines are its event's tenant's.
#[test]
fn an_orders_facts_carry_the_events_tenant() {
    let priced = price_order(&[sale_line(1, Decimal::new(1000, 2), 2)], rates());
    let (envelope, event) = placed(priced);
    let envelope = EventEnvelope {
        tenant: "globex".into(),
        ..envelope
    };
    let mut facts = Facts {
        orders: [(Uuid::from_u128(77), None)].into(),
        ..Facts::default()
    };
    facts
        .apply_order(&envelope, Uuid::from_u128(77), event)
        .expect("applies");
    let order = facts.orders[&Uuid::from_u128(77)]
        .as_ref()
        .expect("recorded");
    assert_eq!(order.tenant, "globex");
    assert!(!facts.lines.is_empty());
    assert!(facts.lines.iter().all(|l| l.tenant == "globex"));
}
