-- wrk: each request carries the Cookie header of one of N visitors, in
-- turn (with -c N, about one visitor per connection): returning visitors
-- whose session the app keeps, as a browser's would be, rather than a new
-- session per request. The headers are read from the file named by
-- $BENCH_COOKIES, one line per visitor (scripts/bench/php.sh makes it).
local cookies = {}
for line in io.lines(os.getenv("BENCH_COOKIES")) do
  if line ~= "" then cookies[#cookies + 1] = line end
end
assert(#cookies > 0, "no cookies in $BENCH_COOKIES")
local i = 0
request = function()
  i = i % #cookies + 1
  return wrk.format(nil, nil, { Cookie = cookies[i] })
end
