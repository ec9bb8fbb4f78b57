-- wrk script for POST /v1/checkins: a unique client_event_id per request, many member tokens.
-- wrk -s bench/checkins.lua URL -- TOKENS_FILE STATIONS_FILE
local counter = 0
local tokens = {}
local stations = {}
local threads = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  for line in io.lines(args[2]) do stations[#stations + 1] = line end
end

function request()
  counter = counter + 1
  local i = (counter + tid * 7919) % #tokens + 1
  local action = (counter % 2 == 0) and "out" or "in"
  local cid = string.format("%08x-0000-4000-8000-%012x", tid, counter)
  local body = '{"station_token":"' .. stations[(i % #stations) + 1] .. '","action":"' .. action ..
    '","client_event_id":"' .. cid .. '"}'
  return wrk.format("POST", "/v1/checkins", {
    ["Authorization"] = "Bearer " .. tokens[i],
    ["Content-Type"] = "application/json",
  }, body)
end
