#!/usr/bin/env bash
# Runs every test on a fresh machine: installs or starts what the tests need (PostgreSQL,
# Chromium and its WebDriver, nginx), then `cargo test`. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/test.sh: installing $* needs root (or install them yourself)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# PostgreSQL for the tests that need it: installed if missing (trusting local TCP, as this
# machine's own server does), started if down, and its `test` database made.
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    apt_install postgresql
    hba="/etc/postgresql/$(ls /etc/postgresql | head -n1)/main/pg_hba.conf"
    sed -i -E 's#^(host\s+all\s+all\s+127\.0\.0\.1/32\s+)\S+#\1trust#' "$hba"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do
    pg_isready -h 127.0.0.1 -p 5432 -q && break
    sleep 1
  done
fi
if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE test"
fi
export SHOPBOX_TEST_PG_URL="${SHOPBOX_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}"

# Headless Chromium and ChromeDriver for the browser tests (Debian's packages).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  apt_install chromium chromium-driver
fi
# nginx, curl and openssl for the reverse-proxy test (tests/api/deploy.rs).
if [ ! -x /usr/sbin/nginx ] || ! command -v curl >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then
  apt_install nginx curl openssl
fi

cargo test --locked "$@"

# The in-process API tests a second time, served from PostgreSQL (each test on a schema of
# its own in the `test` database, dropped afterwards). Left out: the modules that start the
# binary on a data folder or test sled itself (backup, binary, configuration, crash,
# crash_checkout, deploy, disk_full, integrity, live_cli, load, shutdown, slow_clients,
# smtp_sink) and those that use PostgreSQL whatever the backend (pg, instances). The
# browser tests run the binary from a fresh schema (the demo catalog exported there, the
# admin made on it with the CLI).
if [ $# -eq 0 ]; then
  SHOPBOX_TEST_BACKEND=pg cargo test --locked --test api -- \
    account:: account_http:: browser:: catalog:: checkout:: commerce:: concurrency:: \
    indexes:: layers:: log_secrets:: mail:: messages:: observability:: openapi:: platform:: \
    security:: --skip crash_checkout::
fi
