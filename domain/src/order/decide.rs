//! The Order's rules: `decide` dispatches each command to one function
//! (answering NotFound for anything but `Place` before the order exists).
//! Placing and cancelling are here; payments in `payment.rs`, fulfilment in
//! `fulfilment.rs`.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::instalments::{attach_plans, plan_problems, PlanRequest};
use super::placement::check_placement_with_fee_rates;
use super::pricing::FeeRates;
use super::pricing::LineInput;
use super::{CancelCause, Order, OrderCommand, OrderEvent as E, OrderStatus};
use crate::aggregate::Decide;
use crate::error::{DomainError, FieldError};
use crate::money::Rates;
use std::collections::BTreeMap;

type Decision = Result<Vec<E>, DomainError>;

impl Decide for Order {
    fn decide(&self, command: OrderCommand) -> Decision {
        use OrderCommand as C;
        match command {
            C::Place {
                order_id,
                customer_id,
                currency,
                lines,
                rates,
                fee_rates,
                hold_expires_at,
                placed_at,
                payment_plans,
            } => self.place(
                order_id,
                customer_id,
                currency,
                (lines, payment_plans),
                (rates, fee_rates),
                hold_expires_at,
                placed_at,
            ),
            _ if !self.is_placed() => Err(DomainError::not_found("order")),
            C::PayInstalment {
                instalment,
                payment_id,
                intent_id,
                amount_minor,
                currency,
                outcome,
                received_at,
            } => self.pay_instalment(
                instalment,
                payment_id,
                intent_id,
                amount_minor,
                currency,
                outcome,
                received_at,
            ),
            C::DunInstalments { dunning, at } => self.dun_instalments(&dunning, at),
            C::TerminateLease { line_id, at } => self.terminate_lease(line_id, at),
            // A lease's money follows its schedule: it is ended by
            // terminating its line, not cancelled, refunded or re-priced.
            C::Cancel { .. } | C::Refund(_)
                if self.status != OrderStatus::Placed && !self.leases.is_empty() =>
            {
                Err(DomainError::invalid_state(
                    "the order is paid by instalments; terminate its lease instead",
                ))
            }
            C::RequestAdjustment { ref request } if self.leases.contains_key(&request.line_id) => {
                Err(DomainError::invalid_state(
                    "a line paid by instalments cannot be extended or rescheduled",
                ))
            }
            C::RecordPayment {
                payment_id,
                intent_id,
                amount_minor,
                currency,
                outcome,
                received_at,
            } => self.record_payment(
                payment_id,
                intent_id,
                amount_minor,
                currency,
                outcome,
                received_at,
            ),
            C::Reconfirm { at } => self.reconfirm(at),
            C::RefundLapsed { at: _ } => self.refund_lapsed(),
            C::Cancel { reason, at } => self.cancel(reason, at),
            C::ExpireUnpaid { at } => self.expire_unpaid(at),
            C::ShipPart { vendor_id, at } => self.ship_part(vendor_id, at),
            C::DeliverPart { vendor_id, at } => self.deliver_part(vendor_id, at),
            C::PickUpLine { line_id, at } => self.pick_up_line(line_id, at),
            C::ReturnLine {
                line_id,
                returned_at,
                damage_withheld,
                now,
            } => self.return_line(line_id, returned_at, damage_withheld, now),
            C::MarkLineOverdue { line_id, at } => self.mark_line_overdue(line_id, at),
            C::Refund(request) => self.refund(request),
            C::RecordProviderRefund {
                provider_refund_id,
                matches,
                new_refund_id,
                amount,
                at,
            } => {
                self.record_provider_refund(provider_refund_id, matches, new_refund_id, amount, at)
            }
            C::ApplyPayment { payment_id, at } => self.apply_payment(&payment_id, at),
            C::RefundPayment { payment_id, at: _ } => self.refund_payment(&payment_id),
            C::OpenDispute {
                dispute_id,
                dispute_ref,
                amount,
                at,
            } => self.open_dispute(dispute_id, dispute_ref, amount, at),
            C::CloseDispute {
                dispute_id,
                won,
                at,
            } => self.close_dispute(dispute_id, won, at),
            C::RequestAdjustment { request } => self.request_adjustment(request),
            C::PayAdjustment {
                adjustment_id,
                payment_id,
                intent_id,
                amount_minor,
                currency,
                outcome,
            } => self.pay_adjustment(
                adjustment_id,
                payment_id,
                intent_id,
                amount_minor,
                currency,
                outcome,
            ),
            C::ConfirmAdjustment { adjustment_id, at } => {
                self.confirm_adjustment(adjustment_id, at)
            }
            C::LapseAdjustment { adjustment_id, at } => self.lapse_adjustment(adjustment_id, at),
        }
    }
}

