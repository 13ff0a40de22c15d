#!/usr/bin/env bash
# Catalog benchmark against a release build seeded with 100,000 products: req/s and
# p50/p99 at 64 connections for the list, a product, a search for a word in about 1% of
# products, and that search with a category and price filter; then the server's RSS.
# Needs wrk (apt-get install wrk). Usage: benches/catalog.sh [seconds] [products]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
products="${2:-100000}"
cargo build --release --quiet
bin=target/release/shopbox
data="$(mktemp -d)"
port=18090
trap 'kill $pid 2>/dev/null || true; rm -rf "$data"' EXIT
pid=0
echo "== seeding $products products"
/usr/bin/time -f "seeded in %e s" "$bin" seed --demo --products "$products" --data "$data" 2>&1 | tail -2
RUST_LOG=warn "$bin" serve --data "$data" --port "$port" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
base="http://127.0.0.1:$port/api/products"
slug="$(curl -sf "$base?limit=1&page=500" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["slug"])')"
echo "search word 'teapot' matches $(curl -sf "$base/search?q=teapot&limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])') products"
run() {
  echo "== $1"
  wrk -t2 -c64 -d"${secs}s" --latency "$2" | grep -E "Requests/sec|    50%|    99%|Non-2xx"
}
run "list, page 1" "$base"
run "detail by slug" "$base/$slug"
run "search, ~1% word" "$base/search?q=teapot"
run "search + category + price" "$base/search?q=teapot&category=kitchen&min_price=10&max_price=300"
echo "server RSS after the runs: $(ps -o rss= -p $pid | awk '{printf "%.0f MB", $1/1024}')"
