dofile("report.lua")
-- POST donations with unique idempotency keys over keep-alive connections,
-- spread over CAMPAIGNS campaigns.
local campaigns = tonumber(os.getenv("CAMPAIGNS") or "100")
local counter = 0
local threads = 0

-- Each wrk thread gets its own "me" (a global in its Lua state) so keys
-- never repeat across threads.
function setup(thread)
   threads = threads + 1
   thread:set("me", threads)
end

request = function()
   counter = counter + 1
   local c = counter % campaigns
   local body = string.format(
      '{"amount_cents":%d,"currency":"USD","donor":{"name":"Bench Donor %d","email":"d%d@example.org"},"payment_token":"tok_visa"}',
      100 + (counter % 50) * 100, counter % 1000, counter % 5000)
   local headers = {
      ["Content-Type"] = "application/json",
      ["Idempotency-Key"] = string.format("bench-%d-%d-%d", os.time(), me, counter),
   }
   return wrk.format("POST", "/api/v1/campaigns/bench-" .. c .. "/donations", headers, body)
end
