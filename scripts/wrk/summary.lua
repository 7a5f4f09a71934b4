-- wrk: GET /summary for the type and period in the environment (SUMMARY_TYPE, SUMMARY_PERIOD).
local path = "/summary?type=" .. os.getenv("SUMMARY_TYPE") .. "&period=" .. os.getenv("SUMMARY_PERIOD")
request = function()
  return wrk.format("GET", path)
end
