use chrono::{Duration, TimeZone, Utc};
use domain::*;
use proptest::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

fn cents(max: i64) -> impl Strategy<Value = Decimal> {
    (0..=max).prop_map(|c| Decimal::new(c, 2))
}
fn rate() -> impl Strategy<Value = Decimal> {
    (0i64..=5000).prop_map(|r| Decimal::new(r, 4))
}

fn line() -> impl Strategy<Value = (u8, bool, u32, Decimal, Decimal, i64, bool)> {
    (
        0u8..3,
        any::<bool>(),
        1u32..=5,
        cents(100_000),
        cents(50_000),
        1i64..200,
        any::<bool>(),
    )
}

fn dp(x: Decimal) -> u32 {
    x.normalize().scale()
}

proptest! {
    #[test]
    fn money_is_conserved_to_the_cent(
        raw in prop::collection::vec(line(), 1..=6),
        tax_rate in rate(),
        platform_fee_rate in rate(),
    ) {
        let t0 = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        let lines: Vec<LineInput> = raw
            .iter()
            .enumerate()
            .map(|(i, &(vendor, is_rental, quantity, price, deposit, hours, daily))| LineInput {
                line_id: Uuid::from_u128(100 + i as u128),
                hold_id: Uuid::from_u128(200 + i as u128),
                listing_id: Uuid::from_u128(300 + i as u128),
                vendor_id: Uuid::from_u128(u128::from(vendor) + 1),
                terms: if is_rental {
                    LineTerms::Rental {
                        late_fee_per_unit: Default::default(),
                        cancellation_policy: Vec::new(),
                        time_zone: domain::Tz::UTC,
                        period: Period::new(t0, t0 + Duration::minutes(hours * 37)).unwrap(),
                        pricing_unit: if daily { PricingUnit::Day } else { PricingUnit::Hour },
                        price_per_unit: price,
                        deposit_per_unit: deposit,
                    }
                } else {
                    LineTerms::Sale { unit_price: price }
                },
                quantity,
            })
            .collect();
        let rates = Rates { tax_rate, platform_fee_rate };
        let p = price_order(&lines, rates);

        let fees: Decimal = p.vendors.iter().map(|v| v.platform_fee).sum();
        let nets: Decimal = p.vendors.iter().map(|v| v.net).sum();
        prop_assert_eq!(fees + nets, p.subtotal);
        prop_assert_eq!(p.total, p.subtotal + p.tax + p.deposit);
        prop_assert_eq!(p.subtotal, p.lines.iter().map(|l| l.subtotal).sum::<Decimal>());
        prop_assert_eq!(p.tax, p.lines.iter().map(|l| l.tax).sum::<Decimal>());
        prop_assert_eq!(p.deposit, p.lines.iter().map(|l| l.deposit).sum::<Decimal>());

        // Vendors in order of first appearance, each once.
        let mut seen = Vec::new();
        for l in &lines {
            if !seen.contains(&l.vendor_id) {
                seen.push(l.vendor_id);
            }
        }
        prop_assert_eq!(p.vendors.iter().map(|v| v.vendor_id).collect::<Vec<_>>(), seen);

        for (l, input) in p.lines.iter().zip(&lines) {
            for x in [l.subtotal, l.tax, l.deposit, l.unit_price] {
                prop_assert!(dp(x) <= 2 && x >= Decimal::ZERO, "{}", x);
            }
            prop_assert_eq!(l.tax, round_cents(l.subtotal * tax_rate));
            match &input.terms {
                LineTerms::Rental { period, pricing_unit, price_per_unit, deposit_per_unit, .. } => {
                    let units = billable_units(period, *pricing_unit);
                    prop_assert_eq!(l.billable_units, Some(units));
                    prop_assert_eq!(l.subtotal, *price_per_unit * Decimal::from(units) * Decimal::from(input.quantity));
                    prop_assert_eq!(l.deposit, *deposit_per_unit * Decimal::from(input.quantity));
                }
                LineTerms::Sale { unit_price } => {
                    prop_assert_eq!(l.subtotal, *unit_price * Decimal::from(input.quantity));
                    prop_assert_eq!(l.deposit, Decimal::ZERO);
                }
            }
        }
        for v in &p.vendors {
            for x in [v.subtotal, v.platform_fee, v.net] {
                prop_assert!(dp(x) <= 2, "{}", x);
            }
            prop_assert_eq!(v.platform_fee, round_cents(v.subtotal * platform_fee_rate));
            prop_assert_eq!(v.platform_fee + v.net, v.subtotal);
        }
        for x in [p.subtotal, p.tax, p.deposit, p.total] {
            prop_assert!(dp(x) <= 2, "{}", x);
        }
        // Amounts serialize as strings with exactly two places.
        let v = serde_json::to_value(&p).unwrap();
        let total = v["total"].as_str().unwrap();
        prop_assert_eq!(total.split('.').nth(1).map(str::len), Some(2));
    }
}
