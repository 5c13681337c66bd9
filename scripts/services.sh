#!/usr/bin/env bash
# shellcheck shell=bash
#
# Make sure the backing services of the ledger are reachable:
#   * PostgreSQL at $DATABASE_URL  (default postgres://postgres@127.0.0.1:5432/ledger)
#   * NATS with JetStream at $NATS_URL (default nats://127.0.0.1:4222)
#
# If a server already answers at the URL it is used as is. Otherwise a private
# instance is started under $REPO/.local/ (git-ignored), listening on exactly
# the host:port of the URL so the URL stays valid. Missing packages
# (postgresql, postgresql-client, nats-server, and the build's: gcc,
# pkg-config, python3-venv, curl, jq) are installed with apt-get.
# The database named in DATABASE_URL is created if missing.
#
# Usage:
#   source scripts/services.sh      # exports DATABASE_URL, NATS_URL,
#                                   # LEDGER_TEST_DATABASE_URL (+ cargo on PATH)
#   bash scripts/services.sh        # same checks; prints `export ...` lines,
#                                   # so `eval "$(bash scripts/services.sh)"` works
#
# When sourced, all the real work runs in a child `bash` with
# `set -euo pipefail`, so the caller's shell options are never changed and a
# failure surfaces as a non-zero status of `source` (exit under `set -e`).
#
# Private instances are left running (they are reused by the next run). Stop:
#   runuser -u postgres -- pg_ctl -D .local/postgres stop   (plain pg_ctl if not root)
#   kill "$(cat .local/nats.pid)"

_svc_log() { printf 'services: %s\n' "$*" >&2; }
_svc_err() { printf 'services: ERROR: %s\n' "$*" >&2; }

# Defaults, derived URLs and the Rust toolchain. Runs in the caller's shell
# when sourced, so it must not rely on errexit and must be `set -u` clean.
_svc_env() {
  export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/ledger}"
  export NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"

  # postgres[ql]://[user[:pass]@]host[:port][/db][?query]
  local re='^(postgres|postgresql)://(([^@/]*)@)?([^:/?@]+)(:([0-9]+))?(/([^?]*))?(\?.*)?$'
  if [[ ! "$DATABASE_URL" =~ $re ]]; then
    _svc_err "cannot parse DATABASE_URL='$DATABASE_URL' (expected postgres://user[:pass]@host[:port]/db)"
    return 1
  fi
  local scheme="${BASH_REMATCH[1]}" userinfo="${BASH_REMATCH[2]}" host="${BASH_REMATCH[4]}"
  local port="${BASH_REMATCH[6]:-5432}" query="${BASH_REMATCH[9]}"
  export LEDGER_TEST_DATABASE_URL="${LEDGER_TEST_DATABASE_URL:-${scheme}://${userinfo}${host}:${port}/postgres${query}}"

  re='^(nats|tls)://([^@/]*@)?([^:/?@]+)(:([0-9]+))?/?$'
  if [[ ! "$NATS_URL" =~ $re ]]; then
    _svc_err "cannot parse NATS_URL='$NATS_URL' (expected nats://host[:port])"
    return 1
  fi

  if ! command -v cargo >/dev/null 2>&1 && [[ -f "${HOME:-/root}/.cargo/env" ]]; then
    # shellcheck disable=SC1091
    . "${HOME:-/root}/.cargo/env"
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    _svc_err "the Rust toolchain (cargo) is not installed / not on PATH and ${HOME:-~}/.cargo/env does not exist."
    _svc_err "install it with rustup (https://rustup.rs) and re-run; it cannot be installed by this script."
    return 1
  fi
  return 0
}

# ---------------------------------------------------------------------------
# Everything below only runs in the child process (set -euo pipefail).
# ---------------------------------------------------------------------------

_svc_tcp_open() { # host port -> 0 if something accepts a TCP connection
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" >/dev/null 2>&1
}

