//! The money routes over the ledger read model: `GET /v1/ledger/trial-balance`,
//! `GET /v1/vendors/{id}/earnings` and `GET /v1/vendors/{id}/earnings/entries`.

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue};
use axum::Json;
use chrono::{DateTime, Utc};
use ledger_http::extract::{ApiQuery, Ids};
use ledger_http::money::money;
use ledger_http::{ApiError, Principal, Role};
use projectors::ledger;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::freshness::{self, AtPosition, MinPosition};
use crate::page::{self, Page};
use crate::ReadState;

const MODELS: &[&str] = &[ledger::NAME];

#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountBalance {
    account: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    debit: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    credit: String,
    /// Debit minus credit: positive for assets, negative for what is owed.
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    balance: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TrialBalance {
    currency: String,
    accounts: Vec<AccountBalance>,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    total_debit: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    total_credit: String,
}

#[utoipa::path(get, path = "/v1/ledger/trial-balance", tag = "queries", responses((status = 200, description = "Every account's debits, credits and balance", body = TrialBalance, headers(("Ledger-Position" = i64, description = "The position the read model stood at")))), security(("bearer" = [])))]
pub async fn trial_balance(
    State(app): State<ReadState>,
    principal: Principal,
    min: MinPosition,
) -> Result<([(HeaderName, HeaderValue); 1], Json<TrialBalance>), ApiError> {
    principal.require(&[Role::Admin, Role::Auditor])?;
    let reached = freshness::wait_for(&app, MODELS, min).await?;
    // The principal's tenant's books only (issue 15): every tenant's
    // accounts balance on their own.
    let rows: Vec<(String, Decimal, Decimal)> = sqlx::query_as(
        "SELECT account, debit, credit FROM ledger_accounts WHERE tenant = $1 ORDER BY account",
    )
    .bind(&principal.tenant)
    .fetch_all(&app.pool)
    .await?;
    let total_debit: Decimal = rows.iter().map(|r| r.1).sum();
    let total_credit: Decimal = rows.iter().map(|r| r.2).sum();
    let accounts = rows
        .into_iter()
        .map(|(account, debit, credit)| AccountBalance {
            account,
            debit: money(debit),
            credit: money(credit),
            balance: money(debit - credit),
        })
        .collect();
    Ok((
        [freshness::header_value(reached)],
        Json(TrialBalance {
            currency: app.currency.clone(),
            accounts,
            total_debit: money(total_debit),
            total_credit: money(total_credit),
        }),
    ))
}

fn may_see_vendor(principal: &Principal, vendor_id: Uuid) -> Result<(), ApiError> {
    principal.require(&[Role::Vendor, Role::Admin])?;
    principal.require_vendor_or_admin(vendor_id)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Earnings {
    vendor_id: Uuid,
    currency: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    gross: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    platform_fees: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    net: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    pending: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    available: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    paid_out: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    damage_credits: String,
    /// Net reversed by refunds and lost disputes (`gross`, `platform_fees`
    /// and `net` are as sold).
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "0.00")]
    refunded: String,
    /// The vendor's share of open disputes.
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "0.00")]
    frozen: String,
    /// What the vendor owes after refunds its available balance could not
    /// cover; settled from its next credits.
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "0.00")]
    receivable: String,
}

#[utoipa::path(get, path = "/v1/vendors/{vendor_id}/earnings", tag = "queries", params(("vendor_id" = Uuid, Path, description = "Vendor id")), responses((status = 200, description = "The vendor's earnings", body = Earnings, headers(("Ledger-Position" = i64, description = "The position the read model stood at")))), security(("bearer" = [])))]
pub async fn earnings(
    State(app): State<ReadState>,
    principal: Principal,
    min: MinPosition,
    Ids([vendor_id]): Ids<1>,
) -> Result<AtPosition<Json<Earnings>>, ApiError> {
    may_see_vendor(&principal, vendor_id)?;
    let reached = freshness::wait_for(&app, MODELS, min).await?;
    Ok(AtPosition(
        reached,
        vendor_earnings(&app, &principal.tenant, vendor_id)
            .await
            .map(Json),
    ))
}

