-- POST /subscribe with a new address each time. bench/web.py passes the
-- CSRF cookie and token of one browser (a double-submit pair) and a run id.
local counter = 0
local threads = 0
setup = function(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end
init = function(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Cookie"] = os.getenv("BENCH_COOKIE")
  token = os.getenv("BENCH_CSRF")
  run = os.getenv("BENCH_RUN")
end
request = function()
  counter = counter + 1
  local body = string.format(
    "email=r%s-%d-%d%%40example.com&name=&consent_version=&csrf=%s&website=",
    run, thread_id, counter, token)
  return wrk.format(nil, nil, nil, body)
end
dofile(os.getenv("BENCH_DIR") .. "/report.lua")