impl Order {
    #[allow(clippy::too_many_arguments)]
    fn place(
        &self,
        order_id: Uuid,
        customer_id: String,
        currency: String,
        (lines, plans): (Vec<LineInput>, BTreeMap<Uuid, PlanRequest>),
        (rates, fee_rates): (Rates, FeeRates),
        hold_expires_at: DateTime<Utc>,
        placed_at: DateTime<Utc>,
    ) -> Decision {
        if self.is_placed() {
            return Err(DomainError::AlreadyExists { what: "order" });
        }
        let mut errors = Vec::new();
        let customer_id = customer_id.trim().to_string();
        if customer_id.is_empty() {
            errors.push(FieldError::new("customer_id", "must not be empty"));
        }
        let currency = currency.trim().to_uppercase();
        if currency.is_empty() {
            errors.push(FieldError::new("currency", "must not be empty"));
        }
        let priced = check_placement_with_fee_rates(&lines, rates, &fee_rates, placed_at);
        if let Err(DomainError::Validation { errors: found }) = &priced {
            errors.extend(found.iter().cloned());
        }
        if let Ok(priced) = &priced {
            errors.extend(plan_problems(&lines, priced, &plans));
        }
        DomainError::check(errors)?;
        let mut priced = priced?;
        attach_plans(&mut priced, &plans);
        Ok(vec![E::OrderPlaced {
            order_id,
            customer_id,
            currency,
            priced,
            rates,
            hold_expires_at,
            placed_at,
        }])
    }

    /// Before payment it is cancelled; after payment and before fulfilment
    /// it is cancelled and what was paid refunded.
    fn cancel(&self, reason: Option<crate::PersonalText>, at: DateTime<Utc>) -> Decision {
        match self.status {
            OrderStatus::Placed => Ok(vec![E::OrderCancelled {
                reason,
                cause: CancelCause::Customer,
                at,
            }]),
            OrderStatus::Confirmed => {
                if self.fulfilment_started() {
                    return Err(DomainError::invalid_state("fulfilment has started"));
                }
                // A dispute's money follows the dispute (frozen, then
                // released or written off), never a cancellation's refund.
                if !self.disputes.is_empty() {
                    return Err(DomainError::invalid_state(
                        "a dispute was opened on this order; refund what is left instead",
                    ));
                }
                let mut events = vec![E::OrderCancelled {
                    reason: reason.clone(),
                    cause: CancelCause::Customer,
                    at,
                }];
                // The lines' cancellation policies may keep part of the price.
                let settlement = self.cancellation_settlement(at);
                let kept = settlement
                    .kept_total
                    .min(self.net_paid().max(Decimal::ZERO));
                if kept > Decimal::ZERO {
                    events.push(E::CancellationCharged {
                        lines: settlement.lines,
                        vendors: settlement.kept,
                    });
                }
                let refund = self.net_paid() - kept;
                if refund > Decimal::ZERO {
                    events.push(E::RefundIssued {
                        amount: refund,
                        reason: reason.unwrap_or_else(|| "order cancelled".into()),
                    });
                }
                Ok(events)
            }
            OrderStatus::Cancelled | OrderStatus::Refunded => Ok(vec![]),
            OrderStatus::Completed => Err(DomainError::invalid_state(
                "a completed order cannot be cancelled",
            )),
        }
    }

    /// An order still unpaid when its holds expire is cancelled.
    fn expire_unpaid(&self, at: DateTime<Utc>) -> Decision {
        match self.status {
            OrderStatus::Placed => match self.hold_expires_at {
                Some(exp) if exp <= at => Ok(vec![E::OrderCancelled {
                    reason: Some("hold expired".into()),
                    cause: CancelCause::Expiry,
                    at,
                }]),
                _ => Err(DomainError::invalid_state("the hold has not expired yet")),
            },
            _ => Ok(vec![]),
        }
    }
}
