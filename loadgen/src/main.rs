//! `ledger-bench`: the load generator and the bulk benchmarks, a binary of
//! its own so that the production `ledger` links none of it.

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "ledger-bench",
    version,
    about = "Measure a ledger: HTTP load, bulk seeding, relay drain, rebuild"
)]
struct Cli {
    #[command(subcommand)]
    task: loadgen::BenchTask,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Reports go to stdout; logs and progress to stderr.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match loadgen::execute(cli.task).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ledger-bench: {err}");
            ExitCode::FAILURE
        }
    }
}
