//! The use cases' rules, given/when/then, on memory stores and a manual
//! clock: no PostgreSQL, no NATS. Given a marketplace in some state, when
//! a use case runs, then the aggregates hold what the rule says. One test
//! per rule, named after it.

use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::DomainEvent;
use domain::{
    DomainError, HoldStatus, Inventory, InventoryCommand, Listing, ListingCommand, ListingTerms,
    Order, OrderCommand, OrderStatus, PaymentOutcome, PricingUnit, Vendor, VendorCommand,
};
use ledger_clock::{Clock, ManualClock};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::place_order::{place_order, OrderItem, PlaceOrder, PlacedOrder};
use super::{holds, settle_payment::settle_payment, sweep::sweep_once};
use crate::auth::{Principal, Role};
use crate::bus::memory::Positions;
use crate::bus::{CommandError, MemoryStorage};
use crate::context::CommandContext;
use crate::deadlines::{HoldDeadlines, MemoryDeadlines};
use crate::{AppState, CommandApiConfig, CommandApp, Stores};

/// The stores of one test, kept to look into.
struct Memory {
    vendors: Arc<MemoryStorage<Vendor>>,
    listings: Arc<MemoryStorage<Listing>>,
    inventory: Arc<MemoryStorage<Inventory>>,
    orders: Arc<MemoryStorage<Order>>,
    invoice_books: Arc<MemoryStorage<domain::InvoiceBook>>,
    deadlines: MemoryDeadlines,
}

impl Memory {
    fn new() -> Self {
        let head = Positions::new(AtomicI64::new(0));
        let inventory = Arc::new(MemoryStorage::new(head.clone()));
        Self {
            vendors: Arc::new(MemoryStorage::new(head.clone())),
            listings: Arc::new(MemoryStorage::new(head.clone())),
            inventory: inventory.clone(),
            orders: Arc::new(MemoryStorage::new(head.clone())),
            invoice_books: Arc::new(MemoryStorage::new(head)),
            deadlines: MemoryDeadlines::watching(inventory),
        }
    }

    /// Every event recorded, over all aggregates.
    fn recorded(&self) -> usize {
        self.vendors.len() + self.listings.len() + self.inventory.len() + self.orders.len()
    }
}

/// One vendor's marketplace on memory stores and a manual clock.
struct Marketplace {
    app: AppState,
    clock: Arc<ManualClock>,
    memory: Memory,
    vendor_id: Uuid,
}

/// When every test starts: well before the periods it books.
fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 9, 0, 0)
        .single()
        .expect("valid")
}

/// Day `day` of February 2030, at midnight.
fn day(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 2, day, 0, 0, 0)
        .single()
        .expect("valid")
}

fn admin() -> CommandContext {
    CommandContext::background(Principal::system("test"), "test")
}

fn customer(name: &str) -> CommandContext {
    let principal = Principal {
        subject: name.to_owned(),
        role: Role::Customer,
        vendor_id: None,
        expires_at: None,
        tenant: event_log::DEFAULT_TENANT.to_owned(),
        any_tenant: false,
    };
    CommandContext::background(principal, "test")
}

/// A day rental of `listing_id` from `from` to `to` (days of February).
fn rental(listing_id: Uuid, from: u32, to: u32) -> OrderItem {
    OrderItem {
        listing_id,
        quantity: 1,
        start: Some(day(from)),
        end: Some(day(to)),
        payment_plan: None,
    }
}

impl Marketplace {
    async fn new() -> Self {
        Self::on(Memory::new(), None).await
    }

