//! The rules an order's lines must meet to be recorded, and the bounds that
//! keep every amount of a recorded order small enough for any later
//! arithmetic (DESIGN.md invariant 5: no stored event may stop a read
//! model). The saga checks them before it holds anything; the Order
//! aggregate checks them again when it records the order.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::error::{DomainError, FieldError};
use crate::listing::MAX_SALE_STOCK;
use crate::money::{is_valid_amount, Rates, MAX_ORDER_TOTAL};
use crate::order::pricing::{
    price_order_with_fee_rates, FeeRates, LineInput, LineTerms, PricedOrder,
};
use crate::period::{Period, IN_PAST};

/// Most lines one order may have.
pub const MAX_LINES: usize = 100;

/// Most units one line may ask for: no listing has more (a sale's stock is
/// at most [`MAX_SALE_STOCK`], a rental's units fewer still).
pub const MAX_QUANTITY: u32 = MAX_SALE_STOCK;

/// Rule name (`errors[].code`) of an order whose total exceeds
/// [`MAX_ORDER_TOTAL`].
pub const TOO_LARGE: &str = "too_large";

/// Checks the lines of an order placed at `placed_at` and prices them.
///
/// Every problem is reported, with fields as in the HTTP body
/// (`items[i].quantity`, `items[i].start`, …). Within the bounds checked
/// here (prices ≤ `MAX_AMOUNT`, billable units ≤ `MAX_BILLABLE_UNITS`,
/// quantity ≤ [`MAX_QUANTITY`], at most [`MAX_LINES`] lines, rates in
/// [0, 1]) pricing itself stays below 10^24, and the priced order is then
/// refused unless its total is at most [`MAX_ORDER_TOTAL`].
pub fn check_placement(
    lines: &[LineInput],
    rates: Rates,
    placed_at: DateTime<Utc>,
) -> Result<PricedOrder, DomainError> {
    check_placement_with_fee_rates(lines, rates, &FeeRates::new(), placed_at)
}

/// [`check_placement`] with vendors' own fee rates (each in [0, 1]).
pub fn check_placement_with_fee_rates(
    lines: &[LineInput],
    rates: Rates,
    fee_rates: &FeeRates,
    placed_at: DateTime<Utc>,
) -> Result<PricedOrder, DomainError> {
    let mut errors = Vec::new();
    let unit_rate = Decimal::ZERO..=Decimal::ONE;
    if !unit_rate.contains(&rates.tax_rate)
        || !unit_rate.contains(&rates.platform_fee_rate)
        || fee_rates.values().any(|r| !unit_rate.contains(r))
    {
        errors.push(FieldError::new("rates", "must be between 0 and 1"));
    }
    if lines.is_empty() {
        errors.push(FieldError::new("items", "must contain at least one item"));
    }
    if lines.len() > MAX_LINES {
        errors.push(FieldError::new(
            "items",
            format!("an order takes at most {MAX_LINES} items"),
        ));
    }
    let mut line_ids = std::collections::BTreeSet::new();
    let mut hold_ids = std::collections::BTreeSet::new();
    for (i, l) in lines.iter().enumerate() {
        if !(1..=MAX_QUANTITY).contains(&l.quantity) {
            errors.push(FieldError::new(
                format!("items[{i}].quantity"),
                format!("must be between 1 and {MAX_QUANTITY}"),
            ));
        }
        if !line_ids.insert(l.line_id) || !hold_ids.insert(l.hold_id) {
            errors.push(FieldError::new(format!("items[{i}]"), "duplicate line"));
        }
        match &l.terms {
            LineTerms::Rental {
                period,
                price_per_unit,
                deposit_per_unit,
                ..
            } => {
                errors.extend(period_problems(i, period, placed_at));
                if !is_valid_amount(*price_per_unit) || !is_valid_amount(*deposit_per_unit) {
                    errors.push(FieldError::new(
                        format!("items[{i}].price"),
                        "prices must be non-negative with at most 2 decimal places",
                    ));
                }
            }
            LineTerms::Sale { unit_price } => {
                if !is_valid_amount(*unit_price) {
                    errors.push(FieldError::new(
                        format!("items[{i}].price"),
                        "prices must be non-negative with at most 2 decimal places",
                    ));
                }
            }
        }
    }
    DomainError::check(errors)?;
    let priced = price_order_with_fee_rates(lines, rates, fee_rates);
    if priced.total > MAX_ORDER_TOTAL {
        return Err(DomainError::Validation {
            errors: vec![FieldError::with_code(
                "items",
                TOO_LARGE,
                format!(
                    "the order's total {} exceeds the largest an order may have, {MAX_ORDER_TOTAL}.00",
                    priced.total
                ),
            )],
        });
    }
    Ok(priced)
}

/// A rental line's period: in range, well formed, and not in the past.
fn period_problems(i: usize, period: &Period, placed_at: DateTime<Utc>) -> Vec<FieldError> {
    if let Err(DomainError::Validation { errors }) = Period::new(period.start, period.end) {
        return errors
            .into_iter()
            .map(|mut e| {
                e.field = format!("items[{i}].{}", e.field);
                e
            })
            .collect();
    }
    if period.starts_before(placed_at) {
        return vec![FieldError::with_code(
            format!("items[{i}].start"),
            IN_PAST,
            "the period starts in the past",
        )];
    }
    Vec::new()
}
