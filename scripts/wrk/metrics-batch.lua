-- wrk: POST /metrics with an array of 1,000 samples over 10 types, stamped when wrk started.
local stamp = os.date("!%Y-%m-%dT%H:%M:%SZ")
local samples = {}
for i = 1, 1000 do
  samples[i] = string.format('{"timestamp":"%s","value":%d.25,"type":"bench.batch%d"}',
    stamp, i, i % 10)
end
local body = "[" .. table.concat(samples, ",") .. "]"
request = function()
  return wrk.format("POST", "/metrics", {["Content-Type"] = "application/json"}, body)
end
