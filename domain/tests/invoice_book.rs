//! The InvoiceBook aggregate in given/when/then: invoices and credit notes
//! numbered gaplessly per vendor, once per order and once per refund, a
//! credit never above what its invoice has uncredited.

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use domain::invoice_book::{document_number, vendor_short_id};
use domain::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use uuid::Uuid;

type F = TestFramework<InvoiceBook>;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).unwrap()
}
fn vendor() -> Uuid {
    Uuid::parse_str("0190b2c4-1111-7222-8333-0a1b2c3d4e5f").unwrap()
}
fn order(n: u128) -> Uuid {
    Uuid::from_u128(100 + n)
}
fn doc(n: u128) -> Uuid {
    Uuid::from_u128(900 + n)
}
fn refund(n: u128) -> Uuid {
    Uuid::from_u128(700 + n)
}
fn line(subtotal: Decimal, tax: Decimal) -> DocumentLine {
    DocumentLine {
        line_id: Some(Uuid::from_u128(5)),
        description: "Kayak".into(),
        quantity: 1,
        unit_price: subtotal,
        subtotal,
        tax,
    }
}
/// An order part of 100.00 + 8.00 tax, fee 10.00.
fn draft(n: u128) -> DocumentDraft {
    DocumentDraft {
        vendor_name: "Kayaks".into(),
        order_id: order(n),
        customer_id: "customer-1".into(),
        currency: "USD".into(),
        lines: vec![line(dec!(60), dec!(4.80)), line(dec!(40), dec!(3.20))],
        platform_fee: dec!(10),
        vendor_net: dec!(90),
    }
}
fn invoice(n: u128, sequence: u64) -> Document {
    let draft = draft(n);
    Document {
        document_id: doc(n),
        kind: DocumentKind::Invoice,
        number: document_number(DocumentKind::Invoice, vendor(), sequence),
        sequence,
        vendor_id: vendor(),
        vendor_name: draft.vendor_name,
        order_id: draft.order_id,
        customer_id: draft.customer_id,
        currency: draft.currency,
        lines: draft.lines,
        subtotal: dec!(100),
        tax: dec!(8),
        total: dec!(108),
        platform_fee: dec!(10),
        vendor_net: dec!(90),
        refund_id: None,
        credits_invoice_id: None,
        issued_at: at(),
    }
}
fn issued(n: u128, sequence: u64) -> InvoiceBookEvent {
    InvoiceBookEvent::InvoiceIssued {
        document: invoice(n, sequence),
    }
}
fn issue(n: u128) -> InvoiceBookCommand {
    InvoiceBookCommand::IssueInvoice {
        vendor_id: vendor(),
        document_id: doc(n),
        draft: draft(n),
        at: at(),
    }
}
/// Credits 40.00 + 3.20 tax of order `n` (fee 4.00 reversed).
fn credit_draft(n: u128) -> DocumentDraft {
    DocumentDraft {
        lines: vec![line(dec!(40), dec!(3.20))],
        platform_fee: dec!(4),
        vendor_net: dec!(36),
        ..draft(n)
    }
}
fn credit(n: u128, r: u128, d: u128) -> InvoiceBookCommand {
    InvoiceBookCommand::IssueCreditNote {
        vendor_id: vendor(),
        document_id: doc(d),
        refund_id: refund(r),
        draft: credit_draft(n),
        at: at(),
    }
}
fn credited(n: u128, r: u128, d: u128, sequence: u64) -> InvoiceBookEvent {
    let draft = credit_draft(n);
    InvoiceBookEvent::CreditNoteIssued {
        document: Document {
            document_id: doc(d),
            kind: DocumentKind::CreditNote,
            number: document_number(DocumentKind::CreditNote, vendor(), sequence),
            sequence,
            vendor_id: vendor(),
            vendor_name: draft.vendor_name,
            order_id: draft.order_id,
            customer_id: draft.customer_id,
            currency: draft.currency,
            lines: draft.lines,
            subtotal: dec!(40),
            tax: dec!(3.20),
            total: dec!(43.20),
            platform_fee: dec!(4),
            vendor_net: dec!(36),
            refund_id: Some(refund(r)),
            credits_invoice_id: Some(doc(n)),
            issued_at: at(),
        },
    }
}

#[test]
fn numbers_name_the_vendor_by_the_random_end_of_its_id() {
    assert_eq!(vendor_short_id(vendor()), "2C3D4E5F");
    assert_eq!(
        document_number(DocumentKind::Invoice, vendor(), 1),
        "INV-2C3D4E5F-000001"
    );
    assert_eq!(
        document_number(DocumentKind::CreditNote, vendor(), 42),
        "CN-2C3D4E5F-000042"
    );
}

