//! Placing an order (DESIGN.md "Domain"): a short saga in the handler.
//!
//! 1. validate the items and read each listing's current terms from its
//!    aggregate (never from a read model), and each vendor's own platform
//!    fee rate from the Vendor aggregate (API.md "Money": new orders only);
//! 2. write the order's hold deadline, so that holds stranded by a crash are
//!    found and expired by the sweeper;
//! 3. hold each line's units in a fixed order (by listing, then line), so
//!    that two orders over the same listings cannot starve each other;
//! 4. if any line cannot be held, release what was held and answer 409
//!    naming every conflicting line;
//! 5. record the order.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::{
    Conflict, DomainError, FeeRates, FieldError, HoldRequest, InventoryCommand, LineInput,
    LineTerms, Listing, ListingKind, ListingTerms, OrderCommand, OrderEvent, Period, PricedOrder,
    Tz,
};
use serde::Deserialize;
use uuid::Uuid;

use super::inventory;
use crate::bus::CommandError;
use crate::context::CommandContext;
use crate::deadlines::{Deadline, DeadlineHold};
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

    let listings = load_listings(app, &body.items).await?;
    let zones = time_zones(app, &listings).await?;
    let order_id = Uuid::now_v7();
    let lines = plan_lines(&body.items, &listings, &zones)?;
    let placed_at = app.clock.now();
    // The aggregate's own rules (periods not in the past, quantities and
    // the order's total within bounds), before anything is held.
    let inputs: Vec<LineInput> = lines.iter().map(|l| l.input.clone()).collect();
    let fee_rates = fee_rates(app, &listings).await?;
    let priced =
        domain::check_placement_with_fee_rates(&inputs, app.config.rates(), &fee_rates, placed_at)?;
    let plans = payment_plans(&body.items, &lines);
    DomainError::check(domain::order::instalments::plan_problems(
        &inputs, &priced, &plans,
    ))?;
    let hold_expires_at = placed_at
        + chrono::Duration::from_std(app.config.hold_ttl)
            .map_err(|_| CommandError::internal("hold TTL out of range"))?;

    // Holds in a fixed order: by listing, then by the line's place.
    let mut hold_order: Vec<usize> = (0..lines.len()).collect();
    hold_order.sort_by_key(|&i| (lines[i].input.listing_id, i));

    record_deadline(app, order_id, &lines, hold_expires_at).await?;

    let mut held = Vec::new();
    let mut conflicts = Vec::new();
    let mut invalid: Vec<(usize, FieldError)> = Vec::new();
    let mut failure = None;
    for &i in &hold_order {
        let line = &lines[i];
        let listing = &listings[&line.input.listing_id];
        let command = InventoryCommand::PlaceHold {
            hold_id: line.input.hold_id,
            order_id,
            request: line.request,
            expires_at: hold_expires_at,
            now: placed_at,
        };
        match inventory::run(
            app,
            context,
            listing,
            line.input.listing_id,
            command,
            "PlaceHold",
        )
        .await
        {
            Ok(_) => held.push(i),
            Err(CommandError::Rejected(DomainError::Unavailable { conflicts: found })) => {
                conflicts.extend(found)
            }
            // The listing's schedule refused the period: named per item.
            Err(CommandError::Rejected(DomainError::Validation { errors })) => {
                invalid.extend(errors.into_iter().map(|mut e| {
                    e.field = format!("items[{i}].{}", e.field);
                    (i, e)
                }))
            }
            Err(err) => {
                failure = Some(err);
                break;
            }
        }
    }

    if failure.is_some() || !conflicts.is_empty() || !invalid.is_empty() {
        release_holds(app, context, &lines, &held, "order placement failed").await;
        settle_deadline(app, order_id).await;
        if failure.is_none() && !invalid.is_empty() {
            invalid.sort_by_key(|(i, _)| *i);
            let errors = invalid.into_iter().map(|(_, e)| e).collect();
            return Err(DomainError::Validation { errors }.into());
        }
        return Err(failure.unwrap_or_else(|| {
            DomainError::Unavailable {
                conflicts: conflicts_in_item_order(conflicts, &body.items),
            }
            .into()
        }));
    }

    let command = OrderCommand::Place {
        order_id,
        customer_id: context.principal.subject.clone(),
        currency: app.config.currency.clone(),
        lines: lines.iter().map(|l| l.input.clone()).collect(),
        rates: app.config.rates(),
        fee_rates,
        hold_expires_at,
        placed_at,
        payment_plans: plans,
    };
    let committed = match app
        .orders
        .execute_new(&order_id.to_string(), command, context, "PlaceOrder")
        .await
    {
        Ok(committed) => committed,
        Err(err) => {
            release_holds(app, context, &lines, &held, "order placement failed").await;
            settle_deadline(app, order_id).await;
            return Err(err);
        }
    };
    let priced = committed
        .events
        .iter()
        .find_map(|e| match &e.payload {
            OrderEvent::OrderPlaced { priced, .. } => Some(priced.clone()),
            _ => None,
        })
        .ok_or_else(|| CommandError::internal("order placement recorded no OrderPlaced"))?;
    Ok(PlacedOrder {
        order_id,
        currency: app.config.currency.clone(),
        priced,
        hold_expires_at,
        position: committed.position,
    })
}

