//! What a subscription is asked ([`SubscriptionCommand`]) and what it
//! records ([`SubscriptionEvent`]).

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::billing::{BillingPeriod, DunningPolicy};
use super::payment::{InvoicePaymentOutcome, UnappliedReason};
use super::plan::PlanTerms;
use super::{CancelCause, InvoiceKind};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SubscriptionCommand {
    /// Starts on `plan`: a trial first if the plan has one, otherwise the
    /// first period is invoiced at once as `first_invoice_id`.
    Start {
        subscription_id: Uuid,
        customer: String,
        plan: PlanTerms,
        dunning: DunningPolicy,
        /// The deployment's tax rate, kept for every invoice of the
        /// subscription (the plan's price is net, like an order line's).
        tax_rate: Decimal,
        first_invoice_id: Uuid,
        at: DateTime<Utc>,
    },
    /// The scheduler's tick: invoices the next period if it has begun by
    /// `at` (as `invoice_id`), or ends a subscription cancelled at period
    /// end. At most one step; a no-op when nothing is due.
    Bill { invoice_id: Uuid, at: DateTime<Utc> },
    /// The scheduler's other tick: the next dunning step due by `at` for
    /// the oldest open invoice. At most one step; a no-op when none is due.
    Dun { at: DateTime<Utc> },
    /// A payment of an invoice arrived (the payment webhook with
    /// `metadata.invoice_id`). Idempotent per invoice.
    RecordPayment {
        invoice_id: Uuid,
        amount: Decimal,
        payment_ref: String,
        at: DateTime<Utc>,
    },
    /// A payment of an invoice failed at the provider.
    RecordPaymentFailure {
        invoice_id: Uuid,
        reason: String,
        at: DateTime<Utc>,
    },
    /// The payment provider's event about an invoice (the payment webhook
    /// with `metadata.invoice_id`), recorded once per `payment_ref` (the
    /// provider's event id). A success of the invoice's amount in the
    /// ledger's currency pays it; any other success is unapplied cash; a
    /// failure feeds dunning.
    ReceivePayment {
        invoice_id: Uuid,
        payment_ref: String,
        amount_minor: i64,
        currency: String,
        /// The ledger's currency, upper case: a payment in another one is
        /// recorded but not taken into the books.
        ledger_currency: String,
        outcome: InvoicePaymentOutcome,
        at: DateTime<Utc>,
    },
    Cancel {
        at_period_end: bool,
        at: DateTime<Utc>,
    },
    /// An admin gives back unapplied cash (`POST /v1/payments/{id}/refund`):
    /// `payment_ref` is the provider's event id it was received under.
    RefundUnappliedPayment {
        payment_ref: String,
        at: DateTime<Utc>,
    },
    /// Moves to another plan of the same interval; the rest of the current
    /// period is prorated to the cent: an upgrade is invoiced at once (as
    /// `invoice_id`), a downgrade is a credit on the next invoice.
    ChangePlan {
        plan: PlanTerms,
        invoice_id: Uuid,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SubscriptionEvent {
    SubscriptionStarted {
        subscription_id: Uuid,
        customer: String,
        plan: PlanTerms,
        dunning: DunningPolicy,
        started_at: DateTime<Utc>,
        /// Where period 0 starts: the start, or the end of the trial.
        anchor: DateTime<Utc>,
        trial_end: Option<DateTime<Utc>>,
        /// Taxes every invoice; zero for subscriptions started before
        /// invoices were taxed.
        #[serde(default)]
        tax_rate: Decimal,
    },
    InvoiceIssued {
        invoice_id: Uuid,
        number: u32,
        kind: InvoiceKind,
        period: Option<BillingPeriod>,
        /// What is due: the price less `credit_applied` (the subtotal),
        /// plus `tax`.
        amount: Decimal,
        credit_applied: Decimal,
        /// The tax on the subtotal at the subscription's rate (zero for
        /// invoices issued before invoices were taxed).
        #[serde(default)]
        tax: Decimal,
        due_at: DateTime<Utc>,
    },
    InvoicePaid {
        invoice_id: Uuid,
        amount: Decimal,
        payment_ref: String,
        paid_at: DateTime<Utc>,
    },
    InvoicePaymentFailed {
        invoice_id: Uuid,
        /// 1 for the first failure of this invoice.
        failure: u32,
        reason: String,
        failed_at: DateTime<Utc>,
        /// The provider's event that reported it; none when dunning found
        /// the invoice unpaid by its due date.
        #[serde(default)]
        payment_ref: Option<String>,
    },
    /// Money received for an invoice that did not pay it (another amount,
    /// an invoice already paid or voided): held as unapplied cash for an
    /// admin to refund. `amount` is in the ledger's currency; a payment in
    /// another currency is `currency_mismatch` and `amount` is zero, since
    /// none of it can be booked.
    InvoicePaymentUnapplied {
        invoice_id: Uuid,
        payment_ref: String,
        amount: Decimal,
        received_minor: i64,
        currency: String,
        reason: UnappliedReason,
        received_at: DateTime<Utc>,
    },
    /// Unapplied cash given back to the customer: the whole `amount` held
    /// under `payment_ref`, once.
    UnappliedPaymentRefunded {
        invoice_id: Uuid,
        payment_ref: String,
        amount: Decimal,
        refunded_at: DateTime<Utc>,
    },
    /// The scheduler asks the provider to charge the invoice again.
    PaymentRetryRequested {
        invoice_id: Uuid,
        attempt: u32,
        requested_at: DateTime<Utc>,
    },
    SubscriptionPastDue {
        at: DateTime<Utc>,
    },
    SubscriptionSuspended {
        at: DateTime<Utc>,
    },
    /// Every open invoice paid: in good standing again. After a suspension
    /// billing resumes with the period containing `at`; the periods that
    /// passed wholly while suspended are not billed.
    SubscriptionActivated {
        at: DateTime<Utc>,
        resumes_with_period: u32,
    },
    CancellationScheduled {
        effective_at: DateTime<Utc>,
    },
    SubscriptionCancelled {
        cause: CancelCause,
        at: DateTime<Utc>,
    },
    /// An open invoice dropped with its cancelled subscription.
    InvoiceVoided {
        invoice_id: Uuid,
        at: DateTime<Utc>,
    },
    PlanChanged {
        from_plan_id: Uuid,
        plan: PlanTerms,
        /// Positive: invoiced now; negative: credited to the next invoice.
        proration: Decimal,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for SubscriptionEvent {
    fn event_type(&self) -> String {
        use SubscriptionEvent as E;
        match self {
            E::SubscriptionStarted { .. } => "SubscriptionStarted",
            E::InvoiceIssued { .. } => "InvoiceIssued",
            E::InvoicePaid { .. } => "InvoicePaid",
            E::InvoicePaymentFailed { .. } => "InvoicePaymentFailed",
            E::InvoicePaymentUnapplied { .. } => "InvoicePaymentUnapplied",
            E::UnappliedPaymentRefunded { .. } => "UnappliedPaymentRefunded",
            E::PaymentRetryRequested { .. } => "PaymentRetryRequested",
            E::SubscriptionPastDue { .. } => "SubscriptionPastDue",
            E::SubscriptionSuspended { .. } => "SubscriptionSuspended",
            E::SubscriptionActivated { .. } => "SubscriptionActivated",
            E::CancellationScheduled { .. } => "CancellationScheduled",
            E::SubscriptionCancelled { .. } => "SubscriptionCancelled",
            E::InvoiceVoided { .. } => "InvoiceVoided",
            E::PlanChanged { .. } => "PlanChanged",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        crate::EVENT_VERSION.to_string()
    }
}
