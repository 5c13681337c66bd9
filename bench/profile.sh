#!/usr/bin/env bash
# Where the time goes under one load: the README's "What limits it".
#
#   bench/profile.sh [--preload "SCENARIO ..."] [--perf] [--statements PG_LOG] SCENARIO [ledger-bench run args]
#
# Starts `ledger serve` (release build, as bench/suite.sh) on a scratch
# database, runs the preload scenarios (20 s each, to give the read models
# some data), then SCENARIO for 20 s, and halfway through it prints:
#   - the CPU each program used over 10 s (bench/cpu_split.py);
#   - the database's transactions and rows over those 10 s (pg_stat_database);
#   - with --perf, a 5 s `perf record -g` of the server (.local/perf-SCENARIO.data);
#   - with --statements PG_LOG, every statement of the run counted by kind
#     (log_statement = all on the scratch database; PG_LOG is the server's
#     log file, e.g. /var/log/postgresql/postgresql-15-main.log).
# The server, the database and its stream are removed at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

preload=""
perf=false
pg_log=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --preload) preload=$2; shift 2 ;;
    --perf) perf=true; shift ;;
    --statements) pg_log=$2; shift 2 ;;
    *) break ;;
  esac
done
[[ $# -ge 1 ]] || { sed -n '2,16p' "$0" >&2; exit 2; }
scenario=$1; shift

# shellcheck source=scripts/services.sh
source scripts/services.sh
export PGSSLMODE=${PGSSLMODE:-disable}
export LEDGER_JWT_SECRET=bench-secret-0123456789 LEDGER_WEBHOOK_SECRET=whsec_bench
ledger=${LEDGER_BIN:-target/release/ledger}
bench=${LEDGER_BENCH_BIN:-target/release/ledger-bench}
admin_url="$LEDGER_TEST_DATABASE_URL"
db=ledger_bench_profile
port=18492
url="http://127.0.0.1:$port"
mkdir -p .local

psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
if [[ -n "$pg_log" ]]; then
  psql "$admin_url" -qc "ALTER DATABASE $db SET log_statement = 'all'"
  log_start=$(wc -l <"$pg_log")
fi
DATABASE_URL="${DATABASE_URL%/*}/$db" LEDGER_STREAM="BENCH_$db" LEDGER_HTTP_ADDR="127.0.0.1:$port" \
LEDGER_RATE_LIMIT_PER_PRINCIPAL=1000000 LEDGER_RATE_LIMIT_PER_PRINCIPAL_BURST=1000000 \
LEDGER_RATE_LIMIT_PER_IP=1000000 LEDGER_RATE_LIMIT_PER_IP_BURST=1000000 RUST_LOG=warn \
  "$ledger" serve >".local/profile-serve.log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  "$bench" drop-streams "BENCH_$db" >/dev/null 2>&1 || true
  psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT
for _ in $(seq 1 150); do
  curl -sf "$url/health/ready" >/dev/null && break
  sleep 0.2
done

for pre in $preload; do
  echo "profile: preload $pre" >&2
  "$bench" run --url "$url" --scenario "$pre" --duration 20s >/dev/null
done
echo "profile: $scenario $*" >&2
"$bench" run --url "$url" --scenario "$scenario" --duration 20s "$@" >".local/profile-$scenario.txt" &
load=$!
sleep 9
counters="SELECT xact_commit, tup_inserted, tup_updated, tup_deleted, tup_fetched
            FROM pg_stat_database WHERE datname = '$db'"
before=$(psql "$admin_url" -Atc "$counters")
python3 bench/cpu_split.py 10
after=$(psql "$admin_url" -Atc "$counters")
python3 - "$before" "$after" <<'EOF'
import sys
names = ["transactions", "rows inserted", "rows updated", "rows deleted", "rows fetched"]
a, b = ([int(x) for x in s.split("|")] for s in sys.argv[1:3])
print("over those 10 s: " + ", ".join(f"{(y - x) / 10:,.0f} {n}/s" for n, x, y in zip(names, a, b)))
EOF
if $perf; then
  perf record -F 499 -g -p "$server" -o ".local/perf-$scenario.data" -- sleep 5 >/dev/null 2>&1
  echo "profile: perf report -i .local/perf-$scenario.data --no-children --sort sym" >&2
fi
wait "$load"
grep -E "req/s|^[a-z_]+ +[0-9]|lag|successful" ".local/profile-$scenario.txt"
if [[ -n "$pg_log" ]]; then
  tail -n +"$((log_start + 1))" "$pg_log" >".local/profile-statements.log"
  python3 bench/statement_census.py ".local/profile-statements.log" 30
fi
