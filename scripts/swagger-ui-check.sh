#!/usr/bin/env bash
# The accounts "Done when" check in a real browser: an admin made with the CLI while the
# server is stopped logs in through Swagger UI and calls an admin route (200); a customer
# gets 403 there. Needs Chromium and npm (apt-get install chromium npm); installs
# playwright-core into a temporary folder. Usage: scripts/swagger-ui-check.sh [binary]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/release/shopbox}"
work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"
"$bin" admin create --data "$work/shop" --email admin@example.com --password 'admin password 1'
"$bin" serve --data "$work/shop" --port "$port" >"$work/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -sf "$url/health" >/dev/null && break; sleep 0.1; done
curl -sf -H 'Content-Type: application/json' \
  -d '{"email":"customer@example.com","password":"customer password 1"}' "$url/api/account/register" >/dev/null
(cd "$work" && npm init -y >/dev/null && npm install --silent playwright-core@1 >/dev/null)
out="$(NODE_PATH="$work/node_modules" SHOP_URL="$url" node scripts/swagger-ui-check.js)"
echo "$out"
grep -q '^admin GET /api/account/users -> 200' <<<"$out"
grep -q '^customer GET /api/account/users -> 403' <<<"$out"
echo "Swagger UI: the admin's call answered 200, the customer's 403"
