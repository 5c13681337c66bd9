//! The Listing aggregate: a vendor's item for rent or sale.

use cqrs_es::{Aggregate, DomainEvent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::{handle_by_deciding, Decide};
use crate::cancellation::{validate_policy, CancellationTier};
use crate::error::{DomainError, FieldError};
use crate::money::is_valid_amount;
use crate::period::PricingUnit;

pub const MAX_TITLE: usize = 200;
pub const MAX_DESCRIPTION: usize = 5000;
pub const MAX_CATEGORY: usize = 100;
pub const MAX_RENTAL_UNITS: u32 = 100_000;
pub const MAX_SALE_STOCK: u32 = 10_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListingKind {
    Rental,
    Sale,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListingStatus {
    #[default]
    Draft,
    Published,
    Archived,
}

/// `{"kind":"rental", ...}` or `{"kind":"sale", ...}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ListingTerms {
    Rental {
        pricing_unit: PricingUnit,
        price_per_unit: Decimal,
        deposit: Decimal,
        units: u32,
    },
    Sale {
        unit_price: Decimal,
        stock: u32,
    },
}

impl ListingTerms {
    pub fn kind(&self) -> ListingKind {
        match self {
            ListingTerms::Rental { .. } => ListingKind::Rental,
            ListingTerms::Sale { .. } => ListingKind::Sale,
        }
    }

    /// price_per_unit for rentals, unit_price for sales.
    pub fn price(&self) -> Decimal {
        match self {
            ListingTerms::Rental { price_per_unit, .. } => *price_per_unit,
            ListingTerms::Sale { unit_price, .. } => *unit_price,
        }
    }

    fn set_price(&mut self, price: Decimal) {
        match self {
            ListingTerms::Rental { price_per_unit, .. } => *price_per_unit = price,
            ListingTerms::Sale { unit_price, .. } => *unit_price = price,
        }
    }

    /// All problems, field names as in the HTTP body.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        match self {
            ListingTerms::Rental {
                price_per_unit,
                deposit,
                units,
                ..
            } => {
                if !is_positive_price(*price_per_unit) {
                    errors.push(FieldError::new("price_per_unit", PRICE_MSG));
                }
                if !is_valid_amount(*deposit) {
                    errors.push(FieldError::new(
                        "deposit",
                        "must be a non-negative amount with at most 2 decimal places, at most 1000000000.00",
                    ));
                }
                if *units < 1 || *units > MAX_RENTAL_UNITS {
                    errors.push(FieldError::new(
                        "units",
                        format!("must be between 1 and {MAX_RENTAL_UNITS}"),
                    ));
                }
            }
            ListingTerms::Sale { unit_price, stock } => {
                if !is_positive_price(*unit_price) {
                    errors.push(FieldError::new("unit_price", PRICE_MSG));
                }
                if *stock > MAX_SALE_STOCK {
                    errors.push(FieldError::new(
                        "stock",
                        format!("must be at most {MAX_SALE_STOCK}"),
                    ));
                }
            }
        }
        errors
    }
}

const PRICE_MSG: &str =
    "must be a positive amount with at most 2 decimal places, at most 1000000000.00";

