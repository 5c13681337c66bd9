//! Instalment plans for long rentals (issue 15 item 3): a rental line paid
//! by a schedule. The plan is asked for at placement (`PlanRequest`, per
//! line) and priced with the line (`PaymentPlan` on the priced line, so it
//! is in `OrderPlaced`); what is paid, overdue or written off is the
//! Order's lease state (`lease.rs`).
//!
//! Amounts: the line's price and tax less the plan's `deposit`, split into
//! `instalments` parts to the cent; the first `remainder` parts carry one
//! cent more (largest remainder), so the parts sum to the amount exactly.
//! Dates: instalment `k` (from 1) falls due `k − 1` intervals after the
//! line's start, anchored on the start as subscriptions are (Jan 31, Feb
//! 28, Mar 31), and every one before the line's end.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::pricing::{LineInput, LineTerms, PricedLine, PricedOrder};
use crate::error::FieldError;
use crate::money::{is_valid_amount, round_cents, to_minor_units};
use crate::subscription::billing::period_start;
use crate::subscription::Interval;

/// Most instalments one plan may have (ten years of months).
pub const MAX_INSTALMENTS: u32 = 120;

/// The plan a customer asks for on a rental line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanRequest {
    /// Paid at placement with the rest of the order (it confirms the hold).
    pub deposit: Decimal,
    pub instalments: u32,
    pub interval: Interval,
}

/// One instalment of a plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Instalment {
    /// From 1.
    pub number: u32,
    pub due: DateTime<Utc>,
    pub amount: Decimal,
}

/// A line's plan as priced: its deposit, interval and schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PaymentPlan {
    pub deposit: Decimal,
    pub interval: Interval,
    pub schedule: Vec<Instalment>,
}

impl PaymentPlan {
    /// Σ the instalments (the line's price and tax less the deposit).
    pub fn scheduled(&self) -> Decimal {
        round_cents(self.schedule.iter().map(|i| i.amount).sum())
    }
}

/// `amount` split into `count` parts to the cent, largest remainder first:
/// the parts differ by at most a cent and sum to `amount` exactly.
pub fn split(amount: Decimal, count: u32) -> Vec<Decimal> {
    let cents = i128::from(to_minor_units(amount).unwrap_or(0));
    let n = i128::from(count.max(1));
    let (base, remainder) = (cents / n, cents % n);
    (0..n)
        .map(|k| {
            let c = base + i128::from(k < remainder);
            Decimal::new(i64::try_from(c).unwrap_or(i64::MAX), 2)
        })
        .collect()
}

/// The schedule of `request` on a line costing `line_total` (price and
/// tax) that starts at `start`.
pub fn schedule(line_total: Decimal, request: &PlanRequest, start: DateTime<Utc>) -> PaymentPlan {
    let amounts = split(line_total - request.deposit, request.instalments);
    PaymentPlan {
        deposit: round_cents(request.deposit),
        interval: request.interval,
        schedule: amounts
            .into_iter()
            .zip(1..)
            .map(|(amount, number)| Instalment {
                number,
                due: period_start(start, request.interval, number - 1),
                amount,
            })
            .collect(),
    }
}

/// The problems of the plans asked for (fields as in the HTTP body:
/// `items[i].payment_plan.*`), `priced` being the order priced without
/// them. At most one line of an order may be paid by a plan.
pub fn plan_problems(
    lines: &[LineInput],
    priced: &PricedOrder,
    plans: &BTreeMap<Uuid, PlanRequest>,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut seen = 0;
    for (i, line) in lines.iter().enumerate() {
        let Some(plan) = plans.get(&line.line_id) else {
            continue;
        };
        let field = |f: &str| format!("items[{i}].payment_plan{f}");
        seen += 1;
        if seen > 1 {
            errors.push(FieldError::new(
                field(""),
                "at most one line of an order may be paid by a plan",
            ));
            continue;
        }
        let LineTerms::Rental { period, .. } = &line.terms else {
            errors.push(FieldError::new(
                field(""),
                "only rental lines can be paid by a plan",
            ));
            continue;
        };
        if plan.interval == Interval::Year {
            errors.push(FieldError::new(
                field(".interval"),
                "must be \"week\" or \"month\"",
            ));
        }
        if !(1..=MAX_INSTALMENTS).contains(&plan.instalments) {
            errors.push(FieldError::new(
                field(".instalments"),
                format!("must be between 1 and {MAX_INSTALMENTS}"),
            ));
            continue;
        }
        let Some(priced_line) = priced.lines.iter().find(|l| l.line_id == line.line_id) else {
            continue;
        };
        let total = priced_line.subtotal + priced_line.tax;
        // The deposit is what confirms the hold: never nothing.
        if !is_valid_amount(plan.deposit) || plan.deposit <= Decimal::ZERO {
            errors.push(FieldError::new(
                field(".deposit"),
                "must be a positive amount with at most 2 decimal places",
            ));
            continue;
        }
        if plan.deposit >= total {
            errors.push(FieldError::new(
                field(".deposit"),
                format!("must be less than the line's price and tax, {total}"),
            ));
            continue;
        }
        let left = to_minor_units(total - plan.deposit).unwrap_or(0);
        if left < i64::from(plan.instalments) {
            errors.push(FieldError::new(
                field(".instalments"),
                "more instalments than cents left to pay after the deposit",
            ));
            continue;
        }
        if plan.interval != Interval::Year {
            let last = period_start(period.start, plan.interval, plan.instalments - 1);
            if last >= period.end {
                errors.push(FieldError::new(
                    field(".instalments"),
                    format!(
                        "the last instalment would fall due on {}, not before the rental ends",
                        last.to_rfc3339()
                    ),
                ));
            }
        }
    }
    errors
}

/// `priced` with each line's plan scheduled (checked by [`plan_problems`]).
pub fn attach_plans(priced: &mut PricedOrder, plans: &BTreeMap<Uuid, PlanRequest>) {
    for line in &mut priced.lines {
        if let (Some(plan), Some(start)) = (plans.get(&line.line_id), line.start) {
            line.payment_plan = Some(schedule(line.subtotal + line.tax, plan, start));
        }
    }
}

impl PricedOrder {
    /// Σ the instalments of every plan: what is not paid at placement.
    pub fn scheduled(&self) -> Decimal {
        round_cents(
            self.lines
                .iter()
                .filter_map(|l| l.payment_plan.as_ref())
                .map(PaymentPlan::scheduled)
                .sum(),
        )
    }

    /// What confirms the order: its total less the instalments.
    pub fn upfront(&self) -> Decimal {
        round_cents(self.total - self.scheduled())
    }

    /// The line paid by a plan, if any.
    pub fn plan_line(&self) -> Option<&PricedLine> {
        self.lines.iter().find(|l| l.payment_plan.is_some())
    }
}
