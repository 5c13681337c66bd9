//! What a cancellation after payment refunds, line by line (API.md
//! "Rentals", issue 13 item 6): a rental line's price and tax are refunded
//! by the tier of its cancellation policy that the notice (from the
//! cancellation to the line's start) reaches; the part kept is the
//! vendor's revenue less the platform fee on it. Deposits and sale lines
//! are refunded in full. Pure: the Order decides with it and the ledger
//! posts what it says.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::pricing::VendorSplit;
use super::refund::{RefundLine, RefundPart};
use super::{Order, OrderStatus};
use crate::cancellation::{refund_of, refund_percent};
use crate::listing::ListingKind;
use crate::money::round_cents;

/// One line's share of a cancellation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LineRefund {
    pub line_id: Uuid,
    pub vendor_id: Uuid,
    pub refund_percent: u8,
    /// Price, tax and deposit given back.
    pub refund: Decimal,
    /// The price and tax kept by the policy.
    pub kept_subtotal: Decimal,
    pub kept_tax: Decimal,
}

/// A cancellation's refunds and what each vendor keeps.
#[derive(Clone, Debug, PartialEq)]
pub struct Settlement {
    pub lines: Vec<LineRefund>,
    /// Per vendor with something kept: the kept subtotal, the platform fee
    /// on it and the vendor's net.
    pub kept: Vec<VendorSplit>,
    /// Σ kept subtotal + kept tax.
    pub kept_total: Decimal,
}

impl Order {
    /// The refund of each line if the order were cancelled at `at`.
    pub fn cancellation_settlement(&self, at: DateTime<Utc>) -> Settlement {
        let zero = round_cents(Decimal::ZERO);
        let fee_rate = self.rates.map_or(Decimal::ZERO, |r| r.platform_fee_rate);
        let mut lines = Vec::new();
        let mut kept: Vec<VendorSplit> = Vec::new();
        for line in self.lines() {
            let percent = match (line.kind, line.start) {
                (ListingKind::Rental, Some(start)) => {
                    refund_percent(&line.cancellation_policy, start - at)
                }
                _ => 100,
            };
            // Refunds already made count towards what the policy gives
            // back: the vendor keeps at most what the line has left.
            let left = self.line_left(line);
            let refund_subtotal = refund_of(line.subtotal, percent);
            let refund_tax = refund_of(line.tax, percent);
            let kept_subtotal = round_cents(line.subtotal - refund_subtotal)
                .min(left.subtotal)
                .max(zero);
            let kept_tax = round_cents(line.tax - refund_tax).min(left.tax).max(zero);
            lines.push(LineRefund {
                line_id: line.line_id,
                vendor_id: line.vendor_id,
                refund_percent: percent,
                refund: round_cents(
                    left.subtotal - kept_subtotal + left.tax - kept_tax + line.deposit,
                ),
                kept_subtotal,
                kept_tax,
            });
            if kept_subtotal.is_zero() && kept_tax.is_zero() {
                continue;
            }
            match kept.iter_mut().find(|v| v.vendor_id == line.vendor_id) {
                Some(v) => v.subtotal += kept_subtotal,
                None => kept.push(VendorSplit {
                    vendor_id: line.vendor_id,
                    subtotal: kept_subtotal,
                    platform_fee: zero,
                    net: zero,
                    fee_rate: self.vendor_fee_rate(line.vendor_id),
                }),
            }
        }
        for v in &mut kept {
            v.subtotal = round_cents(v.subtotal);
            // The vendor's own rate when its part was priced with one; never
            // more fee or net than refunds left of the part.
            let left = self.part_left(v.vendor_id);
            v.platform_fee = round_cents(v.subtotal * v.fee_rate.unwrap_or(fee_rate))
                .min(left.fee)
                .max(v.subtotal - left.net)
                .max(zero);
            v.net = round_cents(v.subtotal - v.platform_fee);
        }
        let kept_total = round_cents(
            lines
                .iter()
                .map(|l| l.kept_subtotal + l.kept_tax)
                .sum::<Decimal>(),
        );
        Settlement {
            lines,
            kept,
            kept_total,
        }
    }
}

impl Order {
    /// What the cancellation of a confirmed (so invoiced) order gave back
    /// of each vendor's part: each line's price and tax less what its
    /// policy kept, and the fee and net that reverses. One credit note
    /// each (API.md "Money"); deposits are never invoiced, so never
    /// credited. Empty unless the order was confirmed and then cancelled;
    /// parts the policy kept whole are left out.
    pub fn cancellation_credits(&self) -> Vec<RefundPart> {
        let cancelled = matches!(self.status, OrderStatus::Cancelled | OrderStatus::Refunded);
        let Some(priced) = self.priced().filter(|_| self.confirmed && cancelled) else {
            return Vec::new();
        };
        let kept = self.cancellation_kept.as_deref().unwrap_or_default();
        let mut parts = Vec::new();
        for split in &priced.vendors {
            // What refunds left of each line, less what the policy kept.
            let lines: Vec<RefundLine> = priced
                .lines
                .iter()
                .filter(|l| l.vendor_id == split.vendor_id)
                .map(|l| {
                    let left = self.line_left(l);
                    let (kept_subtotal, kept_tax) = self
                        .line_refunds
                        .get(&l.line_id)
                        .map_or((Decimal::ZERO, Decimal::ZERO), |r| {
                            (r.kept_subtotal, r.kept_tax)
                        });
                    RefundLine {
                        line_id: l.line_id,
                        subtotal: round_cents(left.subtotal - kept_subtotal),
                        tax: round_cents(left.tax - kept_tax),
                    }
                })
                .collect();
            let subtotal = round_cents(lines.iter().map(|l| l.subtotal).sum());
            let tax = round_cents(lines.iter().map(|l| l.tax).sum());
            if subtotal + tax <= Decimal::ZERO {
                continue;
            }
            let (kept_fee, kept_net) = kept
                .iter()
                .find(|k| k.vendor_id == split.vendor_id)
                .map_or((Decimal::ZERO, Decimal::ZERO), |k| (k.platform_fee, k.net));
            let left = self.part_left(split.vendor_id);
            let net = round_cents(left.net - kept_net);
            // Cancelling is refused once fulfilment started: the net was
            // still pending.
            parts.push(RefundPart {
                vendor_id: split.vendor_id,
                lines,
                amount: round_cents(subtotal + tax),
                subtotal,
                tax,
                fee_reversed: round_cents(left.fee - kept_fee),
                net_reversed: net,
                from_pending: net,
                from_available: round_cents(Decimal::ZERO),
            });
        }
        parts
    }

    /// The fee rate a vendor's part was priced with, when it had its own.
    fn vendor_fee_rate(&self, vendor_id: Uuid) -> Option<Decimal> {
        self.priced()?
            .vendors
            .iter()
            .find(|v| v.vendor_id == vendor_id)
            .and_then(|v| v.fee_rate)
    }
}
