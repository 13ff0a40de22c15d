#!/usr/bin/env bash
# Runs schemathesis against a fresh shop started from the given binary, with every check
# (`--checks all`) and with warnings shown and failing the run. Four runs, each with its
# own identity: anonymous, a customer, logout (its own login), an admin.
#
# What is left out, and why (nothing else is):
# - The customer run leaves out the operations only an admin may call (security `admin`):
#   a customer is refused them by design, so they would only answer 403 and raise the
#   `missing_auth` warning; the admin run tests them, and `ignored_auth` checks the refusal.
# - The customer and admin runs leave out POST /api/account/logout: it ends the session the
#   run logs in with, and every later case would be a 401. The logout run tests it with
#   its own login.
# - The admin run leaves out the `/api/products-category` alias: its operations are those
#   of `/api/products/category`, which that run tests, and schemathesis cannot tell that a
#   category deleted through one path is gone from the other, so it reports the other
#   path's 404 as a created resource gone missing (ST302). The anonymous and customer runs
#   test the alias (its refusals), and tests/api/openapi.rs that it serves the same routes.
# - The anonymous run does not fail on the `missing_auth` warning: it has no login on
#   purpose, so the operations that need one answer only 401, which is what it checks.
#
# SCHEMATHESIS_EXAMPLES sets the examples per operation (default 10); SCHEMATHESIS_RUNS
# picks runs (default "anonymous customer logout admin"). With SCHEMATHESIS_PG_URL (a
# PostgreSQL server, e.g. postgres://postgres@127.0.0.1:5432/test) the shop is served from
# PostgreSQL instead: a fresh schema is made on it, the data folder with its admin is
# exported there (`export-pg`), the server runs with SHOPBOX_DATABASE__URL on that
# schema, and the schema is dropped at the end.
set -euo pipefail
bin="${1:-target/release/shopbox}"
st="${SCHEMATHESIS:-schemathesis}"
examples="${SCHEMATHESIS_EXAMPLES:-10}"
pg="${SCHEMATHESIS_PG_URL:-}"
data="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log="$data/server.log"
pid=""
schema=""
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  if [ -n "$schema" ]; then
    psql -q -d "$pg" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null || true
  fi
  rm -rf "$data"
}
trap cleanup EXIT

# An admin made with the CLI before the server starts (only one process may open the folder).
"$bin" admin create --data "$data/shop" --email admin@ci.test --password 'ci admin password' >/dev/null

serving=(env SHOPBOX_RATE_LIMIT__ENABLED=false)
if [ -n "$pg" ]; then
  schema="schemathesis_$(python3 -c 'import secrets; print(secrets.token_hex(6))')"
  psql -q -d "$pg" -c "CREATE SCHEMA $schema" >/dev/null
  case "$pg" in *\?*) sep='&' ;; *) sep='?' ;; esac
  url="$pg${sep}options=-csearch_path%3D$schema"
  "$bin" export-pg --data "$data/shop" --url "$url" >/dev/null
  serving+=("SHOPBOX_DATABASE__URL=$url")
  echo "-- serving from PostgreSQL, schema $schema"
fi

"${serving[@]}" "$bin" serve --data "$data/shop" --port "$port" >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
  sleep 0.1
done
base="http://127.0.0.1:$port"

