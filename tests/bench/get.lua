dofile("report.lua")
-- GET campaign totals from the cache, spread over CAMPAIGNS campaigns.
local campaigns = tonumber(os.getenv("CAMPAIGNS") or "100")
local n = 0
request = function()
   n = n + 1
   return wrk.format("GET", "/api/v1/campaigns/bench-" .. (n % campaigns))
end
