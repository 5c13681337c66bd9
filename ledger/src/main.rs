//! `ledger`: the command-line entry point.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use command_api::{Authenticator, Role};
use ledger::commands::events::ExportArgs;
use ledger::settings::{DatabaseArgs, ServeArgs};
use ledger::{LedgerError, Parts};
use uuid::Uuid;

#[derive(Parser)]
#[command(
    name = "ledger",
    version,
    about = "Event-sourced order and rental ledger"
)]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Run every part in one process (applies migrations first).
    Serve(ServeArgs),
    /// Run the command routes, payment webhook, hold sweeper and policies.
    CommandApi(ServeArgs),
    /// Run the query routes.
    ReadApi(ServeArgs),
    /// Run the relay from the events table to JetStream.
    Relay(ServeArgs),
    /// Run the projectors that build the read models.
    Project(ServeArgs),
    /// Apply pending database migrations and exit (run as the owner role).
    Migrate(MigrateArgs),
    /// Print a bearer token for development.
    Token(TokenArgs),
    /// Read the event log.
    #[command(subcommand)]
    Events(EventsTask),
    /// Export a vendor's earnings entries.
    #[command(subcommand)]
    Earnings(EarningsTask),
    /// Rebuild read models or show how far they are.
    #[command(subcommand)]
    Projections(ProjectionsTask),
    /// Recover the stream after a database restore (`stream reset`).
    #[command(subcommand)]
    Stream(ledger::commands::stream::StreamTask),
    /// Verify that the log was never altered; make signing keys.
    #[command(subcommand)]
    Audit(AuditTask),
    /// Print the OpenAPI document (what `GET /openapi.json` serves).
    Openapi,
    /// Print a shell completion script: `ledger completions bash >
    /// /etc/bash_completion.d/ledger` (zsh: a `_ledger` file on `$fpath`;
    /// fish: `~/.config/fish/completions/ledger.fish`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Sign a payment webhook body as the provider would (trying by hand).
    #[command(subcommand)]
    Webhook(ledger::commands::webhook::WebhookTask),
}

#[derive(Subcommand)]
enum AuditTask {
    /// Check every event's hash chain and every sealed checkpoint; prints the
    /// report as JSON and exits non-zero at the first bad position.
    Verify(Box<ledger::commands::audit::VerifyArgs>),
    /// Print a new Ed25519 signing key and its public key.
    Keygen,
}

#[derive(Subcommand)]
enum EventsTask {
    /// Export events as NDJSON or CSV.
    Export {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        export: ExportArgs,
    },
}

#[derive(Subcommand)]
enum EarningsTask {
    /// Write a vendor's earnings entries as CSV (the columns of
    /// `GET /v1/vendors/{id}/earnings/entries` with `Accept: text/csv`).
    Export {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        export: ledger::commands::earnings::EarningsExportArgs,
    },
}

#[derive(Subcommand)]
enum ProjectionsTask {
    /// Rebuild read models from the events table and swap them in.
    Rebuild {
        #[command(flatten)]
        database: DatabaseArgs,
        /// Read models to rebuild (availability, orders, ledger, analytics).
        names: Vec<String>,
        /// Rebuild every read model.
        #[arg(long, conflicts_with = "names")]
        all: bool,
        /// JetStream stream whose relay position the swap reads.
        #[arg(long, env = "LEDGER_STREAM", default_value = "LEDGER")]
        stream: String,
    },
    /// Show each read model's position and lag.
    Status {
        #[command(flatten)]
        database: DatabaseArgs,
        /// JetStream stream whose relay position is shown.
        #[arg(long, env = "LEDGER_STREAM", default_value = "LEDGER")]
        stream: String,
    },
}

#[derive(clap::Args)]
struct MigrateArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The application role the running parts connect as: granted what they
    /// need, refused UPDATE, DELETE and TRUNCATE on the log and the seals.
    #[arg(long, env = "LEDGER_DB_APP_ROLE")]
    app_role: Option<String>,
}

