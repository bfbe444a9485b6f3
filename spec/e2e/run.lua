-- End-to-end test of the web demo (`make e2e`): makes an admin and a door
-- token for a fresh gallery (`siamese token add`), starts `siamese serve`
-- on a free port and Debian's chromedriver, then drives the page in
-- headless Chromium over the W3C WebDriver protocol (plain JSON over HTTP,
-- spoken with lua-http's client): without a token the page says it needs
-- one; with the admin token, enroll a person from one photo; with the door
-- token, verify a second photo against the first and identify a third (the
-- gallery list and enrolment then say they need an admin token); back with
-- the admin token, remove the person. Checks what the page shows, that the
-- token stays in the tab's sessionStorage, that the browser reported no
-- Content-Security-Policy violation, and saves a screenshot
-- (build/e2e/page.png). Exits non-zero on failure.
local web = dofile("spec/web_support.lua")
local json = require "siamese.json"
local base64 = require "siamese.app.web.base64"
local image = require "siamese.image"
local page = require "siamese.app.web.page"

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

-- A new token of role for the gallery (`siamese token add --json`).
local function add_token(gallery_path, role)
  local out = sh(("bin/siamese token add --gallery '%s' --role %s --json 2>&1"):format(gallery_path, role))
  local ok, r = pcall(json.decode, out)
  assert(ok and type(r) == "table" and type(r.token) == "string", "siamese token add: " .. out)
  assert(r.token:match("^sm_%x%x%x%x%x%x%x%x_[%w_%-]+$") and #r.token == 55, "token format: " .. r.token)
  return r.token
end

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
  os.remove(gallery_path .. ".tokens")
  local admin = add_token(gallery_path, "admin")
  local door = add_token(gallery_path, "door")
  step("tokens: admin %s, door %s", admin:sub(1, 11), door:sub(1, 11))
  server = web.start("--gallery " .. gallery_path)
  step("server at %s", server.url)
  local status, _, _, headers = web.request("GET", server.url .. "/")
  assert(status == 200, "GET / -> " .. tostring(status))
  assert(headers:get("content-security-policy") == page.csp,
         "the page's Content-Security-Policy: " .. tostring(headers:get("content-security-policy")))

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
  local function clear(css) wd("POST", S .. "/element/" .. find(css) .. "/clear", {}) end
  -- Waits until the gallery list has loaded (data-state ok or error); returns the state and its text.
  local function wait_people(what)
    local deadline = os.time() + 30
    while os.time() < deadline do
      local state = js("const e = document.querySelector('#people'); return e.dataset.state || '';")
      if state == "ok" or state == "error" then return state, text("#people") end
      os.execute("sleep 0.1")
    end
    error("timed out waiting for the gallery list " .. what)
  end
  -- Types a token into the token bar and clicks Use; waits for the gallery list it reloads.
  local function use_token(tok, what)
    js("document.querySelector('#people').dataset.state = 'busy';")
    clear("#token-input")
    type_into("#token-input", tok)
    click("#token-use")
    local state, shown = wait_people("with the " .. what .. " token")
    assert(js("return sessionStorage.getItem('siamese.token');") == tok, "the token is in sessionStorage")
    assert(js("return document.querySelector('#token-input').value;") == "", "the token field is emptied")
    assert(text("#token-current"):find(tok:sub(1, 11), 1, true), "the token bar names the token in use")
    return state, shown
  end
  -- CSP violations the page's script recorded (nil when the script did not run).
  local function csp_violations()
    return js("return Array.isArray(window.__cspViolations) ? JSON.stringify(window.__cspViolations) : null;")
  end

  -- 0. no token yet: the gallery list says the server needs one, the token field has the focus;
  -- the inline script ran and the inline style applied under the Content-Security-Policy
  local state, shown = wait_people("without a token")
  step("people without a token: %s: %s", state, shown)
  assert(state == "error" and shown:find("this server needs an access token", 1, true), "401 message: " .. shown)
  assert(text("#token-status"):find("this server needs an access token", 1, true), "401 message in the token bar")
  assert(js("return document.activeElement && document.activeElement.id;") == "token-input", "token field focused")
  assert(csp_violations() == "[]", "CSP violations: " .. tostring(csp_violations()))
  assert(js("return getComputedStyle(document.body).backgroundColor;") == "rgb(246, 246, 244)",
         "the inline style applies under the CSP")
  assert(js("return getComputedStyle(document.querySelector('#token-form')).display;") == "flex", "token bar styled")

  -- a malformed token is refused by the page itself (never stored)
  type_into("#token-input", "not-a-token")
  click("#token-use")
  assert(text("#token-status"):find("not an access token", 1, true), "malformed token refused: " .. text("#token-status"))
  assert(js("return sessionStorage.getItem('siamese.token');") == json.null, "nothing stored")

  -- the admin token: the (empty) gallery list
  state, shown = use_token(admin, "admin")
  step("people with the admin token: %s: %s", state, shown)
  assert(state == "ok" and shown:find("nobody enrolled yet", 1, true), "people with the admin token: " .. shown)

  local first = abs(web.photo("Colin_Powell", 3))
  local second = abs(web.photo("Colin_Powell", 4))
  local third = abs(web.photo("Colin_Powell", 5))
  local stranger = abs(web.photo("Serena_Williams", 1))

  -- 1. enroll from the first photo (admin token)
  type_into("#enroll-name", "Colin Powell")
  type_into("#enroll-image", first)
  click("#enroll-submit")
  state, shown = wait_result("#enroll-result", "enrollment")
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

  -- switch to the door token: the gallery list needs an admin token now
  state, shown = use_token(door, "door")
  step("people with the door token: %s: %s", state, shown)
  assert(state == "error" and shown == "the gallery list needs an admin token", "403 on the gallery list: " .. shown)

  -- 2. verify the second photo against the first
  type_into("#verify-image1", first)
  type_into("#verify-image2", second)
  click("#verify-submit")
  state, shown = wait_result("#verify-result", "verification")
  step("verify: %s: %s", state, shown:gsub("\n", " | "))
  assert(state == "ok" and shown:find("Same person", 1, true), "verification result: " .. shown)
  local d, t = tonumber(shown:match("distance ([%d.]+)")), tonumber(shown:match("threshold ([%d.]+)"))
  assert(d and t and d <= t, "distance and threshold shown: " .. shown)
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

  -- the door token may not enrol: 403, said in the result box and the token bar
  js("document.querySelector('#enroll-image').value = '';")
  clear("#enroll-name")
  type_into("#enroll-name", "Serena Williams")
  type_into("#enroll-image", stranger)
  click("#enroll-submit")
  state, shown = wait_result("#enroll-result", "an enrolment with the door token")
  step("enroll with the door token: %s: %s", state, shown)
  assert(state == "error" and shown:find("Error 403: this token may not do that", 1, true), "403 shown: " .. shown)
  assert(text("#token-status"):find("this token may not do that (admin: enrol and the gallery list; door: verify and identify)",
                                    1, true), "403 message in the token bar")

  -- 4. back to the admin token: remove the person (the page asks for confirmation first)
  state, shown = use_token(admin, "admin")
  assert(state == "ok" and shown:find("Colin Powell (1)", 1, true), "people with the admin token again: " .. shown)
  assert(not shown:find("Serena", 1, true), "the door token enrolled nobody")
  js("document.querySelector('#people').dataset.state = 'busy';")
  click("#people li.person button.remove")
  local question = wd("GET", S .. "/alert/text")
  assert(question:find("Remove Colin Powell", 1, true), "confirmation: " .. tostring(question))
  wd("POST", S .. "/alert/accept", {})
  state, shown = wait_result("#people-result", "a removal")
  step("remove: %s: %s", state, shown)
  assert(state == "ok" and shown == "Removed Colin Powell", "removal: " .. shown)
  state, shown = wait_people("after the removal")
  assert(state == "ok" and shown:find("nobody enrolled yet", 1, true), "gallery list after the removal: " .. shown)

  -- Forget: the token leaves sessionStorage; the page is back to asking for one
  js("document.querySelector('#people').dataset.state = 'busy';")
  click("#token-forget")
  state, shown = wait_people("after Forget")
  assert(state == "error" and shown:find("this server needs an access token", 1, true), "after Forget: " .. shown)
  assert(js("return sessionStorage.length + localStorage.length + document.cookie.length;") == 0,
         "nothing kept in the browser")

  -- the whole visit: no Content-Security-Policy violation
  local violations = csp_violations()
  assert(violations == "[]", "CSP violations: " .. tostring(violations))
  step("no CSP violation")
  -- and the recorder works: a style attribute added now is refused by the policy and recorded
  js("document.querySelector('h1').setAttribute('style', 'color: rgb(255, 0, 0)');")
  for _ = 1, 50 do
    violations = csp_violations()
    if violations ~= "[]" then break end
    os.execute("sleep 0.1")
  end
  assert(violations:find("style-src", 1, true), "a refused style attribute is recorded: " .. violations)
  assert(js("return getComputedStyle(document.querySelector('h1')).color;") ~= "rgb(255, 0, 0)", "style refused")
  step("a style attribute is refused and recorded: %s", violations)
  assert(server.alive(), "server still up")
  step("passed")
end

local ok, err = xpcall(main, debug.traceback)
cleanup()
if not ok then
  io.stderr:write("e2e: FAILED: ", tostring(err), "\n")
  os.exit(1)
end
