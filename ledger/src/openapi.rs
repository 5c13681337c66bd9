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
        cmd::vendors::set_fee_rate,
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
        cmd::tenants::create,
        cmd::tenants::get,
        cmd::tenants::change,
        cmd::subscriptions::create_plan,
        cmd::subscriptions::subscribe,
        cmd::subscriptions::cancel,
        cmd::subscriptions::change_plan,
        cmd::refunds::refund,
        cmd::payments::apply,
        cmd::payments::refund,
        cmd::subjects::erase,
        cmd::fulfilment::ship,
        cmd::fulfilment::deliver,
        cmd::fulfilment::pick_up,
        cmd::fulfilment::return_line,
        cmd::leases::terminate,
        cmd::changes::extend,
        cmd::changes::reschedule,
        cmd::webhooks::payments,
        command_api::outbound::routes::create,
        command_api::outbound::routes::list,
        command_api::outbound::routes::delete,
        command_api::outbound::routes::rotate_secret,
        command_api::outbound::routes::deliveries,
        command_api::outbound::routes::redeliver,
        q::listings::search,
        q::listings::detail,
        q::listings::availability,
        q::orders::detail,
        q::orders::list,
        q::order_feed::stream,
        q::money::earnings,
        q::money::entries,
        q::money::trial_balance,
        q::payouts::list,
        q::invoices::of_order,
        q::invoices::pdf,
        q::subscriptions::plans,
        q::subscriptions::plan,
        q::subscriptions::list,
        q::subscriptions::detail,
        q::analytics::summary,
        q::analytics::revenue,
        q::events::list,
        q::events::stream,
        q::aggregates::events,
        q::aggregates::state,
        q::audit::verify_route,
        q::audit::seals_route,
        q::audit::proof_route,
        q::projections::list,
        q::health::live,
        q::health::ready,
        metrics,
        openapi_json,
        docs,
        crate::dashboard::index,
    ),
    components(schemas(Problem, q::analytics::Granularity, q::analytics::GroupBy, q::order_feed::OrderEventView)),
    modifiers(&Conventions),
    tags(
        (name = "commands", description = "Commands: each answers with the touched aggregate's id and `position`"),
        (name = "webhooks", description = "The payment provider's webhook (`Stripe-Signature`, no token)"),
        (name = "webhooks-out", description = "Outgoing webhooks: endpoints, their deliveries and redelivery"),
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
        unique_operation_ids(openapi);
        for (path, item) in openapi.paths.paths.iter_mut() {
            let authenticated = !UNAUTHENTICATED.contains(&path.as_str());
            let has_id = path.contains('{');
            let webhook = path == "/v1/webhooks/payments";
            let ops = [
                (HttpMethod::Get, item.get.as_mut()),
                (HttpMethod::Post, item.post.as_mut()),
                (HttpMethod::Put, item.put.as_mut()),
                (HttpMethod::Delete, item.delete.as_mut()),
                (HttpMethod::Patch, item.patch.as_mut()),
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
                    HttpMethod::Post | HttpMethod::Put | HttpMethod::Delete | HttpMethod::Patch
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

/// utoipa names an operation after its handler, and several modules have a
/// `list` or a `detail`: a generated client keeps one of each and silently
/// drops the others. A name used more than once gets the resource it serves
/// as a prefix (`orders_list`, `events_list`), the first path segment after
/// `/v1/`, so that routes added later are covered too.
fn unique_operation_ids(openapi: &mut utoipa::openapi::OpenApi) {
    let mut uses = std::collections::HashMap::<String, usize>::new();
    for item in openapi.paths.paths.values() {
        for op in operations(item) {
            if let Some(id) = &op.operation_id {
                *uses.entry(id.clone()).or_default() += 1;
            }
        }
    }
    for (path, item) in openapi.paths.paths.iter_mut() {
        let resource = path
            .trim_start_matches("/v1/")
            .split('/')
            .next()
            .unwrap_or_default()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "_");
        for op in operations_mut(item) {
            if let Some(id) = op.operation_id.as_mut() {
                if uses.get(id.as_str()).copied().unwrap_or(0) > 1 {
                    *id = format!("{resource}_{id}");
                }
            }
        }
    }
}

fn operations(
    item: &utoipa::openapi::PathItem,
) -> impl Iterator<Item = &utoipa::openapi::path::Operation> {
    [
        &item.get,
        &item.put,
        &item.post,
        &item.delete,
        &item.patch,
        &item.head,
        &item.options,
        &item.trace,
    ]
    .into_iter()
    .flatten()
}

fn operations_mut(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
        &mut item.head,
        &mut item.options,
        &mut item.trace,
    ]
    .into_iter()
    .flatten()
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

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn document() -> Value {
        serde_json::to_value(super::document()).expect("the document serialises")
    }

    fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    found.push(target);
                }
                map.values().for_each(|v| refs(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
            _ => {}
        }
    }

    #[test]
    fn operation_ids_are_unique() {
        let doc = document();
        let mut seen = std::collections::HashMap::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("a path item") {
                let id = op["operationId"]
                    .as_str()
                    .expect("every operation has an id");
                if let Some(other) = seen.insert(id.to_owned(), format!("{method} {path}")) {
                    panic!("operationId {id} of {method} {path} is also {other}'s");
                }
            }
        }
        assert!(seen.contains_key("orders_list") && seen.contains_key("events_list"));
    }

    #[test]
    fn every_reference_names_a_registered_schema() {
        let doc = document();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.contains(&"#/components/schemas/Granularity"));
        for target in found {
            let name = target
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{target} is not a schema reference"));
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "{target} is not registered"
            );
        }
    }
}