async fn load_listings(
    app: &CommandApp,
    items: &[OrderItem],
) -> Result<HashMap<Uuid, Listing>, CommandError> {
    let mut listings = HashMap::new();
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if listings.contains_key(&item.listing_id) {
            continue;
        }
        let listing = app.listings.load(&item.listing_id.to_string()).await?;
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
    listings: &HashMap<Uuid, Listing>,
) -> Result<FeeRates, CommandError> {
    let vendors: std::collections::BTreeSet<Uuid> =
        listings.values().filter_map(Listing::vendor_id).collect();
    let mut rates = FeeRates::new();
    for vendor_id in vendors {
        let vendor = app.vendors.load(&vendor_id.to_string()).await?;
        if let Some(rate) = vendor.fee_rate() {
            rates.insert(vendor_id, rate);
        }
    }
    Ok(rates)
}

/// Each rental listing's time zone, from the schedule on its inventory
/// (the aggregate that decides the schedule), else the deployment's.
async fn time_zones(
    app: &CommandApp,
    listings: &HashMap<Uuid, Listing>,
) -> Result<HashMap<Uuid, Tz>, CommandError> {
    let mut zones = HashMap::new();
    for (id, listing) in listings {
        if listing.kind() != Some(ListingKind::Rental) {
            continue;
        }
        let inventory = app.inventory.load(&id.to_string()).await?;
        let zone = inventory
            .schedule()
            .map_or(app.config.time_zone, |s| s.time_zone);
        zones.insert(*id, zone);
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

async fn record_deadline(
    app: &CommandApp,
    order_id: Uuid,
    lines: &[PlannedLine],
    expires_at: DateTime<Utc>,
) -> Result<(), CommandError> {
    let holds = lines
        .iter()
        .map(|l| DeadlineHold {
            listing_id: l.input.listing_id,
            hold_id: l.input.hold_id,
        })
        .collect();
    app.deadlines
        .record(&Deadline {
            order_id,
            holds,
            expires_at,
        })
        .await
}

/// Marks an order's deadline as dealt with. Best effort: an unsettled
/// deadline only makes the sweeper look at the order again, harmlessly.
pub async fn settle_deadline(app: &CommandApp, order_id: Uuid) {
    if let Err(err) = app.deadlines.settle(order_id, app.clock.now()).await {
        tracing::warn!(%order_id, error = %err, "could not settle the hold deadline");
    }
}

async fn release_holds(
    app: &CommandApp,
    context: &CommandContext,
    lines: &[PlannedLine],
    held: &[usize],
    reason: &str,
) {
    for &i in held {
        let line = &lines[i];
        let command = InventoryCommand::ReleaseHold {
            hold_id: line.input.hold_id,
            reason: reason.to_owned(),
        };
        if let Err(err) = app
            .inventory
            .execute(
                &line.input.listing_id.to_string(),
                command,
                context,
                "ReleaseHold",
            )
            .await
        {
            // The hold expires on its own; the sweeper finds it by its deadline.
            tracing::warn!(hold_id = %line.input.hold_id, error = %err, "could not release a hold");
        }
    }
}
