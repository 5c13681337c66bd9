//! The terms an order is priced with, cached (issue 18, item 2): each
//! listing as its aggregate last answered, each vendor's fee rate and each
//! rental inventory's time zone, with the sequence each was read at. A
//! placement decides on them without reading the aggregates, and its append
//! carries a guard per term ([`Guard`]): if one changed since, nothing is
//! recorded, the placement drops what it used and decides again on fresh
//! terms. A stale price is a retry, never a wrong charge.
//!
//! Off on stores that cannot check guards (memory, in tests): every read
//! goes to the aggregate.

use std::num::NonZeroUsize;
use std::sync::{Mutex, PoisonError};

use std::collections::HashMap;

use domain::{Inventory, Listing, Rates, Tenant, TenantSettings, Tz, Vendor};
use event_log::Guard;
use lru::LruCache;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::auth::Principal;
use crate::bus::{CommandBus, CommandError};
use crate::config::CommandApiConfig;

/// Terms of another tenant's aggregate are not found (API.md "Tenants").
fn reachable<T>(
    read: Read<T>,
    principal: &Principal,
    what: &'static str,
) -> Result<Read<T>, CommandError> {
    match &read.tenant {
        Some(tenant) if !principal.reaches(tenant) => {
            Err(CommandError::Rejected(domain::DomainError::NotFound {
                what,
            }))
        }
        _ => Ok(read),
    }
}

/// Entries kept per kind (least recently used go).
const CAPACITY: usize = 4_096;

/// A value read from an aggregate, and the sequence it was read at.
#[derive(Clone)]
struct Read<T> {
    value: T,
    sequence: usize,
    /// The tenant of the aggregate it was read from.
    tenant: Option<String>,
}

pub struct TermsCache {
    enabled: bool,
    listings: Mutex<LruCache<Uuid, Read<Listing>>>,
    fee_rates: Mutex<LruCache<Uuid, Read<Option<Decimal>>>>,
    time_zones: Mutex<LruCache<Uuid, Read<Option<Tz>>>>,
    /// Each tenant's settings, by slug (tenants are few).
    tenants: Mutex<HashMap<String, Read<TenantSettings>>>,
}

/// What an order of a tenant is priced and held with: the tenant's own
/// settings, each falling back to the deployment's (API.md "Tenants").
#[derive(Clone, Debug, PartialEq)]
pub struct TenantTerms {
    pub currency: String,
    pub rates: Rates,
    pub hold_ttl: std::time::Duration,
    pub time_zone: Tz,
}

impl TenantTerms {
    /// The deployment's defaults: the default tenant's terms.
    pub fn deployment(config: &CommandApiConfig) -> Self {
        Self {
            currency: config.currency.clone(),
            rates: config.rates(),
            hold_ttl: config.hold_ttl,
            time_zone: config.time_zone,
        }
    }

    /// `settings` over the deployment's defaults.
    pub fn of(config: &CommandApiConfig, settings: &TenantSettings) -> Self {
        let defaults = Self::deployment(config);
        Self {
            currency: settings.currency.clone().unwrap_or(defaults.currency),
            rates: Rates {
                tax_rate: settings.tax_rate.unwrap_or(defaults.rates.tax_rate),
                platform_fee_rate: settings
                    .platform_fee_rate
                    .unwrap_or(defaults.rates.platform_fee_rate),
            },
            hold_ttl: settings
                .hold_ttl
                .and_then(|ttl| u64::try_from(ttl.seconds()).ok())
                .map_or(defaults.hold_ttl, std::time::Duration::from_secs),
            time_zone: settings.time_zone.unwrap_or(defaults.time_zone),
        }
    }
}

fn lru<T>() -> Mutex<LruCache<Uuid, T>> {
    Mutex::new(LruCache::new(
        NonZeroUsize::new(CAPACITY).unwrap_or(NonZeroUsize::MIN),
    ))
}

fn cached<T: Clone>(cache: &Mutex<LruCache<Uuid, Read<T>>>, id: Uuid) -> Option<Read<T>> {
    cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&id)
        .cloned()
}

fn keep<T>(cache: &Mutex<LruCache<Uuid, Read<T>>>, id: Uuid, read: Read<T>) {
    cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .put(id, read);
}

fn guard(
    aggregate_type: &str,
    id: impl ToString,
    sequence: usize,
    event_type: Option<&str>,
) -> Guard {
    Guard {
        aggregate_type: aggregate_type.to_owned(),
        aggregate_id: id.to_string(),
        after_sequence: sequence as i64,
        event_type: event_type.map(str::to_owned),
    }
}

