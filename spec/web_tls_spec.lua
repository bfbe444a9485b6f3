-- Specs of siamese.app.web.tls: server contexts from PEM files (chains, key
-- checks, refusals), self-signed certificates, and real handshakes over
-- cqueues sockets on 127.0.0.1 (a verifying client, a plain-HTTP client, a
-- silent client, a client that does not trust the certificate).
assert(require("siamese.app.web.deps").setup())
local tls = require "siamese.app.web.tls"
local cqueues = require "cqueues"
local socket = require "cqueues.socket"
local context = require "openssl.ssl.context"
local ssl_new = require("openssl.ssl").new
local x509 = require "openssl.x509"
local store_new = require("openssl.x509.store").new
local verify_param = require "openssl.x509.verify_param"
local support = dofile("spec/support.lua")

local q = support.q

local function chmod(mode, path)
  assert(os.execute("chmod " .. mode .. " " .. q(path)))
end

-- A CA (CA:TRUE) and a server certificate it issues, with luaossl: returns
-- leaf_pem, leaf_key_pem, ca_pem.
local function ca_and_leaf(host)
  local pkey = require "openssl.pkey"
  local name = require "openssl.x509.name"
  local altname = require "openssl.x509.altname"
  local now = os.time()
  local function make(cn, key, issuer_name, issuer_key, ca, serial)
    local c = x509.new()
    c:setVersion(3)
    c:setSerial(serial)
    local n = name.new()
    n:add("CN", cn)
    c:setSubject(n)
    c:setIssuer(issuer_name or n)
    c:setLifetime(now - 60, now + 3600)
    c:setBasicConstraints{CA = ca}
    c:setBasicConstraintsCritical(true)
    if not ca then
      local a = altname.new()
      a:add("IP", host)
      c:setSubjectAlt(a)
    end
    c:setPublicKey(key)
    c:sign(issuer_key or key, "sha256")
    return c, n
  end
  local ca_key = pkey.new{type = "EC", curve = "prime256v1"}
  local ca, ca_name = make("siamese spec CA", ca_key, nil, nil, true, 1)
  local leaf_key = pkey.new{type = "EC", curve = "prime256v1"}
  local leaf = make(host, leaf_key, ca_name, ca_key, false, 2)
  return leaf:toPEM(), leaf_key:toPEM("private"), ca:toPEM()
end

-- A client context that trusts only `trusted_pem` (verify the peer).
local function client_context(trusted_pem, opts)
  local ctx = context.new("TLS", false)
  local store = store_new()
  store:add(x509.new(trusted_pem, "PEM"))
  ctx:setStore(store)
  ctx:setVerify(context.VERIFY_PEER)
  if opts and opts.tls12 then ctx:setOptions(context.OP_NO_TLSv1_3) end
  return ctx
end

-- Runs a server coroutine (accepting `n` connections on 127.0.0.1:0, each
-- handled by `serve(sock)`) and `client(port)` in one cqueues loop; returns
-- when both are done (raising what either raised).
local function run(n, serve, client)
  local cq = cqueues.new()
  local srv = socket.listen{host = "127.0.0.1", port = 0}
  assert(srv:listen())
  local _, _, port = srv:localname()
  cq:wrap(function()
    for _ = 1, n do
      local sock = assert(srv:accept(10))
      serve(sock)
      sock:close()
    end
  end)
  cq:wrap(function() client(port) end)
  local ok, err = cq:loop(60)
  srv:close()
  assert(ok, err)
  assert(cq:empty(), "the loop did not finish")
end

-- A TLS client connection to 127.0.0.1:port verifying the server for
-- `host` (an IP): the socket, or nil and the error.
local function tls_connect(port, ctx, host)
  local c = socket.connect{host = "127.0.0.1", port = port}
  c:setmode("b", "b")
  c:onerror(function(_, _, why) return why end)
  local ssl = ssl_new(ctx)
  local params = verify_param.new()
  params:setIP(host or "127.0.0.1")
  ssl:setParam(params)
  local ok, err = c:starttls(ssl, 5)
  if not ok then c:close() return nil, err end
  return c, ssl