    /// A marketplace on `memory`, its deadlines kept by `deadlines` when
    /// given (else by `memory.deadlines`).
    async fn on(memory: Memory, deadlines: Option<Arc<dyn HoldDeadlines>>) -> Self {
        let clock = Arc::new(ManualClock::new(start()));
        let stores = Stores {
            tenants: Arc::new(MemoryStorage::new(Positions::new(AtomicI64::new(0)))),
            vendors: memory.vendors.clone(),
            listings: memory.listings.clone(),
            inventory: memory.inventory.clone(),
            orders: memory.orders.clone(),
            // Subscriptions are tested on PostgreSQL (the schedule table).
            plans: Arc::new(MemoryStorage::new(Positions::new(AtomicI64::new(0)))),
            subscriptions: Arc::new(MemoryStorage::new(Positions::new(AtomicI64::new(0)))),
            invoice_books: memory.invoice_books.clone(),
            deadlines: deadlines.unwrap_or_else(|| Arc::new(memory.deadlines.clone())),
            personal: privacy::Keyring::in_memory(),
            checks_guards: false,
        };
        // Only the HTTP plumbing would use the pool; it never connects here.
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://unused@127.0.0.1:1/unused")
            .expect("a lazy pool");
        let config = CommandApiConfig::for_tests("jwt", "whsec");
        let app = CommandApp::assemble(config, pool, clock.clone(), stores);
        let vendor_id = Uuid::now_v7();
        let register = VendorCommand::Register {
            vendor_id,
            name: "Kayaks".into(),
            at: clock.now(),
        };
        app.vendors
            .execute(&vendor_id.to_string(), register, &admin(), "RegisterVendor")
            .await
            .expect("vendor registered");
        Self {
            app,
            clock,
            memory,
            vendor_id,
        }
    }

    /// A published listing renting `units` units by the day at 10.00;
    /// its inventory is set up unless `with_inventory` is false.
    async fn rental_listing(&self, units: u32, with_inventory: bool) -> Uuid {
        let listing_id = Uuid::now_v7();
        let id = listing_id.to_string();
        let create = ListingCommand::Create {
            listing_id,
            vendor_id: self.vendor_id,
            title: "Kayak".to_owned(),
            description: String::new(),
            category: "boats".to_owned(),
            terms: ListingTerms::Rental {
                pricing_unit: PricingUnit::Day,
                price_per_unit: Decimal::new(1000, 2),
                deposit: Decimal::ZERO,
                units,
            },
        };
        let listings = &self.app.listings;
        listings
            .execute(&id, create, &admin(), "CreateListing")
            .await
            .expect("listing created");
        listings
            .execute(&id, ListingCommand::Publish, &admin(), "PublishListing")
            .await
            .expect("listing published");
        if with_inventory {
            let init = InventoryCommand::Initialize {
                listing_id,
                capacity: domain::Capacity::Rental { units },
            };
            self.app
                .inventory
                .execute(&id, init, &admin(), "InitializeInventory")
                .await
                .expect("inventory set up");
        }
        listing_id
    }

    async fn place(&self, who: &str, items: Vec<OrderItem>) -> Result<PlacedOrder, CommandError> {
        place_order(&self.app, &customer(who), PlaceOrder { items }).await
    }

    /// Records a successful payment of the order's total and settles its
    /// holds, as the payment webhook does.
    async fn pay(&self, order_id: Uuid) {
        let order = self.order(order_id).await;
        let cents = (order.total() * Decimal::from(100)).trunc();
        let command = OrderCommand::RecordPayment {
            payment_id: format!("evt_{order_id}"),
            intent_id: format!("pi_{order_id}"),
            amount_minor: i64::try_from(cents).expect("a small amount"),
            currency: "USD".to_owned(),
            outcome: PaymentOutcome::Succeeded,
            received_at: self.clock.now(),
        };
        let context = CommandContext::background(Principal::payment_provider(), "payment");
        self.app
            .orders
            .execute(&order_id.to_string(), command, &context, "RecordPayment")
            .await
            .expect("payment recorded");
        settle_payment(&self.app, &context, order_id)
            .await
            .expect("payment settled");
    }

    async fn order(&self, order_id: Uuid) -> Order {
        self.app
            .orders
            .load(&order_id.to_string(), &crate::Principal::system("test"))
            .await
            .expect("order loads")
    }

    /// The status of the order's hold on the listing.
    async fn hold(&self, listing_id: Uuid, order_id: Uuid) -> HoldStatus {
        let inventory = self
            .app
            .inventory
            .load(&listing_id.to_string(), &crate::Principal::system("test"))
            .await
            .expect("inventory loads");
        let status = inventory
            .holds()
            .find(|h| h.order_id == order_id)
            .map(|h| h.status);
        status.expect("the order holds the listing")
    }

    /// The types of the events stored for the listing's inventory.
    fn inventory_events(&self, listing_id: Uuid) -> Vec<String> {
        self.memory
            .inventory
            .events(&listing_id.to_string())
            .iter()
            .map(DomainEvent::event_type)
            .collect()
    }
}

