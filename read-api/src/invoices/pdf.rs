//! An invoice or credit note as a PDF, written with `pdf-writer`.
//!
//! Text is set in Helvetica, one of the standard fonts every PDF reader
//! carries, in WinAnsiEncoding: nothing is embedded, nothing is fetched.
//! A character outside that encoding prints as `?`. A document with more
//! lines than a page holds continues on further pages, the totals after
//! the last line.

use domain::{Document, DocumentKind};
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use rust_decimal::Decimal;

const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 50.0;
const BOTTOM: f32 = 90.0;
const LEADING: f32 = 15.0;
const SIZE: f32 = 10.0;
const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");

/// Right edges of the amount columns, and where the others start.
const QTY_RIGHT: f32 = 345.0;
const PRICE_RIGHT: f32 = 415.0;
const SUBTOTAL_RIGHT: f32 = 485.0;
const TAX_RIGHT: f32 = PAGE_WIDTH - MARGIN;
/// Most characters of a description on its line.
const DESCRIPTION_CHARS: usize = 48;

/// Text as WinAnsiEncoding bytes: printable ASCII and Latin-1 as they are,
/// anything else `?`.
fn encode(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c as u32 {
            0x20..=0x7e | 0xa0..=0xff => c as u32 as u8,
            _ => b'?',
        })
        .collect()
}

/// Width of `text` in Helvetica at `size`, from the font's metrics for
/// what amounts print (digits, point, comma, minus, space); other
/// characters are taken as wide as a digit.
fn width(text: &str, size: f32) -> f32 {
    let units: u32 = text
        .chars()
        .map(|c| match c {
            '.' | ',' | ' ' => 278,
            '-' => 333,
            _ => 556,
        })
        .sum();
    units as f32 * size / 1000.0
}

fn amount(value: Decimal) -> String {
    ledger_http::money::money(value)
}

/// One page's content being written, and where the next line goes.
struct PageWriter {
    content: Content,
    y: f32,
}

impl PageWriter {
    fn new() -> Self {
        Self {
            content: Content::new(),
            y: PAGE_HEIGHT - MARGIN,
        }
    }

    fn text(&mut self, font: Name, size: f32, x: f32, text: &str) {
        self.content
            .begin_text()
            .set_font(font, size)
            .next_line(x, self.y)
            .show(Str(&encode(text)))
            .end_text();
    }

    fn right(&mut self, font: Name, size: f32, right: f32, text: &str) {
        let x = right - width(text, size);
        self.text(font, size, x, text);
    }

    fn rule(&mut self) {
        let y = self.y + LEADING * 0.6;
        self.content
            .set_line_width(0.5)
            .move_to(MARGIN, y)
            .line_to(PAGE_WIDTH - MARGIN, y)
            .stroke();
    }

    fn down(&mut self, lines: f32) {
        self.y -= LEADING * lines;
    }
}

/// The document as a PDF file.
pub fn render(document: &Document) -> Vec<u8> {
    let title = match document.kind {
        DocumentKind::Invoice => "Invoice",
        DocumentKind::CreditNote => "Credit note",
    };
    let mut pages = vec![PageWriter::new()];
    let page = pages.last_mut().expect("a first page");

    page.text(BOLD, 20.0, MARGIN, &format!("{title} {}", document.number));
    page.down(2.0);
    let vendor = if document.vendor_name.is_empty() {
        document.vendor_id.to_string()
    } else {
        format!("{} ({})", document.vendor_name, document.vendor_id)
    };
    for (label, value) in [
        (
            "Issued",
            document.issued_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        ),
        ("Vendor", vendor),
        ("Customer", document.customer_id.clone()),
        ("Order", document.order_id.to_string()),
        ("Currency", document.currency.clone()),
    ] {
        page.text(BOLD, SIZE, MARGIN, label);
        page.text(REGULAR, SIZE, MARGIN + 70.0, &value);
        page.down(1.0);
    }
    if let Some(invoice_id) = document.credits_invoice_id {
        page.text(BOLD, SIZE, MARGIN, "Credits");
        page.text(
            REGULAR,
            SIZE,
            MARGIN + 70.0,
            &format!("invoice {invoice_id}"),
        );
        page.down(1.0);
    }
    if let Some(refund_id) = document.refund_id {
        page.text(BOLD, SIZE, MARGIN, "Refund");
        page.text(REGULAR, SIZE, MARGIN + 70.0, &refund_id.to_string());
        page.down(1.0);
    }
    page.down(1.0);

    let header = |page: &mut PageWriter| {
        page.text(BOLD, SIZE, MARGIN, "Description");
        page.right(BOLD, SIZE, QTY_RIGHT, "Qty");
        page.right(BOLD, SIZE, PRICE_RIGHT, "Unit price");
        page.right(BOLD, SIZE, SUBTOTAL_RIGHT, "Subtotal");
        page.right(BOLD, SIZE, TAX_RIGHT, "Tax");
        page.down(1.0);
        page.rule();
    };
    header(pages.last_mut().expect("a page"));
    for line in &document.lines {
        if pages.last().expect("a page").y < BOTTOM {
            let mut next = PageWriter::new();
            header(&mut next);
            pages.push(next);
        }
        let page = pages.last_mut().expect("a page");
        let description: String = line.description.chars().take(DESCRIPTION_CHARS).collect();
        page.text(REGULAR, SIZE, MARGIN, &description);
        page.right(REGULAR, SIZE, QTY_RIGHT, &line.quantity.to_string());
        page.right(REGULAR, SIZE, PRICE_RIGHT, &amount(line.unit_price));
        page.right(REGULAR, SIZE, SUBTOTAL_RIGHT, &amount(line.subtotal));
        page.right(REGULAR, SIZE, TAX_RIGHT, &amount(line.tax));
        page.down(1.0);
    }

    // Totals and the parts: six lines, kept together.
    if pages.last().expect("a page").y < BOTTOM + LEADING * 7.0 {
        pages.push(PageWriter::new());
    }
    let page = pages.last_mut().expect("a page");
    page.rule();
    page.down(0.5);
    for (label, value, font) in [
        ("Subtotal", document.subtotal, REGULAR),
        ("Tax", document.tax, REGULAR),
        ("Total", document.total, BOLD),
    ] {
        page.text(font, SIZE, 330.0, label);
        page.right(
            font,
            SIZE,
            TAX_RIGHT,
            &format!("{} {}", amount(value), document.currency),
        );
        page.down(1.0);
    }
    page.down(1.0);
    page.text(BOLD, SIZE, MARGIN, "Of the subtotal");
    page.down(1.0);
    for (label, value) in [
        ("Vendor's part (net)", document.vendor_net),
        ("Platform fee", document.platform_fee),
    ] {
        page.text(REGULAR, SIZE, MARGIN, label);
        page.right(REGULAR, SIZE, TAX_RIGHT, &amount(value));
        page.down(1.0);
    }

    let count = pages.len();
    for (i, page) in pages.iter_mut().enumerate() {
        page.y = BOTTOM - 2.0 * LEADING;
        page.text(
            REGULAR,
            8.0,
            MARGIN,
            &format!("{} - page {} of {count}", document.number, i + 1),
        );
    }

    write(document, &format!("{title} {}", document.number), pages)
}

