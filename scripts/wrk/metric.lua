-- wrk: POST /metrics with one sample, stamped now, of one of 100 types.
math.randomseed(os.time())
request = function()
  local body = string.format('{"timestamp":"%s","value":%d.5,"type":"bench.single%d"}',
    os.date("!%Y-%m-%dT%H:%M:%SZ"), math.random(0, 1000), math.random(1, 100))
  return wrk.format("POST", "/metrics", {["Content-Type"] = "application/json"}, body)
end
