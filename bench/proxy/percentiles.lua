-- wrk script: prints the latency percentiles run.sh's p99 leaves out, on one
-- line that bench/proxy/tail.sh picks up.
done = function(summary, latency, requests)
  local out = "PERCENTILES"
  for _, p in ipairs({50, 90, 95, 97, 98, 99, 99.5, 99.9}) do
    out = out .. string.format(" %s=%.0f", p, latency:percentile(p))
  end
  io.write(out .. "\n")
end
