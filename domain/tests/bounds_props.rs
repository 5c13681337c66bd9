//! The edge's bounds, property-tested: amounts are parsed strictly by one
//! function, and no order the domain accepts can overflow any later
//! computation (pricing, fees, the analytics' fee share, the ledger's sums).
//! The projectors' formulas are reproduced here with checked arithmetic:
//! the domain cannot link the projectors.

use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::*;
use proptest::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

/// An amount string in canonical form, with 0, 1 or 2 places, within bounds.
fn amount_text() -> impl Strategy<Value = String> {
    (0i64..=100_000_000_000, 0u32..=2).prop_map(|(cents, places)| {
        let whole = cents / 100;
        match places {
            0 => whole.to_string(),
            1 => format!("{whole}.{}", (cents % 100) / 10),
            _ => format!("{whole}.{:02}", cents % 100),
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_valid_amount_string_round_trips(text in amount_text()) {
        let amount = parse_amount(&text).expect("a valid amount");
        prop_assert_eq!(amount.to_string(), text);
        prop_assert!(is_valid_amount(amount));
    }

    #[test]
    fn every_two_place_amount_parses_back_from_its_answer_form(cents in 0i64..=100_000_000_000) {
        let amount = Decimal::new(cents, 2);
        prop_assert_eq!(parse_amount(&amount.to_string()), Ok(amount));
    }

    #[test]
    fn an_exponent_anywhere_is_refused(
        text in amount_text(),
        at in any::<prop::sample::Index>(),
        e in prop::sample::select(vec!["e", "E", "e1", "E+2", "e-2", "e0"]),
    ) {
        let at = at.index(text.len() + 1);
        let mut bad = text.clone();
        bad.insert_str(at, e);
        prop_assert!(parse_amount(&bad).is_err(), "{:?}", bad);
    }

    #[test]
    fn whitespace_anywhere_is_refused(
        text in amount_text(),
        at in any::<prop::sample::Index>(),
        space in prop::sample::select(vec![" ", "\t", "\n", "\r", "\u{a0}", "\u{2009}"]),
    ) {
        let at = at.index(text.len() + 1);
        let mut bad = text.clone();
        bad.insert_str(at, space);
        prop_assert!(parse_amount(&bad).is_err(), "{:?}", bad);
    }

    #[test]
    fn a_sign_is_refused(text in amount_text(), sign in prop::sample::select(vec!["+", "-"])) {
        let bad = format!("{sign}{text}");
        prop_assert!(parse_amount(&bad).is_err(), "{:?}", bad);
    }

    #[test]
    fn three_or_more_places_are_refused(whole in 0u64..=1_000_000_000, places in "[0-9]{3,8}") {
        let bad = format!("{whole}.{places}");
        prop_assert!(parse_amount(&bad).is_err(), "{:?}", bad);
    }

    #[test]
    fn an_amount_over_the_bound_is_refused(cents in 100_000_000_001i64..=i64::MAX / 10) {
        let text = Decimal::new(cents, 2).to_string();
        prop_assert_eq!(parse_amount(&text), Err(AMOUNT_TOO_LARGE), "{}", text);
    }

    /// Whatever the text, an amount that parses is in bounds and is the
    /// text exactly: nothing lenient slips through.
    #[test]
    fn anything_that_parses_is_canonical_and_in_bounds(text in "\\PC{0,16}|[0-9eE+. -]{0,14}") {
        if let Ok(amount) = parse_amount(&text) {
            prop_assert!(is_valid_amount(amount));
            prop_assert_eq!(amount.to_string(), text);
        }
    }
}

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()
}

/// Near-maximal lines: prices near `MAX_AMOUNT`, quantities up to
/// `MAX_QUANTITY`, periods up to `MAX_PERIOD_DAYS` billed by the hour.
fn big_line() -> impl Strategy<Value = (u8, bool, u32, i64, i64, i64)> {
    (
        0u8..4,
        any::<bool>(),
        prop_oneof![
            1u32..=10,
            MAX_QUANTITY - 10..=MAX_QUANTITY,
            1u32..=MAX_QUANTITY
        ],
        prop_oneof![
            Just(0i64),
            0i64..=1_000,
            100_000_000_000i64 - 1_000..=100_000_000_000
        ],
        prop_oneof![Just(0i64), 100_000_000_000i64 - 1_000..=100_000_000_000],
        prop_oneof![1i64..=48, MAX_PERIOD_DAYS * 24 - 24..=MAX_PERIOD_DAYS * 24],
    )
}

fn lines_of(raw: &[(u8, bool, u32, i64, i64, i64)]) -> Vec<LineInput> {
    raw.iter()
        .enumerate()
        .map(
            |(i, &(vendor, rental, quantity, price, deposit, hours))| LineInput {
                line_id: Uuid::from_u128(1_000 + i as u128),
                hold_id: Uuid::from_u128(2_000 + i as u128),
                listing_id: Uuid::from_u128(3_000 + i as u128),
                vendor_id: Uuid::from_u128(u128::from(vendor) + 1),
                terms: if rental {
                    LineTerms::Rental {
                        late_fee_per_unit: Default::default(),
                        cancellation_policy: Vec::new(),
                        time_zone: domain::Tz::UTC,
                        period: Period::new(base(), base() + Duration::hours(hours)).unwrap(),
                        pricing_unit: PricingUnit::Hour,
                        price_per_unit: Decimal::new(price, 2),
                        deposit_per_unit: Decimal::new(deposit, 2),
                    }
                } else {
                    LineTerms::Sale {
                        unit_price: Decimal::new(price, 2),
                    }
                },
                quantity,
            },
        )
        .collect()
}

/// Runs an accepted order through every later computation with checked
/// arithmetic; `None` names the first that would overflow.
fn later_arithmetic(priced: &PricedOrder) -> Result<(), &'static str> {
    // Analytics (`Facts::apply_order`): each line's share of its vendor's
    // fee, `platform_fee * line.subtotal / v.subtotal`.
    for line in &priced.lines {
        let v = priced
            .vendor(line.vendor_id)
            .ok_or("a line without its vendor")?;
        if !v.subtotal.is_zero() {
            let product = v
                .platform_fee
                .checked_mul(line.subtotal)
                .ok_or("fee × line subtotal")?;
            product
                .checked_div(v.subtotal)
                .ok_or("fee share division")?;
        }
    }
    // Ledger: the postings of one order (capture, allocation, refund) and
    // an account's running sums over a great many such orders.
    let mut debit = Decimal::ZERO;
    for amount in [priced.total, priced.subtotal, priced.tax, priced.deposit]
        .into_iter()
        .chain(
            priced
                .vendors
                .iter()
                .flat_map(|v| [v.subtotal, v.platform_fee, v.net]),
        )
    {
        debit = debit.checked_add(amount).ok_or("an order's postings")?;
    }
    let many_orders = Decimal::from(10u64.pow(15));
    debit
        .checked_mul(many_orders)
        .ok_or("an account's sum over 10^15 orders")?;
    // Payment in minor units (the webhook compares `amount` with it).
    to_minor_units(priced.total).ok_or("total in minor units")?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Pricing never panics within the input bounds, and an order the
    /// domain accepts never overflows the arithmetic that follows it.
    #[test]
    fn no_accepted_order_overflows_pricing_fees_analytics_or_the_ledger(
        raw in prop::collection::vec(big_line(), 1..=8),
        tax in 0i64..=10_000,
        fee in 0i64..=10_000,
    ) {
        let lines = lines_of(&raw);
        let rates = Rates {
            tax_rate: Decimal::new(tax, 4),
            platform_fee_rate: Decimal::new(fee, 4),
        };
        // Unchecked, as the aggregate prices: a panic here fails the test.
        let unbounded = price_order(&lines, rates);
        match check_placement(&lines, rates, base()) {
            Ok(priced) => {
                prop_assert_eq!(&priced, &unbounded);
                prop_assert!(priced.total <= MAX_ORDER_TOTAL);
                prop_assert_eq!(later_arithmetic(&priced), Ok(()));
            }
            Err(DomainError::Validation { errors }) => {
                prop_assert!(unbounded.total > MAX_ORDER_TOTAL, "{:?}", errors);
                prop_assert_eq!(errors[0].code.as_deref(), Some("too_large"));
            }
            Err(other) => prop_assert!(false, "{:?}", other),
        }
    }

    /// The largest orders that are still accepted: a total right at the
    /// bound, split over lines and vendors every way, fee rate up to 1.
    #[test]
    fn orders_at_the_total_bound_are_accepted_and_safe(
        lines in 1usize..=MAX_LINES,
        vendors in 1u8..=4,
        fee in 0i64..=10_000,
    ) {
        // Sale lines of equal subtotal summing to at most MAX_ORDER_TOTAL.
        let per_line = MAX_ORDER_TOTAL / Decimal::from(lines as u64);
        let price = MAX_AMOUNT.min(per_line).round_dp_with_strategy(2, rust_decimal::RoundingStrategy::ToZero);
        let quantity = (per_line / price).floor().to_string().parse::<u32>().unwrap().min(MAX_QUANTITY);
        let input: Vec<LineInput> = (0..lines)
            .map(|i| LineInput {
                line_id: Uuid::from_u128(1_000 + i as u128),
                hold_id: Uuid::from_u128(2_000 + i as u128),
                listing_id: Uuid::from_u128(3_000 + i as u128),
                vendor_id: Uuid::from_u128(u128::from(i as u8 % vendors) + 1),
                terms: LineTerms::Sale { unit_price: price },
                quantity,
            })
            .collect();
        let rates = Rates { tax_rate: Decimal::ZERO, platform_fee_rate: Decimal::new(fee, 4) };
        let priced = check_placement(&input, rates, base()).expect("within the bound");
        prop_assert!(priced.total <= MAX_ORDER_TOTAL);
        prop_assert!(priced.total * Decimal::from(2) > MAX_ORDER_TOTAL, "{}", priced.total);
        prop_assert_eq!(later_arithmetic(&priced), Ok(()));
    }
}

#[test]
fn the_largest_inputs_price_without_panicking_and_are_refused_as_too_large() {
    let maximal = (0..MAX_LINES)
        .map(|i| {
            (
                i as u8 % 4,
                i % 2 == 0,
                MAX_QUANTITY,
                100_000_000_000,
                100_000_000_000,
                MAX_PERIOD_DAYS * 24,
            )
        })
        .collect::<Vec<_>>();
    let lines = lines_of(&maximal);
    let rates = Rates {
        tax_rate: Decimal::ONE,
        platform_fee_rate: Decimal::ONE,
    };
    let priced = price_order(&lines, rates);
    assert!(priced.total > MAX_ORDER_TOTAL);
    let Err(DomainError::Validation { errors }) = check_placement(&lines, rates, base()) else {
        panic!("refused");
    };
    assert_eq!(errors[0].field, "items");
    assert_eq!(errors[0].code.as_deref(), Some("too_large"));
}

/// The overflow the attack run hit, for the record: before the order total
/// was bounded, one sale line at the largest price and a million units
/// (stock allowed ten million) made the analytics' `fee × subtotal`
/// overflow `Decimal`.
#[test]
fn the_line_that_overflowed_the_analytics_is_now_refused() {
    let line = lines_of(&[(0, false, 1_000_000, 100_000_000_000, 0, 1)]);
    let rates = Rates {
        tax_rate: Decimal::ZERO,
        platform_fee_rate: Decimal::new(10, 2),
    };
    let priced = price_order(&line, rates);
    let (fee, subtotal) = (priced.vendors[0].platform_fee, priced.lines[0].subtotal);
    assert_eq!(
        fee.checked_mul(subtotal),
        None,
        "{fee} × {subtotal} overflows"
    );
    assert!(check_placement(&line, rates, base()).is_err());
}

#[test]
fn quantities_beyond_any_stock_are_refused_naming_the_item() {
    let line = lines_of(&[(0, false, MAX_QUANTITY + 1, 100, 0, 1)]);
    let Err(DomainError::Validation { errors }) = check_placement(&line, Rates::default(), base())
    else {
        panic!("refused");
    };
    assert_eq!(errors[0].field, "items[0].quantity");
}

#[test]
fn a_rental_that_starts_before_the_order_is_placed_is_in_the_past() {
    let line = lines_of(&[(0, true, 1, 1_000, 0, 2)]);
    let placed_at = base() + Duration::minutes(1);
    let Err(DomainError::Validation { errors }) =
        check_placement(&line, Rates::default(), placed_at)
    else {
        panic!("refused");
    };
    assert_eq!(errors[0].field, "items[0].start");
    assert_eq!(errors[0].code.as_deref(), Some("in_past"));
    assert!(check_placement(&line, Rates::default(), base()).is_ok());
}
