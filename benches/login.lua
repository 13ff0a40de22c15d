-- POSTs logins for one of the bench users, in turn.
local users = tonumber(os.getenv("BENCH_USERS") or "16")
local n = 0
request = function()
  n = n + 1
  local body = string.format('{"email":"bench%d@example.com","password":"bench password"}', n % users)
  return wrk.format("POST", "/api/account/login", {["Content-Type"] = "application/json"}, body)
end
