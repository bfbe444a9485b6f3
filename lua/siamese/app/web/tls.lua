--- siamese.app.web.tls: HTTPS for `siamese serve` (luaossl contexts, cqueues
-- sockets).
--
--   local tls = require "siamese.app.web.tls"
--   local ctx, err = tls.context("/etc/siamese/cert.pem", "/etc/siamese/key.pem")
--   if not ctx then io.stderr:write(err, "\n") os.exit(1) end
--   -- in the cqueues loop, for each accepted socket:
--   local ok, why = tls.wrap(sock, ctx, 10)
--   if not ok then log(peer .. " TLS handshake failed: " .. why) sock:close() return end
--   -- then read and write sock as before (siamese.app.web.http1)
--
--   -- a throwaway certificate, for tests and a quick start:
--   local cert_pem, key_pem = tls.self_signed{hosts = {"127.0.0.1", "localhost"}, days = 1}
--
-- tls.context loads the certificate chain (PEM: the server's certificate
-- first, then the intermediate certificates, as nginx's ssl_certificate
-- wants) and its private key (PEM, unencrypted; mode 0600 or stricter:
-- like ssh, a key that group or others may read is refused), and checks
-- what a client would otherwise find out at the first handshake: every
-- certificate is valid now (not expired, not in the future), each one is
-- issued by the next, and the key belongs to the first one. Protocols:
-- TLS 1.2 and 1.3 (SSL 3, TLS 1.0 and 1.1 are off); no compression;
-- TLS 1.2 ciphers are ECDHE with AES-GCM or ChaCha20-Poly1305 only (forward
-- secrecy, AEAD), in the server's order of preference; TLS 1.3 keeps
-- OpenSSL's suites. The key may be EC or RSA.
--
-- Errors follow the module's rule: misuse (an argument of the wrong type)
-- raises; expected failures (a missing, unreadable or malformed file, a key
-- that does not match, an expired certificate, a failed handshake) return
-- nil, message.
local tls = {}

tls.HANDSHAKE_TIMEOUT = 10      -- seconds tls.wrap waits by default
tls.MAX_FILE = 1024 * 1024      -- bytes: a PEM file larger than this is refused
-- TLS 1.2 cipher suites (TLS 1.3 ones are set apart by OpenSSL and all good):
-- the "intermediate" list of Mozilla's server-side TLS guidelines without
-- DHE (which would need DH parameters).
tls.CIPHERS = table.concat({
  "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
}, ":")

local function need(name)
  local ok, mod = pcall(require, name)
  if not ok then
    return nil, "TLS needs luaossl (Debian: apt-get install lua-luaossl): " .. tostring(mod):match("^[^\n]*")
  end
  return mod
end

local function argcheck(cond, n, fname, msg)
  if not cond then error(("bad argument #%d to '%s' (%s)"):format(n, fname, msg), 3) end
end

-- The text of an OpenSSL error raised by luaossl, without the Lua position.
local function why(err)
  err = tostring(err):gsub("^[^:]*%.lua:%d+: ", "")
  return err
end

local function read_file(path, what)
  local f, err = io.open(path, "rb")
  if not f then return nil, ("%s: cannot read %s: %s"):format(path, what, tostring(err):gsub("^" .. path:gsub("%p", "%%%0") .. ": ", "")) end
  local data, rerr = f:read(tls.MAX_FILE + 1)
  f:close()
  if data == nil and rerr then return nil, ("%s: cannot read %s: %s"):format(path, what, tostring(rerr)) end
  data = data or ""
  if #data > tls.MAX_FILE then return nil, ("%s: %s larger than %d bytes"):format(path, what, tls.MAX_FILE) end
  return data
end

local function utc(t) return os.date("!%Y-%m-%d %H:%M:%S UTC", math.floor(t)) end

local function subject_of(cert)
  local ok, s = pcall(function() return tostring(cert:getSubject()) end)
  return ok and s or "?"
end

