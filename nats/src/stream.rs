//! The one JetStream stream of a deployment: file storage, replicas and
//! duplicate window from configuration, subjects under the stream's own
//! prefix.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::envelope::subject_prefix;
use crate::Error;

#[derive(Clone, Debug)]
pub struct StreamSettings {
    /// Stream name (`LEDGER`); subjects are `<lower-cased name>.events.>`.
    pub name: String,
    /// 1 locally, 3 in a cluster.
    pub replicas: usize,
    /// Must cover the relay's retry after a restart, so that republished
    /// events are dropped as duplicates.
    pub duplicate_window: Duration,
}

impl StreamSettings {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            replicas: 1,
            duplicate_window: Duration::from_secs(120),
        }
    }

    /// All subjects of this deployment's events.
    pub fn subjects(&self) -> String {
        format!("{}.>", subject_prefix(&self.name))
    }

    fn config(&self) -> stream::Config {
        stream::Config {
            name: self.name.clone(),
            subjects: vec![self.subjects()],
            storage: stream::StorageType::File,
            num_replicas: self.replicas,
            duplicate_window: self.duplicate_window,
            allow_direct: true,
            ..Default::default()
        }
    }
}

/// Creates the stream if it is missing and returns it.
pub async fn provision(
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<stream::Stream, Error> {
    js.get_or_create_stream(settings.config())
        .await
        .map_err(Error::nats)
}
