//! The relay and the projectors as crashable "processes": tokio tasks with
//! their own pool and NATS connection, aborted wherever they are and
//! restarted, as a killed process would be.

use super::*;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub(super) enum Kind {
    Relay,
    Projector(Arc<dyn Consumer>),
}

pub(super) struct Part {
    pub(super) name: &'static str,
    pub(super) kind: Kind,
    pub(super) running: Option<(CancellationToken, JoinHandle<()>)>,
    pub(super) crashes: u32,
}

/// Where the parts find the database and NATS.
#[derive(Clone)]
pub(super) struct Env {
    pub(super) database: PgConnectOptions,
    pub(super) nats_url: String,
    pub(super) stream: String,
}

impl Part {
    pub(super) fn new(name: &'static str, kind: Kind) -> Part {
        Part {
            name,
            kind,
            running: None,
            crashes: 0,
        }
    }

    /// Starts the part with its own pool and NATS connection.
    pub(super) async fn start(&mut self, env: &Env) {
        assert!(self.running.is_none(), "{} is running", self.name);
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(env.database.clone())
            .await
            .expect("a pool for the part");
        let client = ledger::connect_nats(&env.nats_url)
            .await
            .expect("a NATS client");
        let settings = StreamSettings::new(env.stream.clone());
        let stop = CancellationToken::new();
        let shutdown = stop.clone();
        let task = match &self.kind {
            Kind::Relay => {
                tokio::spawn(Relay::new(pool, client, RelayConfig::new(settings)).run(shutdown))
            }
            Kind::Projector(consumer) => tokio::spawn(
                Runner::new(pool, client, RunnerConfig::new(settings), consumer.clone())
                    .run(shutdown),
            ),
        };
        self.running = Some((stop, task));
    }

    /// Kills the part wherever it is: its task is dropped at its current
    /// await point, with its transaction, connections and NATS client.
    pub(super) async fn crash(&mut self) {
        let (_stop, task) = self.running.take().expect("the part is running");
        task.abort();
        let _ = task.await;
        self.crashes += 1;
    }

    pub(super) async fn stop(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            stop.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

/// The HTTP instance plus the crashable parts, all on one database.
pub(super) struct Pipeline {
    pub(super) app: TestApp,
    pub(super) env: Env,
    pub(super) parts: Vec<Part>,
}

impl Pipeline {
    pub(super) async fn start(nats_url: &str) -> Pipeline {
        let parts = ledger::Parts {
            command_api: true,
            read_api: true,
            ..ledger::Parts::NONE
        };
        let app = TestApp::spawn_parts(nats_url, parts).await;
        let env = Env {
            database: (*app.pool.connect_options()).clone(),
            nats_url: nats_url.to_owned(),
            stream: app.stream.clone(),
        };
        let mut parts = vec![Part::new("relay", Kind::Relay)];
        for model in projectors::read_models() {
            parts.push(Part::new(model.name(), Kind::Projector(model)));
        }
        for part in &mut parts {
            part.start(&env).await;
        }
        Pipeline { app, env, parts }
    }

    pub(super) async fn stop(mut self) {
        for part in &mut self.parts {
            part.stop().await;
        }
        self.app.stop().await;
    }
}
