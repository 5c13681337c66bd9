//! Placing an order (DESIGN.md "Domain"): a short saga in the handler.
//!
//! 1. validate the items and read each listing's current terms from its
//!    aggregate (never from a read model), and each vendor's own platform
//!    fee rate from the Vendor aggregate (API.md "Money": new orders only);
//! 2. decide the order (its own rules need no hold);
//! 3. hold each line's units (in a fixed order: by listing, then line) and
//!    record the order in one transaction: a crash leaves both or neither
//!    (issue 18), and a line that cannot be held records nothing and
//!    answers 409 naming every conflicting line.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::{
    Conflict, DomainError, FeeRates, FieldError, HoldRequest, InventoryCommand, LineInput,
    LineTerms, Listing, ListingKind, ListingTerms, OrderCommand, OrderEvent, Period, PricedOrder,
    Tz,
};
use event_log::Guard;
use serde::Deserialize;
use uuid::Uuid;

use super::inventory;
use super::terms::TenantTerms;
use crate::auth::Principal;
use crate::bus::{CommandError, JointOutcome};
use crate::context::CommandContext;
use crate::CommandApp;

/// Most lines one order may have.
pub const MAX_ITEMS: usize = domain::MAX_LINES;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrder {
    pub items: Vec<OrderItem>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderItem {
    pub listing_id: Uuid,
    #[schema(minimum = 1, maximum = 10_000_000)]
    pub quantity: u32,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    /// A rental line paid by instalments (issue 15): `deposit` with the
    /// order, then `instalments` equal parts every `interval` from the
    /// line's start.
    #[serde(default)]
    pub payment_plan: Option<PaymentPlanBody>,
}

/// How a leased line is paid (API.md decisions, "Instalment plans").
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentPlanBody {
    #[serde(deserialize_with = "crate::routes::deserialize_money")]
    #[schema(value_type = String, pattern = r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?$", max_length = 13, example = "500.00")]
    pub deposit: rust_decimal::Decimal,
    #[schema(minimum = 1, maximum = 120)]
    pub instalments: u32,
    pub interval: PlanIntervalBody,
}

/// How often an instalment falls due.
#[derive(Deserialize, utoipa::ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum PlanIntervalBody {
    Week,
    Month,
}

impl From<PlanIntervalBody> for domain::Interval {
    fn from(interval: PlanIntervalBody) -> Self {
        match interval {
            PlanIntervalBody::Week => domain::Interval::Week,
            PlanIntervalBody::Month => domain::Interval::Month,
        }
    }
}

/// The plans of `items`, by the line id of the line each item became.
fn payment_plans(
    items: &[OrderItem],
    lines: &[PlannedLine],
) -> std::collections::BTreeMap<Uuid, domain::PlanRequest> {
    if items.len() != lines.len() {
        return Default::default();
    }
    items
        .iter()
        .zip(lines)
        .filter_map(|(item, line)| {
            let plan = item.payment_plan.as_ref()?;
            Some((
                line.input.line_id,
                domain::PlanRequest {
                    deposit: plan.deposit,
                    instalments: plan.instalments,
                    interval: plan.interval.into(),
                },
            ))
        })
        .collect()
}

/// The recorded order.
pub struct PlacedOrder {
    pub order_id: Uuid,
    pub currency: String,
    pub priced: PricedOrder,
    pub hold_expires_at: DateTime<Utc>,
    pub position: i64,
}

struct PlannedLine {
    input: LineInput,
    request: HoldRequest,
}

pub async fn place_order(
    app: &CommandApp,
    context: &CommandContext,
    body: PlaceOrder,
) -> Result<PlacedOrder, CommandError> {
    if body.items.is_empty() {
        return Err(DomainError::invalid("items", "an order needs at least one item").into());
    }
    if body.items.len() > MAX_ITEMS {
        return Err(DomainError::invalid(
            "items",
            format!("an order takes at most {MAX_ITEMS} items"),
        )
        .into());
    }
    // Terms that changed between reading and recording: decide again.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut guards = Vec::new();
        match place_once(app, context, &body, &mut guards).await {
            Err(CommandError::StaleTerms) if attempt < MAX_TERMS_ATTEMPTS => {
                app.terms.forget(&guards);
            }
            Err(CommandError::StaleTerms) => {
                app.terms.forget(&guards);
                return Err(CommandError::Conflict);
            }
            other => return other,
        }
    }
}

/// How often a placement is decided again when its terms changed meanwhile.
const MAX_TERMS_ATTEMPTS: u32 = 3;

