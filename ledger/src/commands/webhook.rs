//! `ledger webhook sign`: what the payment provider would send, for trying
//! the ledger by hand (README walkthrough) without a provider account.

use std::io::Read;

use clap::{Args, Subcommand};

use crate::LedgerError;

#[derive(Subcommand)]
pub enum WebhookTask {
    /// Print the `Stripe-Signature` header value (`t=<unix>,v1=<hex>`) of
    /// the body read from standard input (or `--body`), signed with the
    /// webhook secret at the current time, as the provider signs it.
    Sign(SignArgs),
}

#[derive(Args)]
pub struct SignArgs {
    /// The webhook signing secret (the one `serve` checks against).
    #[arg(long, env = "LEDGER_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: String,
    /// The exact body to sign; read from standard input when absent. Send
    /// these very bytes: the signature covers them as they are.
    #[arg(long)]
    body: Option<String>,
    /// Unix time to sign at (default: now). The ledger refuses a signature
    /// more than 300 s away from its clock.
    #[arg(long)]
    timestamp: Option<i64>,
}

pub fn execute(task: WebhookTask) -> Result<(), LedgerError> {
    match task {
        WebhookTask::Sign(args) => {
            if args.webhook_secret.is_empty() {
                return Err(LedgerError::Config(
                    "LEDGER_WEBHOOK_SECRET (or --webhook-secret) is empty".into(),
                ));
            }
            let body = match args.body {
                Some(body) => body.into_bytes(),
                None => {
                    let mut body = Vec::new();
                    std::io::stdin().read_to_end(&mut body)?;
                    body
                }
            };
            let timestamp = args
                .timestamp
                .unwrap_or_else(|| chrono::Utc::now().timestamp());
            println!(
                "{}",
                command_api::routes::webhooks::sign(&body, &args.webhook_secret, timestamp)
            );
            Ok(())
        }
    }
}