#[derive(clap::Args)]
struct TokenArgs {
    /// customer, vendor, admin, analyst, auditor or platform_admin.
    #[arg(long)]
    role: Role,
    /// The tenant's slug (absent: the default tenant; a platform_admin
    /// token has none).
    #[arg(long)]
    tenant: Option<String>,
    /// The token's subject.
    #[arg(long)]
    sub: String,
    /// The vendor a vendor token acts for.
    #[arg(long)]
    vendor_id: Option<Uuid>,
    /// Lifetime (`1h`, `30m`).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: Duration,
    /// HS256 secret to sign with: the server's (at least 8 characters).
    #[arg(long, env = "LEDGER_JWT_SECRET", hide_env_values = true)]
    jwt_secret: String,
}

/// The command line, with each long-running subcommand's help showing only
/// the flags it uses ([`ledger::settings::flags_of`]).
fn command() -> clap::Command {
    use clap::CommandFactory;
    let mut command = Cli::command();
    for name in ["command-api", "read-api", "relay", "project"] {
        let Some(flags) = ledger::settings::flags_of(name) else {
            continue;
        };
        command = command.mut_subcommand(name, |sub| {
            let unused: Vec<String> = sub
                .get_arguments()
                .map(|a| a.get_id().as_str().to_owned())
                .filter(|id| !flags.contains(&id.as_str()) && id != "help")
                .collect();
            unused
                .iter()
                .fold(sub, |sub, id| sub.mut_arg(id, |a| a.hide(true)))
        });
    }
    command
}

fn parse() -> Cli {
    use clap::FromArgMatches;
    Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit())
}

