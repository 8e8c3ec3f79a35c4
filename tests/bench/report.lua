-- Shared by the bench scripts: one machine-readable line per run.
function done(summary, latency, requests)
   local secs = summary.duration / 1e6
   local non2xx = summary.errors.status
   local errs = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
   io.write(string.format("RESULT rps=%.0f p50_ms=%.3f p99_ms=%.3f non2xx=%d sockerr=%d requests=%d\n",
      summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
      non2xx, errs, summary.requests))
end
