//! Settings of the command side, read from the environment by the `ledger`
//! binary (API.md "Conventions") and passed in, so tests can build them
//! directly.

use std::time::Duration;

use domain::Rates;
use rust_decimal::Decimal;

#[derive(Clone, Debug)]
pub struct CommandApiConfig {
    /// HS256 secret that signs and verifies bearer tokens.
    pub jwt_secret: String,
    /// Secret of the payment provider's webhook signatures.
    pub webhook_secret: String,
    /// The one currency of this deployment, upper case (`USD`).
    pub currency: String,
    pub tax_rate: Decimal,
    pub platform_fee_rate: Decimal,
    /// How long an unpaid order's holds last.
    pub hold_ttl: Duration,
    /// How often the sweeper looks for lapsed holds.
    pub sweep_interval: Duration,
    /// Aggregates snapshotted every this many events (Inventory).
    pub snapshot_every: usize,
    /// Outgoing webhooks: which URLs, how long an attempt, whether to send.
    pub outbound: crate::outbound::OutboundConfig,
    /// The time zone of rental listings without a schedule of their own,
    /// and the default of a schedule that names none (`LEDGER_TIME_ZONE`).
    pub time_zone: domain::Tz,
    /// How unpaid subscription invoices are chased (`LEDGER_DUNNING_*`).
    pub dunning: domain::DunningPolicy,
    /// Wraps the data subjects' keys in the database
    /// (`LEDGER_PERSONAL_DATA_KEK`); `None`: stored as they are.
    pub personal_data_kek: Option<privacy::KeyEncryptionKey>,
}

impl CommandApiConfig {
    pub fn rates(&self) -> Rates {
        Rates {
            tax_rate: self.tax_rate,
            platform_fee_rate: self.platform_fee_rate,
        }
    }

    /// Settings for tests and local development.
    pub fn for_tests(jwt_secret: &str, webhook_secret: &str) -> Self {
        Self {
            jwt_secret: jwt_secret.to_owned(),
            webhook_secret: webhook_secret.to_owned(),
            currency: "USD".to_owned(),
            tax_rate: Decimal::ZERO,
            platform_fee_rate: Decimal::new(10, 2),
            hold_ttl: Duration::from_secs(15 * 60),
            sweep_interval: Duration::from_secs(1),
            snapshot_every: 50,
            // Tests and local development deliver to local receivers.
            outbound: crate::outbound::OutboundConfig {
                allow_loopback: true,
                ..Default::default()
            },
            time_zone: domain::Tz::UTC,
            dunning: domain::DunningPolicy::default(),
            personal_data_kek: None,
        }
    }
}