-- Whether der is one well-formed DER value (tag, definite length, and
-- the same for what constructed values hold, exactly to their ends).
local function der_ok(der, pos, stop, depth)
  if depth > 12 then return false end
  while pos <= stop do
    local tag = der:byte(pos)
    local len = der:byte(pos + 1)
    if not tag or not len or tag & 0x1f == 0x1f then return false end -- (high tag numbers: not in keys or certificates)
    pos = pos + 2
    if len >= 0x80 then
      local n = len - 0x80
      if n == 0 or n > 4 or pos + n - 1 > stop then return false end
      len = 0
      for i = 0, n - 1 do len = len * 256 + der:byte(pos + i) end
      pos = pos + n
    end
    local last = pos + len - 1
    if last > stop then return false end
    if tag & 0x20 ~= 0 and not der_ok(der, pos, last, depth + 1) then return false end
    pos = last + 1
  end
  return true
end

-- Checks the base64 body of a PEM block and its DER structure before it
-- reaches luaossl: Debian's luaossl (20220711) formats OpenSSL's error
-- with a string ERR_clear_error has already freed (a use after free
-- AddressSanitizer reports), so malformed data must not get that far.
-- true, or nil and a reason.
local function pem_ok(block)
  local body = block:gsub("%-%-%-%-%-[^\n]*%-%-%-%-%-", ""):gsub("[%w%-]+:[^\n]*\n", ""):gsub("%s", "")
  if body == "" or not body:match("^[%w+/]+=?=?$") or #body % 4 ~= 0 then return nil, "not base64" end
  local der = require("siamese.app.web.base64").decode(body)
  if not der or #der < 2 or der:byte(1) ~= 0x30 or not der_ok(der, 1, #der, 0) then
    return nil, "malformed DER"
  end
  return true
end

