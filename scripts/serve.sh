#!/usr/bin/env bash
# Run the ledger service locally (dev). Ensures PostgreSQL + NATS JetStream
# (see scripts/services.sh), then runs `ledger serve`, which applies the
# database migrations at start. Extra arguments go to `ledger serve`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/services.sh
source scripts/services.sh

if [[ -z "${LEDGER_JWT_SECRET:-}" ]]; then
  export LEDGER_JWT_SECRET=dev-secret-change-me
  echo "serve: WARNING: LEDGER_JWT_SECRET not set; using the insecure dev default '$LEDGER_JWT_SECRET'" >&2
fi
export LEDGER_WEBHOOK_SECRET="${LEDGER_WEBHOOK_SECRET:-whsec_dev}"
if [[ -z "${LEDGER_AUDIT_SIGNING_KEY:-}" ]]; then
  # The publicly known development key (read_api::audit::dev_signing_key):
  # seals are made and checked, but prove nothing. `ledger audit keygen`
  # makes a real one.
  export LEDGER_AUDIT_SIGNING_KEY=7fda9afb94b5b5657718e5a1f025c63662feca246ff34ee5311eb249dd53d9ca
  echo "serve: WARNING: LEDGER_AUDIT_SIGNING_KEY not set; sealing with the public dev key" >&2
fi

# Local receivers of outgoing webhooks (development only).
export LEDGER_WEBHOOKS_ALLOW_LOOPBACK="${LEDGER_WEBHOOKS_ALLOW_LOOPBACK:-true}"
echo "serve: the dashboard is at http://${LEDGER_HTTP_ADDR:-127.0.0.1:8080}/dashboard; paste a token from 'cargo run -p ledger -- token --role admin --sub ops' (or '--role vendor --sub me --vendor-id <id>') run with the same LEDGER_JWT_SECRET" >&2

exec cargo run --release --locked -p ledger -- serve "$@"
