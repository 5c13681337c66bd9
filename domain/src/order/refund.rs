//! Refunds (API.md "Money"): full or partial, by amount or by lines, never
//! above what was captured less what was refunded, and never above what
//! the lines have left. A refund reverses each line's subtotal and tax and,
//! per vendor part, the platform fee and the vendor's net pro rata to the
//! cent: fee reversed = round(goods refunded × fee ÷ vendor subtotal), net
//! = the rest; the refund that empties a part reverses exactly what the part
//! has left. The net comes from the part's pending balance while the part is
//! not fulfilled, else from the vendor's available balance (the Vendor
//! aggregate turns what its available balance cannot cover into a
//! receivable).
//!
//! The allocation here is shared with disputes (`dispute.rs`), whose open
//! amount is held out of what lines have left until the dispute closes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::pricing::{PricedLine, PricedOrder};
use super::status::status_name;
use super::{Order, OrderEvent as E, OrderStatus};
use crate::error::{DomainError, FieldError};
use crate::money::{is_valid_order_amount, to_minor_units};
use crate::personal::PersonalText;

type Decision = Result<Vec<E>, DomainError>;

/// Longest reason a refund may give.
pub const MAX_REFUND_REASON: usize = 500;

/// A refund's reason, checked in clear (the edge checks it before it seals
/// it under the customer's key; docs/PRIVACY.md): trimmed, not empty, at
/// most [`MAX_REFUND_REASON`] characters.
pub fn check_refund_reason(reason: &str) -> Result<String, FieldError> {
    let reason = reason.trim();
    if reason.is_empty() {
        Err(FieldError::new("reason", "must not be empty"))
    } else if reason.chars().count() > MAX_REFUND_REASON {
        Err(FieldError::new(
            "reason",
            format!("must be at most {MAX_REFUND_REASON} characters"),
        ))
    } else {
        Ok(reason.to_owned())
    }
}

/// What a refund (or a dispute) takes of one line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefundLine {
    pub line_id: Uuid,
    pub subtotal: Decimal,
    pub tax: Decimal,
}

/// What a refund (or a dispute) takes of one vendor's part: everything a
/// credit note needs. `amount` = `subtotal` + `tax`; `subtotal` =
/// `fee_reversed` + `net_reversed`; `net_reversed` = `from_pending` +
/// `from_available`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefundPart {
    pub vendor_id: Uuid,
    pub lines: Vec<RefundLine>,
    pub amount: Decimal,
    pub subtotal: Decimal,
    pub tax: Decimal,
    pub fee_reversed: Decimal,
    pub net_reversed: Decimal,
    /// The part was not fulfilled: its net still pending.
    pub from_pending: Decimal,
    /// The part was fulfilled: its net was made available to the vendor.
    pub from_available: Decimal,
}

impl PricedOrder {
    /// The order as it stands once refunds took `taken` of its vendor
    /// parts: each part's and the order's sums less what was given back
    /// (lines are left as priced). What a cancellation after refunds
    /// reverses in the ledger.
    pub fn less_taken(&self, taken: &BTreeMap<Uuid, Taken>) -> PricedOrder {
        let mut left = self.clone();
        for (vendor_id, t) in taken {
            if let Some(v) = left.vendors.iter_mut().find(|v| v.vendor_id == *vendor_id) {
                v.subtotal = crate::money::round_cents(v.subtotal - t.subtotal);
                v.platform_fee = crate::money::round_cents(v.platform_fee - t.fee);
                v.net = crate::money::round_cents(v.net - t.net);
            }
            left.subtotal = crate::money::round_cents(left.subtotal - t.subtotal);
            left.tax = crate::money::round_cents(left.tax - t.tax);
            left.total = crate::money::round_cents(left.total - t.subtotal - t.tax);
        }
        left
    }
}

/// Sums taken from a line (`fee`, `net` zero) or a part.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Taken {
    pub subtotal: Decimal,
    pub tax: Decimal,
    #[serde(default)]
    pub fee: Decimal,
    #[serde(default)]
    pub net: Decimal,
}

impl Taken {
    /// Adds what a refund (or a lost dispute) took of a vendor's part.
    pub fn add_part(&mut self, part: &RefundPart) {
        self.subtotal += part.subtotal;
        self.tax += part.tax;
        self.fee += part.fee_reversed;
        self.net += part.net_reversed;
    }
    pub(super) fn add_line(&mut self, line: &RefundLine) {
        self.subtotal += line.subtotal;
        self.tax += line.tax;
    }
}

