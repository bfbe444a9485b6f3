-- Helpers for the web demo's specs, end-to-end test and load check: start
-- `bin/siamese serve` as a subprocess on a free port, talk to it with
-- lua-http's client. Load with `local web = dofile("spec/web_support.lua")`.
assert(require("siamese.web.deps").setup())
local http_request = require "http.request"
local json = require "siamese.json"
local multipart = require "siamese.web.multipart"

local web = {}

local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
web.read_file = read_all

local function sleep(s) os.execute("sleep " .. s) end

--- Starts the server: args is the extra command line (a string, already
-- quoted). Returns {url, pid, out, err, stop = function}; raises when it
-- has not printed its address within `wait` seconds (default 120).
function web.start(args, wait)
  local out, err = os.tmpname(), os.tmpname()
  local p = assert(io.popen(("exec bin/siamese serve --port 0 %s >%s 2>%s & echo $!"):format(args, out, err)))
  local pid = assert(tonumber(p:read("l")), "no pid")
  p:close()
  local s = {pid = pid, out = out, err = err}
  local deadline = os.time() + (wait or 120)
  while os.time() <= deadline do
    local text = read_all(out) or ""
    local url = text:match("listening on (http://[^/%s]+/)")
    if url then s.url = url:sub(1, -2) break end
    if not os.execute("kill -0 " .. pid .. " 2>/dev/null") then break end
    sleep(0.1)
  end
  function s.stop()
    os.execute("kill " .. pid .. " 2>/dev/null")
    os.remove(out)
    os.remove(err)
  end
  function s.alive() return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true end
  if not s.url then
    local msg = "server did not start: " .. (read_all(err) or "")
    s.stop()
    error(msg, 2)
  end
  return s
end

--- Runs `bin/siamese serve ARGS` expecting it to exit; returns the exit code and stderr.
function web.run_failing(args)
  local err = os.tmpname()
  local ok, _, code = os.execute(("bin/siamese serve %s >/dev/null 2>%s"):format(args, err))
  local text = read_all(err)
  os.remove(err)
  return ok and 0 or code, text
end

--- One request. body: nil, a string (with content_type), or a table of
-- multipart fields ({name = "text" | {data, filename, content_type}}).
-- Returns status (number), the decoded JSON (or nil), raw body, headers.
function web.request(method, url, body, content_type, timeout)
  local req = http_request.new_from_uri(url)
  req.headers:upsert(":method", method)
  if type(body) == "table" then
    local ct
    body, ct = multipart.encode(body)
    content_type = ct
  end
  if body then req:set_body(body) end
  if content_type then req.headers:upsert("content-type", content_type) end
  local headers, stream = req:go(timeout or 120)
  if not headers then error("request failed: " .. tostring(stream), 2) end
  local raw = assert(stream:get_body_as_string(timeout or 120))
  local decoded = nil
  if (headers:get("content-type") or ""):find("json", 1, true) then decoded = json.decode(raw) end
  return tonumber(headers:get(":status")), decoded, raw, headers
end

--- A multipart file field with the bytes of `path`.
function web.file(path, content_type)
  return {data = assert(read_all(path), "cannot read " .. path), filename = path:match("[^/]*$"),
          content_type = content_type or "image/jpeg"}
end

--- Photo i (1..5) of a bundled person (examples/data/faces).
function web.photo(person, i)
  return ("examples/data/faces/%s/%s_%04d.jpg"):format(person, person, i)
end

return web
