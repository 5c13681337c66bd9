#!/usr/bin/env bash
# The dashboard's browser test: installs Debian's chromium and playwright-core
# (from package-lock.json) when they are absent, then runs the test against
# the ledger at $LEDGER_URL (see dashboard.test.mjs for the environment).
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v "${CHROMIUM:-chromium}" >/dev/null 2>&1; then
  echo "installing chromium (Debian package)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
if [ ! -d node_modules/playwright-core ]; then
  npm ci --no-audit --no-fund >&2
fi
CHROMIUM="$(command -v "${CHROMIUM:-chromium}")" exec node dashboard.test.mjs