/// Adds every line and part of `parts` into the per-line and per-part sums.
pub(super) fn take(
    lines: &mut BTreeMap<Uuid, Taken>,
    parts_taken: &mut BTreeMap<Uuid, Taken>,
    parts: &[RefundPart],
) {
    for part in parts {
        parts_taken
            .entry(part.vendor_id)
            .or_default()
            .add_part(part);
        for line in &part.lines {
            lines.entry(line.line_id).or_default().add_line(line);
        }
    }
}

fn cents(x: Decimal) -> i128 {
    i128::from(to_minor_units(x).unwrap_or(0))
}

fn amount(c: i128) -> Decimal {
    // Every figure here is at most an order's total, far inside i64.
    Decimal::new(i64::try_from(c).unwrap_or(i64::MAX), 2)
}

/// round(a × b ÷ c), half away from zero, for non-negative figures.
fn pro_rata(a: i128, b: i128, c: i128) -> i128 {
    if c == 0 {
        return 0;
    }
    (2 * a * b + c) / (2 * c)
}

/// Who asks for a refund, and of what.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefundRequest {
    pub refund_id: Uuid,
    /// None: everything the chosen lines have left.
    pub amount: Option<Decimal>,
    /// None: every line (of `vendor_id`, when given).
    pub lines: Option<Vec<Uuid>>,
    /// A vendor refunding its own part: only its lines.
    pub vendor_id: Option<Uuid>,
    /// Personal (sealed under the customer's key) when a person wrote it.
    pub reason: PersonalText,
    /// A refund made at the payment provider (`charge.refunded`).
    pub provider_refund_id: Option<String>,
    pub at: DateTime<Utc>,
}

impl Order {
    /// What neither a refund, a lost dispute nor an open dispute took of a
    /// line.
    pub fn line_left(&self, line: &PricedLine) -> Taken {
        let mut taken = self
            .line_taken
            .get(&line.line_id)
            .copied()
            .unwrap_or_default();
        for dispute in self.disputes.values().filter(|d| d.open) {
            for l in dispute.parts.iter().flat_map(|p| &p.lines) {
                if l.line_id == line.line_id {
                    taken.add_line(l);
                }
            }
        }
        Taken {
            subtotal: line.subtotal - taken.subtotal,
            tax: line.tax - taken.tax,
            ..Taken::default()
        }
    }

    /// What neither a refund, a lost dispute nor an open dispute took of a
    /// vendor's part (subtotal, tax, fee, net).
    pub fn part_left(&self, vendor_id: Uuid) -> Taken {
        let Some(split) = self.priced.as_ref().and_then(|p| p.vendor(vendor_id)) else {
            return Taken::default();
        };
        let mut taken = self.part_taken.get(&vendor_id).copied().unwrap_or_default();
        for dispute in self.disputes.values().filter(|d| d.open) {
            for p in dispute.parts.iter().filter(|p| p.vendor_id == vendor_id) {
                taken.add_part(p);
            }
        }
        let tax: Decimal = self
            .lines()
            .filter(|l| l.vendor_id == vendor_id)
            .map(|l| l.tax)
            .sum();
        Taken {
            subtotal: split.subtotal - taken.subtotal,
            tax: tax - taken.tax,
            fee: split.platform_fee - taken.fee,
            net: split.net - taken.net,
        }
    }

    /// The vendor's net of a part not yet taken by refunds, lost or open
    /// disputes: what its fulfilment makes available.
    pub fn part_net_left(&self, vendor_id: Uuid) -> Decimal {
        self.part_left(vendor_id).net
    }

    /// What a fulfilled part made available to its vendor.
    pub fn fulfilled_net(&self, vendor_id: Uuid) -> Option<Decimal> {
        self.fulfilled_net.get(&vendor_id).copied()
    }

    /// Captured, less refunded, less lost and open disputes: the most any
    /// refund may take.
    pub fn refundable(&self) -> Decimal {
        self.captured - self.refunded - self.disputes_lost - self.disputes_open()
    }

    /// The amount of the disputes still open.
    pub fn disputes_open(&self) -> Decimal {
        self.disputes
            .values()
            .filter(|d| d.open)
            .map(|d| d.amount)
            .sum()
    }