#[tokio::test]
async fn an_order_that_cannot_hold_one_line_holds_nothing_and_answers_the_conflicts_in_item_order()
{
    // Given two single-unit listings booked for 1–3 February, and a free one.
    let market = Marketplace::new().await;
    let first = market.rental_listing(1, true).await;
    let second = market.rental_listing(1, true).await;
    let free = market.rental_listing(1, true).await;
    market
        .place("early", vec![rental(first, 1, 3), rental(second, 1, 3)])
        .await
        .expect("the first order holds both");
    let orders_before = market.memory.orders.len();

    // When an order asks for the second, the free one and the first (held
    // in listing order: first, second, free).
    let refused = market
        .place(
            "late",
            vec![
                rental(second, 1, 3),
                rental(free, 1, 3),
                rental(first, 1, 3),
            ],
        )
        .await;

    // Then it is refused naming both conflicts in the order of its items,
    let Err(CommandError::Rejected(DomainError::Unavailable { conflicts })) = refused else {
        panic!("refused as unavailable: {:?}", refused.err());
    };
    let named: Vec<Uuid> = conflicts.iter().map(|c| c.listing_id).collect();
    assert_eq!(named, vec![second, first]);
    // the free listing holds nothing (the holds and the order are recorded
    // together or not at all), and no order is recorded.
    assert_eq!(market.inventory_events(free), vec!["InventoryInitialized"]);
    assert_eq!(market.memory.orders.len(), orders_before);
}

#[tokio::test]
async fn an_order_is_recorded_with_its_holds_on_one_listing_and_on_several() {
    // Given two listings.
    let market = Marketplace::new().await;
    let first = market.rental_listing(2, true).await;
    let second = market.rental_listing(2, true).await;

    // When one order takes one line and another takes a line on each,
    let one = market
        .place("one", vec![rental(first, 1, 3)])
        .await
        .expect("placed");
    let two = market
        .place("two", vec![rental(first, 4, 5), rental(second, 4, 5)])
        .await
        .expect("placed");

    // then each order is recorded after its holds, each hold naming it,
    for (placed, listings) in [(&one, vec![first]), (&two, vec![first, second])] {
        let order = market.order(placed.order_id).await;
        assert!(order.is_placed());
        for listing in listings {
            assert_eq!(
                market.hold(listing, placed.order_id).await,
                HoldStatus::Active
            );
        }
    }
    // and the order's position is the last of the transaction's.
    assert!(two.position > one.position);
    assert_eq!(
        market.inventory_events(first),
        vec!["InventoryInitialized", "HoldPlaced", "HoldPlaced"]
    );
}

#[tokio::test]
async fn the_sweeper_expires_only_holds_past_their_deadline_and_leaves_a_paid_order_alone() {
    // Given an unpaid and a paid order placed now, and one placed later.
    let market = Marketplace::new().await;
    let listing = market.rental_listing(3, true).await;
    let unpaid = market.place("c1", vec![rental(listing, 1, 3)]).await;
    let paid = market.place("c2", vec![rental(listing, 1, 3)]).await;
    let (unpaid, paid) = (
        unpaid.expect("placed").order_id,
        paid.expect("placed").order_id,
    );
    market.pay(paid).await;
    market.clock.advance(Duration::minutes(10));
    let later = market
        .place("c3", vec![rental(listing, 1, 3)])
        .await
        .expect("placed")
        .order_id;

    // When the sweeper runs once the first two deadlines (15 minutes) passed
    // by the clock, but not the third's,
    market.clock.advance(Duration::minutes(6));
    let settled = sweep_once(&market.app).await.expect("swept");

    // then only the unpaid order is cancelled and its hold expired;
    assert_eq!(settled, 1, "the unpaid order's lapsed hold");
    let order = market.order(unpaid).await;
    assert_eq!(order.status(), OrderStatus::Cancelled);
    assert!(order.cancelled_by_expiry());
    assert_eq!(market.hold(listing, unpaid).await, HoldStatus::Expired);
    // the paid order keeps its units,
    assert_eq!(market.order(paid).await.status(), OrderStatus::Confirmed);
    assert_eq!(market.hold(listing, paid).await, HoldStatus::Confirmed);
    // and the order not yet due is left as it is.
    assert_eq!(market.order(later).await.status(), OrderStatus::Placed);
    assert_eq!(market.hold(listing, later).await, HoldStatus::Active);
}