/// The service allocates and frees many small buffers per request (JSON,
/// SQL rows, HTTP); glibc's malloc took a quarter of its CPU time under load.
/// Built without transparent huge pages (`no_thp`): with them each
/// connection's few KiB of buffers grew the resident set by whole 2 MiB
/// pages (10,000 open connections: 24 KiB each instead of 12 KiB).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = parse();
    let result = match cli.command {
        Task::Serve(args) => serve(args, Parts::ALL).await,
        Task::CommandApi(args) => {
            serve(
                args,
                Parts {
                    command_api: true,
                    ..Parts::NONE
                },
            )
            .await
        }
        Task::ReadApi(args) => {
            serve(
                args,
                Parts {
                    read_api: true,
                    ..Parts::NONE
                },
            )
            .await
        }
        Task::Relay(args) => {
            serve(
                args,
                Parts {
                    relay: true,
                    ..Parts::NONE
                },
            )
            .await
        }
        Task::Project(args) => {
            serve(
                args,
                Parts {
                    projectors: true,
                    ..Parts::NONE
                },
            )
            .await
        }
        Task::Migrate(args) => migrate(args).await,
        Task::Token(args) => token(args),
        Task::Events(EventsTask::Export { database, export }) => {
            export_events(database, export).await
        }
        Task::Earnings(EarningsTask::Export { database, export }) => {
            export_earnings(database, export).await
        }
        Task::Projections(ProjectionsTask::Rebuild {
            database,
            names,
            all,
            stream,
        }) => rebuild(database, names, all, stream).await,
        Task::Stream(task) => ledger::commands::stream::execute(task).await,
        Task::Completions { shell } => {
            // Into memory first: clap_complete panics on a failed write (a
            // closed pipe); this way it is an ordinary error.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command(), "ledger", &mut script);
            std::io::Write::write_all(&mut std::io::stdout(), &script).map_err(LedgerError::Io)
        }
        Task::Openapi => serde_json::to_string_pretty(&ledger::openapi::document())
            .map(|doc| println!("{doc}"))
            .map_err(|e| LedgerError::Io(e.into())),
        Task::Webhook(task) => ledger::commands::webhook::execute(task),
        Task::Audit(AuditTask::Verify(args)) => ledger::commands::audit::verify(*args).await,
        Task::Audit(AuditTask::Keygen) => {
            let key = audit::generate_signing_key();
            println!("LEDGER_AUDIT_SIGNING_KEY={}", audit::signing_key_hex(&key));
            println!(
                "LEDGER_AUDIT_PUBLIC_KEY={}",
                audit::verifying_key_hex(&key.verifying_key())
            );
            Ok(())
        }
        Task::Projections(ProjectionsTask::Status { database, stream }) => {
            match ledger::connect(&database.database_url, 2).await {
                Ok(pool) => ledger::commands::projections::status(&pool, &stream).await,
                Err(err) => Err(err),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ledger: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs, parts: Parts) -> Result<(), LedgerError> {
    // First: from here on SIGTERM and Ctrl-C drain (see shutdown_signal).
    let shutdown = shutdown_signal();
    ledger::telemetry::init(args.log_pretty);
    args.validate(parts).map_err(LedgerError::Config)?;
    ledger_http::auth::set_leeway_secs(args.jwt_leeway.as_secs());
    let pool = ledger::connect_with_statement_timeout(
        &args.database.database_url,
        args.database.db_pool_size,
        args.db_statement_timeout,
    )
    .await?;
    ledger::migrate(&pool).await?;
    let listener = if parts.command_api || parts.read_api {
        let listener = tokio::net::TcpListener::bind(args.http_addr)
            .await
            .map_err(|source| LedgerError::Listen {
                addr: args.http_addr,
                source,
            })?;
        tracing::info!(addr = %listener.local_addr()?, ?parts, "ledger serving");
        Some(listener)
    } else {
        tracing::info!(?parts, "ledger running");
        None
    };
    ledger::serve(listener, pool, args.server_config(parts), shutdown).await?;
    tracing::info!("ledger stopped");
    Ok(())
}

async fn migrate(args: MigrateArgs) -> Result<(), LedgerError> {
    let pool = ledger::connect(&args.database.database_url, 2).await?;
    ledger::migrate(&pool).await?;
    println!("migrations applied");
    if let Some(role) = &args.app_role {
        audit::privileges::grant_application_role(&pool, role)
            .await
            .map_err(|e| LedgerError::Config(format!("granting {role}: {e}")))?;
        println!("application role {role} granted (no UPDATE, DELETE, TRUNCATE on events and audit_seals)");
    }
    Ok(())
}

async fn export_events(database: DatabaseArgs, export: ExportArgs) -> Result<(), LedgerError> {
    let pool = ledger::connect(&database.database_url, 2).await?;
    let written = ledger::commands::events::export(&pool, &export).await?;
    eprintln!("exported {written} events");
    Ok(())
}

async fn export_earnings(
    database: DatabaseArgs,
    export: ledger::commands::earnings::EarningsExportArgs,
) -> Result<(), LedgerError> {
    let pool = ledger::connect(&database.database_url, 2).await?;
    let written = ledger::commands::earnings::export(&pool, &export).await?;
    eprintln!("exported {written} earnings entries");
    Ok(())
}

async fn rebuild(
    database: DatabaseArgs,
    names: Vec<String>,
    all: bool,
    stream: String,
) -> Result<(), LedgerError> {
    if names.is_empty() && !all {
        return Err(LedgerError::Config(
            "name the read models to rebuild, or pass --all".into(),
        ));
    }
    // Two connections per model rebuilt at once (a swap reads the relay's
    // position while it holds its transaction).
    let pool = ledger::connect(&database.database_url, 10).await?;
    ledger::migrate(&pool).await?;
    ledger::commands::projections::rebuild(&pool, &stream, &names).await
}

fn token(args: TokenArgs) -> Result<(), LedgerError> {
    ledger::settings::check_jwt_secret(&args.jwt_secret).map_err(LedgerError::Config)?;
    if args.role == Role::Vendor && args.vendor_id.is_none() {
        return Err(LedgerError::Config(
            "a vendor token needs --vendor-id".into(),
        ));
    }
    if let Some(tenant) = &args.tenant {
        if !ledger_http::is_tenant_slug(tenant) {
            return Err(LedgerError::Config(format!(
                "--tenant `{tenant}` is not a tenant slug (a-z, 0-9, '-')"
            )));
        }
        if args.role == Role::PlatformAdmin {
            return Err(LedgerError::Config(
                "a platform_admin token carries no tenant".into(),
            ));
        }
    }
    let token = Authenticator::new(&args.jwt_secret)
        .issue_in(
            args.tenant.as_deref(),
            &args.sub,
            args.role,
            args.vendor_id,
            args.ttl,
        )
        .map_err(|e| LedgerError::Config(e.to_string()))?;
    println!("{token}");
    Ok(())
}

/// Resolves on the first SIGTERM or Ctrl-C (SIGINT); from then on, a
/// second one ends the process at once, without waiting for the drain
/// (exit status 128 + the signal's number, as a shell reports a kill).
/// Both listeners exist before the first signal, so a second one that
/// follows at once is not missed.
///
/// The listeners are installed when this is called, not when the future is
/// first polled: a signal arriving while the process still starts its
/// parts is then a drain, not the default action (killed by the signal).
#[cfg(unix)]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let listeners = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move { drain_on_signals(listeners).await }
}

#[cfg(unix)]
async fn drain_on_signals(
    listeners: (
        std::io::Result<tokio::signal::unix::Signal>,
        std::io::Result<tokio::signal::unix::Signal>,
    ),
) {
    let (mut terminate, mut interrupt) = match listeners {
        (Ok(terminate), Ok(interrupt)) => (terminate, interrupt),
        (Err(err), _) | (_, Err(err)) => {
            tracing::error!(error = %err, "cannot listen for SIGTERM and SIGINT");
            return std::future::pending().await;
        }
    };
    async fn next(
        terminate: &mut tokio::signal::unix::Signal,
        interrupt: &mut tokio::signal::unix::Signal,
    ) -> (&'static str, i32) {
        tokio::select! {
            _ = terminate.recv() => ("SIGTERM", 15),
            _ = interrupt.recv() => ("SIGINT", 2),
        }
    }
    let (first, _) = next(&mut terminate, &mut interrupt).await;
    tracing::info!(signal = first, "shutdown signal received; draining");
    tokio::spawn(async move {
        let (second, number) = next(&mut terminate, &mut interrupt).await;
        tracing::error!(
            signal = second,
            "second shutdown signal: exiting at once, without finishing the drain"
        );
        std::process::exit(128 + number);
    });
}

/// Resolves on Ctrl-C; a second one exits at once.
#[cfg(not(unix))]
async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutdown signal received; draining");
    tokio::spawn(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::error!("second shutdown signal: exiting at once");
        std::process::exit(130);
    });
}

