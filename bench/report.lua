-- wrk's summary as one line of JSON, for bench/web.py. wrk itself counts
-- only statuses over 399 as errors, so a redirect to /login would pass:
-- every answer but a 200 is counted here by status ("unexpected"), and so
-- is a 200 whose body lacks BENCH_MARKER, when that is set ("unmarked").
local marker = os.getenv("BENCH_MARKER") or ""
unexpected = {}   -- in each thread: status -> answers
unmarked = 0      -- in each thread
response = function(status, headers, body)
  if status ~= 200 then
    unexpected[status] = (unexpected[status] or 0) + 1
  elseif marker ~= "" and not string.find(body, marker, 1, true) then
    unmarked = unmarked + 1
  end
end

-- A script that loads this one (subscribe.lua) may have a setup of its own.
local workers = {}
local own_setup = setup
setup = function(thread)
  if own_setup then own_setup(thread) end
  table.insert(workers, thread)
end

done = function(summary, latency, requests)
  local e = summary.errors
  local sum, count, without = {}, 0, 0
  for _, thread in ipairs(workers) do
    for status, n in pairs(thread:get("unexpected")) do
      sum[status] = (sum[status] or 0) + n
      count = count + n
    end
    without = without + thread:get("unmarked")
  end
  local by_status = {}
  for status, n in pairs(sum) do
    by_status[#by_status + 1] = string.format('"%d":%d', status, n)
  end
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,'
      .. '"unexpected":%d,"by_status":{%s},"unmarked":%d,"p50_ms":%.3f,"p99_ms":%.3f}\n',
    summary.requests, summary.duration / 1e6, e.connect, e.read, e.write, e.status, e.timeout,
    count, table.concat(by_status, ","), without,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3))
end
