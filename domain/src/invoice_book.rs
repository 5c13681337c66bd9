//! The InvoiceBook aggregate: one per vendor, the numbering of its
//! invoices and credit notes (API.md "Money", DESIGN.md invariant 10).
//!
//! Numbers are decided here, on the command side, one after the other in
//! the aggregate's sequence: `INV-<vendor short id>-000001`, `…-000002`, …
//! and `CN-<vendor short id>-000001`, … for credit notes, each series
//! gapless. Two processes numbering at once conflict on the aggregate's
//! next sequence and one decides again, so a number is never issued twice
//! nor skipped.
//!
//! - An invoice is issued once per order (the vendor's part of it):
//!   issuing again for the same order is a no-op, so the policy that
//!   reacts to order confirmation may be redelivered freely.
//! - A credit note credits an invoiced order's part, once per refund id,
//!   never more than what the invoice still has uncredited.
//! - Every document carries its lines, tax, totals and the vendor and
//!   platform parts (fee and net), fixed when it is issued.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::{handle_by_deciding, Decide};
use crate::error::{DomainError, FieldError};
use crate::money::{is_valid_order_amount, round_cents};

/// Most lines one document may have (an order's most).
pub const MAX_DOCUMENT_LINES: usize = crate::order::placement::MAX_LINES;
pub const MAX_LINE_DESCRIPTION: usize = 300;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    Invoice,
    CreditNote,
}

impl DocumentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::Invoice => "invoice",
            DocumentKind::CreditNote => "credit_note",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            DocumentKind::Invoice => "INV",
            DocumentKind::CreditNote => "CN",
        }
    }
}

/// The vendor's short id in document numbers: the last 8 hex digits of its
/// id, upper case (a UUIDv7's first digits are its timestamp, shared by
/// vendors registered close together; the last are random).
pub fn vendor_short_id(vendor_id: Uuid) -> String {
    let hex = vendor_id.simple().to_string().to_uppercase();
    hex[hex.len() - 8..].to_owned()
}

/// `INV-1A2B3C4D-000042`.
pub fn document_number(kind: DocumentKind, vendor_id: Uuid, sequence: u64) -> String {
    format!(
        "{}-{}-{sequence:06}",
        kind.prefix(),
        vendor_short_id(vendor_id)
    )
}

/// One line of an invoice or credit note.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DocumentLine {
    /// The order line it bills (absent on a credit of an amount).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_id: Option<Uuid>,
    pub description: String,
    pub quantity: u32,
    pub unit_price: Decimal,
    pub subtotal: Decimal,
    pub tax: Decimal,
}

/// What an invoice or credit note bills, before the book numbers it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DocumentDraft {
    /// The vendor's name as registered, printed on the document.
    #[serde(default)]
    pub vendor_name: String,
    pub order_id: Uuid,
    pub customer_id: String,
    pub currency: String,
    pub lines: Vec<DocumentLine>,
    /// The platform's part of the subtotal, and the vendor's.
    pub platform_fee: Decimal,
    pub vendor_net: Decimal,
}

