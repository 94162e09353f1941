-- wrk's request mix for tests/fpm/run.sh: history-list without and with a
-- user_name filter (7:3), hischat and appends, in fixed proportions; with
-- FPM_MIX=history (bindings/php/bench/fpm.sh) history-list only. Every response but a 200 is written to FPM_OUT/bad-<thread>;
-- every acknowledged append's id to FPM_OUT/acks-<thread>; the totals
-- (requests, non-2xx, socket errors, latency percentiles) to
-- FPM_OUT/summary as `key value` lines.
--
-- An append carries its own id (unique per thread and request), so the
-- retry nginx makes when a worker dies mid-request stores it once.

local out = os.getenv("FPM_OUT") or "."
local history_only = os.getenv("FPM_MIX") == "history"
local threads = {}
local next_tid = 0

function setup(thread)
  next_tid = next_tid + 1
  thread:set("tid", next_tid)
  table.insert(threads, thread)
end

local counter = 0
local bad, acks
-- Filters: a Chinese surname, a two-character name, mobile digits, a
-- formatted mobile's prefix (URL-encoded UTF-8).
local filters = { "%E6%9D%8E", "%E5%B0%8F%E6%98%8E", "1391", "%2B86", "%E5%BC%A0" }
local form = { ["Content-Type"] = "application/x-www-form-urlencoded" }

function init(args)
  bad = io.open(out .. "/bad-" .. tid, "w")
  acks = io.open(out .. "/acks-" .. tid, "w")
end

local function history(extra)
  local employee = counter % 50 + 1
  local page = counter % 4 + 1
  return wrk.format("GET", "/plugin.yun-chat.frontend.chat.history-list?i=1&employee_id="
    .. employee .. "&page=" .. page .. "&pagesize=10" .. extra)
end

function request()
  counter = counter + 1
  local k = counter % 20
  if history_only then
    k = counter % 10
  end
  if k < 7 then
    return history("")
  elseif k < 10 then
    return history("&user_name=" .. filters[counter % #filters + 1])
  elseif k < 14 then
    return wrk.format("POST", "/hischat.php", form,
      "sso_id=218&hash=5f4dcc3b5aa765d61d8327deb882cf99&page=1")
  else
    local id = 1000000000 + tid * 10000000 + counter
    local session = counter % 2000 + 1
    return wrk.format("POST", "/message", form, "i=1&session_id=" .. session
      .. "&sender=member&content=fpm-" .. id .. "&id=" .. id .. "&time=1700000000")
  end
end

function response(status, headers, body)
  if status ~= 200 then
    bad:write(status .. " " .. string.sub(body, 1, 300) .. "\n")
    bad:flush()
    return
  end
  local id = string.match(body, '^{"result":1,"msg":"ok","data":{"id":(%d+)}}$')
  if id then
    acks:write(id .. "\n")
    acks:flush()
  end
end

function done(summary, latency, requests)
  local f = io.open(out .. "/summary", "w")
  local e = summary.errors
  f:write("requests " .. summary.requests .. "\n")
  f:write("seconds " .. summary.duration / 1e6 .. "\n")
  f:write("non2xx " .. e.status .. "\n")
  f:write("socket_errors " .. (e.connect + e.read + e.write + e.timeout) .. "\n")
  for _, p in ipairs({ 50, 90, 99 }) do
    f:write("p" .. p .. "_us " .. latency:percentile(p) .. "\n")
  end
  f:close()
end