#[cfg(test)]
mod tests {
    fn all(command: &clap::Command) -> Vec<&clap::Command> {
        let mut found = vec![command];
        for sub in command.get_subcommands() {
            found.extend(all(sub));
        }
        found
    }

    #[test]
    fn every_flag_of_every_subcommand_is_described() {
        let command = super::command();
        let mut undescribed = Vec::new();
        for sub in all(&command) {
            for arg in sub.get_arguments() {
                if arg.get_id() == "help" || arg.get_id() == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    undescribed.push(format!("{} --{}", sub.get_name(), arg.get_id()));
                }
            }
        }
        assert!(undescribed.is_empty(), "no description: {undescribed:?}");
    }

    #[test]
    fn completions_cover_the_subcommands_in_each_shell() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut super::command(), "ledger", &mut script);
            let script = String::from_utf8(script).expect("UTF-8");
            for word in ["serve", "projections", "webhook", "completions", "tax-rate"] {
                assert!(script.contains(word), "{shell}: {word} missing");
            }
        }
    }

    #[test]
    fn part_subcommands_show_only_their_flags() {
        let command = super::command();
        let shown = |name: &str| -> Vec<String> {
            let sub = command
                .find_subcommand(name)
                .unwrap_or_else(|| panic!("{name}"));
            sub.get_arguments()
                .filter(|a| !a.is_hide_set())
                .map(|a| a.get_id().as_str().to_owned())
                .collect()
        };
        let all_serve = shown("serve");
        for name in ["command-api", "read-api", "relay", "project"] {
            let flags = ledger::settings::flags_of(name).expect("a part");
            for flag in flags {
                assert!(
                    all_serve.iter().any(|f| f == flag),
                    "{name}: no flag {flag}"
                );
            }
            let visible = shown(name);
            assert!(visible.len() < all_serve.len(), "{name}: {visible:?}");
        }
        assert!(!shown("relay").contains(&"http_addr".to_owned()));
        assert!(!shown("project").contains(&"jwt_secret".to_owned()));
        assert!(!shown("read-api").contains(&"webhook_secret".to_owned()));
        assert!(shown("command-api").contains(&"tax_rate".to_owned()));
    }
}
