//! A simulated marketplace: the domain aggregates themselves, driven in
//! memory with the commands the command API, the order saga, the payment
//! webhook and the policies would issue, so that every event they record is
//! one the real system could have recorded, with the right sequences and the
//! metadata the command bus writes.

use std::collections::HashMap;

use chrono::{DateTime, Duration, DurationRound, TimeDelta, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use domain::{
    Capacity, DomainError, HoldRequest, Inventory, InventoryCommand, LineInput, LineTerms, Listing,
    ListingCommand, ListingTerms, Order, OrderCommand, PaymentOutcome, Period, PricingUnit, Rates,
    Vendor, VendorCommand,
};
use rand::rngs::StdRng;
use rand::Rng;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::BenchError;

mod booking;

/// Snapshot interval of the command bus for Inventory and Vendor
/// (`CommandApiConfig::snapshot_every`).
pub const SNAPSHOT_EVERY: i64 = 50;

/// How long an unpaid order holds its units (the API's default).
const HOLD_TTL_MINUTES: i64 = 15;

const CATEGORIES: [&str; 8] = [
    "bikes",
    "cameras",
    "tools",
    "camping",
    "party",
    "music",
    "sports",
    "electronics",
];

/// One event as the events table stores it (postgres-es's columns, plus
/// the event id and the time it was recorded).
pub use event_log::statements::append::WholeEvent as EventRow;

/// The rows of one command: what one transaction of the command bus writes.
pub type Commit = Vec<EventRow>;

/// The state the bus would snapshot: the aggregate after its last
/// multiple-of-50 event.
#[derive(Clone, Debug)]
pub struct SnapshotRow {
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    pub last_sequence: i64,
    pub current_snapshot: i64,
    pub payload: String,
}

/// Who issued a command, as `CommandContext::metadata` records it.
struct Context {
    principal: String,
    role: &'static str,
    correlation_id: String,
    causation_id: String,
}

impl Context {
    fn metadata(&self, command: &str) -> Result<String, BenchError> {
        // Exactly what the bus stores: a HashMap<String, String> through
        // serde_json::to_value.
        let mut map: HashMap<String, String> = HashMap::with_capacity(6);
        map.insert("principal".to_owned(), self.principal.clone());
        map.insert("principal_role".to_owned(), self.role.to_owned());
        map.insert("correlation_id".to_owned(), self.correlation_id.clone());
        map.insert("causation_id".to_owned(), self.causation_id.clone());
        map.insert("command".to_owned(), command.to_owned());
        Ok(serde_json::to_value(&map)?.to_string())
    }
}

/// Runs a command on an aggregate in memory, as the bus does: `handle`
/// (which, through cqrs-es's sink, applies each event to the aggregate).
fn execute<A: Aggregate<Services = ()>>(
    aggregate: &mut A,
    command: A::Command,
) -> Result<Vec<A::Event>, A::Error> {
    futures::executor::block_on(async {
        let sink = EventSink::default();
        aggregate.handle(command, &(), &sink).await?;
        Ok::<_, A::Error>(sink.collect().await)
    })
}

pub struct SimListing {
    pub id: Uuid,
    pub listing: Listing,
    pub inventory: Inventory,
    pub inventory_seq: i64,
    /// Latest snapshot the bus would hold for the inventory.
    pub snapshot: Option<(i64, String)>,
}

/// Settings of a simulated history.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Share of listings that sell from stock instead of renting.
    pub sale_share: f64,
    /// Share of rental listings priced by the hour.
    pub hourly_share: f64,
    /// Rental periods start up to this many days after the order.
    pub horizon_days: i64,
    /// Distinct customers.
    pub customers: u64,
    pub rates: Rates,
    pub currency: String,
}