fn write(document: &Document, title: &str, pages: Vec<PageWriter>) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let info = Ref::new(5);
    let first_page = 10;
    let page_ids: Vec<Ref> = (0..pages.len())
        .map(|i| Ref::new(first_page + 2 * i as i32))
        .collect();

    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_ids.iter().copied())
        .count(pages.len() as i32);
    for (i, page) in pages.into_iter().enumerate() {
        let page_id = page_ids[i];
        let content_id = Ref::new(page_id.get() + 1);
        let mut writer = pdf.page(page_id);
        writer.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT));
        writer.parent(tree);
        writer.contents(content_id);
        writer
            .resources()
            .fonts()
            .pair(REGULAR, regular)
            .pair(BOLD, bold);
        writer.finish();
        pdf.stream(content_id, &page.content.finish());
    }
    for (id, name) in [(regular, &b"Helvetica"[..]), (bold, &b"Helvetica-Bold"[..])] {
        pdf.type1_font(id)
            .base_font(Name(name))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    pdf.document_info(info)
        .title(TextStr(title))
        .author(TextStr(&document.vendor_name))
        .creator(TextStr("ledger"));
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use domain::DocumentLine;
    use rust_decimal_macros::dec;
    use uuid::Uuid;

    fn document(lines: usize) -> Document {
        let line = |i: usize| DocumentLine {
            line_id: Some(Uuid::from_u128(i as u128)),
            description: format!("Kayak rental no. {i} (crème brûlée ✓)"),
            quantity: 2,
            unit_price: dec!(12.50),
            subtotal: dec!(25.00),
            tax: dec!(2.00),
        };
        let count = Decimal::from(lines as u64);
        Document {
            document_id: Uuid::from_u128(1),
            kind: DocumentKind::Invoice,
            number: "INV-0A1B2C3D-000007".into(),
            sequence: 7,
            vendor_id: Uuid::from_u128(2),
            vendor_name: "Kayaks & Co".into(),
            order_id: Uuid::from_u128(3),
            customer_id: "customer-1".into(),
            currency: "USD".into(),
            lines: (0..lines).map(line).collect(),
            subtotal: dec!(25.00) * count,
            tax: dec!(2.00) * count,
            total: dec!(27.00) * count,
            platform_fee: dec!(2.50) * count,
            vendor_net: dec!(22.50) * count,
            refund_id: None,
            credits_invoice_id: None,
            issued_at: Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap(),
        }
    }

    fn text_of(pdf: &[u8]) -> (usize, String) {
        let parsed = lopdf::Document::load_mem(pdf).expect("the PDF parses");
        let pages: Vec<u32> = parsed.get_pages().keys().copied().collect();
        let text = parsed.extract_text(&pages).expect("its text extracts");
        (pages.len(), text)
    }

    #[test]
    fn an_invoice_pdf_parses_and_shows_its_number_lines_and_totals() {
        let (pages, text) = text_of(&render(&document(3)));
        assert_eq!(pages, 1);
        for expected in [
            "Invoice INV-0A1B2C3D-000007",
            "Kayaks & Co",
            "Kayak rental no. 2",
            "crème brûlée ?",
            "25.00",
            "75.00",
            "81.00 USD",
            "67.50",
            "7.50",
            "Platform fee",
        ] {
            assert!(text.contains(expected), "{expected:?} missing in {text}");
        }
    }

    #[test]
    fn a_long_invoice_continues_on_further_pages_with_its_total_last() {
        let (pages, text) = text_of(&render(&document(100)));
        assert!(pages > 1, "{pages} pages");
        assert!(text.contains("Kayak rental no. 99"));
        assert!(text.contains("2700.00 USD"), "{text}");
        assert!(text.contains(&format!("page {pages} of {pages}")));
    }
}
