//! Invoices end to end (API.md "Money", issue 14 item 5): each confirmed
//! order gets one invoice per vendor part, numbered per vendor without
//! gaps on the command side (the vendor's InvoiceBook aggregate, driven by
//! the policies); `GET /v1/orders/{id}/invoices` shows them to the
//! customer, each vendor its own, and admins; `GET /v1/invoices/{id}.pdf`
//! is a real PDF with the lines, tax, totals and parts.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ledger_tests::scenario::rental_days;
use ledger_tests::webhooks::{payment_event, signed, total_minor, SUCCEEDED};
use ledger_tests::{assert_ok, sale_item, Answer, TestApp, WEBHOOK_SECRET};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::Value;
use tokio::sync::Barrier;
use uuid::Uuid;

async fn settle(app: &TestApp) -> i64 {
    ledger_tests::pipeline::settle(app, Duration::from_secs(60))
        .await
        .expect("the read models settle")
}

async fn invoices(app: &TestApp, order_id: Uuid, token: &str, min: i64) -> Answer {
    app.get_at(&format!("/v1/orders/{order_id}/invoices"), token, Some(min))
        .await
}

fn number_of(document: &Value) -> (String, u32) {
    let number = document["number"].as_str().expect("a number").to_owned();
    let sequence = number
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("six digits at the end");
    (number, sequence)
}

/// The PDF at `path`, as `token` gets it: its pages' text.
async fn pdf_text(app: &TestApp, path: &str, token: &str) -> String {
    let response = app
        .client
        .get(format!("{}{path}", app.base_url))
        .bearer_auth(token)
        .send()
        .await
        .expect("the ledger answers");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/pdf")
    );
    let bytes = response.bytes().await.expect("a body");
    assert!(bytes.starts_with(b"%PDF-"), "a PDF file");
    let document = lopdf::Document::load_mem(&bytes).expect("the PDF parses");
    let pages: Vec<u32> = document.get_pages().keys().copied().collect();
    document.extract_text(&pages).expect("its text extracts")
}

/// Harbour rents a kayak 2 days × 20.00 (deposit 50.00), Alpine sells
/// 2 × 15.00 boots; tax 10 %: Harbour's invoice 40.00 + 4.00 = 44.00 (fee
/// 4.00, net 36.00), Alpine's 30.00 + 3.00 = 33.00 (fee 3.00, net 27.00).
/// The deposit is held, not invoiced.
#[tokio::test]
async fn a_confirmed_order_gets_one_invoice_per_vendor_part_shown_to_who_takes_part() {
    let app = TestApp::spawn_with(|c| c.tax_rate = Decimal::new(10, 2)).await;
    let harbour = app.register_vendor("Harbour").await;
    let alpine = app.register_vendor("Alpine").await;
    let kayak = app
        .rental_listing(harbour, "day", "20.00", "50.00", 3)
        .await;
    let boots = app.sale_listing(alpine, "15.00", 10).await;
    let order = app
        .place(
            "customer-a",
            vec![rental_days(kayak, 1, 1, 3), sale_item(boots, 2)],
        )
        .await;
    assert_eq!(order.status, StatusCode::CREATED, "{:?}", order.body);
    let order_id = order.uuid("order_id");
    let unpaid = invoices(
        &app,
        order_id,
        &app.customer("customer-a"),
        settle(&app).await,
    )
    .await;
    assert_ok(&unpaid);
    assert_eq!(
        unpaid.body,
        serde_json::json!([]),
        "no invoice before payment"
    );

    app.pay(&order).await;
    let head = settle(&app).await;
    let all = invoices(&app, order_id, &app.customer("customer-a"), head).await;
    assert_ok(&all);
    let documents = all.body.as_array().expect("a list").clone();
    assert_eq!(documents.len(), 2, "{documents:?}");
    let of = |vendor: Uuid| {
        documents
            .iter()
            .find(|d| d["vendor_id"] == serde_json::json!(vendor))
            .expect("the vendor's invoice")
            .clone()
    };
    let h = of(harbour);
    assert_eq!(h["kind"], "invoice");
    assert_eq!(
        number_of(&h),
        (
            domain::invoice_book::document_number(domain::DocumentKind::Invoice, harbour, 1),
            1
        )
    );
    assert!(h["number"].as_str().unwrap_or_default().starts_with("INV-"));
    assert_eq!(
        (&h["subtotal"], &h["tax"], &h["total"]),
        (&"40.00".into(), &"4.00".into(), &"44.00".into())
    );
    assert_eq!(
        (&h["platform_fee"], &h["vendor_net"]),
        (&"4.00".into(), &"36.00".into())
    );
    assert_eq!(h["lines"].as_array().map(Vec::len), Some(1));
    assert!(h["issued_at"].is_string());
    let a = of(alpine);
    assert_eq!(number_of(&a).1, 1, "each vendor numbers its own");
    assert_eq!(
        (&a["subtotal"], &a["tax"], &a["total"]),
        (&"30.00".into(), &"3.00".into(), &"33.00".into())
    );
    assert_eq!(a["lines"][0]["quantity"], 2);
    assert_eq!(a["lines"][0]["unit_price"], "15.00");

    // A vendor sees its own invoice only; others see none of them.
    let mine = invoices(&app, order_id, &app.vendor(alpine), head).await;
    assert_ok(&mine);
    assert_eq!(mine.body.as_array().map(Vec::len), Some(1));
    assert_eq!(mine.body[0]["vendor_id"], serde_json::json!(alpine));
    let admin = invoices(&app, order_id, &app.admin(), head).await;
    assert_eq!(admin.body.as_array().map(Vec::len), Some(2));
    let outsider = app.register_vendor("Outsider").await;
    for token in [
        app.customer("customer-b"),
        app.vendor(outsider),
        app.analyst(),
    ] {
        let answer = invoices(&app, order_id, &token, head).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{:?}", answer.body);
    }
    let unknown = invoices(&app, Uuid::now_v7(), &app.admin(), head).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // The PDF: its number, lines, tax, total and the two parts.
    let pdf_path = format!("/v1/invoices/{}.pdf", h["invoice_id"].as_str().expect("id"));
    assert_eq!(h["pdf"], pdf_path.as_str());
    let text = pdf_text(&app, &pdf_path, &app.customer("customer-a")).await;
    for expected in [
        h["number"].as_str().expect("number"),
        "Harbour",
        "40.00",
        "4.00",
        "44.00 USD",
        "36.00",
        "Platform fee",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} not in the PDF: {text}"
        );
    }
    let vendor_pdf = pdf_text(&app, &pdf_path, &app.vendor(harbour)).await;
    assert!(vendor_pdf.contains("44.00 USD"));
    for token in [app.vendor(alpine), app.customer("customer-b")] {
        let answer = app.get(&pdf_path, &token).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{:?}", answer.body);
    }
    for path in [
        format!("/v1/invoices/{}.pdf", Uuid::now_v7()),
        format!("/v1/invoices/{}", h["invoice_id"].as_str().expect("id")),
        "/v1/invoices/nonsense.pdf".to_owned(),
    ] {
        let answer = app.get(&path, &app.admin()).await;
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "{path}: {:?}",
            answer.body
        );
    }
}

