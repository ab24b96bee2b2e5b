#!/usr/bin/env bash
# Set up everything the PBX needs on a Debian/Ubuntu machine, idempotently:
#   Debian packages that are missing, the virtualenv, PostgreSQL and Redis running, the
#   database role and database, local secrets and a self-signed TLS certificate.
# Usage: scripts/bootstrap.sh [run|test]   ("test" adds the packages the test suite drives)
set -euo pipefail
cd "$(dirname "$0")/.."
MODE="${1:-run}"
VENV="${PBX_VENV:-.venv}"
VAR="${PBX_VAR_DIR:-var}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

say() { printf '\033[1m==>\033[0m %s\n' "$*"; }

# --- Debian packages --------------------------------------------------------------------------
PKGS=(postgresql redis-server openssl python3-venv python3-dev rtpengine-daemon espeak-ng sox libsox-fmt-mp3)
if [ "$MODE" = "test" ]; then
  PKGS+=(chromium sip-tester baresip-core tftp-hpa wrk kamailio nginx-light)
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# --- Azurite (Azure Blob Storage's emulator, from npm): the recording storage tests ----------
AZURITE_VERSION=3.35.0  # the newest that asks for no newer Node.js than Debian 12 has (18)
if [ "$MODE" = "test" ] && ! grep -qs "\"version\": \"$AZURITE_VERSION\"" \
    "$VAR/tools/node_modules/azurite/package.json"; then
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    say "installing Node.js for Azurite"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends nodejs npm
  fi
  say "installing Azurite $AZURITE_VERSION in $VAR/tools"
  mkdir -p "$VAR/tools"
  npm install --prefix "$VAR/tools" --no-audit --no-fund "azurite@$AZURITE_VERSION" >/dev/null
fi

# --- Python -----------------------------------------------------------------------------------
PY="${PBX_PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtualenv $VENV"
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.requirements.sha"
want="$(sha256sum requirements.txt | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing Python packages"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -r requirements.txt
  echo "$want" > "$stamp"
fi

# --- services ---------------------------------------------------------------------------------
DB_HOST="${PBX_DB_HOST:-127.0.0.1}"
DB_PORT="${PBX_DB_PORT:-5432}"
if ! pg_isready -q -h "$DB_HOST" -p "$DB_PORT"; then
  say "starting PostgreSQL"
  ver="$(ls /etc/postgresql | sort -V | tail -n1)"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main start || $SUDO service postgresql start
  for _ in $(seq 1 30); do pg_isready -q -h "$DB_HOST" -p "$DB_PORT" && break; sleep 1; done
fi
REDIS_PORT="${PBX_REDIS_PORT:-6379}"
if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  say "starting Redis"
  $SUDO mkdir -p /var/lib/redis /var/log/redis
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/pbx.log
  for _ in $(seq 1 30); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.5; done
fi

# --- database role and secrets ----------------------------------------------------------------
mkdir -p "$VAR/secrets" && chmod 700 "$VAR/secrets"
if [ -z "${PBX_DB_PASSWORD:-}" ]; then
  [ -s "$VAR/secrets/db_password" ] || (umask 077; openssl rand -hex 24 > "$VAR/secrets/db_password")
  DB_PASSWORD="$(cat "$VAR/secrets/db_password")"
else
  DB_PASSWORD="$PBX_DB_PASSWORD"
fi
DB_USER="${PBX_DB_USER:-pbx}"
DB_NAME="${PBX_DB_NAME:-pbx}"
psql_admin() {
  if psql -h "$DB_HOST" -p "$DB_PORT" -U postgres -d postgres -Atqc "select 1" >/dev/null 2>&1; then
    psql -h "$DB_HOST" -p "$DB_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -Atq "$@"
  else
    $SUDO runuser -u postgres -- psql -p "$DB_PORT" -d postgres -v ON_ERROR_STOP=1 -Atq "$@"
  fi
}
psql_admin -c "DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') THEN
    CREATE ROLE \"$DB_USER\" LOGIN CREATEDB;
  END IF;
END \$\$;" -c "ALTER ROLE \"$DB_USER\" LOGIN CREATEDB PASSWORD '$DB_PASSWORD';"
if [ -z "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" ]; then
  say "creating database $DB_NAME"
  psql_admin -c "CREATE DATABASE \"$DB_NAME\" OWNER \"$DB_USER\";"
fi

# --- TLS certificate: the portal's HTTPS and SIP over TLS/WSS (self-signed, local only) -------
PBX_VAR_DIR="$VAR" scripts/tls_cert.sh
say "bootstrap done ($MODE)"