    /// Σ what refunds (not cancellations) gave back.
    pub fn refunds_recorded(&self) -> usize {
        self.refund_ids.len()
    }

    /// Spreads `total` over `targets` by what each has left (largest
    /// remainder, to the cent), then per line into tax and subtotal, then
    /// per vendor into fee and net (API.md's rounding rule). `total` must
    /// be at most what the targets have left.
    pub(super) fn allocate(&self, total: Decimal, targets: &[&PricedLine]) -> Vec<RefundPart> {
        let total = cents(total);
        let lefts: Vec<Taken> = targets.iter().map(|l| self.line_left(l)).collect();
        let weights: Vec<i128> = lefts.iter().map(|t| cents(t.subtotal + t.tax)).collect();
        let sum: i128 = weights.iter().sum();
        let mut shares: Vec<i128> = Vec::with_capacity(weights.len());
        let mut remainders: Vec<(i128, usize)> = Vec::with_capacity(weights.len());
        for (i, w) in weights.iter().enumerate() {
            let (share, rem) = if sum == 0 {
                (0, 0)
            } else {
                (total * w / sum, total * w % sum)
            };
            shares.push(share);
            remainders.push((rem, i));
        }
        let mut leftover = total - shares.iter().sum::<i128>();
        // Largest remainder first, ties in line order.
        remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, i) in remainders {
            if leftover <= 0 {
                break;
            }
            if shares[i] < weights[i] {
                shares[i] += 1;
                leftover -= 1;
            }
        }
        let mut parts: Vec<RefundPart> = Vec::new();
        let vendor_order = self.vendor_ids();
        for vendor_id in vendor_order {
            let mut lines = Vec::new();
            let (mut goods, mut tax) = (0i128, 0i128);
            for (i, line) in targets.iter().enumerate() {
                if line.vendor_id != vendor_id || shares[i] == 0 {
                    continue;
                }
                let (share, w) = (shares[i], weights[i]);
                let (sub_left, tax_left) = (cents(lefts[i].subtotal), cents(lefts[i].tax));
                let line_tax = if share == w {
                    tax_left
                } else {
                    pro_rata(share, tax_left, w)
                        .min(tax_left)
                        .max(share - sub_left)
                        .max(0)
                };
                let line_goods = share - line_tax;
                goods += line_goods;
                tax += line_tax;
                lines.push(RefundLine {
                    line_id: line.line_id,
                    subtotal: amount(line_goods),
                    tax: amount(line_tax),
                });
            }
            if lines.is_empty() {
                continue;
            }
            let left = self.part_left(vendor_id);
            let split = self.priced.as_ref().and_then(|p| p.vendor(vendor_id));
            let (fee_left, net_left) = (cents(left.fee), cents(left.net));
            let fee = if goods == cents(left.subtotal) {
                fee_left
            } else {
                let (fee_all, subtotal_all) = split
                    .map(|s| (cents(s.platform_fee), cents(s.subtotal)))
                    .unwrap_or_default();
                pro_rata(goods, fee_all, subtotal_all)
                    .min(fee_left)
                    .min(goods)
                    .max(goods - net_left)
                    .max(0)
            };
            let net = goods - fee;
            let fulfilled = self.fulfilled_vendors.contains(&vendor_id);
            parts.push(RefundPart {
                vendor_id,
                lines,
                amount: amount(goods + tax),
                subtotal: amount(goods),
                tax: amount(tax),
                fee_reversed: amount(fee),
                net_reversed: amount(net),
                from_pending: amount(if fulfilled { 0 } else { net }),
                from_available: amount(if fulfilled { net } else { 0 }),
            });
        }
        parts
    }

    /// The lines a refund or dispute may take from: `lines` (checked to be
    /// the order's, and `vendor_id`'s when given), else every line of
    /// `vendor_id`, else every line.
    pub(super) fn targets(
        &self,
        lines: Option<&[Uuid]>,
        vendor_id: Option<Uuid>,
    ) -> Result<Vec<&PricedLine>, DomainError> {
        let Some(ids) = lines else {
            return Ok(self
                .lines()
                .filter(|l| vendor_id.is_none_or(|v| l.vendor_id == v))
                .collect());
        };
        let mut errors = Vec::new();
        if ids.is_empty() {
            errors.push(FieldError::new("lines", "must name at least one line"));
        }
        let mut chosen: Vec<&PricedLine> = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            match self.line(*id) {
                None => errors.push(FieldError::new(
                    format!("lines[{i}]"),
                    "not a line of this order",
                )),
                Some(l) if vendor_id.is_some_and(|v| v != l.vendor_id) => errors.push(
                    FieldError::new(format!("lines[{i}]"), "not a line of this vendor"),
                ),
                Some(l) if chosen.iter().any(|c| c.line_id == l.line_id) => {
                    errors.push(FieldError::new(format!("lines[{i}]"), "named twice"))
                }
                Some(l) => chosen.push(l),
            }
        }
        DomainError::check(errors)?;
        Ok(chosen)
    }

    /// A paid order gives money back (API.md "Money").
    pub(super) fn refund(&self, request: RefundRequest) -> Decision {
        if self.refund_ids.contains(&request.refund_id) {
            return Ok(vec![]);
        }
        if let Some(provider) = &request.provider_refund_id {
            if self.provider_refunds.contains_key(provider) {
                return Ok(vec![]);
            }
        }
        let mut errors = Vec::new();
        // A sealed reason was checked by the edge before it was sealed.
        let reason = match request.reason.clear_text().map(check_refund_reason) {
            None => request.reason.clone(),
            Some(Ok(clear)) => PersonalText::from(clear),
            Some(Err(error)) => {
                errors.push(error);
                PersonalText::default()
            }
        };
        if let Some(a) = request.amount {
            if !is_valid_order_amount(a) || a <= Decimal::ZERO {
                errors.push(FieldError::new(
                    "amount",
                    "must be a positive amount with at most 2 decimal places",
                ));
            }
        }
        let targets = match self.targets(request.lines.as_deref(), request.vendor_id) {
            Ok(t) => t,
            Err(DomainError::Validation { errors: found }) => {
                errors.extend(found);
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        DomainError::check(errors)?;
        if !matches!(self.status, OrderStatus::Confirmed | OrderStatus::Completed) {
            return Err(DomainError::invalid_state(format!(
                "an order that is {} has no captured payment to refund",
                status_name(self.status)
            )));
        }
        let left: Decimal = targets
            .iter()
            .map(|l| {
                let t = self.line_left(l);
                t.subtotal + t.tax
            })
            .sum();
        let amount = request.amount.unwrap_or(left);
        if amount <= Decimal::ZERO {
            return Err(DomainError::invalid_state(
                "nothing is left to refund of these lines",
            ));
        }
        let refundable = self.refundable();
        if amount > refundable {
            return Err(DomainError::invalid_state(format!(
                "the refund {amount} is above what was captured less what was refunded, {refundable}"
            )));
        }
        if amount > left {
            return Err(DomainError::invalid_state(format!(
                "the refund {amount} is above what the lines have left to refund, {left}"
            )));
        }
        let parts = self.allocate(amount, &targets);
        Ok(vec![E::RefundRecorded {
            refund_id: request.refund_id,
            order_id: self.order_id.unwrap_or_default(),
            amount: crate::money::round_cents(amount),
            reason,
            provider_refund_id: request.provider_refund_id,
            parts,
            at: request.at,
        }])
    }

    /// A refund made at the provider (`charge.refunded`): recorded once per
    /// provider refund id; matched to the refund of ours it names, else
    /// recorded as a new refund of `amount` over the whole order.
    pub(super) fn record_provider_refund(
        &self,
        provider_refund_id: String,
        matches: Option<Uuid>,
        new_refund_id: Uuid,
        amount: Decimal,
        at: DateTime<Utc>,
    ) -> Decision {
        if self.provider_refunds.contains_key(&provider_refund_id) {
            return Ok(vec![]);
        }
        if let Some(refund_id) = matches.filter(|id| self.refund_ids.contains(id)) {
            return Ok(vec![E::ProviderRefundMatched {
                refund_id,
                provider_refund_id,
            }]);
        }
        self.refund(RefundRequest {
            refund_id: new_refund_id,
            amount: Some(amount),
            lines: None,
            vendor_id: None,
            reason: "refunded at the payment provider".into(),
            provider_refund_id: Some(provider_refund_id),
            at,
        })
    }
}