fn is_positive_price(p: Decimal) -> bool {
    is_valid_amount(p) && p > Decimal::ZERO
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ListingCommand {
    Create {
        listing_id: Uuid,
        vendor_id: Uuid,
        title: String,
        description: String,
        category: String,
        terms: ListingTerms,
    },
    Publish,
    Archive,
    /// price_per_unit for rentals, unit_price for sales.
    ChangePrice {
        price: Decimal,
    },
    /// A rental listing's policies, for orders placed from now on.
    SetPolicies {
        late_fee_per_unit: Decimal,
        /// Refund tiers for cancellations and shortened bookings.
        #[serde(default)]
        cancellation_policy: Vec<CancellationTier>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ListingEvent {
    ListingCreated {
        listing_id: Uuid,
        vendor_id: Uuid,
        title: String,
        description: String,
        category: String,
        terms: ListingTerms,
    },
    ListingPublished,
    ListingArchived,
    PriceChanged {
        price: Decimal,
    },
    /// Charged per started pricing unit late, per unit of quantity.
    PoliciesSet {
        late_fee_per_unit: Decimal,
        /// Empty: a full refund until fulfilment.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        cancellation_policy: Vec<CancellationTier>,
    },
}

impl DomainEvent for ListingEvent {
    fn event_type(&self) -> String {
        match self {
            ListingEvent::ListingCreated { .. } => "ListingCreated",
            ListingEvent::ListingPublished => "ListingPublished",
            ListingEvent::ListingArchived => "ListingArchived",
            ListingEvent::PriceChanged { .. } => "PriceChanged",
            ListingEvent::PoliciesSet { .. } => "PoliciesSet",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        crate::EVENT_VERSION.to_string()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Listing {
    listing_id: Option<Uuid>,
    vendor_id: Option<Uuid>,
    title: String,
    description: String,
    category: String,
    terms: Option<ListingTerms>,
    status: ListingStatus,
    #[serde(default)]
    late_fee_per_unit: Decimal,
    #[serde(default)]
    cancellation_policy: Vec<CancellationTier>,
}

impl Listing {
    pub fn is_created(&self) -> bool {
        self.listing_id.is_some()
    }
    pub fn listing_id(&self) -> Option<Uuid> {
        self.listing_id
    }
    pub fn vendor_id(&self) -> Option<Uuid> {
        self.vendor_id
    }
    /// Draft before creation too; check `is_created()`.
    pub fn status(&self) -> ListingStatus {
        self.status
    }
    pub fn kind(&self) -> Option<ListingKind> {
        self.terms.as_ref().map(ListingTerms::kind)
    }
    pub fn terms(&self) -> Option<&ListingTerms> {
        self.terms.as_ref()
    }
    /// Current price (price_per_unit or unit_price).
    pub fn price(&self) -> Option<Decimal> {
        self.terms.as_ref().map(ListingTerms::price)
    }
    /// Only published listings can be ordered.
    pub fn is_orderable(&self) -> bool {
        self.is_created() && self.status == ListingStatus::Published
    }
    pub fn title(&self) -> &str {
        &self.title
    }
    pub fn description(&self) -> &str {
        &self.description
    }
    pub fn category(&self) -> &str {
        &self.category
    }
    /// The late fee per started pricing unit late (zero: none).
    pub fn late_fee_per_unit(&self) -> Decimal {
        self.late_fee_per_unit
    }
    /// The refund tiers (empty: a full refund until fulfilment).
    pub fn cancellation_policy(&self) -> &[CancellationTier] {
        &self.cancellation_policy
    }
}

impl Decide for Listing {
    fn decide(&self, command: ListingCommand) -> Result<Vec<ListingEvent>, DomainError> {
        use ListingCommand as C;
        match command {
            C::Create {
                listing_id,
                vendor_id,
                title,
                description,
                category,
                terms,
            } => self.create(listing_id, vendor_id, title, description, category, terms),
            _ if !self.is_created() => Err(DomainError::not_found("listing")),
            C::Publish => self.publish(),
            C::Archive => self.archive(),
            C::ChangePrice { price } => self.change_price(price),
            C::SetPolicies {
                late_fee_per_unit,
                cancellation_policy,
            } => self.set_policies(late_fee_per_unit, cancellation_policy),
        }
    }
}

type Decision = Result<Vec<ListingEvent>, DomainError>;

impl Listing {
    fn create(
        &self,
        listing_id: Uuid,
        vendor_id: Uuid,
        title: String,
        description: String,
        category: String,
        terms: ListingTerms,
    ) -> Decision {
        if self.is_created() {
            return Err(DomainError::AlreadyExists { what: "listing" });
        }
        let title = title.trim().to_string();
        let description = description.trim().to_string();
        let category = category.trim().to_string();
        let mut errors = Vec::new();
        let title_len = title.chars().count();
        if title_len == 0 || title_len > MAX_TITLE {
            errors.push(FieldError::new(
                "title",
                format!("must be 1 to {MAX_TITLE} characters"),
            ));
        }
        if description.chars().count() > MAX_DESCRIPTION {
            errors.push(FieldError::new(
                "description",
                format!("must be at most {MAX_DESCRIPTION} characters"),
            ));
        }
        let category_len = category.chars().count();
        if category_len == 0 || category_len > MAX_CATEGORY {
            errors.push(FieldError::new(
                "category",
                format!("must be 1 to {MAX_CATEGORY} characters"),
            ));
        }
        errors.extend(terms.validate());
        DomainError::check(errors)?;
        Ok(vec![ListingEvent::ListingCreated {
            listing_id,
            vendor_id,
            title,
            description,
            category,
            terms,
        }])
    }

    fn publish(&self) -> Decision {
        match self.status {
            ListingStatus::Draft => Ok(vec![ListingEvent::ListingPublished]),
            ListingStatus::Published => Ok(vec![]),
            ListingStatus::Archived => Err(DomainError::invalid_state(
                "an archived listing cannot be published",
            )),
        }
    }

    fn archive(&self) -> Decision {
        match self.status {
            ListingStatus::Draft | ListingStatus::Published => {
                Ok(vec![ListingEvent::ListingArchived])
            }
            ListingStatus::Archived => Ok(vec![]),
        }
    }

    /// Affects new orders only: an order keeps the price it was placed at.
    fn change_price(&self, price: Decimal) -> Decision {
        if self.status == ListingStatus::Archived {
            return Err(DomainError::invalid_state(
                "the price of an archived listing cannot change",
            ));
        }
        if !is_positive_price(price) {
            return Err(DomainError::invalid("price", PRICE_MSG));
        }
        Ok(vec![ListingEvent::PriceChanged { price }])
    }
}

impl Listing {
    /// Policies of rental listings; they apply to orders placed later.
    fn set_policies(
        &self,
        late_fee_per_unit: Decimal,
        cancellation_policy: Vec<CancellationTier>,
    ) -> Decision {
        if self.kind() != Some(ListingKind::Rental) {
            return Err(DomainError::invalid_state(
                "policies apply to rental listings only",
            ));
        }
        let mut errors = Vec::new();
        if !is_valid_amount(late_fee_per_unit) {
            errors.push(FieldError::new(
                "late_fee_per_unit",
                "must be a non-negative amount with at most 2 decimal places, at most 1000000000.00",
            ));
        }
        errors.extend(validate_policy(&cancellation_policy));
        DomainError::check(errors)?;
        if late_fee_per_unit == self.late_fee_per_unit
            && cancellation_policy == self.cancellation_policy
        {
            return Ok(vec![]);
        }
        Ok(vec![ListingEvent::PoliciesSet {
            late_fee_per_unit,
            cancellation_policy,
        }])
    }
}

impl Aggregate for Listing {
    const TYPE: &'static str = "Listing";
    type Command = ListingCommand;
    type Event = ListingEvent;
    type Error = DomainError;
    type Services = ();

    handle_by_deciding!();

    fn apply(&mut self, event: Self::Event) {
        match event {
            ListingEvent::ListingCreated {
                listing_id,
                vendor_id,
                title,
                description,
                category,
                terms,
            } => {
                self.listing_id = Some(listing_id);
                self.vendor_id = Some(vendor_id);
                self.title = title;
                self.description = description;
                self.category = category;
                self.terms = Some(terms);
                self.status = ListingStatus::Draft;
            }
            ListingEvent::ListingPublished => self.status = ListingStatus::Published,
            ListingEvent::ListingArchived => self.status = ListingStatus::Archived,
            ListingEvent::PriceChanged { price } => {
                if let Some(terms) = self.terms.as_mut() {
                    terms.set_price(price);
                }
            }
            ListingEvent::PoliciesSet {
                late_fee_per_unit,
                cancellation_policy,
            } => {
                self.late_fee_per_unit = late_fee_per_unit;
                self.cancellation_policy = cancellation_policy;
            }
        }
    }
}