/// An order placed and lapsed unpaid: the clock moved past its deadline
/// and the sweeper cancelled it.
async fn lapsed_order(market: &Marketplace, listing: Uuid) -> Uuid {
    let order_id = market
        .place("c1", vec![rental(listing, 1, 3)])
        .await
        .expect("placed")
        .order_id;
    market.clock.advance(Duration::minutes(16));
    sweep_once(&market.app).await.expect("swept");
    assert!(market.order(order_id).await.cancelled_by_expiry());
    order_id
}

#[tokio::test]
async fn a_payment_after_expiry_re_holds_when_the_units_are_still_free() {
    // Given an order that lapsed unpaid, its unit still free,
    let market = Marketplace::new().await;
    let listing = market.rental_listing(1, true).await;
    let order_id = lapsed_order(&market, listing).await;

    // when its payment arrives,
    market.pay(order_id).await;

    // then the unit is held again and the order confirmed.
    assert_eq!(
        market.order(order_id).await.status(),
        OrderStatus::Confirmed
    );
    assert_eq!(market.hold(listing, order_id).await, HoldStatus::Confirmed);
}

#[tokio::test]
async fn a_payment_after_expiry_cancels_with_a_full_refund_when_the_units_are_gone() {
    // Given an order that lapsed unpaid, its unit since held by another,
    let market = Marketplace::new().await;
    let listing = market.rental_listing(1, true).await;
    let order_id = lapsed_order(&market, listing).await;
    let other = market
        .place("c2", vec![rental(listing, 1, 3)])
        .await
        .expect("the freed unit is held by another order")
        .order_id;

    // when its payment arrives,
    market.pay(order_id).await;

    // then it is refunded in full and the other order keeps the unit.
    let order = market.order(order_id).await;
    assert_eq!(order.status(), OrderStatus::Refunded);
    assert_eq!(order.refunded_amount(), order.total());
    assert_eq!(market.hold(listing, other).await, HoldStatus::Active);
}

#[tokio::test]
async fn reactions_are_idempotent_running_one_twice_records_nothing_new() {
    // Given a paid order whose holds are confirmed, and a cancelled one
    // whose holds are released,
    let market = Marketplace::new().await;
    let listing = market.rental_listing(2, true).await;
    let paid = market
        .place("c1", vec![rental(listing, 1, 3)])
        .await
        .expect("placed")
        .order_id;
    market.pay(paid).await;
    let cancelled = market
        .place("c2", vec![rental(listing, 1, 3)])
        .await
        .expect("placed")
        .order_id;
    let cancel = OrderCommand::Cancel {
        reason: None,
        at: market.clock.now(),
    };
    market
        .app
        .orders
        .execute(
            &cancelled.to_string(),
            cancel,
            &customer("c2"),
            "CancelOrder",
        )
        .await
        .expect("cancelled");
    let order = market.order(cancelled).await;
    holds::release(&market.app, &admin(), &order, "order cancelled")
        .await
        .expect("released");
    let recorded = market.memory.recorded();

    // when the reactions run again,
    settle_payment(&market.app, &admin(), paid)
        .await
        .expect("settled again");
    holds::release(&market.app, &admin(), &order, "order cancelled")
        .await
        .expect("released again");

    // then nothing new is recorded.
    assert_eq!(market.memory.recorded(), recorded);
    assert_eq!(market.hold(listing, paid).await, HoldStatus::Confirmed);
    assert_eq!(market.hold(listing, cancelled).await, HoldStatus::Released);
}

#[tokio::test]
async fn a_listing_whose_inventory_was_never_set_up_gets_it_from_its_terms_on_first_use() {
    // Given a published listing whose creation stopped before its inventory,
    let market = Marketplace::new().await;
    let listing = market.rental_listing(1, false).await;

    // when an order holds it,
    market
        .place("c1", vec![rental(listing, 1, 3)])
        .await
        .expect("placed");

    // then the inventory is set up first and the hold placed on it.
    assert_eq!(
        market.inventory_events(listing),
        vec!["InventoryInitialized", "HoldPlaced"]
    );
}

mod invoicing;
mod rentals;