pub struct Sim {
    pub rng: StdRng,
    pub config: SimConfig,
    pub vendors: Vec<Uuid>,
    pub listings: Vec<SimListing>,
    /// Indices of the rental listings (bookings go there).
    pub rentals: Vec<usize>,
    /// Bookings that found no free units after every retry.
    pub refused: u64,
    /// Holds refused by the inventory before another period was tried.
    pub retries: u64,
}

/// A UUIDv7 for an instant, its random part from the simulation's rng.
pub fn uuid_v7_at(rng: &mut StdRng, at: DateTime<Utc>) -> Uuid {
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    let random: [u8; 10] = rng.gen();
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
}

fn uuid_v4(rng: &mut StdRng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.gen()).into_uuid()
}

fn cents(rng: &mut StdRng, low: i64, high: i64) -> Decimal {
    Decimal::new(rng.gen_range(low..=high), 2)
}

impl Sim {
    pub fn new(rng: StdRng, config: SimConfig) -> Self {
        Self {
            rng,
            config,
            vendors: Vec::new(),
            listings: Vec::new(),
            rentals: Vec::new(),
            refused: 0,
            retries: 0,
        }
    }

    fn rows<A: Aggregate>(
        &mut self,
        aggregate_id: &str,
        sequence: &mut i64,
        events: Vec<A::Event>,
        metadata: &str,
        at: DateTime<Utc>,
        out: &mut Commit,
    ) -> Result<(), BenchError> {
        for event in events {
            *sequence += 1;
            out.push(EventRow {
                aggregate_type: A::TYPE,
                aggregate_id: aggregate_id.to_owned(),
                sequence: *sequence,
                event_type: event.event_type(),
                event_version: event.event_version(),
                // As postgres-es stores it: serde_json::to_value, then the
                // JSON text of that value.
                payload: serde_json::to_value(&event)?.to_string(),
                metadata: metadata.to_owned(),
                event_id: uuid_v4(&mut self.rng),
                recorded_at: at,
            });
        }
        Ok(())
    }

    fn request_context(
        &mut self,
        principal: String,
        role: &'static str,
        at: DateTime<Utc>,
    ) -> Context {
        let request_id = uuid_v7_at(&mut self.rng, at).to_string();
        Context {
            principal,
            role,
            correlation_id: request_id.clone(),
            causation_id: request_id,
        }
    }

    /// `POST /v1/vendors` by an admin.
    pub fn register_vendor(&mut self, at: DateTime<Utc>) -> Result<Commit, BenchError> {
        let vendor_id = uuid_v7_at(&mut self.rng, at);
        let n = self.vendors.len() + 1;
        let context = self.request_context("bench-admin".to_owned(), "admin", at);
        let mut vendor = Vendor::default();
        let events = execute(
            &mut vendor,
            VendorCommand::Register {
                vendor_id,
                name: format!("Vendor {n}").into(),
                at,
            },
        )
        .map_err(domain_error)?;
        let mut out = Vec::with_capacity(1);
        let mut sequence = 0;
        let metadata = context.metadata("RegisterVendor")?;
        self.rows::<Vendor>(
            &vendor_id.to_string(),
            &mut sequence,
            events,
            &metadata,
            at,
            &mut out,
        )?;
        self.vendors.push(vendor_id);
        Ok(out)
    }

    fn random_terms(&mut self) -> ListingTerms {
        if self.rng.gen_bool(self.config.sale_share.clamp(0.0, 1.0)) {
            ListingTerms::Sale {
                unit_price: cents(&mut self.rng, 500, 50_000),
                stock: self.rng.gen_range(10..=1_000),
            }
        } else if self.rng.gen_bool(self.config.hourly_share.clamp(0.0, 1.0)) {
            ListingTerms::Rental {
                pricing_unit: PricingUnit::Hour,
                price_per_unit: cents(&mut self.rng, 200, 4_000),
                deposit: Decimal::new(self.rng.gen_range(0..=10) * 10, 0),
                units: self.rng.gen_range(1..=3),
            }
        } else {
            ListingTerms::Rental {
                pricing_unit: PricingUnit::Day,
                price_per_unit: cents(&mut self.rng, 1_000, 20_000),
                deposit: Decimal::new(self.rng.gen_range(0..=20) * 10, 0),
                units: self.rng.gen_range(1..=3),
            }
        }
    }

