//! Invoices and credit notes (API.md "Money"): what the policies ask of a
//! vendor's InvoiceBook aggregate, which numbers every document gaplessly.
//!
//! - [`invoice_confirmed_order`]: each vendor's part of a confirmed order
//!   gets one invoice (its lines, their tax, the platform's fee and the
//!   vendor's net, as the order was priced). The policies call it on
//!   `OrderConfirmed` and `OrderReconfirmed`; the book issues once per
//!   order, so redelivery and a reconfirmation are harmless.
//! - [`credit_refund`]: a refund of (part of) a vendor's part gets a credit
//!   note, once per refund id. Nothing records refunds of lines yet; the
//!   policy reacting to a refund event calls this with what it refunded.
//!
//! Everything is read from the aggregates (the order, its listings' titles),
//! never from a read model.

use std::collections::HashMap;

use domain::{
    DocumentDraft, DocumentLine, InvoiceBookCommand, InvoiceBookEvent, Order, PricedLine,
};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::bus::CommandError;
use crate::context::CommandContext;
use crate::CommandApp;

/// Issues the invoice of every vendor part of a confirmed order (those
/// already issued are left as they are). Answers the invoices issued now.
pub async fn invoice_confirmed_order(
    app: &CommandApp,
    context: &CommandContext,
    order_id: Uuid,
) -> Result<Vec<Uuid>, CommandError> {
    let order = app
        .orders
        .load(&order_id.to_string(), &context.principal)
        .await?;
    let Some(priced) = order.priced() else {
        return Ok(vec![]);
    };
    let titles = listing_titles(app, &order).await?;
    let mut issued = Vec::new();
    for split in &priced.vendors {
        let vendor_name = vendor_name(app, split.vendor_id).await?;
        let lines = priced
            .lines
            .iter()
            .filter(|l| l.vendor_id == split.vendor_id)
            .map(|l| invoice_line(l, &titles))
            .collect();
        let draft = DocumentDraft {
            vendor_name,
            order_id,
            customer_id: order.customer_id().to_owned(),
            currency: order.currency().to_owned(),
            lines,
            platform_fee: split.platform_fee,
            vendor_net: split.net,
        };
        let command = InvoiceBookCommand::IssueInvoice {
            vendor_id: split.vendor_id,
            document_id: Uuid::now_v7(),
            draft,
            at: app.clock.now(),
        };
        let committed = app
            .invoice_books
            .execute(
                &split.vendor_id.to_string(),
                command,
                context,
                "IssueInvoice",
            )
            .await?;
        issued.extend(
            committed
                .events
                .iter()
                .map(|e| e.payload.document().document_id),
        );
    }
    Ok(issued)
}

/// What a refund credits of one vendor's part of an order.
pub struct RefundCredit {
    pub vendor_id: Uuid,
    pub order_id: Uuid,
    pub refund_id: Uuid,
    /// The order lines refunded whole (their subtotal and tax), if any.
    pub lines: Vec<Uuid>,
    /// Else (or besides) an amount of the part's subtotal credited, and
    /// its tax.
    pub amount: Decimal,
    pub tax: Decimal,
    /// How the credited subtotal splits between the platform's fee
    /// reversed and the vendor's net reversed (they add up to it).
    pub fee_reversed: Decimal,
    pub net_reversed: Decimal,
}

/// Issues the credit note of a refund (once per refund id). Answers the
/// credit note's id, or `None` when it was already issued.
///
/// The lead's hook: the policy reacting to a refund event (`policies`)
/// calls this once per vendor part the refund touched.
pub async fn credit_refund(
    app: &CommandApp,
    context: &CommandContext,
    credit: RefundCredit,
) -> Result<Option<Uuid>, CommandError> {
    let order = app
        .orders
        .load(&credit.order_id.to_string(), &context.principal)
        .await?;
    let titles = listing_titles(app, &order).await?;
    let mut lines: Vec<DocumentLine> = credit
        .lines
        .iter()
        .filter_map(|id| order.line(*id))
        .filter(|l| l.vendor_id == credit.vendor_id)
        .map(|l| invoice_line(l, &titles))
        .collect();
    if credit.amount > Decimal::ZERO || credit.tax > Decimal::ZERO {
        lines.push(DocumentLine {
            line_id: None,
            description: "Refund".to_owned(),
            quantity: 1,
            unit_price: credit.amount,
            subtotal: credit.amount,
            tax: credit.tax,
        });
    }
    let draft = DocumentDraft {
        vendor_name: vendor_name(app, credit.vendor_id).await?,
        order_id: credit.order_id,
        customer_id: order.customer_id().to_owned(),
        currency: order.currency().to_owned(),
        lines,
        platform_fee: credit.fee_reversed,
        vendor_net: credit.net_reversed,
    };
    let command = InvoiceBookCommand::IssueCreditNote {
        vendor_id: credit.vendor_id,
        document_id: Uuid::now_v7(),
        refund_id: credit.refund_id,
        draft,
        at: app.clock.now(),
    };
    let committed = app
        .invoice_books
        .execute(
            &credit.vendor_id.to_string(),
            command,
            context,
            "IssueCreditNote",
        )
        .await?;
    Ok(committed.events.iter().find_map(|e| match &e.payload {
        InvoiceBookEvent::CreditNoteIssued { document } => Some(document.document_id),
        _ => None,
    }))
}

async fn vendor_name(app: &CommandApp, vendor_id: Uuid) -> Result<String, CommandError> {
    // Kept sealed as stored: the read side opens it when it answers, so an
    // erased vendor's name reads `[erased]` on its invoices too.
    Ok(app
        .vendors
        .load_any_tenant(&vendor_id.to_string())
        .await?
        .aggregate
        .name()
        .as_stored()
        .to_owned())
}

/// The title of each listing the order names, from the Listing aggregates.
async fn listing_titles(
    app: &CommandApp,
    order: &Order,
) -> Result<HashMap<Uuid, String>, CommandError> {
    let mut titles = HashMap::new();
    for line in order.lines() {
        if titles.contains_key(&line.listing_id) {
            continue;
        }
        let listing = app
            .listings
            .load_any_tenant(&line.listing_id.to_string())
            .await?
            .aggregate;
        titles.insert(line.listing_id, listing.title().to_owned());
    }
    Ok(titles)
}

/// An order line as an invoice line: its listing's title (and, for a
/// rental, the period), quantity, unit price, subtotal and tax.
fn invoice_line(line: &PricedLine, titles: &HashMap<Uuid, String>) -> DocumentLine {
    let title = titles
        .get(&line.listing_id)
        .filter(|t| !t.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| format!("Listing {}", line.listing_id));
    let description = match (line.start, line.end) {
        (Some(start), Some(end)) => format!(
            "{title} ({} to {}, {} billable units)",
            start.format("%Y-%m-%d %H:%M"),
            end.format("%Y-%m-%d %H:%M"),
            line.billable_units.unwrap_or_default()
        ),
        _ => title,
    };
    DocumentLine {
        line_id: Some(line.line_id),
        description: description
            .chars()
            .take(domain::invoice_book::MAX_LINE_DESCRIPTION)
            .collect(),
        quantity: line.quantity,
        unit_price: line.unit_price,
        subtotal: line.subtotal,
        tax: line.tax,
    }
}
