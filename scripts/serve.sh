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

exec cargo run --release --locked -p ledger -- serve "$@"
