-- wrk: POST /visit/page-N for a random N of 10,000 pages.
math.randomseed(os.time())
request = function()
  return wrk.format("POST", "/visit/page-" .. math.random(1, 10000))
end
