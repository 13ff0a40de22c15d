#!/usr/bin/env bash
# Accounts benchmark: logins/s with 16 concurrent clients, and GET /api/account/me latency
# at 64 connections while those logins run. Needs wrk (apt-get install wrk).
# Usage: benches/accounts.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"
cargo build --release --quiet
bin=target/release/shopbox
data="$(mktemp -d)"
port=18080
SHOPBOX_RATE_LIMIT__ENABLED=false RUST_LOG=warn "$bin" serve --data "$data" --port "$port" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
base="http://127.0.0.1:$port"
for i in $(seq 0 15); do
  curl -sf -H 'Content-Type: application/json' \
    -d "{\"email\":\"bench$i@example.com\",\"password\":\"bench password\"}" "$base/api/account/register" >/dev/null
done
token="$(curl -sf -H 'Content-Type: application/json' -d '{"email":"bench0@example.com","password":"bench password"}' \
  "$base/api/account/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"

echo "== /me alone, 64 connections, ${secs}s"
wrk -t2 -c64 -d"${secs}s" --latency -H "Authorization: Bearer $token" "$base/api/account/me" | grep -E "Requests/sec|50%|99%"

echo "== logins alone, 16 connections, ${secs}s"
wrk -t1 -c16 -d"${secs}s" -s benches/login.lua "$base" | grep -E "Requests/sec|Non-2xx" || true

echo "== logins (16 connections) and /me (64 connections) at once, ${secs}s"
wrk -t1 -c16 -d"${secs}s" -s benches/login.lua "$base" > "$data/login.txt" &
logins=$!
wrk -t1 -c64 -d"${secs}s" --latency -H "Authorization: Bearer $token" "$base/api/account/me" > "$data/me.txt"
wait "$logins"
echo "-- logins"; grep -E "Requests/sec|Non-2xx" "$data/login.txt" || true
echo "-- /me"; grep -E "Requests/sec|50%|99%" "$data/me.txt"
echo "server RSS: $(ps -o rss= -p $pid | awk '{printf "%.0f MB", $1/1024}')"
