//! Orders: each order as placed, with its status, per-vendor parts and
//! line statuses, payments and refunds (`rm_orders`, one JSON document per
//! order), and which vendors take part in it (`rm_order_vendors`).

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use domain::{ListingKind, OrderEvent};
use event_log::{Aggregate, Event};
use futures::future::BoxFuture;
use ledger_nats::EventEnvelope;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Consumer;
use crate::Error;

mod lease;
mod view;

pub use view::*;

pub const NAME: &str = "orders";

pub struct Orders;

impl Consumer for Orders {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["rm_orders", "rm_order_vendors"]
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [EventEnvelope],
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            // Each touched order is read once and written once per batch:
            // one statement reads them all, two write them back.
            let mut decoded = Vec::new();
            let mut order_ids = Vec::new();
            for event in events
                .iter()
                .filter(|e| e.aggregate() == Some(Aggregate::Order))
            {
                let order_id =
                    Uuid::parse_str(&event.aggregate_id).map_err(|e| Error::apply(event, e))?;
                let Some(Event::Order(parsed)) = crate::decode(event, &[Aggregate::Order])? else {
                    continue;
                };
                if !matches!(parsed, OrderEvent::OrderPlaced { .. }) {
                    order_ids.push(order_id);
                }
                decoded.push((event, order_id, parsed));
            }
            if decoded.is_empty() {
                return Ok(());
            }
            order_ids.sort_unstable();
            order_ids.dedup();
            let mut stored: HashMap<Uuid, serde_json::Value> = HashMap::new();
            if !order_ids.is_empty() {
                let rows: Vec<(Uuid, serde_json::Value)> = sqlx::query_as(
                    "SELECT order_id, document FROM rm_orders WHERE order_id = ANY($1)",
                )
                .bind(&order_ids)
                .fetch_all(&mut *tx)
                .await?;
                stored.extend(rows);
            }
            // Each order with whether it is new and its tenant.
            let mut touched: HashMap<Uuid, (OrderView, bool, &str)> = HashMap::new();
            for (event, order_id, parsed) in decoded {
                if let OrderEvent::OrderPlaced {
                    customer_id,
                    currency,
                    priced,
                    hold_expires_at,
                    placed_at,
                    ..
                } = parsed
                {
                    let view = OrderView {
                        order_id,
                        customer_id,
                        status: "placed".into(),
                        currency,
                        subtotal: priced.subtotal,
                        tax: priced.tax,
                        deposit: priced.deposit,
                        total: priced.total,
                        placed_at,
                        hold_expires_at,
                        cancel_reason: None,
                        lines: priced
                            .lines
                            .iter()
                            .map(|l| LineView {
                                line_id: l.line_id,
                                listing_id: l.listing_id,
                                vendor_id: l.vendor_id,
                                kind: l.kind,
                                start: l.start,
                                end: l.end,
                                time_zone: l.time_zone.map(|tz| tz.name().to_owned()),
                                local_start: l.local_start,
                                local_end: l.local_end,
                                quantity: l.quantity,
                                billable_units: l.billable_units,
                                unit_price: l.unit_price,
                                subtotal: l.subtotal,
                                tax: l.tax,
                                deposit: l.deposit,
                                status: "pending".into(),
                                returned_at: None,
                                deposit_refunded: None,
                                damage_withheld: None,
                                late_fee: None,
                                refund: None,
                                late_fee_owed: None,
                            })
                            .collect(),
                        vendors: priced
                            .vendors
                            .iter()
                            .map(|v| VendorPartView {
                                vendor_id: v.vendor_id,
                                subtotal: v.subtotal,
                                platform_fee: v.platform_fee,
                                net: v.net,
                                status: "pending".into(),
                            })
                            .collect(),
                        payments: Vec::new(),
                        refunds: Vec::new(),
                        disputes: Vec::new(),
                        adjustments: Vec::new(),
                        late_fee_owed: Decimal::ZERO,
                        late_fee_paid: Decimal::ZERO,
                        lease: LeaseView::placed(&priced),
                        updated_at: event.recorded_at,
                        position: event.position,
                    };
                    touched.insert(order_id, (view, true, event.tenant.as_str()));
                    continue;
                }
                let (view, _, _) = match touched.entry(order_id) {
                    Entry::Occupied(entry) => entry.into_mut(),
                    Entry::Vacant(entry) => {
                        let document = stored
                            .remove(&order_id)
                            .ok_or_else(|| Error::apply(event, "order not in the read model"))?;
                        let view: OrderView =
                            serde_json::from_value(document).map_err(|e| Error::apply(event, e))?;
                        entry.insert((view, false, event.tenant.as_str()))
                    }
                };
                apply(view, parsed, event);
                view.updated_at = event.recorded_at;
                view.position = event.position;
            }
            write(tx, touched).await
        })
    }
}

