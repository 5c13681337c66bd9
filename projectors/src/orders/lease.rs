//! A lease's events on the order document (issue 15): the plan line's
//! standing and schedule, and its instalments among the payments.

use chrono::{DateTime, Utc};
use domain::OrderEvent;

use super::{InstalmentView, OrderView, PaymentView};

pub(super) fn apply(view: &mut OrderView, event: OrderEvent, at: DateTime<Utc>) {
    match event {
        OrderEvent::InstalmentPaid {
            instalment,
            payment_id,
            intent_id,
            amount,
            at: paid_at,
            ..
        } => {
            view.payments.push(PaymentView {
                payment_id,
                intent_id,
                outcome: "instalment".into(),
                amount: Some(amount),
                reason: Some(format!("instalment {instalment}")),
                unapplied: None,
                at,
            });
            if let Some(lease) = view.lease.as_mut() {
                lease.set(instalment, "paid");
                if let Some(i) = lease
                    .schedule
                    .iter_mut()
                    .find(|i| i.instalment == instalment)
                {
                    i.paid_at = Some(paid_at);
                }
            }
        }
        OrderEvent::InstalmentOverdue { instalment, .. } => {
            if let Some(lease) = view.lease.as_mut() {
                lease.set(instalment, "overdue");
            }
        }
        OrderEvent::LeasePastDue { .. } => set_lease(view, "past_due"),
        OrderEvent::LeaseSuspended { .. } => set_lease(view, "suspended"),
        OrderEvent::LeaseReinstated { .. }
            if view
                .lease
                .as_ref()
                .is_some_and(|l| l.status != "terminated") =>
        {
            set_lease(view, "active")
        }
        OrderEvent::LeaseTerminated {
            cause,
            cancelled,
            charge,
            at: ended_at,
            ..
        } => {
            if let Some(lease) = view.lease.as_mut() {
                lease.status = "terminated".into();
                lease.ended_by = Some(
                    match cause {
                        domain::LeaseEnd::Customer => "customer",
                        domain::LeaseEnd::NonPayment => "non_payment",
                    }
                    .into(),
                );
                lease.ended_at = Some(ended_at);
                for number in cancelled {
                    lease.set(number, "cancelled");
                }
                if let Some(charge) = charge {
                    lease.schedule.push(InstalmentView {
                        instalment: charge.number,
                        due: charge.due,
                        amount: charge.amount,
                        status: "due".into(),
                        paid_at: None,
                    });
                }
            }
        }
        OrderEvent::InstalmentsWrittenOff { instalments, .. } => {
            if let Some(lease) = view.lease.as_mut() {
                for number in instalments {
                    lease.set(number, "written_off");
                }
            }
        }
        _ => {}
    }
}

fn set_lease(view: &mut OrderView, status: &str) {
    if let Some(lease) = view.lease.as_mut() {
        status.clone_into(&mut lease.status);
    }
}
