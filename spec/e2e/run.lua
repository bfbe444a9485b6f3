-- End-to-end test of the web demo (`make e2e`): starts `siamese serve` on
-- a free port and Debian's chromedriver, then drives the page in headless
-- Chromium over the W3C WebDriver protocol (plain JSON over HTTP, spoken
-- with lua-http's client): enroll a person from one photo, verify a second
-- photo against the first, identify a third, check what the page shows,
-- and save a screenshot (build/e2e/page.png). Exits non-zero on failure.
local web = dofile("spec/web_support.lua")
local json = require "siamese.json"
local base64 = require "siamese.web.base64"
local image = require "siamese.image"

local CHROMEDRIVER = os.getenv("CHROMEDRIVER") or "/usr/bin/chromedriver"
local CHROMIUM = os.getenv("CHROMIUM") or "/usr/bin/chromium"
local OUT_DIR = "build/e2e"
local ELEMENT = "element-6066-11e4-a52e-4f735466cecf" -- the W3C element reference key

local function step(fmt, ...) io.stdout:write("e2e: ", fmt:format(...), "\n"); io.stdout:flush() end

local function sh(cmd)
  local p = assert(io.popen(cmd))
  local s = p:read("a")
  p:close()
  return s
end

local function free_port()
  local socket = require "cqueues.socket"
  local s = assert(socket.listen{host = "127.0.0.1", port = 0})
  assert(s:listen())
  local _, _, port = s:localname()
  s:close()
  return port
end

local function abs(path) return sh("realpath '" .. path .. "'"):gsub("%s+$", "") end

-- WebDriver: one JSON command; returns the "value" of the answer.
local driver_url
local function wd(method, path, payload)
  local status, r, raw = web.request(method, driver_url .. path, payload and json.encode(payload),
                                     payload and "application/json; charset=utf-8", 120)
  if status ~= 200 or type(r) ~= "table" then
    error(("webdriver %s %s -> %s: %s"):format(method, path, tostring(status), raw:sub(1, 500)), 2)
  end
  return r.value
end

local server, driver_pid, session
local function cleanup()
  if session then pcall(wd, "DELETE", "/session/" .. session) end
  if driver_pid then os.execute("kill " .. driver_pid .. " 2>/dev/null") end
  if server then server.stop() end
end

local function main()
  os.execute("mkdir -p " .. OUT_DIR)
  local gallery_path = OUT_DIR .. "/e2e.gallery"
  os.remove(gallery_path)
  server = web.start("--gallery " .. gallery_path)
  step("server at %s", server.url)

  local dport = free_port()
  driver_pid = tonumber(sh(("exec %s --port=%d >%s/chromedriver.log 2>&1 & echo $!"):format(CHROMEDRIVER, dport, OUT_DIR)))
  driver_url = "http://127.0.0.1:" .. dport
  local ready = false
  for _ = 1, 100 do
    local ok, status, r = pcall(web.request, "GET", driver_url .. "/status", nil, nil, 5)
    if ok and status == 200 and r.value and r.value.ready then ready = true break end
    os.execute("sleep 0.2")
  end
  assert(ready, "chromedriver did not become ready (see " .. OUT_DIR .. "/chromedriver.log)")
  step("chromedriver at %s", driver_url)

  local caps = {capabilities = {alwaysMatch = {browserName = "chrome", ["goog:chromeOptions"] = {
    binary = CHROMIUM,
    args = json.array{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-dev-shm-usage", "--window-size=1200,1000"},
  }}}}
  session = wd("POST", "/session", caps).sessionId
  step("browser session %s", session)
  local S = "/session/" .. session
  wd("POST", S .. "/timeouts", {script = 60000, pageLoad = 60000, implicit = 0})
  wd("POST", S .. "/url", {url = server.url .. "/"})
  assert(wd("GET", S .. "/title"):find("siamese", 1, true), "page title")

  local function find(css)
    return wd("POST", S .. "/element", {using = "css selector", value = css})[ELEMENT]
  end
  local function type_into(css, text) wd("POST", S .. "/element/" .. find(css) .. "/value", {text = text}) end
  local function click(css) wd("POST", S .. "/element/" .. find(css) .. "/click", {}) end
  local function text(css) return wd("GET", S .. "/element/" .. find(css) .. "/text") end
  local function js(script, ...) return wd("POST", S .. "/execute/sync", {script = script, args = json.array{...}}) end
  -- Waits until a result box has left the "busy" state; returns the state and its text.
  local function wait_result(css, what)
    local deadline = os.time() + 120
    while os.time() < deadline do
      local state = js("const e = document.querySelector(arguments[0]); return e.dataset.state || '';", css)
      if state == "ok" or state == "error" then return state, text(css) end
      os.execute("sleep 0.2")
    end
    error("timed out waiting for " .. what)
  end
  local function image_shown(css)
    return js("const i = document.querySelector(arguments[0]); return i ? i.complete && i.naturalWidth : 0;", css)
  end

  local first = abs(web.photo("Colin_Powell", 3))
  local second = abs(web.photo("Colin_Powell", 4))
  local third = abs(web.photo("Colin_Powell", 5))
  local stranger = abs(web.photo("Serena_Williams", 1))

  -- 1. enroll from the first photo
  type_into("#enroll-name", "Colin Powell")
  type_into("#enroll-image", first)
  click("#enroll-submit")
  local state, shown = wait_result("#enroll-result", "enrollment")
  step("enroll: %s: %s", state, shown:gsub("\n", " | "))
  assert(state == "ok", "enrollment failed: " .. shown)
  assert(shown:find("Enrolled Colin Powell", 1, true), "enroll result text")
  assert(image_shown("#enroll-result img") > 0, "enroll picture")
  local people
  for _ = 1, 50 do
    people = text("#people")
    if people:find("Colin Powell", 1, true) then break end
    os.execute("sleep 0.1")
  end
  assert(people:find("Colin Powell (1)", 1, true), "gallery list shows the person: " .. people)

  -- 2. verify the second photo against the first
  type_into("#verify-image1", first)
  type_into("#verify-image2", second)
  click("#verify-submit")
  state, shown = wait_result("#verify-result", "verification")
  step("verify: %s: %s", state, shown:gsub("\n", " | "))
  assert(state == "ok" and shown:find("Same person", 1, true), "verification result: " .. shown)
  local d = tonumber(shown:match("distance ([%d.]+)"))
  assert(d and d <= 0.6, "distance shown")
  assert(image_shown("#verify-result .pair img:nth-child(2)") > 0, "verify pictures")

  -- 3. identify the third photo, then a stranger
  type_into("#identify-image", third)
  click("#identify-submit")
  state, shown = wait_result("#identify-result", "identification")
  step("identify: %s: %s", state, shown:gsub("\n", " | "))
  assert(state == "ok", "identification failed: " .. shown)
  assert(text("#identify-result .face .name") == "Colin Powell", "identified name")
  assert(image_shown("#identify-result img") > 0, "identify picture")
  local shot = OUT_DIR .. "/page.png"
  local png = assert(base64.decode(wd("GET", S .. "/screenshot")))
  local img = assert(image.decode(png), "screenshot is not an image")
  assert(img.width > 600 and img.height > 600, "screenshot size")
  local f = assert(io.open(shot, "wb"))
  f:write(png)
  f:close()
  step("screenshot %s (%dx%d)", shot, img.width, img.height)

  -- the page shows the server's errors too: a stranger is unknown, a text file is refused
  -- (the file input is cleared first: it keeps the previous file otherwise)
  js("document.querySelector('#identify-image').value = '';")
  type_into("#identify-image", stranger)
  click("#identify-submit")
  state, shown = wait_result("#identify-result", "identification of a stranger")
  step("identify stranger: %s: %s", state, shown:gsub("\n", " | "))
  assert(state == "ok" and text("#identify-result .face .name") == "unknown", "stranger is unknown")
  js("document.querySelector('#identify-image').value = '';")
  type_into("#identify-image", abs("README.md"))
  click("#identify-submit")
  state, shown = wait_result("#identify-result", "an error")
  step("identify README.md: %s: %s", state, shown)
  assert(state == "error" and shown:find("Error 415", 1, true), "error shown")
  assert(server.alive(), "server still up")
  step("passed")
end

local ok, err = xpcall(main, debug.traceback)
cleanup()
if not ok then
  io.stderr:write("e2e: FAILED: ", tostring(err), "\n")
  os.exit(1)
end
