//! `GET /v1/orders/{id}/invoices` and `GET /v1/invoices/{id}.pdf`: the
//! invoices and credit notes the vendors' invoice books issued (invoices
//! read model), as JSON or as a PDF (`pdf`).
//!
//! Who sees what: the order's customer and an admin every document of the
//! order; a vendor in the order its own documents only; nobody else.

pub mod pdf;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use domain::Document;
use ledger_http::extract::Ids;
use ledger_http::money::money;
use ledger_http::{ApiError, Principal, Role};
use projectors::{invoices as model, orders};
use serde::Serialize;
use uuid::Uuid;

use crate::freshness::{self, AtPosition, MinPosition};
use crate::ReadState;

const MODELS: &[&str] = &[model::NAME, orders::NAME];

#[derive(Serialize, utoipa::ToSchema)]
pub struct InvoiceLineView {
    #[serde(skip_serializing_if = "Option::is_none")]
    line_id: Option<Uuid>,
    description: String,
    quantity: u32,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    unit_price: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    subtotal: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    tax: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct InvoiceView {
    invoice_id: Uuid,
    /// `INV-<vendor short id>-000001`, credit notes `CN-…`: gapless per vendor.
    #[schema(example = "INV-0A1B2C3D-000001")]
    number: String,
    /// `invoice` or `credit_note`.
    #[schema(example = "invoice")]
    kind: String,
    vendor_id: Uuid,
    vendor_name: String,
    order_id: Uuid,
    currency: String,
    lines: Vec<InvoiceLineView>,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    subtotal: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    tax: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    total: String,
    /// The platform's part of the subtotal, and the vendor's.
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "4.50")]
    platform_fee: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "40.50")]
    vendor_net: String,
    /// A credit note's refund, and the invoice it credits.
    #[serde(skip_serializing_if = "Option::is_none")]
    refund_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credits_invoice_id: Option<Uuid>,
    issued_at: DateTime<Utc>,
    /// Where the PDF is.
    #[schema(example = "/v1/invoices/0190b2c4-0000-7000-8000-000000000000.pdf")]
    pdf: String,
}

impl From<Document> for InvoiceView {
    fn from(d: Document) -> Self {
        Self {
            invoice_id: d.document_id,
            number: d.number,
            kind: d.kind.as_str().to_owned(),
            vendor_id: d.vendor_id,
            vendor_name: d.vendor_name,
            order_id: d.order_id,
            currency: d.currency,
            lines: d
                .lines
                .into_iter()
                .map(|l| InvoiceLineView {
                    line_id: l.line_id,
                    description: l.description,
                    quantity: l.quantity,
                    unit_price: money(l.unit_price),
                    subtotal: money(l.subtotal),
                    tax: money(l.tax),
                })
                .collect(),
            subtotal: money(d.subtotal),
            tax: money(d.tax),
            total: money(d.total),
            platform_fee: money(d.platform_fee),
            vendor_net: money(d.vendor_net),
            refund_id: d.refund_id,
            credits_invoice_id: d.credits_invoice_id,
            issued_at: d.issued_at,
            pdf: format!("/v1/invoices/{}.pdf", d.document_id),
        }
    }
}

fn may_read(principal: &Principal) -> Result<(), ApiError> {
    principal.require(&[Role::Customer, Role::Vendor, Role::Admin])
}

fn forbidden() -> ApiError {
    ApiError::Forbidden("these documents belong to someone else".to_owned())
}

/// A stored document with its personal fields (the vendor's name) opened,
/// or `[erased]` once their subject is erased.
async fn decode(app: &ReadState, mut document: serde_json::Value) -> Result<Document, ApiError> {
    app.personal
        .reveal(&mut document)
        .await
        .map_err(ApiError::internal)?;
    serde_json::from_value(document).map_err(ApiError::internal)
}

#[utoipa::path(get, path = "/v1/orders/{order_id}/invoices", tag = "queries", params(("order_id" = Uuid, Path, description = "Order id")), responses((status = 200, description = "The order's invoices and credit notes, in the order they were issued (a vendor: its own)", body = [InvoiceView], headers(("Ledger-Position" = i64, description = "The position the read models stood at")))), security(("bearer" = [])))]
pub async fn of_order(
    State(app): State<ReadState>,
    principal: Principal,
    min: MinPosition,
    Ids([order_id]): Ids<1>,
) -> Result<AtPosition<Json<Vec<InvoiceView>>>, ApiError> {
    may_read(&principal)?;
    let reached = freshness::wait_for(&app, MODELS, min).await?;
    Ok(AtPosition(
        reached,
        order_documents(&app, &principal, order_id).await.map(Json),
    ))
}