/// An issued invoice or credit note, as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub document_id: Uuid,
    pub kind: DocumentKind,
    pub number: String,
    /// Its place in its series (1, 2, …), gapless per vendor and kind.
    pub sequence: u64,
    pub vendor_id: Uuid,
    #[serde(default)]
    pub vendor_name: String,
    pub order_id: Uuid,
    pub customer_id: String,
    pub currency: String,
    pub lines: Vec<DocumentLine>,
    pub subtotal: Decimal,
    pub tax: Decimal,
    pub total: Decimal,
    pub platform_fee: Decimal,
    pub vendor_net: Decimal,
    /// A credit note's refund, and the invoice it credits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits_invoice_id: Option<Uuid>,
    pub issued_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InvoiceBookCommand {
    /// Invoices a vendor's part of a confirmed order; idempotent per order.
    IssueInvoice {
        vendor_id: Uuid,
        document_id: Uuid,
        draft: DocumentDraft,
        at: DateTime<Utc>,
    },
    /// Credits (part of) an invoiced order's part for a refund; idempotent
    /// per refund.
    IssueCreditNote {
        vendor_id: Uuid,
        document_id: Uuid,
        refund_id: Uuid,
        draft: DocumentDraft,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InvoiceBookEvent {
    InvoiceIssued { document: Document },
    CreditNoteIssued { document: Document },
}

impl InvoiceBookEvent {
    pub fn document(&self) -> &Document {
        match self {
            InvoiceBookEvent::InvoiceIssued { document }
            | InvoiceBookEvent::CreditNoteIssued { document } => document,
        }
    }
}

impl DomainEvent for InvoiceBookEvent {
    fn event_type(&self) -> String {
        match self {
            InvoiceBookEvent::InvoiceIssued { .. } => "InvoiceIssued",
            InvoiceBookEvent::CreditNoteIssued { .. } => "CreditNoteIssued",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        crate::EVENT_VERSION.to_string()
    }
}

/// What the book remembers of an invoiced order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invoiced {
    pub document_id: Uuid,
    pub total: Decimal,
    pub credited: Decimal,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InvoiceBook {
    vendor_id: Option<Uuid>,
    invoices_issued: u64,
    credit_notes_issued: u64,
    orders: BTreeMap<Uuid, Invoiced>,
    refunds: BTreeSet<Uuid>,
}

impl InvoiceBook {
    pub fn vendor_id(&self) -> Option<Uuid> {
        self.vendor_id
    }
    pub fn invoices_issued(&self) -> u64 {
        self.invoices_issued
    }
    pub fn credit_notes_issued(&self) -> u64 {
        self.credit_notes_issued
    }
    /// The invoice of an order's part, once issued.
    pub fn invoice_of(&self, order_id: Uuid) -> Option<&Invoiced> {
        self.orders.get(&order_id)
    }
}

type Decision = Result<Vec<InvoiceBookEvent>, DomainError>;

/// Sums a draft's lines, checking every amount and the parts.
fn totals(draft: &DocumentDraft) -> Result<(Decimal, Decimal, Decimal), DomainError> {
    let mut errors = Vec::new();
    if draft.lines.is_empty() {
        errors.push(FieldError::new(
            "lines",
            "a document needs at least one line",
        ));
    }
    if draft.lines.len() > MAX_DOCUMENT_LINES {
        errors.push(FieldError::new(
            "lines",
            format!("a document takes at most {MAX_DOCUMENT_LINES} lines"),
        ));
    }
    for (i, line) in draft.lines.iter().enumerate() {
        let amounts = [line.unit_price, line.subtotal, line.tax];
        if amounts.iter().any(|a| !is_valid_order_amount(*a)) {
            errors.push(FieldError::new(
                format!("lines[{i}]"),
                "amounts must be non-negative with at most 2 decimal places",
            ));
        }
        if line.description.trim().is_empty()
            || line.description.chars().count() > MAX_LINE_DESCRIPTION
        {
            errors.push(FieldError::new(
                format!("lines[{i}].description"),
                format!("must have 1 to {MAX_LINE_DESCRIPTION} characters"),
            ));
        }
    }
    for (name, amount) in [
        ("platform_fee", draft.platform_fee),
        ("vendor_net", draft.vendor_net),
    ] {
        if !is_valid_order_amount(amount) {
            errors.push(FieldError::new(
                name,
                "must be non-negative with at most 2 decimal places",
            ));
        }
    }
    DomainError::check(errors)?;
    let subtotal = round_cents(draft.lines.iter().map(|l| l.subtotal).sum());
    let tax = round_cents(draft.lines.iter().map(|l| l.tax).sum());
    if draft.platform_fee + draft.vendor_net != subtotal {
        return Err(DomainError::invalid(
            "platform_fee",
            "the platform fee and the vendor's net must add up to the subtotal",
        ));
    }
    Ok((subtotal, tax, round_cents(subtotal + tax)))
}

impl InvoiceBook {
    fn check_vendor(&self, vendor_id: Uuid) -> Result<(), DomainError> {
        match self.vendor_id {
            Some(own) if own != vendor_id => Err(DomainError::invalid_state(format!(
                "this is the invoice book of vendor {own}"
            ))),
            _ => Ok(()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn document(
        &self,
        kind: DocumentKind,
        vendor_id: Uuid,
        document_id: Uuid,
        draft: DocumentDraft,
        (subtotal, tax, total): (Decimal, Decimal, Decimal),
        refund: Option<(Uuid, Uuid)>,
        at: DateTime<Utc>,
    ) -> Document {
        let sequence = match kind {
            DocumentKind::Invoice => self.invoices_issued + 1,
            DocumentKind::CreditNote => self.credit_notes_issued + 1,
        };
        Document {
            document_id,
            kind,
            number: document_number(kind, vendor_id, sequence),
            sequence,
            vendor_id,
            vendor_name: draft.vendor_name,
            order_id: draft.order_id,
            customer_id: draft.customer_id,
            currency: draft.currency,
            lines: draft.lines,
            subtotal,
            tax,
            total,
            platform_fee: draft.platform_fee,
            vendor_net: draft.vendor_net,
            refund_id: refund.map(|(refund_id, _)| refund_id),
            credits_invoice_id: refund.map(|(_, invoice_id)| invoice_id),
            issued_at: at,
        }
    }

    fn issue_invoice(
        &self,
        vendor_id: Uuid,
        document_id: Uuid,
        draft: DocumentDraft,
        at: DateTime<Utc>,
    ) -> Decision {
        self.check_vendor(vendor_id)?;
        if self.orders.contains_key(&draft.order_id) {
            return Ok(vec![]);
        }
        let sums = totals(&draft)?;
        let document = self.document(
            DocumentKind::Invoice,
            vendor_id,
            document_id,
            draft,
            sums,
            None,
            at,
        );
        Ok(vec![InvoiceBookEvent::InvoiceIssued { document }])
    }

    fn issue_credit_note(
        &self,
        vendor_id: Uuid,
        document_id: Uuid,
        refund_id: Uuid,
        draft: DocumentDraft,
        at: DateTime<Utc>,
    ) -> Decision {
        self.check_vendor(vendor_id)?;
        if self.refunds.contains(&refund_id) {
            return Ok(vec![]);
        }
        let Some(invoiced) = self.orders.get(&draft.order_id) else {
            return Err(DomainError::not_found("invoice"));
        };
        let sums = totals(&draft)?;
        let (_, _, total) = sums;
        if total <= Decimal::ZERO {
            return Err(DomainError::invalid(
                "lines",
                "a credit note credits more than zero",
            ));
        }
        let uncredited = invoiced.total - invoiced.credited;
        if total > uncredited {
            return Err(DomainError::invalid_state(format!(
                "a credit of {total} exceeds the {uncredited} the invoice has uncredited"
            )));
        }
        let invoice_id = invoiced.document_id;
        let document = self.document(
            DocumentKind::CreditNote,
            vendor_id,
            document_id,
            draft,
            sums,
            Some((refund_id, invoice_id)),
            at,
        );
        Ok(vec![InvoiceBookEvent::CreditNoteIssued { document }])
    }
}

impl Decide for InvoiceBook {
    fn decide(&self, command: InvoiceBookCommand) -> Decision {
        match command {
            InvoiceBookCommand::IssueInvoice {
                vendor_id,
                document_id,
                draft,
                at,
            } => self.issue_invoice(vendor_id, document_id, draft, at),
            InvoiceBookCommand::IssueCreditNote {
                vendor_id,
                document_id,
                refund_id,
                draft,
                at,
            } => self.issue_credit_note(vendor_id, document_id, refund_id, draft, at),
        }
    }
}

impl Aggregate for InvoiceBook {
    const TYPE: &'static str = "InvoiceBook";
    type Command = InvoiceBookCommand;
    type Event = InvoiceBookEvent;
    type Error = DomainError;
    type Services = ();

    handle_by_deciding!();

    fn apply(&mut self, event: Self::Event) {
        match event {
            InvoiceBookEvent::InvoiceIssued { document } => {
                self.vendor_id = Some(document.vendor_id);
                self.invoices_issued = document.sequence;
                self.orders.insert(
                    document.order_id,
                    Invoiced {
                        document_id: document.document_id,
                        total: document.total,
                        credited: Decimal::ZERO,
                    },
                );
            }
            InvoiceBookEvent::CreditNoteIssued { document } => {
                self.vendor_id = Some(document.vendor_id);
                self.credit_notes_issued = document.sequence;
                if let Some(refund_id) = document.refund_id {
                    self.refunds.insert(refund_id);
                }
                if let Some(invoiced) = self.orders.get_mut(&document.order_id) {
                    invoiced.credited += document.total;
                }
            }
        }
    }
}