/// One try: decides on the (cached) terms, each read adding its guard.
async fn place_once(
    app: &CommandApp,
    context: &CommandContext,
    body: &PlaceOrder,
    guards: &mut Vec<Guard>,
) -> Result<PlacedOrder, CommandError> {
    let principal = &context.principal;
    // The tenant's settings replace the deployment's (API.md "Tenants").
    let (terms, tenant_guard) = app
        .terms
        .tenant(&app.tenants, &app.config, principal)
        .await?;
    guards.extend(tenant_guard);
    let listings = load_listings(app, principal, &body.items, guards).await?;
    let zones = time_zones(app, principal, &terms, &listings, guards).await?;
    let order_id = Uuid::now_v7();
    let lines = plan_lines(&body.items, &listings, &zones)?;
    let placed_at = app.clock.now();
    // The aggregate's own rules (periods not in the past, quantities and
    // the order's total within bounds), before anything is held.
    let inputs: Vec<LineInput> = lines.iter().map(|l| l.input.clone()).collect();
    let fee_rates = fee_rates(app, principal, &listings, guards).await?;
    let priced =
        domain::check_placement_with_fee_rates(&inputs, terms.rates, &fee_rates, placed_at)?;
    let plans = payment_plans(&body.items, &lines);
    DomainError::check(domain::order::instalments::plan_problems(
        &inputs, &priced, &plans,
    ))?;
    let hold_expires_at = placed_at
        + chrono::Duration::from_std(terms.hold_ttl)
            .map_err(|_| CommandError::internal("hold TTL out of range"))?;

    // The order is decided first (its rules need no hold), then recorded
    // in the same transaction as its holds: both or neither.
    let command = OrderCommand::Place {
        order_id,
        customer_id: context.principal.subject.clone(),
        currency: terms.currency.clone(),
        lines: lines.iter().map(|l| l.input.clone()).collect(),
        rates: terms.rates,
        fee_rates,
        hold_expires_at,
        placed_at,
        payment_plans: plans,
    };
    let prepared = app
        .orders
        .prepare_new(
            &order_id.to_string(),
            command,
            guards.clone(),
            context,
            "PlaceOrder",
        )
        .await?;
    let priced = prepared
        .events()
        .iter()
        .find_map(|e| match e {
            OrderEvent::OrderPlaced { priced, .. } => Some(priced.clone()),
            _ => None,
        })
        .ok_or_else(|| CommandError::internal("order placement decided no OrderPlaced"))?;

    let held = match hold_with_order(
        app,
        context,
        &listings,
        &lines,
        order_id,
        hold_expires_at,
        placed_at,
        prepared.companion(),
    )
    .await
    {
        Ok(positions) => positions,
        Err(err) => {
            return Err(match err {
                Refused::Lines { conflicts, invalid } => {
                    refusal(conflicts, invalid, &body.items).into()
                }
                Refused::Failed(err) => err,
            });
        }
    };
    let committed = app.orders.adopt(prepared, &held);
    Ok(PlacedOrder {
        order_id,
        currency: terms.currency,
        priced,
        hold_expires_at,
        position: committed.position,
    })
}

/// Why no hold (and so no order) was recorded.
enum Refused {
    /// Lines the inventories refused: taken units, or periods their
    /// schedules do not allow (by the item's place).
    Lines {
        conflicts: Vec<Conflict>,
        invalid: Vec<(usize, FieldError)>,
    },
    Failed(CommandError),
}

/// The answer to refused lines: the schedule's rules first (422), else the
/// conflicts in the order of the items (409).
fn refusal(
    conflicts: Vec<Conflict>,
    mut invalid: Vec<(usize, FieldError)>,
    items: &[OrderItem],
) -> DomainError {
    if invalid.is_empty() {
        return DomainError::Unavailable {
            conflicts: conflicts_in_item_order(conflicts, items),
        };
    }
    invalid.sort_by_key(|(i, _)| *i);
    DomainError::Validation {
        errors: invalid.into_iter().map(|(_, e)| e).collect(),
    }
}