/// Fifty orders of one vendor are paid at once, from fifty clients: the
/// policies confirm them concurrently, and the vendor's invoices are
/// numbered 1 to 50, each once, none skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invoice_numbers_stay_gapless_under_fifty_racing_confirmations() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Busy").await;
    let lamp = app.sale_listing(vendor, "12.00", 1000).await;
    let mut orders = Vec::new();
    for i in 0..50 {
        let order = app
            .place(&format!("racer-{i}"), vec![sale_item(lamp, 1)])
            .await;
        assert_eq!(order.status, StatusCode::CREATED, "{:?}", order.body);
        orders.push(order);
    }
    let barrier = Arc::new(Barrier::new(orders.len()));
    let tasks: Vec<_> = orders
        .iter()
        .enumerate()
        .map(|(i, order)| {
            let event = payment_event(
                &format!("evt_race_{i}"),
                SUCCEEDED,
                order.uuid("order_id"),
                total_minor(order),
                None,
            );
            let url = format!("{}/v1/webhooks/payments", app.base_url);
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                barrier.wait().await;
                let (raw, signature) =
                    signed(&event, WEBHOOK_SECRET, chrono::Utc::now().timestamp());
                client
                    .post(url)
                    .header("content-type", "application/json")
                    .header("stripe-signature", signature)
                    .body(raw)
                    .send()
                    .await
                    .expect("the ledger answers")
                    .status()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.expect("a racing client"), StatusCode::OK);
    }

    let head = settle(&app).await;
    let mut numbers = BTreeSet::new();
    let mut sequences = Vec::new();
    for order in &orders {
        let answer = invoices(&app, order.uuid("order_id"), &app.admin(), head).await;
        assert_ok(&answer);
        let documents = answer.body.as_array().expect("a list");
        assert_eq!(documents.len(), 1, "one invoice per order: {documents:?}");
        let (number, sequence) = number_of(&documents[0]);
        numbers.insert(number);
        sequences.push(sequence);
    }
    sequences.sort_unstable();
    assert_eq!(
        sequences,
        (1..=50).collect::<Vec<u32>>(),
        "1 to 50, each once"
    );
    assert_eq!(numbers.len(), 50);
}

