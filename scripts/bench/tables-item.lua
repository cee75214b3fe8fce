-- wrk: GET /item?id=K for K drawn from 1..1000 (scripts/bench/tables.sh).
math.randomseed(1)
request = function()
  return wrk.format("GET", "/item?id=" .. math.random(1, 1000))
end
