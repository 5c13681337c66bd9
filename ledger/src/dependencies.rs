//! Outages of the ledger's dependencies, logged where an operator looks: at
//! WARN, naming the address that cannot be reached (without credentials),
//! once when it goes down, then at most every [`REMINDER_EVERY`] while it
//! stays down, and at INFO when it is back. (async-nats itself logs every
//! failed reconnect at INFO with no address; telemetry turns that off.)

use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// While a dependency stays down, how often it is logged again.
pub const REMINDER_EVERY: Duration = Duration::from_secs(30);

/// How often the database is probed, and how long a probe may take.
const DATABASE_PROBE_EVERY: Duration = Duration::from_secs(5);
const DATABASE_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// `NATS_URL` without user names, passwords or tokens: `nats://u:p@h:4222`
/// becomes `nats://h:4222`; each server of a list is redacted.
pub fn redact_nats_url(url: &str) -> String {
    url.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (scheme, rest) = match part.split_once("://") {
                Some((scheme, rest)) => (Some(scheme), rest),
                None => (None, part),
            };
            let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            match scheme {
                Some(scheme) => format!("{scheme}://{host}"),
                None => host.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether a dependency is down, and when that was last logged.
#[derive(Default)]
struct Outage {
    down_since: Option<Instant>,
    last_logged: Option<Instant>,
}

impl Outage {
    /// Records a failure; true when it should be logged now.
    fn failed(&mut self, now: Instant) -> bool {
        self.down_since.get_or_insert(now);
        let due = self
            .last_logged
            .is_none_or(|last| now.duration_since(last) >= REMINDER_EVERY);
        if due {
            self.last_logged = Some(now);
        }
        due
    }

    /// Records a success; how long it had been down, if it was.
    fn recovered(&mut self, now: Instant) -> Option<Duration> {
        self.last_logged = None;
        self.down_since
            .take()
            .map(|since| now.duration_since(since))
    }

    fn down_for(&self, now: Instant) -> Duration {
        self.down_since
            .map_or(Duration::ZERO, |since| now.duration_since(since))
    }
}

/// Logs the events of a NATS connection (`ConnectOptions::event_callback`).
pub struct NatsWatch {
    address: String,
    outage: Mutex<Outage>,
}

impl NatsWatch {
    /// `address`: the redacted `NATS_URL` ([`redact_nats_url`]).
    pub fn new(address: String) -> Self {
        Self {
            address,
            outage: Mutex::new(Outage::default()),
        }
    }

    pub fn observe(&self, event: &async_nats::Event) {
        use async_nats::Event;
        let now = Instant::now();
        let mut outage = self.outage.lock().unwrap_or_else(|e| e.into_inner());
        let nats = self.address.as_str();
        match event {
            Event::Connected => match outage.recovered(now) {
                Some(down) => {
                    tracing::info!(nats, down_secs = down.as_secs(), "NATS reachable again")
                }
                None => tracing::info!(nats, "connected to NATS"),
            },
            Event::Disconnected => {
                outage.failed(now);
                tracing::warn!(nats, "NATS connection lost; reconnecting");
            }
            Event::ClientError(error) => {
                if outage.failed(now) {
                    tracing::warn!(
                        nats,
                        %error,
                        down_secs = outage.down_for(now).as_secs(),
                        "NATS unreachable; retrying (the relay and the read models wait)"
                    );
                } else {
                    tracing::debug!(nats, %error, "NATS still unreachable");
                }
            }
            Event::ServerError(error) => tracing::warn!(nats, %error, "NATS server error"),
            Event::LameDuckMode => {
                tracing::warn!(nats, "NATS server entering lame duck mode")
            }
            Event::SlowConsumer(sid) => {
                tracing::warn!(nats, subscription = sid, "NATS slow consumer")
            }
            Event::Draining | Event::Closed => tracing::debug!(nats, %event, "NATS connection"),
        }
    }
}

/// `host:port/database` of a pool, for logs (never the password).
pub fn database_address(pool: &PgPool) -> String {
    let options = pool.connect_options();
    format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or_default()
    )
}

/// Probes the database every few seconds until `stop` is cancelled, logging
/// an outage at WARN with the database's address (the requests answer 503
/// meanwhile, and the relay and the consumers retry).
pub async fn watch_database(pool: PgPool, stop: CancellationToken) {
    let database = database_address(&pool);
    let mut outage = Outage::default();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(DATABASE_PROBE_EVERY) => {}
            _ = stop.cancelled() => return,
        }
        let probe = tokio::time::timeout(
            DATABASE_PROBE_TIMEOUT,
            sqlx::query("SELECT 1").execute(&pool),
        )
        .await;
        let now = Instant::now();
        let error = match probe {
            Ok(Ok(_)) => {
                if let Some(down) = outage.recovered(now) {
                    tracing::info!(
                        %database,
                        down_secs = down.as_secs(),
                        "PostgreSQL reachable again"
                    );
                }
                continue;
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no answer within {DATABASE_PROBE_TIMEOUT:?}"),
        };
        if outage.failed(now) {
            tracing::warn!(
                %database,
                %error,
                down_secs = outage.down_for(now).as_secs(),
                "PostgreSQL unreachable; requests answer 503 until it is back"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_the_logged_address() {
        assert_eq!(
            redact_nats_url("nats://user:secret@10.0.0.1:4222"),
            "nats://10.0.0.1:4222"
        );
        assert_eq!(
            redact_nats_url("nats://tok@a:4222, tls://u:p@b:4223,c:4224"),
            "nats://a:4222,tls://b:4223,c:4224"
        );
        assert_eq!(redact_nats_url("s3cr3t@host:4222"), "host:4222");
        assert_eq!(
            redact_nats_url("nats://127.0.0.1:4222"),
            "nats://127.0.0.1:4222"
        );
    }

    #[test]
    fn an_outage_is_logged_at_once_then_every_reminder_interval() {
        let start = Instant::now();
        let mut outage = Outage::default();
        assert!(outage.failed(start), "the first failure is logged");
        assert!(!outage.failed(start + Duration::from_secs(4)));
        assert!(!outage.failed(start + REMINDER_EVERY - Duration::from_millis(1)));
        assert!(outage.failed(start + REMINDER_EVERY));
        assert_eq!(
            outage.down_for(start + Duration::from_secs(40)),
            Duration::from_secs(40)
        );
        assert_eq!(
            outage.recovered(start + Duration::from_secs(41)),
            Some(Duration::from_secs(41))
        );
        assert_eq!(outage.recovered(start + Duration::from_secs(42)), None);
        assert!(
            outage.failed(start + Duration::from_secs(43)),
            "a new outage is logged at once"
        );
    }
}