# Every warning fails the run; schemathesis signs nobody up by itself (each run says who
# it is). `$1` is the list of warnings that fail it.
all_warnings='"missing_auth", "missing_test_data", "base_url_mismatch", "validation_mismatch", "missing_deserializer", "unused_openapi_auth", "unsupported_regex", "method_not_allowed", "constants_extraction", "unmatched_filter", "unresolvable_reference", "rate_limited", "dictionary_mismatch", "timeout_units"'
config() {
  printf '[auth]\nauto-signup = false\n\n[warnings]\nfail-on = [%s]\n\n' "$1"
  cat <<'TOML'
# How an entry picks operations: schemathesis ORs an entry's filters (`include-path = A`
# with `include-method = B` picks every operation on A and every B operation, and so do
# the `-regex` forms). So an entry for one method of a path names both at once, with
# `include-name` ("GET /api/products/{product_id}") or `include-name-regex`. Every entry
# an operation matches applies, the first one to set an option deciding it.
# Operations whose 400 SPEC prescribes for a well-formed body: a verification or reset
# token that was never issued ("bad, expired or used token 400"), a wrong current password
# ("wrong current 400") and a checkout of an empty cart ("empty cart 400"; the first
# checkout of a run empties the cart). So positive_data_acceptance also takes 400 here,
# and warnings are off for these operations: generated tokens and passwords are always
# refused, which raises validation_mismatch (schemathesis raises it whatever an operation
# is configured to show).
[[operations]]
include-path-regex = "^/api/account/(verify|verify-email|reset-password|verify-password-reset-token|change-password)$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]
warnings = false

# Checkout as above, and also 422 for an Idempotency-Key used before with another body
# (SPEC), since schemathesis sends the same generated key with different bodies, and 402
# for `simulate_success: false`, a payment the client asks to fail (SPEC: "A failed
# payment answers 402").
[[operations]]
include-path = "/api/orders/checkout"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "402", "403", "404", "409", "422", "429", "5xx"]
warnings = false

# GET /api/products/{product_id}: the document excludes the words `category` and `search`
# from product_id because other documented routes serve /api/products/category and
# /api/products/search. Negative cases would send exactly those words and reach those
# routes, so this operation is tested with valid data only (every check still runs), on
# product 1, made below (a random slug names no product).
[[operations]]
include-name = "GET /api/products/{product_id}"
generation.mode = "positive"
parameters = { product_id = "1" }

# Reviews need a confirmed order of the product, which a random id never has: writing
# one is tried on product 2 (ordered, not yet reviewed), changing one on product 1
# (reviewed); the customer and the admin both ordered them below. With the id pinned,
# negative path values are never sent, so these are tested with valid data only.
# Changing one has warnings off: the run's own DELETE of that review (a success) leaves
# it 404 for the rest of the run.
[[operations]]
include-name = "POST /api/products/{product_id}/reviews"
parameters = { product_id = "2" }
generation.mode = "positive"
# The run may cancel that order first (PATCH /api/orders/cancel/{order_id} succeeds on
# it), after which writing a review is a 403: warnings off.
warnings = false

[[operations]]
include-path = "/api/products/{product_id}/reviews/mine"
parameters = { product_id = "1" }
generation.mode = "positive"
warnings = false

# Listing and search page by an opaque cursor (`after`, the `next` of an earlier answer);
# one the server did not issue, or one of another sort, is the 422 on `after` that the
# document describes. A schema cannot tell an issued cursor from any other string, so
# positive_data_acceptance also takes 422 for these two operations. (Before the image
# entry below: the first entry an operation matches is the one that counts.)
[[operations]]
include-name-regex = "^GET /api/products/(search)?$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
# Product images are checked by content (PNG, JPEG, WebP or GIF, at most 10,000 px a
# side), which a schema cannot say; the files schemathesis makes are not such images, and
# SPEC answers those 415. So positive_data_acceptance also takes 415 for the operations
# that take an image. Writing a product also takes 422 for `category_ids` that name no
# category ("Category N does not exist"): whether an id names a category is the
# database's to say, not a schema's.
[[operations]]
include-name-regex = "^(POST|PATCH) /api/products/(\\{product_id\\}(/image)?)?$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "415", "422", "429", "5xx"]

# Uploading an image alone: most generated uploads are refused, rightly, so warnings are
# off for it (its checks all run): the file is rarely an image (415), and the extra fields
# the schema allows get names with control characters that no multipart header can carry
# ("failed to read headers", 422), which raises validation_mismatch.
[[operations]]
include-name = "POST /api/products/{product_id}/image"
warnings = false

# Deleting a category: categories 1 and 2 exist at the start; the run's own deletes (they
# succeed, through the path or its alias) leave every later one a 404, so warnings are
# off for them (their checks all run).
[[operations]]
include-name-regex = "^DELETE /api/products(/|-)category/\\{category_id\\}$"
warnings = false

