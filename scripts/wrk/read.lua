-- wrk: GET /visits/page-N for a random N of 10,000 pages.
math.randomseed(os.time() + 1)
request = function()
  return wrk.format("GET", "/visits/page-" .. math.random(1, 10000))
end