async fn order_documents(
    app: &ReadState,
    principal: &Principal,
    order_id: Uuid,
) -> Result<Vec<InvoiceView>, ApiError> {
    // Who may see the order's documents is who takes part in the order;
    // another tenant's order is 404, like a missing one.
    let order: Option<(String, Vec<Uuid>)> = sqlx::query_as(
        "SELECT o.customer_id, coalesce(array_agg(v.vendor_id) FILTER (WHERE v.vendor_id IS NOT NULL), '{}')
           FROM rm_orders o LEFT JOIN rm_order_vendors v ON v.order_id = o.order_id
          WHERE o.order_id = $1 AND o.tenant = $2
          GROUP BY o.customer_id",
    )
    .bind(order_id)
    .bind(&principal.tenant)
    .fetch_optional(&app.pool)
    .await?;
    let Some((customer_id, vendors)) = order else {
        return Err(ApiError::NotFound("order".to_owned()));
    };
    let only_vendor = match principal.role {
        Role::Admin => None,
        Role::Customer if customer_id == principal.subject => None,
        Role::Vendor => match principal.vendor_id {
            Some(own) if vendors.contains(&own) => Some(own),
            _ => return Err(forbidden()),
        },
        _ => return Err(forbidden()),
    };
    let rows: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT document FROM invoices
          WHERE order_id = $1 AND ($2::uuid IS NULL OR vendor_id = $2) AND tenant = $3
          ORDER BY issued_at, position",
    )
    .bind(order_id)
    .bind(only_vendor)
    .bind(&principal.tenant)
    .fetch_all(&app.pool)
    .await?;
    let mut views = Vec::with_capacity(rows.len());
    for row in rows {
        views.push(InvoiceView::from(decode(app, row).await?));
    }
    Ok(views)
}

#[utoipa::path(get, path = "/v1/invoices/{invoice_id}.pdf", tag = "queries", params(("invoice_id" = Uuid, Path, description = "Invoice or credit note id")), responses((status = 200, description = "The invoice or credit note as a PDF", content_type = "application/pdf", body = Vec<u8>, headers(("Ledger-Position" = i64, description = "The position the read model stood at")))), security(("bearer" = [])))]
pub async fn pdf(
    State(app): State<ReadState>,
    principal: Principal,
    min: MinPosition,
    Path(file): Path<String>,
) -> Result<AtPosition<Response>, ApiError> {
    may_read(&principal)?;
    // axum's router takes no suffix after a parameter: `{file}` is
    // `<id>.pdf`, anything else names no document.
    let invoice_id = file
        .strip_suffix(".pdf")
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| ApiError::NotFound("invoice".to_owned()))?;
    let reached = freshness::wait_for(&app, &[model::NAME], min).await?;
    Ok(AtPosition(
        reached,
        document_pdf(&app, &principal, invoice_id).await,
    ))
}

async fn document_pdf(
    app: &ReadState,
    principal: &Principal,
    invoice_id: Uuid,
) -> Result<Response, ApiError> {
    // Another tenant's document is 404, like a missing one.
    let row: Option<serde_json::Value> =
        sqlx::query_scalar("SELECT document FROM invoices WHERE invoice_id = $1 AND tenant = $2")
            .bind(invoice_id)
            .bind(&principal.tenant)
            .fetch_optional(&app.pool)
            .await?;
    let document = decode(
        app,
        row.ok_or_else(|| ApiError::NotFound("invoice".to_owned()))?,
    )
    .await?;
    let allowed = match principal.role {
        Role::Admin => true,
        Role::Customer => document.customer_id == principal.subject,
        Role::Vendor => principal.vendor_id == Some(document.vendor_id),
        _ => false,
    };
    if !allowed {
        return Err(forbidden());
    }
    let file_name = format!("{}.pdf", document.number);
    let body = pdf::render(&document);
    let disposition = HeaderValue::from_str(&format!("inline; filename=\"{file_name}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("inline"));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/pdf"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}