# Cancelling: each shopper owns one order, and the first cancel or shipping update of it
# (both succeed) leaves every later cancel a 409, and any other generated id is a 404;
# so warnings are off for it (its checks all run).
[[operations]]
include-path = "/api/orders/cancel/{order_id}"
warnings = false

# Login and refresh with generated credentials: no generated email and password or refresh
# token exists, so every answer is the 401 SPEC prescribes, which raises missing_auth.
[[operations]]
include-path-regex = "^/api/account/(login|refresh)$"
warnings = false

# A cart line's id comes from adding it; nothing in the document links the two, so the
# generated ids miss it (404) and warnings are off for deleting one.
[[operations]]
include-path = "/api/carts/delete/{item_id}"
warnings = false
TOML
}
config "$all_warnings" >"$data/strict.toml"
# All but `missing_auth` (see above).
config "${all_warnings/\"missing_auth\", /}" >"$data/anonymous.toml"

token() {
  curl -sf -H 'Content-Type: application/json' -d "{\"email\":\"$1\",\"password\":\"$2\"}" \
    "$base/api/account/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
admin="$(token admin@ci.test 'ci admin password')"

# Products 1 and 2, in stock, and categories 1 and 2, so that the ids schemathesis tries
# first name something.
for title in "CI lamp" "CI chair"; do
  curl -sS --fail-with-body -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
    -d "{\"title\":\"$title\",\"price\":10,\"stock_quantity\":1000}" "$base/api/products" >/dev/null
done

for name in "CI lamps" "CI chairs"; do
  curl -sS --fail-with-body -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
    -d "{\"name\":\"$name\"}" "$base/api/products/category" >/dev/null
done

# A shopper's own records, for the same reason: an address, an order of products 1 and 2
# (with its payment and shipping status), a review of product 1 and a cart line.
shop() {
  local as=(curl -sS --fail-with-body -H "Authorization: Bearer $1" -H 'Content-Type: application/json')
  local address
  address="$("${as[@]}" -d '{"address_line1":"1 Test St","city":"Testville","state":"TS","postal_code":"12345","country":"US"}' \
    "$base/api/shippings/addresses" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
  "${as[@]}" -d '{"product_id":1,"quantity":1}' "$base/api/carts/add" >/dev/null
  "${as[@]}" -d '{"product_id":2,"quantity":1}' "$base/api/carts/add" >/dev/null
  "${as[@]}" -d "{\"shipping_address_id\":$address}" "$base/api/orders/checkout" >/dev/null
  "${as[@]}" -d '{"rating":5,"title":"Good"}' "$base/api/products/1/reviews" >/dev/null
  "${as[@]}" -d '{"product_id":1,"quantity":1}' "$base/api/carts/add" >/dev/null
}
shop "$admin"

runs=" ${SCHEMATHESIS_RUNS:-anonymous customer logout admin} "
run() {
  local cfg="$1" name="$2"
  shift 2
  [[ "$runs" == *" $name "* ]] || return 0
  echo "-- $name"
  "$st" --config-file "$data/$cfg.toml" run "$base/openapi.json" --checks all \
    --max-examples "$examples" --seed 1 --no-color "$@"
}

run anonymous anonymous

curl -sf -H 'Content-Type: application/json' \
  -d '{"email":"customer@ci.test","password":"ci customer password"}' "$base/api/account/register" >/dev/null
customer="$(token customer@ci.test 'ci customer password')"
logout_session="$(token customer@ci.test 'ci customer password')"

shop "$customer"

run strict customer -H "Authorization: Bearer $customer" \
  --exclude-path /api/account/logout --exclude-by '/security/0/admin == []'
run strict logout -H "Authorization: Bearer $logout_session" --include-path /api/account/logout
run strict admin -H "Authorization: Bearer $admin" --exclude-path /api/account/logout \
  --exclude-path-regex '^/api/products-category'
