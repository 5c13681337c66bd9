//! The OpenAPI 3.1 document of the whole HTTP API (API.md), generated from
//! the handlers' `#[utoipa::path]` annotations, and the routes that serve
//! it: `GET /openapi.json` and `GET /docs` (Swagger UI, its assets embedded
//! in the binary at build time; nothing is fetched from elsewhere).
//!
//! Problem responses are added here in one pass rather than on every
//! handler, from the rules of API.md "Conventions": every route may be
//! rate limited (429) or find a dependency down (503); authenticated routes
//! answer 401 and 403; routes with an id in the path 404; POSTs 400, 409
//! (business conflict or an `Idempotency-Key` in flight), 413, 415 and 422;
//! queries 400 and 422 for bad parameters.

use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use command_api::schema::Problem;
use utoipa::openapi::path::HttpMethod;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use command_api::routes as cmd;
use read_api as q;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Marketplace ledger",
        description = "Event-sourced marketplace ledger: commands, queries, the event log and audit. \
                       Money is a decimal string with two places; times are RFC 3339 UTC; errors are \
                       `application/problem+json` (RFC 7807).",
        version = env!("CARGO_PKG_VERSION"),
    ),
    paths(
        cmd::vendors::register,
        cmd::vendors::request_payout,
        cmd::listings::create,
        cmd::listings::publish,
        cmd::listings::archive,
        cmd::listings::change_price,
        cmd::listings::change_stock,
        cmd::listings::add_blackout,
        cmd::listings::remove_blackout,
        cmd::rentals::put_schedule,
        cmd::rentals::put_policies,
        cmd::orders::place,
        cmd::orders::cancel,
        cmd::fulfilment::ship,
        cmd::fulfilment::deliver,
        cmd::fulfilment::pick_up,
        cmd::fulfilment::return_line,
        cmd::webhooks::payments,
        q::listings::search,
        q::listings::detail,
        q::listings::availability,
        q::orders::detail,
        q::orders::list,
        q::money::earnings,
        q::money::entries,
        q::money::trial_balance,
        q::analytics::summary,
        q::analytics::revenue,
        q::events::list,
        q::events::stream,
        q::aggregates::events,
        q::aggregates::state,
        q::audit::verify_route,
        q::projections::list,
        q::health::live,
        q::health::ready,
        metrics,
        openapi_json,
        docs,
    ),
    components(schemas(Problem)),
    modifiers(&Conventions),
    tags(
        (name = "commands", description = "Commands: each answers with the touched aggregate's id and `position`"),
        (name = "webhooks", description = "The payment provider's webhook (`Stripe-Signature`, no token)"),
        (name = "queries", description = "Read models"),
        (name = "analytics", description = "Analysts' read models"),
        (name = "events", description = "The event log"),
        (name = "audit", description = "Hash chain and seals"),
        (name = "health", description = "No token"),
    ),
)]
pub struct ApiDoc;

/// The document, built once.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Prometheus text exposition (served by `observability::scrape`).
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, description = "Prometheus text", content_type = "text/plain", body = String)), security(()))]
#[allow(dead_code)]
async fn metrics() {}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "health", responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)), security(()))]
async fn openapi_json() -> impl IntoResponse {
    Json(document())
}

/// A browsable page over this document (Swagger UI, assets embedded).
#[utoipa::path(get, path = "/docs", tag = "health", responses((status = 200, description = "HTML", content_type = "text/html", body = String)), security(()))]
#[allow(dead_code)]
async fn docs() {}

/// `GET /openapi.json` and `GET /docs` (no token).
pub fn router() -> Router {
    Router::new()
        .merge(SwaggerUi::new("/docs").config(utoipa_swagger_ui::Config::from("/openapi.json")))
        .route("/openapi.json", get(openapi_json))
}

struct Conventions;

const UNAUTHENTICATED: &[&str] = &[
    "/health/live",
    "/health/ready",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/v1/webhooks/payments",
];

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "HS256 JWT with `sub`, `role` (customer, vendor, admin, analyst, auditor), \
                         `vendor_id` (vendors) and `exp`",
                    ))
                    .build(),
            ),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            let authenticated = !UNAUTHENTICATED.contains(&path.as_str());
            let has_id = path.contains('{');
            let webhook = path == "/v1/webhooks/payments";
            let ops = [
                (HttpMethod::Get, item.get.as_mut()),
                (HttpMethod::Post, item.post.as_mut()),
                (HttpMethod::Put, item.put.as_mut()),
                (HttpMethod::Delete, item.delete.as_mut()),
            ];
            for (method, op) in ops {
                let Some(op) = op else { continue };
                if method == HttpMethod::Post {
                    idempotency_key(op);
                }
                let mut codes: Vec<(u16, &str)> = vec![
                    (429, "Rate limited (`Retry-After` says when to retry)"),
                    (503, "A dependency is down or the request timed out"),
                ];
                if authenticated {
                    codes.push((401, "No or bad token"));
                    codes.push((403, "The role or ownership does not allow it"));
                    codes.push((400, "Malformed parameters or body"));
                    codes.push((422, "Validation failed (`errors: [{field, message}]`)"));
                }
                if has_id {
                    codes.push((404, "Unknown id"));
                }
                if matches!(
                    method,
                    HttpMethod::Post | HttpMethod::Put | HttpMethod::Delete
                ) {
                    codes.push((400, "Malformed JSON, parameters or signature"));
                    codes.push((
                        409,
                        "Business conflict (`type` names it; `unavailable` carries `conflicts`), \
                         or a request with the same `Idempotency-Key` still in flight",
                    ));
                    codes.push((413, "Body too large (limit 1 MiB)"));
                    codes.push((415, "Body is not `application/json`"));
                    codes.push((
                        422,
                        "Validation failed (`errors: [{field, message}]`), or an `Idempotency-Key` \
                         reused with another body",
                    ));
                }
                if webhook {
                    codes.retain(|(code, _)| *code != 401 && *code != 403);
                }
                for (code, description) in codes {
                    let key = code.to_string();
                    if op.responses.responses.contains_key(&key) {
                        continue;
                    }
                    let response = ResponseBuilder::new()
                        .description(description)
                        .content(
                            "application/problem+json",
                            ContentBuilder::new()
                                .schema(Some(RefOr::Ref(Ref::from_schema_name("Problem"))))
                                .build(),
                        )
                        .build();
                    op.responses.responses.insert(key, response.into());
                }
            }
        }
    }
}

/// Every POST takes an optional `Idempotency-Key`; a replayed answer says so
/// in `Idempotent-Replayed: true`.
fn idempotency_key(op: &mut utoipa::openapi::path::Operation) {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{header::HeaderBuilder, Required};

    let key = ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "The same key with the same body returns the first answer again; with another \
             body it is 422 `idempotency-key-reused`; racing a request still in flight, 409. \
             Kept 24 h, per principal.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(255))
                .pattern(Some("^[!-~]+$")),
        ))
        .build();
    op.parameters.get_or_insert_with(Vec::new).push(key);
    for (code, response) in op.responses.responses.iter_mut() {
        if let (true, RefOr::T(response)) = (code.starts_with('2'), response) {
            response.headers.insert(
                "Idempotent-Replayed".to_owned(),
                HeaderBuilder::new()
                    .schema(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .enum_values(Some(["true"])),
                    )
                    .description(Some("`true` when this is the first answer replayed"))
                    .build(),
            );
        }
    }
}
