//! Arrangements in a line: a marketplace with vendors, listings and orders
//! in the states a test starts from (`Marketplace::new(&app)
//! .with_paid_order(…)`), the order items they are made of, and the fixed
//! future calendar rentals are booked on.

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::client::PlacedOrder;
use crate::{Answer, TestApp};

/// RFC 3339 instant `days` days and `hours` hours from a fixed future base.
pub fn at(days: i64, hours: i64) -> String {
    let base = chrono::DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
        .expect("valid base")
        .with_timezone(&chrono::Utc);
    (base + chrono::Duration::days(days) + chrono::Duration::hours(hours))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// An order item renting `quantity` units of a listing from `start` to `end`.
pub fn rental_item(listing_id: Uuid, quantity: u32, start: &str, end: &str) -> Value {
    json!({"listing_id": listing_id, "quantity": quantity, "start": start, "end": end})
}

/// An order item renting `quantity` units from day `from_day` to `to_day`
/// of the calendar of [`at`].
pub fn rental_days(listing_id: Uuid, quantity: u32, from_day: i64, to_day: i64) -> Value {
    rental_item(listing_id, quantity, &at(from_day, 0), &at(to_day, 0))
}

/// An order item buying `quantity` of a listing.
pub fn sale_item(listing_id: Uuid, quantity: u32) -> Value {
    json!({"listing_id": listing_id, "quantity": quantity})
}

/// The seed of a randomised test: `env_var` if set (to replay a run), else
/// a fresh one. Tests print it, so that a failure can be replayed.
pub fn seed(env_var: &str) -> u64 {
    std::env::var(env_var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

/// A marketplace being arranged on a running ledger: each `with_…` records
/// what a test starts from, over HTTP, and returns the ids it needs.
pub struct Marketplace<'a> {
    app: &'a TestApp,
}

impl<'a> Marketplace<'a> {
    pub fn new(app: &'a TestApp) -> Marketplace<'a> {
        Marketplace { app }
    }

    /// A registered vendor.
    pub async fn with_vendor(&self, name: &str) -> Uuid {
        self.app.register_vendor(name).await
    }

    /// A published rental listing of `vendor_id`, priced by the day, with
    /// `units` units and this deposit per unit.
    pub async fn with_rental_listing(
        &self,
        vendor_id: Uuid,
        units: u32,
        price_per_day: &str,
        deposit: &str,
    ) -> Uuid {
        self.app
            .rental_listing(vendor_id, "day", price_per_day, deposit, units)
            .await
    }

    /// A published sale listing of `vendor_id`.
    pub async fn with_sale_listing(&self, vendor_id: Uuid, stock: u32, unit_price: &str) -> Uuid {
        self.app.sale_listing(vendor_id, unit_price, stock).await
    }

    /// A blackout of `units` units of a rental listing (as its vendor).
    pub async fn with_blackout(
        &self,
        vendor_id: Uuid,
        listing_id: Uuid,
        start: &str,
        end: &str,
        units: u32,
    ) -> Uuid {
        let answer = self
            .app
            .add_blackout(
                &self.app.vendor(vendor_id),
                listing_id,
                json!({"start": start, "end": end, "units": units, "reason": "service"}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
        answer.uuid("blackout_id")
    }

    /// An order `customer` placed (not paid: its units are held).
    pub async fn with_placed_order(&self, customer: &str, items: impl Into<Value>) -> PlacedOrder {
        self.app.placed_order(customer, items).await
    }

    /// An order `customer` placed and paid in full.
    pub async fn with_paid_order(&self, customer: &str, items: impl Into<Value>) -> PlacedOrder {
        let order = self.with_placed_order(customer, items).await;
        self.app.pay_placed(&order).await;
        order
    }

    /// A shop: one vendor with a rental listing (`units` kayaks at 40.00 a
    /// day, 20.00 deposit) and a sale listing (`stock` at 10.00).
    pub async fn with_shop(&self, vendor: &str, stock: u32, units: u32) -> Shop {
        let vendor_id = self.with_vendor(vendor).await;
        let sale = self.with_sale_listing(vendor_id, stock, "10.00").await;
        let rental = self
            .with_rental_listing(vendor_id, units, "40.00", "20.00")
            .await;
        Shop {
            vendor_id,
            sale,
            rental,
        }
    }

    /// Two vendors: Harbour renting `kayaks` kayaks (20.00 a day, 50.00
    /// deposit) and Alpine selling `boots` pairs of boots (15.00).
    pub async fn with_harbour_and_alpine(&self, kayaks: u32, boots: u32) -> HarbourAndAlpine {
        let harbour = self.with_vendor("Harbour").await;
        let alpine = self.with_vendor("Alpine").await;
        let kayak = self
            .with_rental_listing(harbour, kayaks, "20.00", "50.00")
            .await;
        let boots = self.with_sale_listing(alpine, boots, "15.00").await;
        HarbourAndAlpine {
            harbour,
            alpine,
            kayak,
            boots,
        }
    }

    /// The order of [`HarbourAndAlpine::mixed_order`], placed by `customer`.
    pub async fn with_mixed_order(&self, shops: &HarbourAndAlpine, customer: &str) -> Answer {
        self.app.place(customer, shops.mixed_order()).await
    }

    /// Two vendors and what the authorization tests act on: A with a rental
    /// listing (3 units, a blackout on day 20) and a sale listing, B with a
    /// sale listing, and an order of `customer-a` of A's rental and `lines`
    /// more sale items (A's, then B's), paid.
    pub async fn with_two_vendors_and_a_paid_order(&self, sale_lines: usize) -> TwoVendors {
        let vendor_a = self.with_vendor("Alpine").await;
        let vendor_b = self.with_vendor("Coast").await;
        let rental_a = self
            .with_rental_listing(vendor_a, 3, "40.00", "50.00")
            .await;
        let sale_a = self.with_sale_listing(vendor_a, 10, "10.00").await;
        let sale_b = self.with_sale_listing(vendor_b, 10, "12.00").await;
        let blackout_a = self
            .with_blackout(vendor_a, rental_a, &at(20, 0), &at(21, 0), 1)
            .await;
        let mut items = vec![rental_item(rental_a, 1, &at(1, 0), &at(2, 0))];
        items.extend(
            [sale_item(sale_a, 1), sale_item(sale_b, 1)]
                .into_iter()
                .take(sale_lines),
        );
        let order = self.with_paid_order("customer-a", items).await;
        let rental_line_a = order
            .lines
            .iter()
            .find(|l| l.kind == "rental")
            .expect("a rental line")
            .line_id;
        TwoVendors {
            vendor_a,
            vendor_b,
            rental_a,
            sale_a,
            sale_b,
            blackout_a,
            order: order.order_id,
            rental_line_a,
        }
    }
}

/// One vendor's listings (see [`Marketplace::with_shop`]).
#[derive(Clone, Copy, Debug)]
pub struct Shop {
    pub vendor_id: Uuid,
    pub sale: Uuid,
    pub rental: Uuid,
}

/// See [`Marketplace::with_harbour_and_alpine`].
#[derive(Clone, Copy, Debug)]
pub struct HarbourAndAlpine {
    pub harbour: Uuid,
    pub alpine: Uuid,
    pub kayak: Uuid,
    pub boots: Uuid,
}

impl HarbourAndAlpine {
    /// One kayak from day 1 to day 3 and two pairs of boots.
    pub fn mixed_order(&self) -> Vec<Value> {
        vec![
            rental_item(self.kayak, 1, &at(1, 0), &at(3, 0)),
            sale_item(self.boots, 2),
        ]
    }
}

/// See [`Marketplace::with_two_vendors_and_a_paid_order`].
#[derive(Clone, Copy, Debug)]
pub struct TwoVendors {
    pub vendor_a: Uuid,
    pub vendor_b: Uuid,
    pub rental_a: Uuid,
    pub sale_a: Uuid,
    pub sale_b: Uuid,
    pub blackout_a: Uuid,
    /// Paid, placed by `customer-a`.
    pub order: Uuid,
    pub rental_line_a: Uuid,
}

impl Answer {
    /// The line id of the `index`th line of an order answer.
    pub fn line_id(&self, index: usize) -> Uuid {
        self.body["lines"][index]["line_id"]
            .as_str()
            .and_then(|l| Uuid::parse_str(l).ok())
            .unwrap_or_else(|| panic!("no line {index}: {:?}", self.body))
    }
}