-- The certificates in a PEM text (a list of openssl.x509), or nil, message.
local function parse_chain(x509, text, path)
  local certs = {}
  for block in text:gmatch("%-%-%-%-%-BEGIN CERTIFICATE%-%-%-%-%-.-%-%-%-%-%-END CERTIFICATE%-%-%-%-%-") do
    local ok, cert = pem_ok(block)
    if ok then ok, cert = pcall(x509.new, block, "PEM") end
    if not ok then
      return nil, ("%s: certificate %d is not valid PEM (%s)"):format(path, #certs + 1, why(cert))
    end
    certs[#certs + 1] = cert
  end
  if #certs == 0 then
    if text:find("PRIVATE KEY%-%-%-%-%-") then
      return nil, path .. ": holds a private key, not a certificate (are the certificate and key swapped?)"
    end
    return nil, path .. ": no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)"
  end
  return certs
end

-- Checks each certificate's validity period and that each is issued by the
-- next one; true or nil, message.
local function check_chain(certs, path, now)
  for i, cert in ipairs(certs) do
    local which = i == 1 and "the certificate" or ("intermediate certificate %d"):format(i - 1)
    local not_before, not_after = cert:getLifetime()
    if not_after and now > not_after then
      return nil, ("%s: %s (%s) expired on %s"):format(path, which, subject_of(cert), utc(not_after))
    end
    if not_before and now < not_before then
      return nil, ("%s: %s (%s) is not valid before %s"):format(path, which, subject_of(cert), utc(not_before))
    end
    if i > 1 and not certs[i - 1]:isIssuedBy(cert) then
      return nil, ("%s: certificate %d (%s) did not issue certificate %d (%s): put the server's certificate first, then each issuer in order")
        :format(path, i, subject_of(cert), i - 1, subject_of(certs[i - 1]))
    end
  end
  return true
end

local function load_key(pkey, text, path)
  if not text:find("%-%-%-%-%-BEGIN [%u ]*PRIVATE KEY%-%-%-%-%-") then
    if text:find("%-%-%-%-%-BEGIN CERTIFICATE%-%-%-%-%-") then
      return nil, path .. ": holds a certificate, not a private key (are the certificate and key swapped?)"
    end
    return nil, path .. ": no private key in it (expected PEM: -----BEGIN PRIVATE KEY-----)"
  end
  if text:find("BEGIN ENCRYPTED PRIVATE KEY", 1, true) or text:find("Proc-Type: 4,ENCRYPTED", 1, true) then
    return nil, path .. ": the private key is encrypted; passphrases are not supported "
      .. "(decrypt it: openssl pkey -in KEY -out KEY.plain, mode 0600)"
  end
  local block = text:match("%-%-%-%-%-BEGIN [%u ]*PRIVATE KEY%-%-%-%-%-.-%-%-%-%-%-END [%u ]*PRIVATE KEY%-%-%-%-%-")
  local ok, key = pem_ok(block or "")
  if ok then ok, key = pcall(pkey.new, text, "PEM", "private") end
  if not ok then return nil, ("%s: not a valid private key (%s)"):format(path, why(key)) end
  return key
end

--- A server-side openssl.ssl.context for cert_path (the certificate chain,
-- PEM) and key_path (its private key, PEM, mode 0600); or nil, message.
function tls.context(cert_path, key_path)
  argcheck(type(cert_path) == "string", 1, "tls.context", "certificate path expected, got " .. type(cert_path))
  argcheck(type(key_path) == "string", 2, "tls.context", "private key path expected, got " .. type(key_path))
  local context, err = need("openssl.ssl.context")
  if not context then return nil, err end
  local x509, pkey, chain = require "openssl.x509", require "openssl.pkey", require "openssl.x509.chain"

  local cert_text, cerr = read_file(cert_path, "the certificate")
  if not cert_text then return nil, cerr end
  local certs, perr = parse_chain(x509, cert_text, cert_path)
  if not certs then return nil, perr end
  local cok, chain_err = check_chain(certs, cert_path, os.time())
  if not cok then return nil, chain_err end

  local private, verr = require("siamese.app.web.tokens").check_private(key_path, "the TLS private key")
  if not private then return nil, verr end
  local key_text, kerr = read_file(key_path, "the private key")
  if not key_text then return nil, kerr end
  local key, lerr = load_key(pkey, key_text, key_path)
  if not key then return nil, lerr end
  -- The key must be the certificate's: compare the public halves (OpenSSL
  -- itself only notices a mismatch between keys of the same type).
  local pub_ok, same = pcall(function() return certs[1]:getPublicKey():toPEM("public") == key:toPEM("public") end)
  if not pub_ok or not same then
    return nil, ("%s: the private key does not match the certificate in %s (%s)")
      :format(key_path, cert_path, subject_of(certs[1]))
  end

  local ok, e = pcall(function()
    local ctx = context.new("TLS", true)
    ctx:setOptions(context.OP_NO_SSLv2 + context.OP_NO_SSLv3 + context.OP_NO_TLSv1 + context.OP_NO_TLSv1_1
      + context.OP_NO_COMPRESSION + context.OP_CIPHER_SERVER_PREFERENCE
      + context.OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION + context.OP_SINGLE_ECDH_USE)
    assert(ctx:setCipherList(tls.CIPHERS))
    assert(ctx:setCertificate(certs[1]))
    if #certs > 1 then
      local c = chain.new()
      for i = 2, #certs do c:add(certs[i]) end
      assert(ctx:setCertificateChain(c))
    end
    assert(ctx:setPrivateKey(key))
    return ctx
  end)
  if not ok then return nil, ("%s, %s: cannot use them: %s"):format(cert_path, key_path, why(e)) end
  return e
end

local function is_ip(host)
  return host:match("^%d+%.%d+%.%d+%.%d+$") ~= nil or host:find(":", 1, true) ~= nil
end

--- A self-signed certificate and its new private key (EC P-256), both as
-- PEM strings: cert_pem, key_pem. opts.hosts: the names and IP addresses
-- it is for (a non-empty list of strings; the first is also the subject's
-- common name); opts.days: how long it is valid (default 30; from 5
-- minutes ago, for clocks a little behind). opts.not_before and
-- opts.not_after (seconds since the epoch) set the period exactly instead
-- (e.g. an expired certificate for tests). For tests and a quick start:
-- clients trust it only when told to (it is its own issuer).
function tls.self_signed(opts)
  argcheck(type(opts) == "table", 1, "tls.self_signed", "table expected, got " .. type(opts))
  local hosts = opts.hosts
  argcheck(type(hosts) == "table" and #hosts > 0, 1, "tls.self_signed", "hosts must be a non-empty list of names and addresses")
  for i, h in ipairs(hosts) do
    argcheck(type(h) == "string" and h ~= "" and not h:find("[%s%z]"), 1, "tls.self_signed",
             ("hosts[%d] must be a name or an address"):format(i))
  end
  local days = opts.days or 30
  argcheck(type(days) == "number" and days > 0 and days <= 3650, 1, "tls.self_signed", "days must be in (0, 3650]")
  local now = os.time()
  local not_before = opts.not_before or (now - 300)
  local not_after = opts.not_after or (now + math.floor(days * 86400))
  argcheck(type(not_before) == "number" and type(not_after) == "number" and not_before < not_after, 1,
           "tls.self_signed", "not_before and not_after must be numbers, not_before < not_after")

  local pkey = assert(need("openssl.pkey"))
  local x509 = require "openssl.x509"
  local name = require "openssl.x509.name"
  local altname = require "openssl.x509.altname"
  local extension = require "openssl.x509.extension"
  local bignum = require "openssl.bignum"
  local rand = require "openssl.rand"

  local key = pkey.new{type = "EC", curve = "prime256v1"}
  local cert = x509.new()
  cert:setVersion(3)
  -- a random positive 127-bit serial (RFC 5280: at most 20 bytes, positive)
  local serial = rand.bytes(16)
  serial = string.char(serial:byte(1) & 0x7f) .. serial:sub(2)
  cert:setSerial(bignum.fromBinary(serial))
  local subject = name.new()
  subject:add("CN", hosts[1])
  cert:setSubject(subject)
  cert:setIssuer(subject)
  local alt = altname.new()
  for _, h in ipairs(hosts) do alt:add(is_ip(h) and "IP" or "DNS", (h:gsub("^%[(.*)%]$", "%1"))) end
  cert:setSubjectAlt(alt)
  cert:setBasicConstraints{CA = false}
  cert:setBasicConstraintsCritical(true)
  cert:addExtension(extension.new("extendedKeyUsage", "serverAuth"))
  cert:setLifetime(not_before, not_after)
  cert:setPublicKey(key)
  cert:sign(key, "sha256")
  return cert:toPEM(), key:toPEM("private")
end

-- Returns the cqueues error number's text (errno or OpenSSL).
local function errtext(e)
  if type(e) == "number" then
    local ok, ce = pcall(require, "cqueues.errno")
    local s = ok and ce.strerror(e)
    if s then return s end
  end
  return tostring(e)
end

--- Starts TLS, as the server, on sock (an accepted cqueues socket, before
-- anything was read from it) with ctx (tls.context), and completes the
-- handshake within timeout seconds (default tls.HANDSHAKE_TIMEOUT): true,
-- or nil, message (a client that is not speaking TLS, a failed handshake,
-- a timeout; the message says why, e.g. "no complete handshake within
-- 10 s", and leaves "TLS handshake failed" to the caller's log line). It
-- never raises for what the peer does; on failure the caller closes the
-- socket. Call it in a cqueues coroutine.
function tls.wrap(sock, ctx, timeout)
  argcheck(type(sock) == "userdata" or type(sock) == "table", 1, "tls.wrap", "socket expected, got " .. type(sock))
  argcheck(type(ctx) == "userdata", 2, "tls.wrap", "openssl.ssl.context expected, got " .. type(ctx))
  argcheck(timeout == nil or (type(timeout) == "number" and timeout > 0), 3, "tls.wrap", "timeout must be a positive number")
  timeout = timeout or tls.HANDSHAKE_TIMEOUT
  -- errors returned, not raised, while the handshake runs; the previous
  -- handler is put back after
  local previous = sock:onerror(function(_, _, e) return e end)
  local ok, a, b = pcall(sock.starttls, sock, ctx, timeout)
  local ssl
  if ok and a then ssl = sock:checktls() end
  sock:onerror(previous)
  if not ok then return nil, why(a) end
  if not a then
    local ce = require "cqueues.errno"
    if b == ce.ETIMEDOUT then return nil, ("no complete handshake within %g s"):format(timeout) end
    if b == ce.EPIPE then return nil, "the client closed the connection during the handshake" end
    if b == ce.ECONNRESET then return nil, "the client reset the connection during the handshake" end
    local text = errtext(b)
    if text:find("http request", 1, true) then
      return nil, "the client spoke plain HTTP to the HTTPS port (" .. text .. ")"
    end
    return nil, text
  end
  if not ssl then return nil, "no TLS session after the handshake" end
  return true
end

return tls
