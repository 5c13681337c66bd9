//! Schemas for the OpenAPI document that both APIs share: the problem
//! document every error answers with, and the domain's types as the API
//! shows them (the domain has no OpenAPI derives: it links no HTTP or
//! OpenAPI crate).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// An RFC 7807 problem (`application/problem+json`), as `ApiError::problem`
/// writes it.
#[derive(Serialize, ToSchema)]
pub struct Problem {
    /// `https://ledger.example/problems/<kind>`; the last segment names the problem.
    #[schema(example = "https://ledger.example/problems/validation")]
    pub r#type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// 422 validation problems: one entry per offending field.
    #[schema(nullable = false)]
    pub errors: Option<Vec<FieldError>>,
    /// 409 `unavailable`: the lines that could not be held.
    #[schema(nullable = false)]
    pub conflicts: Option<Vec<Conflict>>,
    /// 409 `insufficient-balance`: the vendor's available balance.
    #[schema(nullable = false, pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    pub available: Option<String>,
    /// 409 `insufficient-balance`: the payout asked for.
    #[schema(nullable = false, pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    pub requested: Option<String>,
}

// The domain's types as the API shows them. The domain carries no OpenAPI
// derives (it links no HTTP or OpenAPI crate), so their schemas live here,
// at the edge, each under its domain type's name and with its JSON; a
// handler's field of a domain type points here with
// `#[schema(value_type = …)]`. The `From` impls name every variant and
// field, so a change to a domain type does not compile until its mirror
// follows, and the tests below check that both write the same JSON. Doc
// comments here are the document's descriptions: a type without one had
// none in the domain either.

// `domain::OrderStatus`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Placed,
    Confirmed,
    Completed,
    Cancelled,
    Refunded,
}

impl From<domain::OrderStatus> for OrderStatus {
    fn from(status: domain::OrderStatus) -> Self {
        use domain::OrderStatus as S;
        match status {
            S::Placed => Self::Placed,
            S::Confirmed => Self::Confirmed,
            S::Completed => Self::Completed,
            S::Cancelled => Self::Cancelled,
            S::Refunded => Self::Refunded,
        }
    }
}

// `domain::ListingKind`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListingKind {
    Rental,
    Sale,
}

impl From<domain::ListingKind> for ListingKind {
    fn from(kind: domain::ListingKind) -> Self {
        match kind {
            domain::ListingKind::Rental => Self::Rental,
            domain::ListingKind::Sale => Self::Sale,
        }
    }
}

// `domain::ListingStatus`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListingStatus {
    Draft,
    Published,
    Archived,
}

impl From<domain::ListingStatus> for ListingStatus {
    fn from(status: domain::ListingStatus) -> Self {
        use domain::ListingStatus as S;
        match status {
            S::Draft => Self::Draft,
            S::Published => Self::Published,
            S::Archived => Self::Archived,
        }
    }
}

/// The unit a rental is priced in.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PricingUnit {
    Day,
    Hour,
}

impl From<domain::PricingUnit> for PricingUnit {
    fn from(unit: domain::PricingUnit) -> Self {
        match unit {
            domain::PricingUnit::Day => Self::Day,
            domain::PricingUnit::Hour => Self::Hour,
        }
    }
}

/// One validation problem; `field` is named as in the HTTP body.
#[derive(Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    /// For people.
    pub message: String,
    /// For programs: the rule broken (API.md "Rentals": `in_past`, …), where
    /// the rule has a name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl From<domain::FieldError> for FieldError {
    fn from(e: domain::FieldError) -> Self {
        let domain::FieldError {
            field,
            message,
            code,
        } = e;
        Self {
            field,
            message,
            code,
        }
    }
}

/// A line that could not be held: `free` is the minimum number of free units
/// over the requested period (or the free stock for a sale).
#[derive(Serialize, ToSchema)]
pub struct Conflict {
    pub listing_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<Utc>>,
    pub requested: u32,
    pub free: u32,
}

impl From<domain::Conflict> for Conflict {
    fn from(c: domain::Conflict) -> Self {
        let domain::Conflict {
            listing_id,
            start,
            end,
            requested,
            free,
        } = c;
        Self {
            listing_id,
            start,
            end,
            requested,
            free,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde::Serialize;

    use super::*;

    fn same_json<D: Serialize, E: Serialize + From<D>>(value: D) {
        let domain = serde_json::to_value(&value).expect("domain JSON");
        let edge = serde_json::to_value(E::from(value)).expect("edge JSON");
        assert_eq!(domain, edge);
    }

    #[test]
    fn each_mirror_writes_its_domain_types_json() {
        use domain::{ListingKind as K, ListingStatus as L, OrderStatus as O, PricingUnit as P};
        for s in [
            O::Placed,
            O::Confirmed,
            O::Completed,
            O::Cancelled,
            O::Refunded,
        ] {
            same_json::<_, OrderStatus>(s);
        }
        for k in [K::Rental, K::Sale] {
            same_json::<_, ListingKind>(k);
        }
        for s in [L::Draft, L::Published, L::Archived] {
            same_json::<_, ListingStatus>(s);
        }
        for u in [P::Day, P::Hour] {
            same_json::<_, PricingUnit>(u);
        }
        same_json::<_, FieldError>(domain::FieldError::new("end", "end must be after start"));
        same_json::<_, FieldError>(domain::FieldError::with_code("start", "in_past", "past"));
        let at = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        for (start, end) in [(None, None), (Some(at), Some(at))] {
            same_json::<_, Conflict>(domain::Conflict {
                listing_id: Uuid::nil(),
                start,
                end,
                requested: 2,
                free: 1,
            });
        }
    }
}
