-- wrk script: POST one JSON-RPC body (read once from $BENCH_BODY_FILE) on every request.
--
-- With BENCH_VERIFY=1 it also inspects every response (costs load-generator CPU, so the
-- timed runs leave it off) and prints, from done():
--   VERIFY responses=N http_non200=N rpc_error=N bad_body=N
-- rpc_error: an HTTP 200 whose body carries a JSON-RPC "error" member (the gateway answers
-- JSON-RPC errors with HTTP 200, so wrk's "Non-2xx" count would not see them).
-- bad_body: a body that does not look like the expected answer (no "result", or a batch
-- reply with fewer result members than $BENCH_EXPECT_RESULTS).

local path = os.getenv("BENCH_BODY_FILE") or error("BENCH_BODY_FILE is not set")
local f = assert(io.open(path, "rb"))
local body = f:read("*a")
f:close()
body = body:gsub("%s+$", "")

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
-- HTTP/1.1 keep-alive is wrk's default; state it for the record.
wrk.headers["Connection"] = "keep-alive"

-- A body containing %d is a template: every request gets its own number there (unique per
-- thread and request, counting up from 1e9 + thread * 1e8), so no cache and no coalescing of
-- identical in-flight requests can answer it. Building each request costs wrk a little CPU,
-- the same for every target.
local unique = string.find(body, "%d", 1, true) ~= nil

-- BENCH_PACE_MS=N: every connection waits N ms after each answer before its next request, so
-- the offered load is about connections / (N ms + latency) whatever the target: the paced runs
-- compare latency at one load below every target's capacity instead of at saturation.
local pace = tonumber(os.getenv("BENCH_PACE_MS") or "0") or 0
if pace > 0 then
   function delay()
      return pace
   end
end

local verify = os.getenv("BENCH_VERIFY") == "1"
local expect_results = tonumber(os.getenv("BENCH_EXPECT_RESULTS") or "1") or 1

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("thread_no", #threads)
end

if unique then
   local n = 0
   local base = 0
   function init(args)
      base = 1000000000 + (thread_no or 0) * 100000000
   end
   function request()
      n = n + 1
      return wrk.format(nil, nil, nil, string.format(body, base + n))
   end
end

if verify then
   responses, http_non200, rpc_error, bad_body = 0, 0, 0, 0

   local function count(s, pat)
      local n, i = 0, 1
      while true do
         local j = string.find(s, pat, i, true)
         if not j then return n end
         n, i = n + 1, j + 1
      end
   end

   function response(status, headers, resp)
      responses = responses + 1
      if status ~= 200 then
         http_non200 = http_non200 + 1
         return
      end
      if string.find(resp, '"error"', 1, true) then
         rpc_error = rpc_error + 1
      end
      if count(resp, '"result"') < expect_results then
         bad_body = bad_body + 1
      end
   end

   function done(summary, latency, requests)
      local t = { responses = 0, http_non200 = 0, rpc_error = 0, bad_body = 0 }
      for _, thread in ipairs(threads) do
         for k, _ in pairs(t) do
            t[k] = t[k] + (thread:get(k) or 0)
         end
      end
      io.write(string.format("VERIFY responses=%d http_non200=%d rpc_error=%d bad_body=%d\n",
         t.responses, t.http_non200, t.rpc_error, t.bad_body))
   end
end