async fn write(
    tx: &mut PgConnection,
    touched: HashMap<Uuid, (OrderView, bool, &str)>,
) -> Result<(), Error> {
    let mut rows = Vec::with_capacity(touched.len());
    let mut tenants = Vec::with_capacity(touched.len());
    let (mut part_orders, mut part_vendors, mut part_tenants) =
        (Vec::new(), Vec::new(), Vec::new());
    for (order_id, (view, new, tenant)) in touched {
        let document = serde_json::to_value(&view)
            .map_err(|e| Error::Other(format!("order {order_id}: {e}")))?;
        if new {
            for part in &view.vendors {
                part_orders.push(order_id);
                part_vendors.push(part.vendor_id);
                part_tenants.push(tenant);
            }
        }
        tenants.push(tenant);
        rows.push((view, document));
    }
    sqlx::query(
        "INSERT INTO rm_orders (order_id, customer_id, status, currency, total, placed_at,
                                updated_at, document, tenant)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::numeric[],
                              $6::timestamptz[], $7::timestamptz[], $8::jsonb[], $9::text[])
         ON CONFLICT (order_id) DO UPDATE
            SET status = EXCLUDED.status, updated_at = EXCLUDED.updated_at,
                document = EXCLUDED.document",
    )
    .bind(rows.iter().map(|(v, _)| v.order_id).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|(v, _)| v.customer_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|(v, _)| v.status.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|(v, _)| v.currency.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|(v, _)| v.total).collect::<Vec<_>>())
    .bind(rows.iter().map(|(v, _)| v.placed_at).collect::<Vec<_>>())
    .bind(rows.iter().map(|(v, _)| v.updated_at).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, d)| d).collect::<Vec<_>>())
    .bind(&tenants)
    .execute(&mut *tx)
    .await?;
    if !part_orders.is_empty() {
        sqlx::query(
            "INSERT INTO rm_order_vendors (order_id, vendor_id, tenant)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[]) ON CONFLICT DO NOTHING",
        )
        .bind(&part_orders)
        .bind(&part_vendors)
        .bind(&part_tenants)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// One event's effect on the view; mirrors the Order aggregate.
fn apply(view: &mut OrderView, event: OrderEvent, envelope: &EventEnvelope) {
    let at = envelope.recorded_at;
    match event {
        OrderEvent::OrderPlaced { .. } => {}
        OrderEvent::PaymentFailed {
            payment_id,
            intent_id,
            reason,
            ..
        } => view.payments.push(PaymentView {
            payment_id,
            intent_id,
            outcome: "failed".into(),
            amount: None,
            reason: Some(reason),
            unapplied: None,
            at,
        }),
        OrderEvent::PaymentAmountMismatch {
            payment_id,
            intent_id,
            expected_minor,
            received_minor,
            ..
        } => view.payments.push(PaymentView {
            payment_id,
            intent_id,
            outcome: "amount_mismatch".into(),
            amount: Some(Decimal::new(received_minor, 2)),
            reason: Some(format!(
                "expected {} received {}",
                Decimal::new(expected_minor, 2),
                Decimal::new(received_minor, 2)
            )),
            unapplied: None,
            at,
        }),
        OrderEvent::PaymentCaptured {
            payment_id,
            intent_id,
            amount,
        } => view.payments.push(PaymentView {
            payment_id,
            intent_id,
            outcome: "captured".into(),
            amount: Some(amount),
            reason: None,
            unapplied: None,
            at,
        }),
        OrderEvent::OrderConfirmed { .. } | OrderEvent::OrderReconfirmed { .. } => {
            view.status = "confirmed".into();
            view.cancel_reason = None;
            if let Some(lease) = view.lease.as_mut().filter(|l| l.status == "pending") {
                lease.status = "active".into();
            }
        }
        OrderEvent::RefundIssued { amount, reason } => {
            view.refunds.push(RefundView {
                amount,
                reason,
                at,
                refund_id: None,
                provider_refund_id: None,
                parts: Vec::new(),
            });
            if view.status == "cancelled" {
                view.status = "refunded".into();
            }
        }
        OrderEvent::OrderCancelled { reason, .. } => {
            view.status = "cancelled".into();
            view.cancel_reason = reason;
        }
        OrderEvent::PartShipped { vendor_id, .. } => {
            set_sale_lines(view, vendor_id, "shipped");
        }
        OrderEvent::PartDelivered { vendor_id, .. } => {
            set_sale_lines(view, vendor_id, "delivered");
        }
        OrderEvent::LineOverdue { line_id, .. } => {
            if let Some(line) = view.lines.iter_mut().find(|l| l.line_id == line_id) {
                line.status = "overdue".into();
            }
        }
        OrderEvent::LinePickedUp { line_id, .. } => {
            if let Some(line) = view.lines.iter_mut().find(|l| l.line_id == line_id) {
                line.status = "picked_up".into();
                mark_in_progress(&mut view.vendors, line.vendor_id);
            }
        }
        OrderEvent::LineReturned {
            line_id,
            returned_at,
            deposit_refunded,
            damage_withheld,
            late_fee,
            late_fee_owed,
            refund,
            ..
        } => {
            view.late_fee_owed += late_fee_owed;
            if let Some(line) = view.lines.iter_mut().find(|l| l.line_id == line_id) {
                if !late_fee_owed.is_zero() {
                    line.late_fee_owed = Some(late_fee_owed);
                }
                line.status = "returned".into();
                line.returned_at = Some(returned_at);
                line.deposit_refunded = Some(deposit_refunded);
                line.damage_withheld = Some(damage_withheld);
                line.late_fee = (!late_fee.is_zero()).then_some(late_fee);
                if !refund.is_zero() {
                    line.refund = Some(refund);
                }
            }
        }
        OrderEvent::VendorPartFulfilled { vendor_id, .. } => {
            if let Some(part) = view.vendors.iter_mut().find(|p| p.vendor_id == vendor_id) {
                part.status = "fulfilled".into();
            }
        }
        OrderEvent::OrderCompleted { .. } => view.status = "completed".into(),
        OrderEvent::RefundRecorded {
            refund_id,
            amount,
            reason,
            provider_refund_id,
            parts,
            ..
        } => view.refunds.push(RefundView {
            amount,
            reason,
            at,
            refund_id: Some(refund_id),
            provider_refund_id,
            parts,
        }),
        OrderEvent::ProviderRefundMatched {
            refund_id,
            provider_refund_id,
        } => {
            if let Some(r) = view
                .refunds
                .iter_mut()
                .find(|r| r.refund_id == Some(refund_id))
            {
                r.provider_refund_id = Some(provider_refund_id);
            }
        }
        OrderEvent::PaymentUnapplied {
            payment_id,
            intent_id,
            amount,
        } => view.payments.push(PaymentView {
            payment_id,
            intent_id,
            outcome: "unapplied".into(),
            amount: Some(amount),
            reason: None,
            unapplied: Some(amount),
            at,
        }),
        OrderEvent::UnappliedPaymentApplied { payment_id, amount } => {
            settle_unapplied(view, &payment_id, amount, "applied")
        }
        OrderEvent::UnappliedPaymentRefunded { payment_id, amount } => {
            settle_unapplied(view, &payment_id, amount, "refunded")
        }
        OrderEvent::LateFeePaid {
            payment_id,
            intent_id,
            amount,
            from_unapplied,
            parts,
            ..
        } => {
            view.late_fee_owed -= amount;
            view.late_fee_paid += amount;
            for part in &parts {
                if let Some(line) = view.lines.iter_mut().find(|l| l.line_id == part.line_id) {
                    line.late_fee_owed = line.late_fee_owed.map(|owed| owed - part.amount);
                }
            }
            if from_unapplied {
                settle_unapplied(view, &payment_id, amount, "applied");
            } else {
                view.payments.push(PaymentView {
                    payment_id,
                    intent_id,
                    outcome: "late_fee".into(),
                    amount: Some(amount),
                    reason: None,
                    unapplied: None,
                    at,
                });
            }
        }
        OrderEvent::DisputeOpened {
            dispute_id, amount, ..
        } => view.disputes.push(DisputeView {
            dispute_id,
            amount,
            status: "open".into(),
            opened_at: at,
            closed_at: None,
        }),
        OrderEvent::DisputeClosed {
            dispute_id, won, ..
        } => {
            if let Some(d) = view
                .disputes
                .iter_mut()
                .find(|d| d.dispute_id == dispute_id)
            {
                d.status = if won { "won" } else { "lost" }.into();
                d.closed_at = Some(at);
            }
        }
        OrderEvent::AdjustmentRequested { adjustment, at } => {
            view.adjustments.push(AdjustmentView {
                adjustment_id: adjustment.adjustment_id,
                line_id: adjustment.line_id,
                kind: match adjustment.kind {
                    domain::AdjustmentKind::Extension => "extension",
                    domain::AdjustmentKind::Reschedule => "reschedule",
                }
                .into(),
                start: adjustment.start,
                end: adjustment.end,
                amount_due: adjustment.amount_due,
                hold_expires_at: adjustment.hold_expires_at,
                status: "awaiting_payment".into(),
                at,
            })
        }
        OrderEvent::AdjustmentPaid { adjustment_id, .. } => {
            set_adjustment(view, adjustment_id, "paid")
        }
        OrderEvent::AdjustmentConfirmed { adjustment, .. } => {
            set_adjustment(view, adjustment.adjustment_id, "confirmed");
            apply_adjustment(view, &adjustment);
        }
        OrderEvent::AdjustmentLapsed { adjustment_id, .. } => {
            set_adjustment(view, adjustment_id, "lapsed")
        }
        event @ (OrderEvent::InstalmentPaid { .. }
        | OrderEvent::InstalmentOverdue { .. }
        | OrderEvent::LeasePastDue { .. }
        | OrderEvent::LeaseSuspended { .. }
        | OrderEvent::LeaseReinstated { .. }
        | OrderEvent::LeaseTerminated { .. }
        | OrderEvent::InstalmentsWrittenOff { .. }) => lease::apply(view, event, at),
        OrderEvent::CancellationCharged { lines, .. } => {
            for refunded in lines {
                if let Some(line) = view
                    .lines
                    .iter_mut()
                    .find(|l| l.line_id == refunded.line_id)
                {
                    line.refund = Some(refunded.refund);
                }
            }
        }
    }
}

fn set_adjustment(view: &mut OrderView, adjustment_id: Uuid, status: &str) {
    if let Some(a) = view
        .adjustments
        .iter_mut()
        .find(|a| a.adjustment_id == adjustment_id)
    {
        status.clone_into(&mut a.status);
    }
}

/// The line, its vendor's part and the order after a confirmed change, as
/// the Order aggregate has them (`PricedOrder::apply_adjustment`).
fn apply_adjustment(view: &mut OrderView, a: &domain::Adjustment) {
    if let Some(line) = view.lines.iter_mut().find(|l| l.line_id == a.line_id) {
        line.start = Some(a.start);
        line.end = Some(a.end);
        if let Some(tz) = line.time_zone.as_deref().and_then(|z| z.parse().ok()) {
            line.local_start = Some(domain::schedule::local(a.start, tz));
            line.local_end = Some(domain::schedule::local(a.end, tz));
        }
        line.billable_units = Some(a.billable_units);
        line.unit_price = a.unit_price;
        line.subtotal += a.subtotal;
        line.tax += a.tax;
    }
    if let Some(part) = view.vendors.iter_mut().find(|p| p.vendor_id == a.vendor_id) {
        part.subtotal += a.subtotal;
        part.platform_fee += a.platform_fee;
        part.net += a.net;
    }
    view.subtotal += a.subtotal;
    view.tax += a.tax;
    view.total += a.amount_due;
}

fn set_sale_lines(view: &mut OrderView, vendor_id: Uuid, status: &str) {
    for line in view
        .lines
        .iter_mut()
        .filter(|l| l.vendor_id == vendor_id && l.kind == ListingKind::Sale)
    {
        line.status = status.into();
    }
    mark_in_progress(&mut view.vendors, vendor_id);
}

fn mark_in_progress(parts: &mut [VendorPartView], vendor_id: Uuid) {
    if let Some(part) = parts
        .iter_mut()
        .find(|p| p.vendor_id == vendor_id && p.status == "pending")
    {
        part.status = "in_progress".into();
    }
}

/// Unapplied cash applied to the order or refunded.
fn settle_unapplied(view: &mut OrderView, payment_id: &str, amount: Decimal, outcome: &str) {
    if let Some(p) = view
        .payments
        .iter_mut()
        .find(|p| p.payment_id == payment_id && p.unapplied.is_some())
    {
        p.unapplied = p.unapplied.map(|held| held - amount);
        p.outcome = outcome.into();
    }
}
