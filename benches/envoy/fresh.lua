-- wrk script: a different token on every request. Reads a file of pre-minted tokens (one a
-- line) and sends them in turn, so that no verification can be answered from a cache unless
-- the cache holds the whole file. Arguments (after `--`): PATH TOKEN_FILE.
local requests = {}
local next_request = 1

function init(args)
  local path, file = args[1], args[2]
  for token in io.lines(file) do
    local headers = {}
    for name, value in pairs(wrk.headers) do headers[name] = value end
    headers["Authorization"] = "Bearer " .. token
    headers["x-trivial"] = "yes"
    requests[#requests + 1] = wrk.format("GET", path, headers)
  end
  if #requests == 0 then error("no tokens in " .. file) end
end

function request()
  local r = requests[next_request]
  next_request = next_request % #requests + 1
  return r
end