/// The documents of `order_id` of one kind, as an admin sees them.
async fn documents_of(app: &TestApp, order_id: Uuid, kind: &str, head: i64) -> Vec<Value> {
    let answer = invoices(app, order_id, &app.admin(), head).await;
    assert_ok(&answer);
    answer
        .body
        .as_array()
        .expect("a list")
        .iter()
        .filter(|d| d["kind"] == kind)
        .cloned()
        .collect()
}

/// A refund of Alpine's boots and the cancellation of a paid kayak rental
/// each get a credit note of the vendor whose part was given back,
/// numbered `CN-…-000001` in that vendor's book, crediting the order's
/// invoice; a second credit never goes above what the invoice has left.
#[tokio::test]
async fn a_refund_and_a_paid_cancellation_each_get_a_credit_note_of_the_vendor_part() {
    let app = TestApp::spawn_with(|c| c.tax_rate = Decimal::new(10, 2)).await;
    let harbour = app.register_vendor("Harbour").await;
    let alpine = app.register_vendor("Alpine").await;
    let kayak = app
        .rental_listing(harbour, "day", "20.00", "50.00", 3)
        .await;
    let boots = app.sale_listing(alpine, "15.00", 10).await;

    // A refund of the boots' line only: Alpine's part, 30.00 + 3.00.
    let mixed = app
        .place(
            "customer-a",
            vec![rental_days(kayak, 1, 1, 3), sale_item(boots, 2)],
        )
        .await;
    app.pay(&mixed).await;
    let mixed_id = mixed.uuid("order_id");
    let boots_line = mixed.body["lines"]
        .as_array()
        .and_then(|lines| lines.iter().find(|l| l["listing_id"] == boots.to_string()))
        .and_then(|l| l["line_id"].as_str())
        .expect("the boots' line")
        .to_owned();
    settle(&app).await;
    let refund = app
        .post(
            &format!("/v1/orders/{mixed_id}/refunds"),
            &app.admin(),
            serde_json::json!({"lines": [boots_line], "reason": "wrong size"}),
        )
        .await;
    assert_eq!(refund.status, StatusCode::CREATED, "{:?}", refund.body);
    let head = settle(&app).await;
    let notes = documents_of(&app, mixed_id, "credit_note", head).await;
    assert_eq!(notes.len(), 1, "one credit note, Alpine's: {notes:?}");
    let note = &notes[0];
    assert_eq!(note["vendor_id"], serde_json::json!(alpine));
    assert_eq!(
        number_of(note),
        (
            domain::invoice_book::document_number(domain::DocumentKind::CreditNote, alpine, 1),
            1
        )
    );
    assert_eq!(
        (&note["tax"], &note["total"]),
        (&"3.00".into(), &"33.00".into())
    );
    assert_eq!(note["refund_id"], refund.body["refund_id"]);
    let alpine_invoice = documents_of(&app, mixed_id, "invoice", head)
        .await
        .into_iter()
        .find(|d| d["vendor_id"] == serde_json::json!(alpine))
        .expect("Alpine's invoice");
    assert_eq!(note["credits_invoice_id"], alpine_invoice["invoice_id"]);
    let pdf_path = format!(
        "/v1/invoices/{}.pdf",
        note["invoice_id"].as_str().expect("id")
    );
    let text = pdf_text(&app, &pdf_path, &app.customer("customer-a")).await;
    assert!(
        text.contains(note["number"].as_str().expect("number")),
        "{text}"
    );

    // A paid kayak rental cancelled with notice (no policy: all back):
    // Harbour's part, 40.00 + 4.00, credited; the deposit is not invoiced.
    let rental = app
        .place("customer-b", vec![rental_days(kayak, 1, 5, 7)])
        .await;
    app.pay(&rental).await;
    let rental_id = rental.uuid("order_id");
    settle(&app).await;
    let cancelled = app
        .cancel_order(
            &app.customer("customer-b"),
            rental_id,
            serde_json::json!({"reason": "plans changed"}),
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{:?}", cancelled.body);
    assert_eq!(cancelled.body["status"], "refunded");
    let head = settle(&app).await;
    let notes = documents_of(&app, rental_id, "credit_note", head).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["vendor_id"], serde_json::json!(harbour));
    assert_eq!(number_of(&notes[0]).1, 1, "Harbour's first credit note");
    assert_eq!(
        (&notes[0]["subtotal"], &notes[0]["tax"], &notes[0]["total"]),
        (&"40.00".into(), &"4.00".into(), &"44.00".into())
    );
    assert_eq!(
        (&notes[0]["platform_fee"], &notes[0]["vendor_net"]),
        (&"4.00".into(), &"36.00".into())
    );
    // Harbour's kayak line on the first order was not refunded: no note.
    let harbour_notes: Vec<_> = documents_of(&app, mixed_id, "credit_note", head)
        .await
        .into_iter()
        .filter(|d| d["vendor_id"] == serde_json::json!(harbour))
        .collect();
    assert!(harbour_notes.is_empty(), "{harbour_notes:?}");
}
