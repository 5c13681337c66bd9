//! What each order and vendor event posts to the journal: the double
//! entries of a capture, a confirmation, a cancellation, a refund, a
//! return (with a late fee owed), a late fee paid and collected, a damage
//! or late fee credit, earnings made available and a payout.

use super::*;

pub(super) fn apply_order(
    journal: &mut Journal,
    event: &EventEnvelope,
    order_id: Uuid,
    parsed: OrderEvent,
) -> Result<(), Error> {
    let order = Some(order_id);
    if super::reversals::apply_order_money(journal, event, order_id, &parsed)? {
        return Ok(());
    }
    match parsed {
        OrderEvent::OrderPlaced { priced, .. } => {
            let slot = journal.orders.entry(order_id).or_insert(None);
            if slot.is_some() {
                return Err(Error::apply(event, "order already in the ledger"));
            }
            *slot = Some(OrderState {
                priced,
                allocated: false,
                refunded: BTreeMap::new(),
                placed: true,
                tenant: event.tenant.clone(),
                changed: false,
            });
        }
        OrderEvent::PaymentCaptured { amount, .. } => {
            journal.post(
                event,
                order,
                "payment_captured",
                vec![
                    Line::debit(CASH, None, amount),
                    Line::credit(CUSTOMER_FUNDS, None, amount),
                ],
            )?;
        }
        OrderEvent::OrderConfirmed { .. } | OrderEvent::OrderReconfirmed { .. } => {
            let state = journal.order(event, order_id)?;
            if !state.allocated {
                state.allocated = true;
                state.changed = true;
                let priced = state.priced.clone();
                // A lease's instalments are owed, not paid: the receivable
                // stands in for them in the customer's funds.
                super::instalments::post_scheduled(journal, event, order_id, &priced)?;
                journal.post(event, order, "order_confirmed", allocation(&priced))?;
                for split in &priced.vendors {
                    let e = journal.earnings(split.vendor_id);
                    add(&mut e.gross, split.subtotal, event)?;
                    add(&mut e.platform_fees, split.platform_fee, event)?;
                    add(&mut e.pending, split.net, event)?;
                }
            }
        }
        OrderEvent::OrderCancelled { .. } => {
            let state = journal.order(event, order_id)?;
            if state.allocated {
                state.allocated = false;
                state.changed = true;
                let priced = state.priced.clone();
                let refunded = state.refunded.clone();
                // Refunds already gave part back: reverse what is left, and
                // the order leaves the vendor's earnings whole (its refunded
                // net with it).
                let left = priced.less_taken(&refunded);
                journal.post(event, order, "order_cancelled", reversal(&left))?;
                for split in &priced.vendors {
                    let taken = refunded.get(&split.vendor_id).copied().unwrap_or_default();
                    let e = journal.earnings(split.vendor_id);
                    subtract(&mut e.gross, split.subtotal, event)?;
                    subtract(&mut e.platform_fees, split.platform_fee, event)?;
                    subtract(&mut e.pending, split.net - taken.net, event)?;
                    subtract(&mut e.refunded, taken.net, event)?;
                }
            }
        }
        OrderEvent::RefundIssued { amount, .. } => {
            journal.post(
                event,
                order,
                "refund",
                vec![
                    Line::debit(CUSTOMER_FUNDS, None, amount),
                    Line::credit(CASH, None, amount),
                ],
            )?;
        }
        OrderEvent::LineReturned {
            deposit_refunded,
            vendor_id,
            late_fee_owed,
            ..
        } => {
            journal.post(
                event,
                order,
                "deposit_refund",
                vec![
                    Line::debit(DEPOSITS_HELD, None, deposit_refunded),
                    Line::credit(CASH, None, deposit_refunded),
                ],
            )?;
            // The late fee the deposit did not cover: owed by the customer,
            // the vendor's once collected (pending until then).
            if late_fee_owed > Decimal::ZERO {
                let v = Some(vendor_id);
                journal.post(
                    event,
                    order,
                    "late_fee_receivable",
                    vec![
                        Line::debit(CUSTOMER_RECEIVABLE, None, late_fee_owed),
                        Line::credit(vendor_pending(vendor_id), v, late_fee_owed),
                    ],
                )?;
                add(
                    &mut journal.earnings(vendor_id).pending,
                    late_fee_owed,
                    event,
                )?;
            }
        }
        OrderEvent::AdjustmentConfirmed { adjustment, .. } => {
            super::changes::apply_adjustment(journal, event, order_id, &adjustment)?
        }
        OrderEvent::InstalmentPaid { .. } | OrderEvent::InstalmentsWrittenOff { .. } => {
            super::instalments::apply(journal, event, order_id, &parsed)?
        }
        OrderEvent::CancellationCharged { lines, vendors } => {
            let kept_tax = lines.iter().map(|l| l.kept_tax).sum();
            super::changes::apply_kept(journal, event, order_id, kept_tax, &vendors)?
        }
        // A late fee owed, paid: from the payment's cash, or from the
        // unapplied cash an admin applied.
        OrderEvent::LateFeePaid {
            amount,
            from_unapplied,
            ..
        } => {
            let source = if from_unapplied {
                super::reversals::UNAPPLIED
            } else {
                CASH
            };
            journal.post(
                event,
                order,
                "late_fee_paid",
                vec![
                    Line::debit(source, None, amount),
                    Line::credit(CUSTOMER_RECEIVABLE, None, amount),
                ],
            )?;
        }
        _ => {}
    }
    Ok(())
}

