#!/usr/bin/env bash
# Runs schemathesis against a fresh shop started from the given binary.
# Checks: no server error, no answer that contradicts the OpenAPI schema.
set -euo pipefail
bin="${1:-target/release/shopbox}"
st="${SCHEMATHESIS:-schemathesis}"
data="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log="$data/server.log"

# An admin made with the CLI before the server starts (only one process may open the folder).
"$bin" admin create --data "$data/shop" --email admin@ci.test --password 'ci admin password' >/dev/null

SHOPBOX_RATE_LIMIT__ENABLED=false "$bin" serve --data "$data/shop" --port "$port" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
  sleep 0.1
done

base="http://127.0.0.1:$port"
checks="not_a_server_error,response_schema_conformance"
run() {
  "$st" run "$base/openapi.json" --checks "$checks" --max-examples 30 \
    --seed 1 --no-color --warnings off "$@"
}

echo "-- anonymous"
run

token() {
  curl -sf -H 'Content-Type: application/json' -d "{\"email\":\"$1\",\"password\":\"$2\"}" \
    "$base/api/account/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
curl -sf -H 'Content-Type: application/json' \
  -d '{"email":"customer@ci.test","password":"ci customer password"}' "$base/api/account/register" >/dev/null
customer="$(token customer@ci.test 'ci customer password')"
admin="$(token admin@ci.test 'ci admin password')"

# Logout and user deactivation would end the run's own session: left out of these runs.
keep_session=(--exclude-path /api/account/logout --exclude-path-regex '^/api/account/users/')
echo "-- customer"
run -H "Authorization: Bearer $customer" "${keep_session[@]}"
echo "-- admin"
run -H "Authorization: Bearer $admin" "${keep_session[@]}"