end

describe("siamese.app.web.tls", function()
  local dir, cert_path, key_path, cert_pem, key_pem
  before_each(function()
    dir = support.temp_dir("web_tls")
    cert_path, key_path = dir .. "/cert.pem", dir .. "/key.pem"
    cert_pem, key_pem = tls.self_signed{hosts = {"127.0.0.1", "localhost"}, days = 1}
    support.write_file(cert_path, cert_pem)
    support.write_file(key_path, key_pem)
    chmod("600", key_path)
  end)
  after_each(function() os.execute("rm -rf " .. q(dir)) end)

  describe("self_signed", function()
    it("makes an EC P-256 certificate for the names and addresses given", function()
      local cert = x509.new(cert_pem, "PEM")
      local text = cert:text()
      assert.truthy(text:find("DNS:localhost", 1, true), text)
      assert.truthy(text:find("IP Address:127.0.0.1", 1, true), text)
      assert.truthy(text:find("CN%s*=%s*127%.0%.0%.1") or text:find("CN=127.0.0.1", 1, true), text)
      assert.truthy(text:find("prime256v1", 1, true) or text:find("P-256", 1, true), text)
      assert.truthy(text:find("CA:FALSE", 1, true), text)
      local not_before, not_after = cert:getLifetime()
      assert.truthy(not_before <= os.time() and not_before >= os.time() - 3600)
      support.near(not_after - os.time(), 86400, 5, "validity")
      assert.matches("^%-%-%-%-%-BEGIN PRIVATE KEY%-%-%-%-%-\n", key_pem)
      assert.truthy(cert:isIssuedBy(cert)) -- self-signed
      -- a fresh key and serial each time
      local cert2, key2 = tls.self_signed{hosts = {"::1"}}
      assert.are_not.equal(key_pem, key2)
      local c2 = x509.new(cert2, "PEM")
      assert.are_not.equal(tostring(cert:getSerial()), tostring(c2:getSerial()))
      assert.truthy(c2:text():find("IP Address:0:0:0:0:0:0:0:1", 1, true))
      support.near(select(2, c2:getLifetime()) - os.time(), 30 * 86400, 5, "default validity")
    end)

    it("raises on misuse", function()
      support.assert_error(function() tls.self_signed() end, "bad argument #1 to 'tls.self_signed'")
      support.assert_error(function() tls.self_signed{hosts = {}} end, "bad argument #1 to 'tls.self_signed'", "hosts")
      support.assert_error(function() tls.self_signed{hosts = {"a b"}} end, "hosts[1]")
      support.assert_error(function() tls.self_signed{hosts = {"x"}, days = 0} end, "days")
      support.assert_error(function() tls.self_signed{hosts = {"x"}, not_before = 10, not_after = 5} end, "not_before")
    end)
  end)

  describe("context", function()
    it("loads a certificate and its key: TLS 1.2 at least, no compression, server cipher order", function()
      local ctx, err = tls.context(cert_path, key_path)
      assert.is_nil(err)
      assert.are.equal("SSL_CTX*", getmetatable(ctx).__name) -- an openssl.ssl.context
      local opts = ctx:getOptions()
      for _, flag in ipairs{"OP_NO_SSLv3", "OP_NO_TLSv1", "OP_NO_TLSv1_1", "OP_NO_COMPRESSION", "OP_CIPHER_SERVER_PREFERENCE"} do
        assert.are.equal(context[flag], opts & context[flag], flag)
      end
      assert.are.equal(0, opts & context.OP_NO_TLSv1_2)
      assert.are.equal(0, opts & context.OP_NO_TLSv1_3)
      assert.are.equal(cert_pem, ctx:getCertificate():toPEM())
    end)

    it("adds the intermediate certificates after the first as the chain", function()
      local leaf, leaf_key, ca = ca_and_leaf("127.0.0.1")
      support.write_file(cert_path, leaf .. ca)
      support.write_file(key_path, leaf_key)
      local ctx = assert(tls.context(cert_path, key_path))
      local chain = ctx:getCertificateChain()
      local n = 0
      for _, c in pairs(chain) do
        n = n + 1
        assert.are.equal(ca, c:toPEM())
      end
      assert.are.equal(1, n)
      -- in the wrong order: refused, saying what to do
      support.write_file(cert_path, ca .. leaf)
      local none, err = tls.context(cert_path, key_path)
      assert.is_nil(none)
      assert.matches("did not issue certificate 1", err)
      assert.matches("put the server's certificate first", err)
    end)

    it("refuses missing, unreadable, garbage and swapped files with a message", function()
      local function refused(c, k, ...)
        local ctx, err = tls.context(c, k)
        assert.is_nil(ctx)
        assert.are.equal("string", type(err))
        for _, text in ipairs{...} do
          assert.truthy(err:find(text, 1, true), "'" .. err .. "' does not contain '" .. text .. "'")
        end
      end
      refused(dir .. "/none.pem", key_path, dir .. "/none.pem", "No such file")
      refused(cert_path, dir .. "/none.pem", dir .. "/none.pem", "No such file")
      refused(dir, key_path, dir, "cannot read the certificate")
      support.write_file(dir .. "/garbage.pem", "hello, not a certificate\n")
      refused(dir .. "/garbage.pem", key_path, "garbage.pem", "no certificate in it")
      support.write_file(dir .. "/bad.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
      refused(dir .. "/bad.pem", key_path, "bad.pem", "certificate 1 is not valid PEM")
      -- a truncated certificate: refused before luaossl parses it (its error path reads freed memory)
      local b64 = require "siamese.app.web.base64"
      local der = b64.decode((cert_pem:match("CERTIFICATE%-%-%-%-%-(.-)%-%-%-%-%-END"):gsub("%s", "")))
      support.write_file(dir .. "/cut.pem", "-----BEGIN CERTIFICATE-----\n" .. b64.encode(der:sub(1, #der - 10))
        .. "\n-----END CERTIFICATE-----\n")
      refused(dir .. "/cut.pem", key_path, "cut.pem", "certificate 1 is not valid PEM (malformed DER)")
      support.write_file(dir .. "/empty.pem", "")
      refused(dir .. "/empty.pem", key_path, "no certificate in it")
      -- the key file: garbage, a certificate, a damaged key
      local function key_file(name, content)
        local p = dir .. "/" .. name
        support.write_file(p, content)
        chmod("600", p)
        return p
      end
      refused(cert_path, key_file("k1.pem", "garbage\n"), "k1.pem", "no private key in it")
      refused(cert_path, key_file("k2.pem", cert_pem), "holds a certificate, not a private key")
      refused(key_path, key_path, "holds a private key, not a certificate")
      refused(cert_path, key_file("k3.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
              "k3.pem", "not a valid private key")
      refused(cert_path, key_file("k4.pem", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"),
              "k4.pem", "encrypted")
    end)

    it("refuses a key that is not the certificate's", function()
      local _, other_ec = tls.self_signed{hosts = {"localhost"}}
      support.write_file(key_path, other_ec)
      local ctx, err = tls.context(cert_path, key_path)
      assert.is_nil(ctx)
      assert.matches("does not match the certificate", err)
      -- a key of another type (RSA for an EC certificate)
      local rsa = require("openssl.pkey").new{type = "RSA", bits = 2048}
      support.write_file(key_path, rsa:toPEM("private"))
      ctx, err = tls.context(cert_path, key_path)
      assert.is_nil(ctx)
      assert.matches("does not match the certificate", err)
    end)

    it("refuses a key file that group or others may read, like ssh", function()
      for _, mode in ipairs{"640", "604", "644", "660"} do
        chmod(mode, key_path)
        local ctx, err = tls.context(cert_path, key_path)
        assert.is_nil(ctx, mode)
        assert.matches("too open", err)
        assert.truthy(err:find("chmod 600 " .. key_path, 1, true), err)
      end
      chmod("400", key_path)
      assert.truthy(tls.context(cert_path, key_path))
    end)

    it("refuses an expired or not yet valid certificate", function()
      local now = os.time()
      local old, old_key = tls.self_signed{hosts = {"127.0.0.1"}, not_before = now - 10 * 86400, not_after = now - 86400}
      support.write_file(cert_path, old)
      support.write_file(key_path, old_key)
      local ctx, err = tls.context(cert_path, key_path)
      assert.is_nil(ctx)
      assert.matches("expired on %d%d%d%d%-%d%d%-%d%d", err)
      local early, early_key = tls.self_signed{hosts = {"127.0.0.1"}, not_before = now + 86400, not_after = now + 10 * 86400}
      support.write_file(cert_path, early)
      support.write_file(key_path, early_key)
      ctx, err = tls.context(cert_path, key_path)
      assert.is_nil(ctx)
      assert.matches("is not valid before", err)
    end)

    it("raises on misuse", function()
      support.assert_error(function() tls.context() end, "bad argument #1 to 'tls.context'")
      support.assert_error(function() tls.context(cert_path, 42) end, "bad argument #2 to 'tls.context'")
    end)
  end)

  describe("wrap", function()
    local ctx
    before_each(function() ctx = assert(tls.context(cert_path, key_path)) end)

    -- serves one line back over TLS; records wrap's results
    local function echo_server(results)
      return function(sock)
        local ok, err = tls.wrap(sock, ctx, 3)
        results[#results + 1] = {ok = ok, err = err}
        if not ok then return end
        sock:setmode("b", "b")
        sock:onerror(function(_, _, why) return why end)
        local line = sock:read("*l")
        if line then
          sock:write("echo: " .. line .. "\n")
          sock:flush()
        end
      end
    end

    it("completes a handshake that a verifying client accepts (TLS 1.3 and 1.2); the line round-trips", function()
      local results, got = {}, {}
      run(2, echo_server(results), function(port)
        for i, opts in ipairs{{}, {tls12 = true}} do
          local c, ssl = tls_connect(port, client_context(cert_pem, opts))
          assert(c, ssl)
          assert.are.equal(0, ssl:getVerifyResult())
          got[i] = {version = ssl:getVersion(), cipher = ssl:getCipherInfo().name}
          assert(c:write("hello over tls\n"))
          assert(c:flush())
          got[i].line = c:read("*l")
          c:close()
        end
      end)
      assert.are.same({{ok = true}, {ok = true}}, results)
      assert.are.equal("echo: hello over tls", got[1].line)
      assert.are.equal("echo: hello over tls", got[2].line)
      assert.are.equal(0x0304, got[1].version) -- TLS 1.3
      assert.are.equal(0x0303, got[2].version) -- TLS 1.2
      assert.matches("^ECDHE%-ECDSA%-", got[2].cipher)
      assert.truthy(got[2].cipher:find("GCM", 1, true) or got[2].cipher:find("CHACHA20", 1, true), got[2].cipher)
    end)

    it("sends the intermediate certificates: a client trusting only the CA verifies the server", function()
      local leaf, leaf_key, ca = ca_and_leaf("127.0.0.1")
      support.write_file(cert_path, leaf .. ca)
      support.write_file(key_path, leaf_key)
      ctx = assert(tls.context(cert_path, key_path))
      local results, line = {}, nil
      run(1, echo_server(results), function(port)
        local c, ssl = assert(tls_connect(port, client_context(ca)))
        assert.are.equal(0, ssl:getVerifyResult())
        c:write("chain\n")
        c:flush()
        line = c:read("*l")
        c:close()
      end)
      assert.are.same({{ok = true}}, results)
      assert.are.equal("echo: chain", line)
    end)

    it("returns nil and a message for a client speaking plain HTTP, at once", function()
      local results, answer = {}, nil
      local t0 = cqueues.monotime()
      run(1, echo_server(results), function(port)
        local c = socket.connect{host = "127.0.0.1", port = port}
        c:setmode("b", "b")
        c:onerror(function(_, _, why) return why end)
        c:write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        c:flush()
        answer = c:read("*a", 5)
        c:close()
      end)
      assert.is_nil(results[1].ok)
      assert.matches("plain HTTP", results[1].err)
      assert.truthy(cqueues.monotime() - t0 < 2.5)
      assert.is_falsy(answer and answer:find("HTTP/1.1 200", 1, true))
    end)

    it("gives up on a silent client after the timeout, on one that sends garbage, on one that leaves", function()
      local results = {}
      local took
      run(3, function(sock)
        local t0 = cqueues.monotime()
        local ok, err = tls.wrap(sock, ctx, 0.5)
        took = took or cqueues.monotime() - t0
        results[#results + 1] = {ok = ok, err = err}
      end, function(port)
        local c = socket.connect{host = "127.0.0.1", port = port}
        assert(c:connect(5))
        cqueues.sleep(1.5) -- says nothing
        c:close()
        local g = socket.connect{host = "127.0.0.1", port = port}
        g:setmode("b", "b")
        g:onerror(function(_, _, why) return why end)
        g:write(string.rep("\22\3\1\0\5garbage", 50))
        g:flush()
        g:read("*a", 3)
        g:close()
        local l = socket.connect{host = "127.0.0.1", port = port}
        assert(l:connect(5))
        l:close()
      end)
      -- the timeout, before the client's 1.5 s of silence were over
      assert.is_nil(results[1].ok)
      assert.matches("no complete handshake within 0.5 s", results[1].err)
      assert.truthy(took >= 0.45, tostring(took))
      assert.is_nil(results[3].ok)
      assert.matches("closed the connection during the handshake", results[3].err)
      assert.is_nil(results[2].ok)
      assert.are.equal("string", type(results[2].err))
      assert.truthy(#results[2].err > 0)
    end)

    it("fails for both sides when the client does not trust the certificate or the address", function()
      local results, errs = {}, {}
      local other = tls.self_signed{hosts = {"127.0.0.1"}}
      run(2, echo_server(results), function(port)
        local c, err = tls_connect(port, client_context(other))
        assert.is_nil(c)
        errs[1] = err
        c, err = tls_connect(port, client_context(cert_pem), "10.1.2.3") -- not in the certificate
        assert.is_nil(c)
        errs[2] = err
      end)
      assert.are.equal(2, #results)
      for i = 1, 2 do
        assert.is_nil(results[i].ok)
        assert.are.equal("string", type(results[i].err))
        assert.truthy(#results[i].err > 0)
        assert.truthy(errs[i])
      end
    end)

    it("puts the socket's error handler back", function()
      local seen
      run(1, function(sock)
        local mine = function(_, _, why) return why end
        sock:onerror(mine)
        tls.wrap(sock, ctx, 0.2)
        seen = sock:onerror() == mine
      end, function(port)
        local c = socket.connect{host = "127.0.0.1", port = port}
        c:connect(5)
        cqueues.sleep(0.5)
        c:close()
      end)
      assert.is_true(seen)
    end)

    it("raises on misuse", function()
      support.assert_error(function() tls.wrap(nil, ctx) end, "bad argument #1 to 'tls.wrap'")
      support.assert_error(function() tls.wrap(socket.pair(), "ctx") end, "bad argument #2 to 'tls.wrap'")
      support.assert_error(function() tls.wrap(socket.pair(), ctx, -1) end, "bad argument #3 to 'tls.wrap'")
    end)
  end)
end)