_svc_is_local_host() {
  case "$1" in
    localhost | 127.* | ::1 | 0.0.0.0) return 0 ;;
  esac
  # an address of this machine?
  if command -v hostname >/dev/null 2>&1; then
    local a
    for a in $(hostname -I 2>/dev/null) $(hostname 2>/dev/null); do
      [[ "$a" == "$1" ]] && return 0
    done
  fi
  return 1
}

_SVC_APT_UPDATED=0
_svc_apt_install() { # packages...
  if ! command -v apt-get >/dev/null 2>&1; then
    _svc_err "need to install '$*' but apt-get is not available; install it manually"
    return 1
  fi
  local sudo=()
  if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then sudo=(sudo); else
      _svc_err "need to install '$*' but not root and no sudo; install it manually"
      return 1
    fi
  fi
  # Keep the packages' own service (e.g. Debian's "main" PostgreSQL cluster)
  # from being started by the postinst: we start private instances ourselves.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [[ ! -e "$policy" ]]; then
    "${sudo[@]}" sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy" && created_policy=1
  fi
  local rc=0
  if [[ "$_SVC_APT_UPDATED" == 0 ]]; then
    _svc_log "apt-get update"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq || rc=$?
    _SVC_APT_UPDATED=1
  fi
  if [[ $rc == 0 ]]; then
    _svc_log "apt-get install -y $*"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2 || rc=$?
  fi
  if [[ $created_policy == 1 ]]; then "${sudo[@]}" rm -f "$policy"; fi
  if [[ $rc != 0 ]]; then _svc_err "apt-get install $* failed"; fi
  return "$rc"
}

# Directory holding initdb/pg_ctl/postgres (Debian keeps them off PATH).
_svc_pg_bindir() {
  local d
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    d="$(dirname "$(readlink -f "$(command -v initdb)")")"
    [[ -x "$d/pg_ctl" && -x "$d/postgres" ]] && { echo "$d"; return 0; }
  fi
  # newest installed major version
  d="$(for b in /usr/lib/postgresql/*/bin/initdb; do [[ -x "$b" ]] && dirname "$b"; done | sort -V | tail -n 1)"
  [[ -n "$d" ]] && { echo "$d"; return 0; }
  return 1
}

# Run a command as the OS user that owns the private PostgreSQL instance.
_svc_as_pg() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# 0 = accepting, 1 = up but rejecting (starting), 2 = nothing/not postgres
_svc_pg_ready() { # host port
  local rc=0
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -t 3 -h "$1" -p "$2" >/dev/null 2>&1 || rc=$?
    [[ $rc == 3 ]] && rc=2
    return "$rc"
  fi
  _svc_tcp_open "$1" "$2" && return 0
  return 2
}

_svc_wait_pg() { # host port seconds
  local i
  for ((i = 0; i < $3 * 2; i++)); do
    _svc_pg_ready "$1" "$2" && return 0
    sleep 0.5
  done
  return 1
}

