-- Hostile traffic against `siamese serve` (started as a subprocess, as in
-- spec/web_spec.lua): malformed, oversized, slow, cut-short and smuggling
-- requests replayed on raw TCP sockets (cqueues). Each gets its JSON 4xx
-- (or, where no answer is possible, a closed connection), and after each
-- the server still answers GET /api/people within 1 s and is idle (its CPU
-- time grows by at most 0.2 s over 1 s; variants of one attack share one
-- such check, to keep the file under 40 s). Short limits keep this quick:
-- --idle-timeout 2, --request-timeout 4, --max-connections 4,
-- --max-upload 100000.
local web = dofile("spec/web_support.lua")
local cqueues = require "cqueues"
local has_gallery = pcall(require, "siamese.gallery")

local MAX_UPLOAD = 100000
local MAX_CONN = 4

-- Runs fn inside a cqueues controller (sockets then yield instead of
-- blocking), re-raising its error (a failed assertion) outside.
local function run(fn)
  local cq = cqueues.new()
  local err
  cq:wrap(function()
    local ok, e = pcall(fn)
    if not ok then err = e end
  end)
  local ok, lerr = cq:loop()
  if err then error(err, 0) end
  assert(ok, lerr)
end

local function attack_specs()
describe("siamese serve under hostile traffic", function()
  local srv, dir

  setup(function()
    local p = assert(io.popen("mktemp -d /tmp/siamese_attack.XXXXXX"))
    dir = p:read("l")
    p:close()
    srv = web.start(("--max-upload %d --max-connections %d --idle-timeout 2 --request-timeout 4 --gallery %s/g.gallery")
      :format(MAX_UPLOAD, MAX_CONN, dir))
  end)

  teardown(function()
    if srv then srv.stop() end
    if dir then os.execute("rm -rf '" .. dir .. "'") end
  end)

  local function log_tail()
    return (web.read_file(srv.err) or ""):sub(-2000)
  end

  -- The server still answers quickly and does not spin.
  local function healthy(what)
    assert.is_true(srv.alive(), what .. ": the server exited\n" .. log_tail())
    local t0 = cqueues.monotime()
    local raw, closed = web.exchange(srv.url, "GET /api/people HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                                     {timeout = 1})
    local status, r = web.parse_response(raw)
    assert.are.equal(200, status, what .. ": GET /api/people afterwards\n" .. log_tail())
    assert.is_true(closed and cqueues.monotime() - t0 < 1, what .. ": answered within 1 s")
    assert.are.equal(0, r.count)
    local c0 = web.cpu_seconds(srv.pid)
    cqueues.sleep(1)
    local c1 = web.cpu_seconds(srv.pid)
    assert.is_true(c1 - c0 <= 0.2, ("%s: the server used %.2f s of CPU in 1 s while idle"):format(what, c1 - c0))
  end

  -- One exchange: the reply's status and JSON error (matching `pattern`),
  -- the connection closed by the server; then the health check (not for
  -- opts.variant: a variant of the attack checked just before).
  local function expect(what, data, status, pattern, opts)
    local raw, closed = web.exchange(srv.url, data, opts)
    local s, r = web.parse_response(raw)
    assert.are.equal(status, s, what .. ": got " .. ("%q"):format(raw:sub(1, 300)))
    assert.is_table(r, what .. ": a JSON body")
    if pattern then assert.matches(pattern, r.error, 1, true) end
    assert.is_true(closed, what .. ": the server closes the connection")
    if not (opts and opts.variant) then healthy(what) end
    return raw, r
  end

  local function post(cl, extra, body)
    return ("POST /api/identify HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=B\r\n%s%s\r\n%s")
      :format(cl and ("Content-Length: " .. cl .. "\r\n") or "", extra or "", body or "")
  end

  it("answers Content-Length it cannot use with 400 or 413, and survives", function()
    run(function()
      expect("negative Content-Length", post("-1"), 400, "invalid Content-Length '-1'")
      expect("non-numeric Content-Length", post("abc"), 400, "invalid Content-Length 'abc'")
      expect("huge Content-Length", post(("9"):rep(30)), 413, "exceeds the limit of 100000 bytes")
      expect("Content-Length over --max-upload", post(MAX_UPLOAD + 1), 413, "exceeds the limit of 100000 bytes", {variant = true})
      expect("two Content-Length", post("5", "Content-Length: 6\r\n", "hello"), 400, "more than one Content-Length", {variant = true})
      expect("POST without a length", post(nil), 411, "Content-Length required", {variant = true})
      expect("body over --max-upload, chunked", post(nil, "Transfer-Encoding: chunked\r\n",
             ("8000\r\n" .. ("x"):rep(0x8000) .. "\r\n"):rep(4) .. "0\r\n\r\n"), 413, "exceeds the limit")
    end)
  end)

  it("survives clients that leave in the middle of a request (CVE-2023-4540 in lua-http 0.4)", function()
    run(function()
      expect("half-sent body, then shutdown", post(1000, nil, "--B\r\n"), 400,
             "connection closed in the middle of the request body", {half_close = true})
      expect("headers, then shutdown", "POST /api/identify HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n", 400,
             "connection closed in the middle of the request header section", {half_close = true})
      -- the client closes outright (curl -m 3 in the middle of an upload): nobody to answer
      web.exchange(srv.url, post(50000, nil, ("x"):rep(20000)), {abort = true})
      healthy("half-sent body, then close")
      web.exchange(srv.url, "POST /api/identify HTTP/1.1\r\nHost: localhost\r\n", {abort = true})
      healthy("half-sent headers, then close")
      web.exchange(srv.url, post(nil, "Transfer-Encoding: chunked\r\n", "100\r\nabc"), {abort = true})
      web.exchange(srv.url, post(nil, "Transfer-Encoding: chunked\r\n", "100\r\nabc"), {half_close = true})
      healthy("half-sent chunk, then close")
      -- lua-http 0.4 issue #233: a request, an extra CRLF, then close made its server spin
      local raw = web.exchange(srv.url, "GET /api/people HTTP/1.1\r\nHost: localhost\r\n\r\n\r\n", {half_close = true})
      assert.are.equal(200, (web.parse_response(raw)))
      healthy("a request, an extra CRLF, then close")
    end)
  end)

  it("refuses heads over the limits with 414 and 431", function()
    run(function()
      expect("1000 headers", "GET /api/people HTTP/1.1\r\nHost: localhost\r\n" .. ("X-A: b\r\n"):rep(1000) .. "\r\n", 431,
             "more than 100 request headers")
      expect("1 MB header", "GET /api/people HTTP/1.1\r\nHost: localhost\r\nX-A: " .. ("a"):rep(1024 * 1024) .. "\r\n\r\n",
             431, "request header section over 16384 bytes")
      expect("10 KB request line", "GET /" .. ("a"):rep(10240) .. " HTTP/1.1\r\nHost: localhost\r\n\r\n", 414,
             "request line over 8192 bytes")
    end)
  end)

  it("refuses malformed requests with 400", function()
    run(function()
      expect("Transfer-Encoding with Content-Length (smuggling)",
             post("5", "Transfer-Encoding: chunked\r\n", "0\r\n\r\n"), 400, "request smuggling")
      expect("a transfer coding other than chunked", post(nil, "Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n"),
             400, "unsupported transfer coding", {variant = true})
      healthy("transfer codings")
      expect("a chunk size that is not hex", post(nil, "Transfer-Encoding: chunked\r\n", "zz\r\nab\r\n0\r\n\r\n"),
             400, "bad chunk size line")
      expect("a chunk size over 8 hex digits", post(nil, "Transfer-Encoding: chunked\r\n", "1ffffffff\r\n"),
             400, "too large", {variant = true})
      expect("a negative chunk size", post(nil, "Transfer-Encoding: chunked\r\n", "-1\r\n"), 400, "bad chunk size", {variant = true})
      expect("chunk data longer than its size", post(nil, "Transfer-Encoding: chunked\r\n", "2\r\nabc\r\n0\r\n\r\n"),
             400, "chunk data not followed by CRLF", {variant = true})
      healthy("chunk sizes")
      expect("HTTP/1.1 without Host", "GET /api/people HTTP/1.1\r\n\r\n", 400, "missing Host header", {variant = true})
      expect("two Host headers", "GET /api/people HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "more than one Host")
      expect("an invalid method", "G(T /api/people HTTP/1.1\r\nHost: localhost\r\n\r\n", 400, "invalid method")
      expect("no HTTP version", "GET /api/people\r\nHost: localhost\r\n\r\n", 400, "malformed request line", {variant = true})
      expect("HTTP/2.0 in a request line", "GET /api/people HTTP/2.0\r\nHost: localhost\r\n\r\n", 400, "unsupported HTTP version", {variant = true})
      expect("an authority-form target", "GET example.com:80 HTTP/1.1\r\nHost: localhost\r\n\r\n", 400, "invalid request target", {variant = true})
      healthy("request lines")
      expect("NUL in a header value", "GET /api/people HTTP/1.1\r\nHost: localhost\r\nX-A: a\0b\r\n\r\n", 400,
             "NUL or control character in header 'X-A'")
      expect("NUL in the request line", "GET /api/\0people HTTP/1.1\r\nHost: localhost\r\n\r\n", 400, "control character", {variant = true})
      expect("space before the colon", "GET /api/people HTTP/1.1\r\nHost : t\r\n\r\n", 400, "malformed header line", {variant = true})
      expect("obs-fold", "GET /api/people HTTP/1.1\r\nHost: localhost\r\nX-A: a\r\n b\r\n\r\n", 400, "line folding", {variant = true})
      expect("bare LF", "GET /api/people HTTP/1.1\nHost: t\n\n", 400, "bare LF", {variant = true})
      healthy("header syntax")
      -- pipelined: a good request, then garbage; the first is answered, then the 400
      local raw = expect("pipelined garbage", "GET /api/people HTTP/1.1\r\nHost: localhost\r\n\r\n\1\2\255garbage\r\n\r\n",
                         200)
      local _, _, _, _, next_at = web.parse_response(raw)
      local rest = raw:sub(next_at)
      assert.are.equal(400, web.parse_response(rest), rest)
    end)
  end)

  it("answers unusual but valid requests", function()
    run(function()
      local status, r = web.parse_response((web.exchange(srv.url, "GET /api/people HTTP/1.0\r\n\r\n")))
      assert.are.equal(200, status) -- HTTP/1.0 needs no Host (and the connection closes after)
      assert.are.equal(0, r.count)
      status = web.parse_response((web.exchange(srv.url,
        "GET http://127.0.0.1/api/people?x=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")))
      assert.are.equal(200, status) -- absolute-form target
      status, r = web.parse_response((web.exchange(srv.url, "FOO /api/people HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")))
      assert.are.equal(405, status) -- a valid token the app does not route
      assert.matches("method FOO not allowed", r.error, 1, true)
      status, r = web.parse_response((web.exchange(srv.url, post(nil, "Transfer-Encoding: chunked\r\nConnection: close\r\n",
        "3;ext=1\r\nabc\r\n2\r\n\r\n\r\n0\r\nTrailer: x\r\n\r\n"))))
      assert.are.equal(400, status) -- read in full, then refused by the app: a chunked body is parsed
      assert.matches("no opening boundary", r.error, 1, true)
      -- keep-alive: two requests on one connection, both answered
      local raw = web.exchange(srv.url, "GET /api/people HTTP/1.1\r\nHost: localhost\r\n\r\n"
                                          .. "GET /nowhere HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
      local _, _, _, _, at = web.parse_response(raw)
      assert.are.equal(200, (web.parse_response(raw)))
      assert.are.equal(404, (web.parse_response(raw:sub(at))))
      healthy("valid requests")
    end)
  end)

  it("times out slow clients with 408 without blocking others", function()
    run(function()
      -- slow-loris: the head trickles at one byte per second; others are served meanwhile
      local s = web.connect(srv.url)
      local head = "GET /api/people HTTP/1.1\r\nHost: localhost\r\n\r\n"
      local t0 = cqueues.monotime()
      local got = ""
      for i = 1, #head do
        if not s:xwrite(head:sub(i, i), "n", 1) then break end
        local t = cqueues.monotime()
        local raw = web.exchange(srv.url, "GET /api/people HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                                 {timeout = 1})
        assert.are.equal(200, web.parse_response(raw), "another client during the slow-loris")
        assert.is_true(cqueues.monotime() - t < 1)
        local chunk = s:xread(-4096, math.max(0, 1 - (cqueues.monotime() - t)))
        if chunk then got = got .. chunk break end
      end
      local rest = s:xread("*a", 2)
      s:close()
      got = got .. (rest or "")
      local status, r = web.parse_response(got)
      assert.are.equal(408, status, got)
      assert.matches("request line not received in time", r.error, 1, true)
      assert.is_true(cqueues.monotime() - t0 < 4, "refused at the 2 s head deadline")
      healthy("slow-loris")
      -- a body that stops coming
      expect("a body that stalls", post(1000, nil, "--B\r\n"), 408, "request body not received in time",
             {timeout = 4})
    end)
  end)

  it("answers 503 beyond --max-connections and recovers", function()
    run(function()
      local held = {}
      for i = 1, MAX_CONN do held[i] = web.connect(srv.url) end
      cqueues.sleep(0.1) -- let the server accept them
      local raw, closed = web.exchange(srv.url, "GET /api/people HTTP/1.1\r\nHost: localhost\r\n\r\n")
      local status, r = web.parse_response(raw)
      assert.are.equal(503, status, raw)
      assert.matches("too many connections (the limit is 4)", r.error, 1, true)
      assert.is_true(closed)
      for _, s in ipairs(held) do s:close() end
      cqueues.sleep(0.1)
      healthy("connection cap")
    end)
  end)
end)
end

if has_gallery then
  attack_specs()
else
  describe("siamese serve under hostile traffic", function() pending("needs siamese.gallery") end)
end