#[test]
fn the_first_invoice_is_number_one_with_the_lines_tax_and_totals() {
    F::with(())
        .given_no_previous_events()
        .when(issue(1))
        .then_expect_events(vec![issued(1, 1)]);
}

#[test]
fn each_next_invoice_takes_the_next_number() {
    F::with(())
        .given(vec![issued(1, 1), issued(2, 2)])
        .when(issue(3))
        .then_expect_events(vec![issued(3, 3)]);
}

#[test]
fn an_order_is_invoiced_once() {
    F::with(())
        .given(vec![issued(1, 1)])
        .when(InvoiceBookCommand::IssueInvoice {
            vendor_id: vendor(),
            document_id: doc(77),
            draft: draft(1),
            at: at(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn an_invoice_without_lines_is_refused() {
    F::with(())
        .given_no_previous_events()
        .when(InvoiceBookCommand::IssueInvoice {
            vendor_id: vendor(),
            document_id: doc(1),
            draft: DocumentDraft {
                lines: vec![],
                ..draft(1)
            },
            at: at(),
        })
        .then_expect_error(DomainError::invalid(
            "lines",
            "a document needs at least one line",
        ));
}

#[test]
fn an_invoice_whose_parts_do_not_add_up_to_its_subtotal_is_refused() {
    F::with(())
        .given_no_previous_events()
        .when(InvoiceBookCommand::IssueInvoice {
            vendor_id: vendor(),
            document_id: doc(1),
            draft: DocumentDraft {
                platform_fee: dec!(10.01),
                ..draft(1)
            },
            at: at(),
        })
        .then_expect_error(DomainError::invalid(
            "platform_fee",
            "the platform fee and the vendor's net must add up to the subtotal",
        ));
}

#[test]
fn another_vendors_document_is_refused() {
    F::with(())
        .given(vec![issued(1, 1)])
        .when(InvoiceBookCommand::IssueInvoice {
            vendor_id: Uuid::from_u128(42),
            document_id: doc(2),
            draft: draft(2),
            at: at(),
        })
        .then_expect_error(DomainError::invalid_state(format!(
            "this is the invoice book of vendor {}",
            vendor()
        )));
}

#[test]
fn a_refund_of_an_invoiced_order_gets_credit_note_number_one() {
    F::with(())
        .given(vec![issued(1, 1), issued(2, 2)])
        .when(credit(1, 1, 50))
        .then_expect_events(vec![credited(1, 1, 50, 1)]);
}

#[test]
fn credit_notes_are_numbered_in_their_own_gapless_series() {
    F::with(())
        .given(vec![issued(1, 1), credited(1, 1, 50, 1), issued(2, 2)])
        .when(credit(2, 2, 51))
        .then_expect_events(vec![credited(2, 2, 51, 2)]);
}

#[test]
fn a_refund_is_credited_once() {
    F::with(())
        .given(vec![issued(1, 1), credited(1, 1, 50, 1)])
        .when(credit(1, 1, 99))
        .then_expect_events(vec![]);
}

#[test]
fn a_credit_above_what_the_invoice_has_uncredited_is_refused() {
    // 108.00 invoiced; 43.20 credited twice leaves 21.60: a third 43.20 is
    // too much.
    F::with(())
        .given(vec![
            issued(1, 1),
            credited(1, 1, 50, 1),
            credited(1, 2, 51, 2),
        ])
        .when(credit(1, 3, 52))
        .then_expect_error(DomainError::invalid_state(
            "a credit of 43.20 exceeds the 21.60 the invoice has uncredited",
        ));
}

#[test]
fn a_refund_of_an_order_never_invoiced_is_not_found() {
    F::with(())
        .given(vec![issued(1, 1)])
        .when(credit(2, 1, 50))
        .then_expect_error(DomainError::not_found("invoice"));
}

#[test]
fn the_book_counts_what_it_issued_and_credited() {
    let mut book = InvoiceBook::default();
    for event in [issued(1, 1), issued(2, 2), credited(1, 1, 50, 1)] {
        book.apply(event);
    }
    assert_eq!(book.invoices_issued(), 2);
    assert_eq!(book.credit_notes_issued(), 1);
    let invoiced = book.invoice_of(order(1)).expect("invoiced");
    assert_eq!(
        (invoiced.total, invoiced.credited),
        (dec!(108), dec!(43.20))
    );
    assert_eq!(book.vendor_id(), Some(vendor()));
}