pub(super) fn apply_vendor(
    journal: &mut Journal,
    event: &EventEnvelope,
    vendor_id: Uuid,
    parsed: VendorEvent,
) -> Result<(), Error> {
    let v = Some(vendor_id);
    if super::reversals::apply_vendor_money(journal, event, vendor_id, &parsed)? {
        return Ok(());
    }
    match parsed {
        VendorEvent::VendorRegistered { .. } => {
            journal.earnings(vendor_id);
        }
        VendorEvent::EarningsMadeAvailable { order_id, amount } => {
            journal.post(
                event,
                Some(order_id),
                "earnings_available",
                vec![
                    Line::debit(vendor_pending(vendor_id), v, amount),
                    Line::credit(vendor_available(vendor_id), v, amount),
                ],
            )?;
            let e = journal.earnings(vendor_id);
            subtract(&mut e.pending, amount, event)?;
            add(&mut e.available, amount, event)?;
        }
        VendorEvent::DamageCredited {
            order_id, amount, ..
        } => {
            journal.post(
                event,
                Some(order_id),
                "damage_credit",
                vec![
                    Line::debit(DEPOSITS_HELD, v, amount),
                    Line::credit(vendor_available(vendor_id), v, amount),
                ],
            )?;
            let e = journal.earnings(vendor_id);
            add(&mut e.available, amount, event)?;
            add(&mut e.damage_credits, amount, event)?;
        }
        // The late fee's part taken from the deposit.
        // The customer paid the late fee it owed: the vendor's pending
        // late fee is available.
        VendorEvent::LateFeeCollected {
            order_id, amount, ..
        } => {
            journal.post(
                event,
                Some(order_id),
                "late_fee_collected",
                vec![
                    Line::debit(vendor_pending(vendor_id), v, amount),
                    Line::credit(vendor_available(vendor_id), v, amount),
                ],
            )?;
            let e = journal.earnings(vendor_id);
            subtract(&mut e.pending, amount, event)?;
            add(&mut e.available, amount, event)?;
        }
        VendorEvent::LateFeeCredited {
            order_id, amount, ..
        } => {
            journal.post(
                event,
                Some(order_id),
                "late_fee_credit",
                vec![
                    Line::debit(DEPOSITS_HELD, v, amount),
                    Line::credit(vendor_available(vendor_id), v, amount),
                ],
            )?;
            add(&mut journal.earnings(vendor_id).available, amount, event)?;
        }
        VendorEvent::PayoutRecorded {
            payout_id,
            amount,
            recorded_at,
        } => {
            journal.post(
                event,
                None,
                "payout",
                vec![
                    Line::debit(vendor_available(vendor_id), v, amount),
                    Line::credit(PAYOUTS_IN_TRANSIT, v, amount),
                ],
            )?;
            let e = journal.earnings(vendor_id);
            subtract(&mut e.available, amount, event)?;
            add(&mut e.paid_out, amount, event)?;
            journal.payouts.changes.push(payouts::Change::Requested {
                tenant: event.tenant.clone(),
                payout_id,
                vendor_id,
                amount,
                at: recorded_at,
                position: event.position,
            });
        }
        VendorEvent::FeeRateSet { .. } => {}
        VendorEvent::PayoutPaid {
            payout_id,
            amount,
            paid_at,
        } => {
            journal.post(
                event,
                None,
                "payout_paid",
                vec![
                    Line::debit(PAYOUTS_IN_TRANSIT, v, amount),
                    Line::credit(CASH, v, amount),
                ],
            )?;
            journal.payouts.changes.push(payouts::Change::Settled {
                payout_id,
                status: domain::PayoutStatus::Paid,
                reason: None,
                at: paid_at,
                position: event.position,
            });
        }
        VendorEvent::PayoutFailed {
            payout_id,
            amount,
            reason,
            failed_at,
        } => {
            journal.post(
                event,
                None,
                "payout_failed",
                vec![
                    Line::debit(PAYOUTS_IN_TRANSIT, v, amount),
                    Line::credit(vendor_available(vendor_id), v, amount),
                ],
            )?;
            let e = journal.earnings(vendor_id);
            add(&mut e.available, amount, event)?;
            subtract(&mut e.paid_out, amount, event)?;
            journal.payouts.changes.push(payouts::Change::Settled {
                payout_id,
                status: domain::PayoutStatus::Failed,
                reason: Some(reason),
                at: failed_at,
                position: event.position,
            });
        }
        _ => {}
    }
    Ok(())
}