impl TermsCache {
    /// `enabled`: the stores check guards, so cached terms are safe.
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            listings: lru(),
            fee_rates: lru(),
            time_zones: lru(),
            tenants: Mutex::new(HashMap::new()),
        }
    }

    /// The terms of `principal`'s tenant, and the guard that its settings
    /// were not changed since (none for the default tenant, whose terms
    /// are the deployment's settings).
    pub async fn tenant(
        &self,
        bus: &CommandBus<Tenant>,
        config: &CommandApiConfig,
        principal: &Principal,
    ) -> Result<(TenantTerms, Option<Guard>), CommandError> {
        let slug = principal.tenant.as_str();
        if slug == event_log::DEFAULT_TENANT {
            return Ok((TenantTerms::deployment(config), None));
        }
        let cached = self
            .tenants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(slug)
            .cloned()
            .filter(|_| self.enabled);
        let read = match cached {
            Some(read) => read,
            None => {
                let stored = bus.load_any_tenant(slug).await?;
                if stored.sequence == 0 {
                    return Err(CommandError::Rejected(domain::DomainError::NotFound {
                        what: "tenant",
                    }));
                }
                let read = Read {
                    value: stored.aggregate.settings().clone(),
                    sequence: stored.sequence,
                    tenant: stored.tenant,
                };
                if self.enabled {
                    self.tenants
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(slug.to_owned(), read.clone());
                }
                read
            }
        };
        Ok((
            TenantTerms::of(config, &read.value),
            Some(guard(
                "Tenant",
                slug,
                read.sequence,
                Some("TenantSettingsChanged"),
            )),
        ))
    }

    /// The listing, and the guard that no event changed it since.
    pub async fn listing(
        &self,
        bus: &CommandBus<Listing>,
        principal: &Principal,
        id: Uuid,
    ) -> Result<(Listing, Guard), CommandError> {
        let read = match cached(&self.listings, id).filter(|_| self.enabled) {
            Some(read) => read,
            None => {
                let stored = bus.load_any_tenant(&id.to_string()).await?;
                let read = Read {
                    value: stored.aggregate,
                    sequence: stored.sequence,
                    tenant: stored.tenant,
                };
                if self.enabled && read.sequence > 0 {
                    keep(&self.listings, id, read.clone());
                }
                read
            }
        };
        let read = reachable(read, principal, "Listing")?;
        Ok((read.value, guard("Listing", id, read.sequence, None)))
    }

    /// The vendor's own platform fee rate (none: the deployment's), and the
    /// guard that it was not set again since.
    pub async fn fee_rate(
        &self,
        bus: &CommandBus<Vendor>,
        principal: &Principal,
        id: Uuid,
    ) -> Result<(Option<Decimal>, Guard), CommandError> {
        let read = match cached(&self.fee_rates, id).filter(|_| self.enabled) {
            Some(read) => read,
            None => {
                let stored = bus.load_any_tenant(&id.to_string()).await?;
                let read = Read {
                    value: stored.aggregate.fee_rate(),
                    sequence: stored.sequence,
                    tenant: stored.tenant,
                };
                if self.enabled {
                    keep(&self.fee_rates, id, read.clone());
                }
                read
            }
        };
        let read = reachable(read, principal, "Vendor")?;
        Ok((
            read.value,
            guard("Vendor", id, read.sequence, Some("FeeRateSet")),
        ))
    }

    /// The time zone of the listing's schedule (none: the deployment's),
    /// and the guard that no schedule was set since.
    pub async fn time_zone(
        &self,
        bus: &CommandBus<Inventory>,
        principal: &Principal,
        id: Uuid,
    ) -> Result<(Option<Tz>, Guard), CommandError> {
        let read = match cached(&self.time_zones, id).filter(|_| self.enabled) {
            Some(read) => read,
            None => {
                let stored = bus.load_any_tenant(&id.to_string()).await?;
                let read = Read {
                    value: stored.aggregate.schedule().map(|s| s.time_zone),
                    sequence: stored.sequence,
                    tenant: stored.tenant,
                };
                if self.enabled {
                    keep(&self.time_zones, id, read.clone());
                }
                read
            }
        };
        let read = reachable(read, principal, "Inventory")?;
        Ok((
            read.value,
            guard("Inventory", id, read.sequence, Some("ScheduleSet")),
        ))
    }

    /// Forgets what these guards were about: one of them failed.
    pub fn forget(&self, guards: &[Guard]) {
        for g in guards {
            if g.aggregate_type == "Tenant" {
                self.tenants
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&g.aggregate_id);
                continue;
            }
            let Ok(id) = g.aggregate_id.parse::<Uuid>() else {
                continue;
            };
            match g.aggregate_type.as_str() {
                "Listing" => {
                    self.listings
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .pop(&id);
                }
                "Vendor" => {
                    self.fee_rates
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .pop(&id);
                }
                "Inventory" => {
                    self.time_zones
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .pop(&id);
                }
                _ => {}
            }
        }
    }
}
