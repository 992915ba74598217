-- bench/http/wrk.lua — wrk script of bench/http.sh: one "RESULT key=value ..." line at the
-- end of a run (requests, requests/s, latency percentiles in microseconds, errors), which
-- http.sh parses instead of wrk's human-readable report.
-- Script argument "close" (wrk ... -s wrk.lua URL -- close) adds "Connection: close" to
-- every request: the server closes after each response and wrk reconnects, so the run
-- measures one request per connection.

function init(args)
    if args[1] == "close" then
        wrk.headers["Connection"] = "close"
    end
end

function done(summary, latency, requests)
    local e = summary.errors
    local secs = summary.duration / 1e6
    io.write(string.format("RESULT requests=%d seconds=%.3f rps=%.1f p50_us=%d p99_us=%d "
        .. "max_us=%d connect_errors=%d read_errors=%d write_errors=%d timeouts=%d "
        .. "status_errors=%d bytes=%d\n",
        summary.requests, secs, summary.requests / secs, latency:percentile(50),
        latency:percentile(99), latency.max, e.connect, e.read, e.write, e.timeout, e.status, summary.bytes))
end
