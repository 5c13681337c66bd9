//! `ledger audit verify`: the log's hash chain and seals, checked against
//! the public key and against copies kept outside the database (an anchor
//! file, the seal stream). It refuses to run without a public key unless
//! told `--no-signatures`: without the key, a log rewritten with re-made
//! seals passes every other check.

use std::path::PathBuf;
use std::time::Duration;

use audit::AnchorFile;
use clap::Args;

use crate::settings::DatabaseArgs;
use crate::LedgerError;

#[derive(Args, Clone, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// First position to check.
    #[arg(long)]
    pub from: Option<i64>,
    /// Last position to check.
    #[arg(long)]
    pub to: Option<i64>,
    /// Ed25519 public key (64 hex digits) that checks the seals'
    /// signatures. Required, unless `--no-signatures`.
    #[arg(long, env = "LEDGER_AUDIT_PUBLIC_KEY")]
    pub public_key: Option<String>,
    /// Check without the public key: seals re-made by anyone with write
    /// access to the database then pass.
    #[arg(long, conflicts_with = "public_key")]
    pub no_signatures: bool,
    /// An anchor saved by an earlier `--save-anchor` (or one seal of
    /// `GET /v1/audit/seals`): the log must still hold that seal and event.
    #[arg(long)]
    pub anchor: Option<PathBuf>,
    /// After a successful verification, save the newest seal and the last
    /// event here, for the next `--anchor`.
    #[arg(long)]
    pub save_anchor: Option<PathBuf>,
    /// An earlier `ledger events export` (NDJSON, with `hash`): names the
    /// changed event when a seal's digest no longer matches.
    #[arg(long)]
    pub hashes: Option<PathBuf>,
    /// NATS server: when given, the log must also agree with the newest
    /// seal of the seal stream and the event stream's last event.
    #[arg(long, env = "NATS_URL")]
    pub nats_url: Option<String>,
    /// The ledger's JetStream stream: its seals are on `<stream>_SEALS`.
    #[arg(long, env = "LEDGER_STREAM", default_value = "LEDGER")]
    pub stream: String,
    /// One tenant's verification (its slug): every chain and seal is still
    /// checked (a seal covers all tenants' events), but the report counts
    /// that tenant's events only. Without it, the whole log.
    #[arg(long)]
    pub tenant: Option<String>,
}

const NO_SIGNATURES_WARNING: &str = "\
WARNING: --no-signatures: seal signatures are NOT checked.
WARNING: a log rewritten by anyone with write access to the database,
WARNING: its hashes and seals recomputed, passes this verification.";

/// Runs the verification; prints the report as JSON on stdout.
pub async fn verify(args: VerifyArgs) -> Result<(), LedgerError> {
    let key = match (&args.public_key, args.no_signatures) {
        (Some(hex), _) => Some(
            audit::parse_verifying_key(hex)
                .map_err(|e| LedgerError::Config(format!("public key: {e}")))?,
        ),
        (None, true) => {
            eprintln!("{NO_SIGNATURES_WARNING}");
            None
        }
        (None, false) => {
            return Err(LedgerError::Config(
                "no public key: pass --public-key (or LEDGER_AUDIT_PUBLIC_KEY); \
                 without it a rewritten log passes (--no-signatures checks anyway)"
                    .into(),
            ))
        }
    };
    let mut anchors = audit::Anchors::default();
    if let Some(path) = &args.anchor {
        let bytes = std::fs::read(path)?;
        let file = AnchorFile::parse(&bytes)
            .and_then(|file| file.anchors())
            .map_err(|e| LedgerError::Config(format!("{}: {e}", path.display())))?;
        anchors.seals.extend(file.seals);
        anchors.events.extend(file.events);
    }
    if let Some(path) = &args.hashes {
        anchors.hashes = read_hashes(path)?;
    }
    if let Some(url) = &args.nats_url {
        let nats = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(crate::nats_servers(url)?)
            .await
            .map_err(|e| LedgerError::Config(format!("NATS: {e}")))?;
        let kept = read_api::audit::stream_anchors(&nats, &args.stream).await?;
        anchors.seals.extend(kept.seals);
        anchors.events.extend(kept.events);
    }
    let pool = crate::connect(&args.database.database_url, 2).await?;
    let report = audit::verify_anchored_in(
        &pool,
        key.as_ref(),
        args.from,
        args.to,
        &anchors,
        args.tenant.as_deref(),
    )
    .await?;
    println!(
        "{}",
        serde_json::to_string_pretty(&report).map_err(|e| LedgerError::Config(e.to_string()))?
    );
    if !report.ok {
        return Err(LedgerError::Audit("the log does not verify".into()));
    }
    if key.is_none() {
        eprintln!("{NO_SIGNATURES_WARNING}");
    }
    if let Some(path) = &args.save_anchor {
        let anchor = AnchorFile::take(&pool).await?;
        let json =
            serde_json::to_vec_pretty(&anchor).map_err(|e| LedgerError::Config(e.to_string()))?;
        std::fs::write(path, json)?;
        eprintln!("anchor saved to {}", path.display());
    }
    Ok(())
}

/// `position → hash` from an NDJSON export.
fn read_hashes(
    path: &std::path::Path,
) -> Result<std::collections::BTreeMap<i64, Vec<u8>>, LedgerError> {
    let bad =
        |line: usize, why: &str| LedgerError::Config(format!("{}:{line}: {why}", path.display()));
    let text = std::fs::read_to_string(path)?;
    let mut hashes = std::collections::BTreeMap::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let event: serde_json::Value =
            serde_json::from_str(line).map_err(|e| bad(n + 1, &e.to_string()))?;
        let position = event["position"]
            .as_i64()
            .ok_or_else(|| bad(n + 1, "no position"))?;
        let hash = event["hash"]
            .as_str()
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(|| bad(n + 1, "no hex hash"))?;
        hashes.insert(position, hash);
    }
    Ok(hashes)
}