    /// `POST /v1/listings` by the vendor (the listing and its inventory)
    /// then `POST /v1/listings/{id}/publish` at `published_at`: three
    /// commits.
    pub fn create_listing(
        &mut self,
        vendor: usize,
        at: DateTime<Utc>,
        published_at: DateTime<Utc>,
    ) -> Result<Vec<Commit>, BenchError> {
        let vendor_id = self.vendors[vendor];
        let listing_id = uuid_v7_at(&mut self.rng, at);
        let id = listing_id.to_string();
        let terms = self.random_terms();
        let capacity = match &terms {
            ListingTerms::Rental { units, .. } => Capacity::Rental { units: *units },
            ListingTerms::Sale { stock, .. } => Capacity::Sale { stock: *stock },
        };
        let rental = matches!(terms, ListingTerms::Rental { .. });
        let category = CATEGORIES[self.rng.gen_range(0..CATEGORIES.len())];
        let n = self.listings.len() + 1;
        let principal = format!("vendor-{vendor_id}");
        let create = self.request_context(principal.clone(), "vendor", at);

        let mut listing = Listing::default();
        let mut listing_seq = 0;
        let mut inventory = Inventory::default();
        let mut inventory_seq = 0;

        let mut first = Vec::with_capacity(1);
        let events = execute(
            &mut listing,
            ListingCommand::Create {
                listing_id,
                vendor_id,
                title: format!("{category} item {n}"),
                description: format!("Bench listing {n} of vendor {}", vendor + 1),
                category: category.to_owned(),
                terms,
            },
        )
        .map_err(domain_error)?;
        let metadata = create.metadata("CreateListing")?;
        self.rows::<Listing>(&id, &mut listing_seq, events, &metadata, at, &mut first)?;

        let mut second = Vec::with_capacity(1);
        let at2 = at + TimeDelta::milliseconds(2);
        let events = execute(
            &mut inventory,
            InventoryCommand::Initialize {
                listing_id,
                capacity,
            },
        )
        .map_err(domain_error)?;
        let metadata = create.metadata("InitializeInventory")?;
        self.rows::<Inventory>(&id, &mut inventory_seq, events, &metadata, at2, &mut second)?;

        let mut third = Vec::with_capacity(1);
        let at3 = published_at.max(at + TimeDelta::milliseconds(3));
        let publish = self.request_context(principal, "vendor", at3);
        let events = execute(&mut listing, ListingCommand::Publish).map_err(domain_error)?;
        let metadata = publish.metadata("PublishListing")?;
        self.rows::<Listing>(&id, &mut listing_seq, events, &metadata, at3, &mut third)?;

        if rental {
            self.rentals.push(self.listings.len());
        }
        self.listings.push(SimListing {
            id: listing_id,
            listing,
            inventory,
            inventory_seq,
            snapshot: None,
        });
        Ok(vec![first, second, third])
    }

    /// The snapshots the bus would hold now (Inventory; vendors never reach
    /// 50 events here).
    pub fn snapshots(&self) -> Vec<SnapshotRow> {
        self.listings
            .iter()
            .filter_map(|l| {
                l.snapshot.as_ref().map(|(sequence, payload)| SnapshotRow {
                    aggregate_type: "Inventory",
                    aggregate_id: l.id.to_string(),
                    last_sequence: *sequence,
                    current_snapshot: *sequence / SNAPSHOT_EVERY,
                    payload: payload.clone(),
                })
            })
            .collect()
    }
}

fn domain_error(err: DomainError) -> BenchError {
    BenchError::Unexpected(format!("the domain refused a generated command: {err}"))
}
