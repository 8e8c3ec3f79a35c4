dofile("post.lua") -- setup(), request() and the report
-- POST donations as post.lua does (unique Idempotency-Keys, CAMPAIGNS campaigns
-- bench-0..N-1), optionally paced: RATE requests/s in total over THREADS wrk
-- threads (RATE unset or 0 = as fast as the connections go). Each thread
-- hands out send slots every THREADS/RATE seconds on a monotonic clock and
-- delay() holds a request until its slot, so the offered rate does not
-- depend on the answer latency as long as there are connections enough.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } jobs_ts;
int clock_gettime(int clk, jobs_ts *ts);
]]
local ts = ffi.new("jobs_ts")
local function now_ms()
   ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
   return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local rate = tonumber(os.getenv("RATE") or "0")
local nthreads = tonumber(os.getenv("THREADS") or "2")
local interval = rate > 0 and 1000 * nthreads / rate or 0
local next_slot = nil

if rate > 0 then
   delay = function()
      local now = now_ms()
      if not next_slot or next_slot < now - 100 then
         next_slot = now -- start, or fell behind by more than 100 ms: no burst
      end
      local slot = next_slot
      next_slot = next_slot + interval
      local d = slot - now
      return d > 0 and math.floor(d + 0.5) or 0
   end
end