/// Holds every line's units and records the order (`order`, its events
/// decided) in one transaction, answering the order's positions. One line
/// goes through its inventory's worker, which batches a hot listing's
/// orders; several are decided together on fresh loads of their
/// inventories. An inventory never set up is set up from its listing's
/// terms, and the holds tried again.
#[allow(clippy::too_many_arguments)]
async fn hold_with_order(
    app: &CommandApp,
    context: &CommandContext,
    listings: &HashMap<Uuid, Listing>,
    lines: &[PlannedLine],
    order_id: Uuid,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
    order: std::sync::Arc<dyn crate::bus::Companion>,
) -> Result<Vec<i64>, Refused> {
    let place = |line: &PlannedLine| InventoryCommand::PlaceHold {
        hold_id: line.input.hold_id,
        order_id,
        request: line.request,
        expires_at,
        now,
    };
    // Holds in a fixed order: by listing, then by the line's place, so that
    // two orders over the same listings decide alike.
    let mut hold_order: Vec<usize> = (0..lines.len()).collect();
    hold_order.sort_by_key(|&i| (lines[i].input.listing_id, i));
    let mut set_up = false;
    loop {
        let refusals: Vec<(usize, DomainError)> = if let [only] = lines {
            match app
                .inventory
                .execute_with_companion(
                    &only.input.listing_id.to_string(),
                    place(only),
                    order.clone(),
                    context,
                    "PlaceHold",
                )
                .await
            {
                Ok(committed) => return Ok(committed.companion_positions),
                Err(CommandError::Rejected(rejection)) => vec![(0, rejection)],
                Err(err) => return Err(Refused::Failed(err)),
            }
        } else {
            let commands = hold_order
                .iter()
                .map(|&i| (lines[i].input.listing_id.to_string(), place(&lines[i])))
                .collect();
            match app
                .inventory
                .execute_joint(commands, order.clone(), context, "PlaceHold")
                .await
            {
                Ok(JointOutcome::Committed {
                    companion_positions,
                    ..
                }) => return Ok(companion_positions),
                Ok(JointOutcome::Rejected(found)) => hold_order
                    .iter()
                    .zip(found)
                    .filter_map(|(&i, rejection)| rejection.map(|r| (i, r)))
                    .collect(),
                Err(err) => return Err(Refused::Failed(err)),
            }
        };

        let missing: Vec<Uuid> = refusals
            .iter()
            .filter(|(_, r)| matches!(r, DomainError::NotFound { what: "inventory" }))
            .map(|(i, _)| lines[*i].input.listing_id)
            .collect();
        if !missing.is_empty() && !set_up {
            set_up = true;
            for listing_id in missing {
                inventory::set_up(app, context, &listings[&listing_id], listing_id)
                    .await
                    .map_err(Refused::Failed)?;
            }
            continue;
        }

        let mut conflicts = Vec::new();
        let mut invalid = Vec::new();
        for (i, rejection) in refusals {
            match rejection {
                DomainError::Unavailable { conflicts: found } => conflicts.extend(found),
                // The listing's schedule refused the period: named per item.
                DomainError::Validation { errors } => {
                    invalid.extend(errors.into_iter().map(|mut e| {
                        e.field = format!("items[{i}].{}", e.field);
                        (i, e)
                    }))
                }
                other => return Err(Refused::Failed(other.into())),
            }
        }
        return Err(Refused::Lines { conflicts, invalid });
    }
}

async fn load_listings(
    app: &CommandApp,
    principal: &Principal,
    items: &[OrderItem],
    guards: &mut Vec<Guard>,
) -> Result<HashMap<Uuid, Listing>, CommandError> {
    let mut listings = HashMap::new();
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if listings.contains_key(&item.listing_id) {
            continue;
        }
        // Another tenant's listing is as unknown as a missing one.
        let (listing, guard) = match app
            .terms
            .listing(&app.listings, principal, item.listing_id)
            .await
        {
            Err(CommandError::Rejected(DomainError::NotFound { .. })) => {
                errors.push(FieldError::new(
                    format!("items[{i}].listing_id"),
                    "no such listing",
                ));
                continue;
            }
            other => other?,
        };
        if listing.vendor_id().is_none() {
            errors.push(FieldError::new(
                format!("items[{i}].listing_id"),
                "no such listing",
            ));
            continue;
        }
        if !listing.is_orderable() {
            errors.push(FieldError::new(
                format!("items[{i}].listing_id"),
                "the listing is not published",
            ));
            continue;
        }
        guards.push(guard);
        listings.insert(item.listing_id, listing);
    }
    if errors.is_empty() {
        Ok(listings)
    } else {
        Err(DomainError::Validation { errors }.into())
    }
}

