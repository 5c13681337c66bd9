//! Invoices and credit notes on memory stores: what the policy does on
//! order confirmation (`invoicing::invoice_confirmed_order`) and what the
//! refund hook will do (`invoicing::credit_refund`), numbered per vendor.

use super::*;
use crate::application::invoicing::{credit_refund, invoice_confirmed_order, RefundCredit};
use domain::{DocumentKind, InvoiceBookEvent};

impl Marketplace {
    fn documents(&self) -> Vec<domain::Document> {
        self.memory
            .invoice_books
            .events(&self.vendor_id.to_string())
            .into_iter()
            .map(|e| e.document().clone())
            .collect()
    }
}

#[tokio::test]
async fn a_confirmed_order_is_invoiced_once_and_each_next_order_takes_the_next_number() {
    // Given two paid orders of the vendor's listing,
    let market = Marketplace::new().await;
    let listing = market.rental_listing(2, true).await;
    let first = market
        .place("c1", vec![rental(listing, 1, 3)])
        .await
        .expect("placed");
    let second = market
        .place("c2", vec![rental(listing, 1, 3)])
        .await
        .expect("placed");
    market.pay(first.order_id).await;
    market.pay(second.order_id).await;

    // when the policy invoices them (the first twice, as a redelivery would),
    for order_id in [first.order_id, first.order_id, second.order_id] {
        invoice_confirmed_order(&market.app, &admin(), order_id)
            .await
            .expect("invoiced");
    }

    // then each has one invoice, numbered 1 and 2, with its lines and parts.
    let documents = market.documents();
    let numbers: Vec<(Uuid, u64)> = documents.iter().map(|d| (d.order_id, d.sequence)).collect();
    assert_eq!(numbers, vec![(first.order_id, 1), (second.order_id, 2)]);
    let invoice = &documents[0];
    assert_eq!(invoice.kind, DocumentKind::Invoice);
    assert_eq!(invoice.customer_id, "c1");
    assert_eq!(invoice.vendor_name, "Kayaks");
    let split = &first.priced.vendors[0];
    assert_eq!(invoice.subtotal, split.subtotal);
    assert_eq!(
        (invoice.platform_fee, invoice.vendor_net),
        (split.platform_fee, split.net)
    );
    assert_eq!(invoice.total, first.priced.subtotal + first.priced.tax);
    assert_eq!(invoice.lines.len(), 1);
    assert!(
        invoice.lines[0].description.starts_with("Kayak"),
        "{:?}",
        invoice.lines[0]
    );
}

#[tokio::test]
async fn a_refund_is_credited_once_in_the_credit_note_series() {
    // Given an invoiced order,
    let market = Marketplace::new().await;
    let listing = market.rental_listing(1, true).await;
    let order = market
        .place("c1", vec![rental(listing, 1, 3)])
        .await
        .expect("placed");
    market.pay(order.order_id).await;
    invoice_confirmed_order(&market.app, &admin(), order.order_id)
        .await
        .expect("invoiced");
    let line = &order.priced.lines[0];
    let split = &order.priced.vendors[0];
    let credit = |refund_id: Uuid| RefundCredit {
        vendor_id: market.vendor_id,
        order_id: order.order_id,
        refund_id,
        lines: vec![line.line_id],
        amount: Decimal::ZERO,
        tax: Decimal::ZERO,
        fee_reversed: split.platform_fee,
        net_reversed: split.net,
    };

    // when its line is refunded whole (the hook called twice),
    let refund_id = Uuid::now_v7();
    let issued = credit_refund(&market.app, &admin(), credit(refund_id))
        .await
        .expect("credited");
    let again = credit_refund(&market.app, &admin(), credit(refund_id))
        .await
        .expect("a repeat is no error");

    // then one credit note CN-…-000001 credits the invoice, and nothing
    // more can be credited.
    assert!(issued.is_some());
    assert_eq!(again, None);
    let documents = market.documents();
    assert_eq!(documents.len(), 2);
    let note = &documents[1];
    assert_eq!(note.kind, DocumentKind::CreditNote);
    assert!(note.number.starts_with("CN-") && note.number.ends_with("-000001"));
    assert_eq!(note.credits_invoice_id, Some(documents[0].document_id));
    assert_eq!(note.total, documents[0].total);
    let more = credit_refund(&market.app, &admin(), credit(Uuid::now_v7())).await;
    assert!(
        matches!(
            more,
            Err(CommandError::Rejected(DomainError::InvalidState(_)))
        ),
        "{more:?}"
    );
    assert!(matches!(
        market
            .memory
            .invoice_books
            .events(&market.vendor_id.to_string())
            .last(),
        Some(InvoiceBookEvent::CreditNoteIssued { .. })
    ));
}
