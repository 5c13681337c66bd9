//! `ledger-bench drop-streams`: deletes the JetStream streams a benchmark
//! made, so that a run leaves the shared NATS server as it found it.

use crate::BenchError;

#[derive(clap::Args, Debug, Clone)]
pub struct DropStreamsArgs {
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// Streams to delete; one that does not exist is skipped.
    #[arg(required = true)]
    pub streams: Vec<String>,
}

pub async fn drop_streams(args: DropStreamsArgs) -> Result<(), BenchError> {
    let client = async_nats::connect(&args.nats_url)
        .await
        .map_err(|e| BenchError::Nats(e.to_string()))?;
    let js = async_nats::jetstream::new(client);
    for stream in &args.streams {
        match js.delete_stream(stream).await {
            Ok(_) => eprintln!("deleted stream {stream}"),
            Err(err) => eprintln!("stream {stream} not deleted: {err}"),
        }
    }
    Ok(())
}
