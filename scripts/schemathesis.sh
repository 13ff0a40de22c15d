#!/usr/bin/env bash
# Runs schemathesis against a fresh shop started from the given binary.
# Checks: no server error, no answer that contradicts the OpenAPI schema.
set -euo pipefail
bin="${1:-target/release/shopbox}"
st="${SCHEMATHESIS:-schemathesis}"
data="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log="$data/server.log"

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
