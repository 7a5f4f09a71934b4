-- wrk: the tracker's page view, POST /visit with {"page":"/page-N"} as text/plain from a
-- browser on https://site.example, for a random N of 10,000 pages (as visit.lua's pages).
math.randomseed(os.time())
local headers = {
  ["Content-Type"] = "text/plain;charset=UTF-8",
  ["Origin"] = "https://site.example",
  ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",
}
request = function()
  local body = string.format('{"page":"/page-%d","referrer":""}', math.random(1, 10000))
  return wrk.format("POST", "/visit", headers, body)
end