_svc_start_private_pg() { # host port
  local host="$1" port="$2" bindir
  local local_dir="$_SVC_REPO/.local"
  local pgdata="$local_dir/postgres" logfile="$local_dir/postgres.log"

  if ! _svc_is_local_host "$host"; then
    _svc_err "no PostgreSQL answers at $host:$port and that is not a local address; start it or fix DATABASE_URL"
    return 1
  fi
  if _svc_tcp_open "$host" "$port"; then
    _svc_err "something that is not PostgreSQL is listening on $host:$port; free the port or point DATABASE_URL elsewhere"
    return 1
  fi

  if ! bindir="$(_svc_pg_bindir)"; then
    _svc_apt_install postgresql
    bindir="$(_svc_pg_bindir)" || { _svc_err "initdb not found after installing postgresql"; return 1; }
    # A distro service might have been started by the package after all.
    if _svc_wait_pg "$host" "$port" 2; then
      _svc_log "PostgreSQL: using server at $host:$port (started by package install)"
      return 0
    fi
  fi

  local owner=""
  if [[ "$(id -u)" == 0 ]]; then
    owner=postgres
    if ! id postgres >/dev/null 2>&1; then
      _svc_err "OS user 'postgres' does not exist (PostgreSQL refuses to run as root); install the postgresql package"
      return 1
    fi
  fi

  mkdir -p "$local_dir"
  if [[ -n "$owner" ]]; then
    # Every parent of the data dir must be traversable by user postgres.
    local d="$local_dir"
    while [[ "$d" != / && -n "$d" ]]; do
      if ! runuser -u postgres -- test -x "$d"; then
        _svc_log "chmod o+x $d (so user postgres can reach $pgdata)"
        chmod o+x "$d"
      fi
      d="$(dirname "$d")"
    done
    touch "$logfile"
    chown postgres: "$logfile"
  fi

  if [[ ! -s "$pgdata/PG_VERSION" ]]; then
    _svc_log "initdb $pgdata"
    rm -rf "$pgdata"
    mkdir -p "$pgdata"
    [[ -n "$owner" ]] && chown postgres: "$pgdata"
    chmod 700 "$pgdata"
    if ! _svc_as_pg "$bindir/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 --locale=C >>"$logfile" 2>&1; then
      _svc_err "initdb failed; see $logfile"
      tail -n 20 "$logfile" >&2 || true
      return 1
    fi
  fi

  if _svc_as_pg "$bindir/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
    _svc_err "a private PostgreSQL from $pgdata is running but not answering on $host:$port"
    _svc_err "(started with another DATABASE_URL port?) stop it: ${owner:+runuser -u postgres -- }$bindir/pg_ctl -D $pgdata stop"
    return 1
  fi

  # listen on exactly host:port; no unix socket (avoids clashing with / needing
  # /var/run/postgresql); fsync stays on (default).
  local listen="$host"
  [[ "$host" == localhost ]] && listen=127.0.0.1
  _svc_log "starting private PostgreSQL on $host:$port (data $pgdata, log $logfile)"
  if ! _svc_as_pg "$bindir/pg_ctl" -D "$pgdata" -l "$logfile" -w -t 60 \
    -o "-c listen_addresses=$listen -c port=$port -c unix_socket_directories='' -c max_connections=300" start >/dev/null; then
    _svc_err "pg_ctl start failed; last lines of $logfile:"
    tail -n 20 "$logfile" >&2 || true
    return 1
  fi
  if ! _svc_wait_pg "$host" "$port" 30; then
    _svc_err "private PostgreSQL started but does not answer on $host:$port; see $logfile"
    return 1
  fi
  _svc_log "PostgreSQL: started private instance on $host:$port ($pgdata)"
}

_svc_ensure_pg() {
  local re='^(postgres|postgresql)://(([^@/]*)@)?([^:/?@]+)(:([0-9]+))?(/([^?]*))?(\?.*)?$'
  [[ "$DATABASE_URL" =~ $re ]]
  local host="${BASH_REMATCH[4]}" port="${BASH_REMATCH[6]:-5432}" db="${BASH_REMATCH[8]}"
  [[ -n "$db" ]] || db=postgres # libpq default would be the user name; keep it simple

  local rc=0
  _svc_pg_ready "$host" "$port" || rc=$?
  if [[ $rc == 1 ]]; then
    _svc_log "PostgreSQL at $host:$port is starting up; waiting"
    _svc_wait_pg "$host" "$port" 30 && rc=0
  fi
  if [[ $rc == 0 ]]; then
    local pidfile="$_SVC_REPO/.local/postgres/postmaster.pid"
    if [[ -f "$pidfile" ]] && [[ "$(sed -n 4p "$pidfile" 2>/dev/null)" == "$port" ]] &&
      kill -0 "$(head -n 1 "$pidfile")" 2>/dev/null; then
      _svc_log "PostgreSQL: reusing private instance on $host:$port (.local/postgres)"
    else
      _svc_log "PostgreSQL: using existing server at $host:$port"
    fi
  else
    _svc_start_private_pg "$host" "$port"
  fi

  if ! command -v psql >/dev/null 2>&1; then
    _svc_apt_install postgresql-client
  fi

  local exists="" out
  if ! out="$(psql "$LEDGER_TEST_DATABASE_URL" -X -v ON_ERROR_STOP=1 -qtAc 'select 1' 2>&1)"; then
    _svc_err "cannot connect to the maintenance database ($host:$port/postgres): $out"
    return 1
  fi
  if [[ "$db" != postgres ]]; then
    local lit="${db//\'/\'\'}" ident="${db//\"/\"\"}"
    exists="$(psql "$LEDGER_TEST_DATABASE_URL" -X -qtAc "select 1 from pg_database where datname = '$lit'")"
    if [[ "$exists" != 1 ]]; then
      if ! out="$(psql "$LEDGER_TEST_DATABASE_URL" -X -v ON_ERROR_STOP=1 -qc "create database \"$ident\"" 2>&1)"; then
        # lost a race with a concurrent run?
        exists="$(psql "$LEDGER_TEST_DATABASE_URL" -X -qtAc "select 1 from pg_database where datname = '$lit'")"
        if [[ "$exists" != 1 ]]; then
          _svc_err "could not create database $db: $out"
          return 1
        fi
      else
        _svc_log "PostgreSQL: created database $db"
      fi
    fi
  fi
}