/// The vendors' own platform fee rates, from their aggregates; a vendor
/// without one pays the deployment's rate.
async fn fee_rates(
    app: &CommandApp,
    principal: &Principal,
    listings: &HashMap<Uuid, Listing>,
    guards: &mut Vec<Guard>,
) -> Result<FeeRates, CommandError> {
    let vendors: std::collections::BTreeSet<Uuid> =
        listings.values().filter_map(Listing::vendor_id).collect();
    let mut rates = FeeRates::new();
    for vendor_id in vendors {
        let (rate, guard) = app
            .terms
            .fee_rate(&app.vendors, principal, vendor_id)
            .await?;
        guards.push(guard);
        if let Some(rate) = rate {
            rates.insert(vendor_id, rate);
        }
    }
    Ok(rates)
}

/// Each rental listing's time zone, from the schedule on its inventory
/// (the aggregate that decides the schedule), else the deployment's.
async fn time_zones(
    app: &CommandApp,
    principal: &Principal,
    terms: &TenantTerms,
    listings: &HashMap<Uuid, Listing>,
    guards: &mut Vec<Guard>,
) -> Result<HashMap<Uuid, Tz>, CommandError> {
    let mut zones = HashMap::new();
    for (id, listing) in listings {
        if listing.kind() != Some(ListingKind::Rental) {
            continue;
        }
        let (zone, guard) = app.terms.time_zone(&app.inventory, principal, *id).await?;
        guards.push(guard);
        zones.insert(*id, zone.unwrap_or(terms.time_zone));
    }
    Ok(zones)
}

fn plan_lines(
    items: &[OrderItem],
    listings: &HashMap<Uuid, Listing>,
    zones: &HashMap<Uuid, Tz>,
) -> Result<Vec<PlannedLine>, CommandError> {
    let mut errors = Vec::new();
    let mut lines = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let listing = &listings[&item.listing_id];
        let (Some(vendor_id), Some(terms)) = (listing.vendor_id(), listing.terms()) else {
            continue;
        };
        if item.quantity == 0 {
            errors.push(FieldError::new(
                format!("items[{i}].quantity"),
                "must be at least 1",
            ));
            continue;
        }
        let (terms, request) = match terms {
            ListingTerms::Rental {
                pricing_unit,
                price_per_unit,
                deposit,
                ..
            } => {
                let (Some(start), Some(end)) = (item.start, item.end) else {
                    errors.push(FieldError::new(
                        format!("items[{i}].start"),
                        "a rental item needs start and end",
                    ));
                    continue;
                };
                let period = match Period::new(start, end) {
                    Ok(period) => period,
                    Err(DomainError::Validation { errors: found }) => {
                        errors.extend(found.into_iter().map(|mut e| {
                            e.field = format!("items[{i}].{}", e.field);
                            e
                        }));
                        continue;
                    }
                    Err(other) => return Err(other.into()),
                };
                (
                    LineTerms::Rental {
                        period,
                        pricing_unit: *pricing_unit,
                        price_per_unit: *price_per_unit,
                        deposit_per_unit: *deposit,
                        time_zone: zones.get(&item.listing_id).copied().unwrap_or(Tz::UTC),
                        late_fee_per_unit: listing.late_fee_per_unit(),
                        cancellation_policy: listing.cancellation_policy().to_vec(),
                    },
                    HoldRequest::Rental {
                        period,
                        quantity: item.quantity,
                    },
                )
            }
            ListingTerms::Sale { unit_price, .. } => {
                if item.start.is_some() || item.end.is_some() {
                    errors.push(FieldError::new(
                        format!("items[{i}].start"),
                        "a sale item takes no period",
                    ));
                    continue;
                }
                (
                    LineTerms::Sale {
                        unit_price: *unit_price,
                    },
                    HoldRequest::Sale {
                        quantity: item.quantity,
                    },
                )
            }
        };
        lines.push(PlannedLine {
            input: LineInput {
                line_id: Uuid::now_v7(),
                hold_id: Uuid::now_v7(),
                listing_id: item.listing_id,
                vendor_id,
                terms,
                quantity: item.quantity,
            },
            request,
        });
    }
    if errors.is_empty() {
        Ok(lines)
    } else {
        Err(DomainError::Validation { errors }.into())
    }
}

/// Conflicts are found in hold order; answer them in the order of the items.
fn conflicts_in_item_order(mut conflicts: Vec<Conflict>, items: &[OrderItem]) -> Vec<Conflict> {
    let place = |c: &Conflict| {
        items
            .iter()
            .position(|i| i.listing_id == c.listing_id && i.start == c.start && i.end == c.end)
            .unwrap_or(usize::MAX)
    };
    conflicts.sort_by_key(place);
    conflicts
}