/// Another tenant's vendor is not found.
async fn vendor_earnings(
    app: &ReadState,
    tenant: &str,
    vendor_id: Uuid,
) -> Result<Earnings, ApiError> {
    type Row = (
        Decimal,
        Decimal,
        Decimal,
        Decimal,
        Decimal,
        Decimal,
        Decimal,
        Decimal,
        Decimal,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT gross, platform_fees, pending, available, paid_out, damage_credits,
                refunded, frozen, receivable
           FROM ledger_vendor_earnings WHERE vendor_id = $1 AND tenant = $2",
    )
    .bind(vendor_id)
    .bind(tenant)
    .fetch_optional(&app.pool)
    .await?;
    let (gross, fees, pending, available, paid_out, damage, refunded, frozen, receivable) =
        row.ok_or_else(|| ApiError::NotFound("vendor".to_owned()))?;
    Ok(Earnings {
        vendor_id,
        currency: app.currency.clone(),
        gross: money(gross),
        platform_fees: money(fees),
        net: money(gross - fees),
        pending: money(pending),
        available: money(available),
        paid_out: money(paid_out),
        damage_credits: money(damage),
        refunded: money(refunded),
        frozen: money(frozen),
        receivable: money(receivable),
    })
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EntriesParams {
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Posting {
    posting_id: i64,
    position: i64,
    account: String,
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<Uuid>,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    debit: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    credit: String,
    recorded_at: DateTime<Utc>,
}

type PostingRow = (
    i64,
    i64,
    String,
    String,
    Option<Uuid>,
    Decimal,
    Decimal,
    DateTime<Utc>,
);

#[utoipa::path(get, path = "/v1/vendors/{vendor_id}/earnings/entries", tag = "queries", params(("vendor_id" = Uuid, Path, description = "Vendor id"), EntriesParams), responses((status = 200, description = "A page of postings touching the vendor; with `Accept: text/csv`, the page as CSV (a header row, then one row a posting) and the next page's cursor in `Ledger-Next-Cursor`", content((crate::schema::PostingPage = "application/json"), (String = "text/csv")), headers(("Ledger-Position" = i64, description = "The position the read model stood at"), ("Ledger-Next-Cursor" = String, description = "CSV answers: the cursor of the next page, absent on the last")))), security(("bearer" = [])))]
pub async fn entries(
    State(app): State<ReadState>,
    principal: Principal,
    min: MinPosition,
    Ids([vendor_id]): Ids<1>,
    headers: axum::http::HeaderMap,
    ApiQuery(params): ApiQuery<EntriesParams>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    may_see_vendor(&principal, vendor_id)?;
    let limit = page::limit(params.limit)?;
    let cursor = page::numeric_cursor(params.cursor.as_deref())?;
    let reached = freshness::wait_for(&app, MODELS, min).await?;
    let page = vendor_postings(&app, &principal.tenant, vendor_id, cursor, limit).await;
    if wants_csv(&headers) {
        return Ok(AtPosition(reached, page.map(postings_csv)).into_response());
    }
    Ok(AtPosition(reached, page.map(Json)).into_response())
}

/// `Accept` names `text/csv` (a browser's `*/*` keeps JSON).
fn wants_csv(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get_all(axum::http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| media.split(';').next().unwrap_or("").trim() == "text/csv")
}

/// The header row of postings as CSV (`ledger earnings export` writes the same).
pub const POSTINGS_CSV_HEADER: &str =
    "posting_id,position,account,kind,order_id,debit,credit,recorded_at\n";

/// One posting as a CSV row (with its newline), as `Accept: text/csv` and
/// `ledger earnings export` write it.
#[allow(clippy::too_many_arguments)]
pub fn posting_csv_row(
    posting_id: i64,
    position: i64,
    account: &str,
    kind: &str,
    order_id: Option<Uuid>,
    debit: &str,
    credit: &str,
    recorded_at: DateTime<Utc>,
) -> String {
    fn field(text: &str) -> String {
        if text.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text.to_owned()
        }
    }
    let mut row = [
        posting_id.to_string(),
        position.to_string(),
        field(account),
        field(kind),
        order_id.map(|id| id.to_string()).unwrap_or_default(),
        debit.to_owned(),
        credit.to_owned(),
        recorded_at.to_rfc3339(),
    ]
    .join(",");
    row.push('\n');
    row
}

/// A page of postings as CSV, the next cursor in a header.
fn postings_csv(page: Page<Posting>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut body = String::from(POSTINGS_CSV_HEADER);
    for p in &page.items {
        body.push_str(&posting_csv_row(
            p.posting_id,
            p.position,
            &p.account,
            &p.kind,
            p.order_id,
            &p.debit,
            &p.credit,
            p.recorded_at,
        ));
    }
    let mut response = (
        [(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        )],
        body,
    )
        .into_response();
    if let Some(next) = page
        .next_cursor
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        response
            .headers_mut()
            .insert(HeaderName::from_static("ledger-next-cursor"), next);
    }
    response
}

async fn vendor_postings(
    app: &ReadState,
    tenant: &str,
    vendor_id: Uuid,
    cursor: Option<i64>,
    limit: i64,
) -> Result<Page<Posting>, ApiError> {
    let known: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM ledger_vendor_earnings WHERE vendor_id = $1 AND tenant = $2)",
    )
    .bind(vendor_id)
    .bind(tenant)
    .fetch_one(&app.pool)
    .await?;
    if !known {
        return Err(ApiError::NotFound("vendor".to_owned()));
    }
    let rows: Vec<PostingRow> = sqlx::query_as(
        "SELECT posting_id, position, account, kind, order_id, debit, credit, recorded_at
           FROM ledger_postings
          WHERE vendor_id = $1 AND ($2::bigint IS NULL OR posting_id > $2) AND tenant = $4
          ORDER BY posting_id LIMIT $3",
    )
    .persistent(false)
    .bind(vendor_id)
    .bind(cursor)
    .bind(limit + 1)
    .bind(tenant)
    .fetch_all(&app.pool)
    .await?;
    let more = rows.len() as i64 > limit;
    let items: Vec<Posting> = rows
        .into_iter()
        .take(limit as usize)
        .map(
            |(posting_id, position, account, kind, order_id, debit, credit, recorded_at)| Posting {
                posting_id,
                position,
                account,
                kind,
                order_id,
                debit: money(debit),
                credit: money(credit),
                recorded_at,
            },
        )
        .collect();
    let next_cursor = if more {
        items.last().map(|p| p.posting_id.to_string())
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}