_svc_nats_info() { # host port -> prints the server's INFO line
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2" && IFS= read -r -t 2 line <&3 && printf "%s\n" "$line"' _ "$1" "$2" 2>/dev/null
}

_svc_check_nats_js() { # host port what
  local info
  info="$(_svc_nats_info "$1" "$2" || true)"
  if [[ "$info" != INFO* ]]; then
    _svc_err "something is listening on $1:$2 but it does not speak NATS; free the port or fix NATS_URL"
    return 1
  fi
  if [[ "$info" != *'"jetstream":true'* ]]; then
    _svc_err "the NATS server at $1:$2 ($3) does not have JetStream enabled (restart it with -js)"
    return 1
  fi
}

_svc_ensure_nats() {
  local re='^(nats|tls)://([^@/]*@)?([^:/?@]+)(:([0-9]+))?/?$'
  [[ "$NATS_URL" =~ $re ]]
  local host="${BASH_REMATCH[3]}" port="${BASH_REMATCH[5]:-4222}"
  local local_dir="$_SVC_REPO/.local"
  local pidfile="$local_dir/nats.pid" logfile="$local_dir/nats.log"

  # Our private instance, if one is running: its pid and the port it serves.
  local priv_pid="" priv_port=""
  if [[ -f "$pidfile" ]]; then
    priv_pid="$(cat "$pidfile" 2>/dev/null || true)"
    # alive and not a zombie (containers whose pid 1 does not reap children)
    if [[ -n "$priv_pid" ]] && kill -0 "$priv_pid" 2>/dev/null &&
      [[ "$(awk '{print $3}' "/proc/$priv_pid/stat" 2>/dev/null)" != Z ]]; then
      local -a argv=()
      mapfile -d '' -t argv <"/proc/$priv_pid/cmdline" 2>/dev/null || true
      local j
      for ((j = 0; j + 1 < ${#argv[@]}; j++)); do
        [[ "${argv[j]}" == -p ]] && priv_port="${argv[j + 1]}"
      done
    else
      priv_pid=""
    fi
  fi

  if _svc_tcp_open "$host" "$port"; then
    if [[ -n "$priv_pid" && "$priv_port" == "$port" ]]; then
      _svc_check_nats_js "$host" "$port" "private instance"
      _svc_log "NATS: reusing private instance on $host:$port (pid $priv_pid)"
    else
      _svc_check_nats_js "$host" "$port" "existing server"
      _svc_log "NATS: using existing server at $host:$port (JetStream enabled)"
    fi
    return 0
  fi

  if ! _svc_is_local_host "$host"; then
    _svc_err "no NATS answers at $host:$port and that is not a local address; start it or fix NATS_URL"
    return 1
  fi

  if [[ -n "$priv_pid" ]]; then
    _svc_err "a private nats-server (pid $priv_pid, port ${priv_port:-?}) is running from $local_dir but not answering on $host:$port"
    _svc_err "(started with another NATS_URL port?) stop it: kill $priv_pid"
    return 1
  fi

  local bin
  bin="$(command -v nats-server || true)"
  [[ -z "$bin" && -x /usr/sbin/nats-server ]] && bin=/usr/sbin/nats-server
  if [[ -z "$bin" ]]; then
    _svc_apt_install nats-server
    bin="$(command -v nats-server || true)"
    [[ -z "$bin" && -x /usr/sbin/nats-server ]] && bin=/usr/sbin/nats-server
    [[ -n "$bin" ]] || { _svc_err "nats-server not found after installing it"; return 1; }
  fi

  mkdir -p "$local_dir/nats"
  local listen="$host"
  [[ "$host" == localhost ]] && listen=127.0.0.1
  _svc_log "starting private NATS (JetStream) on $host:$port (store $local_dir/nats, log $logfile)"
  setsid nohup "$bin" -a "$listen" -p "$port" -js -sd "$local_dir/nats" \
    -l "$logfile" -P "$pidfile" </dev/null >>"$local_dir/nats.out" 2>&1 &
  local pid=$!
  local i
  for ((i = 0; i < 40; i++)); do
    if _svc_tcp_open "$host" "$port"; then
      _svc_check_nats_js "$host" "$port" "private instance"
      _svc_log "NATS: started private instance on $host:$port (pid $pid)"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.5
  done
  _svc_err "private nats-server did not come up on $host:$port within 20s; see $logfile / $local_dir/nats.out"
  tail -n 20 "$logfile" "$local_dir/nats.out" >&2 2>/dev/null || true
  return 1
}

# What building and testing need besides the services, installed with
# apt-get when missing: a C compiler and pkg-config (the `ring` and
# `libmimalloc-sys` crates compile C), python3-venv (the fuzz run's tools),
# curl and jq (the scripts and the README walkthrough); with
# LEDGER_TEST_TOOLS=1 (scripts/test.sh) also promtool (Debian's
# `prometheus` package; its service is not started), whose absence only
# skips the alert-rule checks, with a printed reason.
_svc_ensure_tools() {
  local missing=()
  command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
  command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  command -v jq >/dev/null 2>&1 || missing+=(jq)
  if ((${#missing[@]})); then
    _svc_log "installing what the build and the tests need: ${missing[*]}"
    _svc_apt_install "${missing[@]}"
  fi
  if [[ "${LEDGER_TEST_TOOLS:-0}" == 1 ]] && ! command -v promtool >/dev/null 2>&1; then
    _svc_log "installing promtool (package prometheus) for the alert-rule checks"
    _svc_apt_install prometheus ||
      _svc_log "WARNING: promtool could not be installed; the alert-rule checks will be skipped"
  fi
  return 0
}

_svc_child() {
  set -euo pipefail
  _SVC_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  _svc_env
  _svc_ensure_tools
  _svc_ensure_pg
  _svc_ensure_nats
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  # Executed directly (also how the sourced variant does the real work).
  _svc_child
  if [[ "${1:-}" != --no-print ]]; then
    printf 'export DATABASE_URL=%q\nexport NATS_URL=%q\nexport LEDGER_TEST_DATABASE_URL=%q\n' \
      "$DATABASE_URL" "$NATS_URL" "$LEDGER_TEST_DATABASE_URL"
  fi
  exit 0
fi

# Sourced: export the variables in the caller's shell, do the work in a child.
_svc_env || return 1
bash "${BASH_SOURCE[0]}" --no-print || return 1
unset -f _svc_log _svc_err _svc_env _svc_tcp_open _svc_is_local_host _svc_apt_install _svc_ensure_tools \
  _svc_pg_bindir _svc_as_pg _svc_pg_ready _svc_wait_pg _svc_start_private_pg _svc_ensure_pg \
  _svc_nats_info _svc_check_nats_js _svc_ensure_nats _svc_child
unset _SVC_APT_UPDATED
