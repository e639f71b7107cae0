#!/usr/bin/env bash
# Makes sure the services crier needs are up on this machine: PostgreSQL 15+ with
# PostGIS 3, and Redis 7. Uses them if they answer, starts them if installed but
# stopped, installs them from Debian's packages if missing, then creates crier's
# database with PostGIS. Point CRIER_DATABASE_URL / CRIER_REDIS_URL at your own
# servers to skip the local set-up of either.
set -euo pipefail

: "${CRIER_DATABASE_URL:=postgres://postgres@127.0.0.1:5432/crier?sslmode=disable}"
: "${CRIER_REDIS_URL:=redis://127.0.0.1:6379/0}"

log() { printf 'services: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root for: $*"; fi
}

apt_updated=""
apt_install() {
  [ -n "$apt_updated" ] || { log "apt-get update"; as_root apt-get update -qq; apt_updated=1; }
  log "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Parse the database URL into host, port, user and name; the maintenance
# database "postgres" is used to create crier's own.
db_url_part() { python3 - "$CRIER_DATABASE_URL" "$1" <<'PY' 2>/dev/null || true
import sys, urllib.parse as u
p = u.urlparse(sys.argv[1]); part = sys.argv[2]
print({"host": p.hostname or "127.0.0.1", "port": p.port or 5432, "user": p.username or "postgres",
       "db": (p.path or "/crier").lstrip("/") or "crier"}[part])
PY
}
pg_host=$(db_url_part host); pg_port=$(db_url_part port); pg_user=$(db_url_part user); pg_db=$(db_url_part db)
[ -n "$pg_host" ] || { pg_host=127.0.0.1; pg_port=5432; pg_user=postgres; pg_db=crier; }
is_local() { case "$1" in 127.*|localhost|::1|"") return 0;; *) return 1;; esac; }

psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -h "$pg_host" -p "$pg_port" -U "$pg_user" -d postgres "$@"; }

ensure_postgres() {
  command -v psql >/dev/null || apt_install postgresql-client
  if ! pg_isready -q -h "$pg_host" -p "$pg_port" 2>/dev/null; then
    is_local "$pg_host" || die "PostgreSQL at $pg_host:$pg_port does not answer"
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
      apt_install postgresql postgresql-contrib
    fi
    local ver; ver=$(ls /etc/postgresql | sort -n | tail -n 1)
    log "starting PostgreSQL $ver"
    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
    for _ in $(seq 1 50); do pg_isready -q -h "$pg_host" -p "$pg_port" && break; sleep 0.2; done
    pg_isready -q -h "$pg_host" -p "$pg_port" || die "PostgreSQL did not start"
  fi
  local server_ver; server_ver=$(psql_admin -tAc "show server_version_num")
  [ "$server_ver" -ge 150000 ] || die "PostgreSQL 15+ needed, found $server_ver"
  if [ -z "$(psql_admin -tAc "select 1 from pg_available_extensions where name='postgis'")" ]; then
    is_local "$pg_host" || die "PostGIS is not installed on $pg_host"
    local major=$((server_ver / 10000))
    apt_install "postgresql-$major-postgis-3"
  fi
  if [ -z "$(psql_admin -tAc "select 1 from pg_database where datname='$pg_db'")" ]; then
    log "creating database $pg_db"
    psql_admin -c "create database \"$pg_db\""
  fi
  psql -X -q -v ON_ERROR_STOP=1 -h "$pg_host" -p "$pg_port" -U "$pg_user" -d "$pg_db" \
    -c "create extension if not exists postgis" 2>&1 | grep -v 'already exists' || true
  ensure_connections
  log "PostgreSQL ready: $pg_host:$pg_port/$pg_db with PostGIS"
}

# The suite runs several whole crier stacks at once, each with an API pool
# and a workers' pool: PostgreSQL's default of 100 connections is too few.
# A local server below 300 is raised to 300 and restarted.
ensure_connections() {
  local have; have=$(psql_admin -tAc "show max_connections")
  [ "$have" -lt 300 ] || return 0
  is_local "$pg_host" || { log "max_connections is $have on $pg_host; the tests want 300"; return 0; }
  log "raising max_connections from $have to 300 and restarting PostgreSQL"
  psql_admin -c "alter system set max_connections = 300"
  local ver; ver=$(ls /etc/postgresql | sort -n | tail -n 1)
  as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main restart
  for _ in $(seq 1 50); do pg_isready -q -h "$pg_host" -p "$pg_port" && break; sleep 0.2; done
  pg_isready -q -h "$pg_host" -p "$pg_port" || die "PostgreSQL did not come back"
}

ensure_redis() {
  local host port
  host=$(python3 -c 'import sys,urllib.parse as u;p=u.urlparse(sys.argv[1]);print(p.hostname or "127.0.0.1")' "$CRIER_REDIS_URL")
  port=$(python3 -c 'import sys,urllib.parse as u;p=u.urlparse(sys.argv[1]);print(p.port or 6379)' "$CRIER_REDIS_URL")
  # redis-server is needed even when a Redis answers: tests start private ones.
  command -v redis-server >/dev/null || apt_install redis-server
  if [ "$(redis-cli -h "$host" -p "$port" ping 2>/dev/null)" != PONG ]; then
    is_local "$host" || die "Redis at $host:$port does not answer"
    log "starting Redis on $host:$port"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$port" --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/crier.log
    for _ in $(seq 1 50); do [ "$(redis-cli -h "$host" -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
    [ "$(redis-cli -h "$host" -p "$port" ping 2>/dev/null)" = PONG ] || die "Redis did not start"
  fi
  local ver; ver=$(redis-cli -h "$host" -p "$port" info server | sed -n 's/^redis_version:\([0-9]*\).*/\1/p')
  [ "${ver:-0}" -ge 7 ] || die "Redis 7+ needed (pauses use PEXPIRE GT), found ${ver:-unknown}"
  log "Redis ready: $host:$port (version $ver)"
}

command -v python3 >/dev/null || apt_install python3
ensure_postgres
ensure_redis
