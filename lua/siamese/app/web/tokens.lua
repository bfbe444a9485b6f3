--- siamese.app.web.tokens: bearer tokens for the web server's API, with two
-- roles: "admin" (enrol/add, remove, rename, list the people) and "door"
-- (verify, identify).
--
--   local tokens = require "siamese.app.web.tokens"
--   local store = assert(tokens.open("office.gallery.tokens"))  -- missing file: empty store
--   local token, entry = assert(store:add("door", "front door"))
--   print(token)          --> sm_1a2b3c4d_<43 base64url characters>, shown once, never stored
--   for _, t in ipairs(store:list()) do print(t.id, t.role, t.label, t.created) end
--   -- in a request handler ("Authorization: Bearer sm_...")
--   local who, reason, status = store:authorize(req.headers.authorization, "verify")
--   if not who then
--     -- status 401 (reason "missing", "malformed", "unknown or revoked"; send
--     -- "WWW-Authenticate: Bearer"), 403 ("forbidden": the role may not do
--     -- that) or 500 ("unavailable: ...": the store file went bad; fail closed)
--   end
--   -- who = {id, role, label, created}: log who.id and who.role (siamese.app.web.audit)
--   store:revoke("1a2b3c4d")
--
-- The store file is "<gallery>.tokens" (tokens.path_for(gallery)), mode
-- 0600: created so, and refused (like ssh refuses a private key) when group
-- or others may read or write it. It is JSON:
--
--   {"format": "siamese-tokens", "version": 1, "tokens": [
--     {"id": "1a2b3c4d", "role": "door", "created": "2026-11-22T08:00:00Z",
--      "label": "front door", "sha256": "<64 hex digits>"}]}
--
-- A token is "sm_<id>_<secret>": id 8 hex digits (public: it names the
-- token in lists, logs and revoke), secret 32 bytes from /dev/urandom in
-- base64url without padding. The file keeps only SHA-256(secret bytes),
-- never the token. A plain SHA-256 is the right hash here: the secret has
-- 256 bits of entropy, so nobody can guess it from its hash, and password
-- stretching (bcrypt, scrypt) only protects low-entropy secrets chosen by
-- people. Hashes are compared in constant time (tokens.equal).
--
-- A file that does not parse or holds anything unexpected (unknown keys,
-- bad ids, roles or hashes, duplicate ids) is refused: tokens.open returns
-- nil, message, and add/revoke never overwrite it. add and revoke re-read
-- the file under the lock "<file>.lock" (core.gallery.lock, as the gallery
-- uses) and save it atomically (core.write_atomic keeps the mode 0600),
-- so concurrent commands all land. check/list notice a file changed by
-- another process (e.g. `siamese token revoke` while the server runs) and
-- reload it; if the file has become unusable, checks fail closed.
--
-- A gallery in PostgreSQL keeps its tokens in the same database
-- (tokens.path_for(url) is the URL; siamese.app.web.tokens_pg): the same
-- entries and rules, changes in one transaction, and a generation checked
-- before each check, so a revocation reaches every server at its next
-- request; a database that cannot be reached fails closed ("unavailable").
local core = require "siamese.core"
local hash = require "siamese.hash"
local json = require "siamese.json"
local base64 = require "siamese.app.web.base64"
local lfs = require "lfs"

local tokens = {}

tokens.FORMAT = "siamese-tokens"
tokens.VERSION = 1
tokens.ROLES = {"admin", "door"}
tokens.SECRET_BYTES = 32
tokens.MAX_LABEL = 100          -- bytes
tokens.LOCK_TIMEOUT = 10        -- seconds add/revoke wait for another writer
local MAX_FILE = 4 * 1024 * 1024

--- Which role may do what. Actions are the server's: "list" and "people"
-- (the enrolled people: personal data, so admin only), "enroll" (alias
-- "add"), "remove", "rename"; "verify", "identify". An admin token is not
-- a door token: give each device the least it needs.
tokens.PERMISSIONS = {
  admin = {list = true, people = true, enroll = true, add = true, remove = true, rename = true},
  door = {verify = true, identify = true},
}

--- True when a token of role may perform action (unknown roles or actions:
-- false).
function tokens.allows(role, action)
  local p = type(role) == "string" and rawget(tokens.PERMISSIONS, role) or nil
  return p ~= nil and type(action) == "string" and rawget(p, action) == true
end

--- The HTTP status of a check/authorize failure reason.
function tokens.status(reason)
  if reason == "forbidden" then return 403 end
  if type(reason) == "string" and reason:match("^unavailable") then return 500 end
  return 401
end

--- The token store next to a gallery file; a gallery in PostgreSQL keeps
-- its tokens in the same database (siamese.app.web.tokens_pg): the URL itself.
function tokens.path_for(gallery_path)
  if require("siamese.pg").is_url(gallery_path) then return gallery_path end
  return gallery_path .. ".tokens"
end

-- ------------------------------------------------------------------ helpers

--- Constant-time equality of two strings: every byte is visited and the
-- differences accumulated (XOR, OR), with no early exit, so the time does
-- not tell how many leading bytes matched. Lengths are compared first (the
-- callers compare hashes, whose length is public).
function tokens.equal(a, b)
  if type(a) ~= "string" or type(b) ~= "string" then return false end
  if #a ~= #b then return false end
  local diff = 0
  for i = 1, #a do diff = diff | (a:byte(i) ~ b:byte(i)) end
  return diff == 0
end

--- n random bytes from /dev/urandom (raises when it cannot be read: there
-- is no safe fallback for secrets).
function tokens.random_bytes(n)
  local f, err = io.open("/dev/urandom", "rb")
  if not f then error("tokens: cannot open /dev/urandom: " .. tostring(err), 2) end
  local s = f:read(n)
  f:close()
  if type(s) ~= "string" or #s ~= n then error("tokens: short read from /dev/urandom", 2) end
  return s
end

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

--- base64url without padding (RFC 4648 section 5).
function tokens.b64url_encode(s)
  return (base64.encode(s):gsub("[+/=]", {["+"] = "-", ["/"] = "_", ["="] = ""}))
end

--- The bytes of unpadded base64url text, or nil (non-canonical text, e.g.
-- stray low bits in the last character, is refused).
function tokens.b64url_decode(text)
  if type(text) ~= "string" or not text:match("^[%w_%-]*$") or #text % 4 == 1 then return nil end
  local std = text:gsub("[-_]", {["-"] = "+", ["_"] = "/"}) .. string.rep("=", (4 - #text % 4) % 4)
  local bytes = base64.decode(std)
  if not bytes or tokens.b64url_encode(bytes) ~= text then return nil end
  return bytes
end

local function secret_hash(secret_bytes)
  return hash.sha256(secret_bytes)
end

-- A hash no secret has (checks against an unknown id still do one
-- comparison of the same length).
local DUMMY_HASH = string.rep("0", 64)

--- Parses a token "sm_<id>_<secret>": id, secret bytes; or nil.
function tokens.parse(token)
  if type(token) ~= "string" then return nil end
  local id, secret = token:match("^sm_(%x%x%x%x%x%x%x%x)_([%w_%-]+)$")
  if not id or id:find("[A-F]") then return nil end
  local bytes = tokens.b64url_decode(secret)
  if not bytes or #bytes ~= tokens.SECRET_BYTES then return nil end
  return id, bytes
end

local function utc_now()
  return os.date("!%Y-%m-%dT%H:%M:%SZ")
end

local function octal(perm)
  local v = 0
  for i = 1, 9 do
    v = v * 2 + (perm:sub(i, i) ~= "-" and 1 or 0)
  end
  return string.format("%04o", v)
end

--- Checks that an existing file is a regular file that only its owner may
-- read or write: true, or nil and a message naming the mode (as ssh does
-- for private keys). what names the file in the message.
function tokens.check_private(path, what)
  local attr, err = lfs.attributes(path)
  if not attr then return nil, path .. ": " .. tostring(err) end
  if attr.mode ~= "file" then return nil, string.format("%s: %s is a %s, not a file", path, what or "the file", attr.mode) end
  local perm = attr.permissions or ""
  if #perm ~= 9 then return nil, path .. ": cannot read the permissions" end
  if perm:sub(4, 9) ~= "------" then
    return nil, string.format("%s: permissions %s are too open: %s must be readable and writable by its owner "
      .. "only (chmod 600 %s)", path, octal(perm), what or "the file", path)
  end
  return true
end

--- Creates path with mode 0600 holding content, only if it does not exist:
-- true; or nil, message (nil, message, "exists" when it exists). The file
-- is written in full before it appears under its name.
--
-- How: core.write_atomic(fresh, {mode = 0600}, content) writes (and
-- fsyncs) a new private file "<target>.new-<random>" next to the target;
-- it is then hard-linked to the target (link refuses an existing name, so
-- a file another process created meanwhile is never replaced) and
-- unlinked. The umask can only clear bits of 0600: the result is checked.
local PRIVATE_MODE = tonumber("600", 8)

function tokens.create_private(path, content)
  if type(content) ~= "string" then
    error("bad argument #2 to 'tokens.create_private' (string expected, got " .. type(content) .. ")", 2)
  end
  local target, terr = core.gallery.target(path)
  if not target then return nil, tostring(terr) end
  if lfs.symlinkattributes(target, "mode") then return nil, path .. ": exists", "exists" end
  local fresh = target .. ".new-" .. hex(tokens.random_bytes(6))
  if lfs.symlinkattributes(fresh, "mode") then -- 48 random bits: never, but never write through another file
    return nil, string.format("cannot create %s: %s exists", path, fresh)
  end
  local ok, werr = core.write_atomic(fresh, {mode = PRIVATE_MODE}, content)
  if not ok then return nil, string.format("cannot create %s: %s", path, tostring(werr)) end
  local function fail(msg, tag)
    os.remove(fresh)
    return nil, msg, tag
  end
  local perm = lfs.attributes(fresh, "permissions")
  if perm ~= "rw-------" then -- a umask such as 0277 took the owner's write bit
    return fail(string.format("cannot create %s with mode 0600 (got %s: check the umask)", path, tostring(perm)))
  end
  local lok, lerr = lfs.link(fresh, target)
  if not lok then
    if lfs.symlinkattributes(target, "mode") then return fail(path .. ": exists", "exists") end
    -- a file system without hard links: rename (not exclusive, but the
    -- name was free a moment ago)
    local rok, rerr = os.rename(fresh, target)
    if not rok then return fail(string.format("cannot create %s: %s (%s)", path, tostring(lerr), tostring(rerr))) end
    return true
  end
  os.remove(fresh)
  return true
end

-- ------------------------------------------------------------ file format

local ENTRY_KEYS = {id = true, role = true, created = true, label = true, sha256 = true}

-- A label's problem, or nil.
local function label_problem(label)
  if type(label) ~= "string" then return "the label must be text" end
  if label == "" then return "the label is empty" end
  if #label > tokens.MAX_LABEL then return string.format("the label is longer than %d bytes", tokens.MAX_LABEL) end
  if not utf8.len(label) then return "the label is not valid UTF-8" end
  if label:find("%c") then return "the label holds control characters" end
  return nil
end

local function valid_role(role)
  return type(role) == "string" and rawget(tokens.PERMISSIONS, role) ~= nil
end

-- Parses the text of a store: list of entries, or nil, reason.
local function decode(text)
  local doc, err = json.decode(text)
  if doc == nil then return nil, tostring(err) end
  if type(doc) ~= "table" or json.is_array(doc) then return nil, "not a token store object" end
  if doc.format ~= tokens.FORMAT then return nil, "not a siamese token store" end
  if type(doc.version) ~= "number" or doc.version % 1 ~= 0 then return nil, "no version" end
  if doc.version > tokens.VERSION then
    return nil, string.format("token store version %s, this siamese reads version %d", tostring(doc.version),
      tokens.VERSION)
  end
  if doc.version < 1 then return nil, "bad version" end
  for k in pairs(doc) do
    if k ~= "format" and k ~= "version" and k ~= "tokens" then return nil, "unexpected key '" .. tostring(k) .. "'" end
  end
  local list = doc.tokens
  if type(list) ~= "table" or not json.is_array(list) then return nil, "no token list" end
  local entries, seen = {}, {}
  for i, e in ipairs(list) do
    local where = "token #" .. i
    if type(e) ~= "table" or json.is_array(e) then return nil, where .. " is not an object" end
    for k in pairs(e) do
      if not ENTRY_KEYS[k] then return nil, where .. ": unexpected key '" .. tostring(k) .. "'" end
    end
    if type(e.id) ~= "string" or not e.id:match("^[0-9a-f]+$") or #e.id ~= 8 then return nil, where .. ": bad id" end
    if seen[e.id] then return nil, where .. ": duplicate id " .. e.id end
    seen[e.id] = true
    if not valid_role(e.role) then return nil, where .. ": bad role" end
    if type(e.created) ~= "string" or not e.created:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$") then
      return nil, where .. ": bad created time"
    end
    if type(e.sha256) ~= "string" or #e.sha256 ~= 64 or not e.sha256:match("^[0-9a-f]+$") then
      return nil, where .. ": bad hash"
    end
    local label = e.label
    if label == json.null then label = nil end
    if label ~= nil and label_problem(label) then return nil, where .. ": bad label" end
    entries[i] = {id = e.id, role = e.role, created = e.created, label = label, sha256 = e.sha256}
  end
  return entries
end

local function encode(entries)
  local list = {}
  for i, e in ipairs(entries) do
    list[i] = {id = e.id, role = e.role, created = e.created, label = e.label, sha256 = e.sha256}
  end
  return json.encode({format = tokens.FORMAT, version = tokens.VERSION, tokens = json.array(list)},
    {indent = true}) .. "\n"
end

-- Reads the store at path: entries (empty when the file is missing) and
-- the file's generation (nil when missing); or nil, message.
local function load(path)
  local gen = core.gallery.generation(path)
  if not gen then
    if lfs.symlinkattributes(path, "mode") == nil then return {}, nil end
    return nil, path .. ": cannot read the token store" -- e.g. a dangling symlink
  end
  local ok, perr = tokens.check_private(path, "the token store")
  if not ok then return nil, perr end
  local f, oerr = io.open(path, "rb")
  if not f then return nil, tostring(oerr) end
  local text = f:read(MAX_FILE + 1)
  f:close()
  if text == nil then text = "" end
  if #text > MAX_FILE then return nil, path .. ": damaged token store (larger than 4 MiB)" end
  local entries, err = decode(text)
  if not entries then return nil, path .. ": damaged token store (" .. err .. "); it is left as it is" end
  -- the generation of what was read (a write in between shows as a change
  -- on the next refresh)
  return entries, gen
end

-- ------------------------------------------------------------------ store

local Store = {}
Store.__index = Store

--- Opens the store at path (a missing file is an empty store, created by
-- the first add). Returns the store, or nil, message (a file that is
-- damaged, not a token store, or readable by group/others).
function tokens.open(path)
  if type(path) ~= "string" or path == "" or path:find("\0", 1, true) then
    error("bad argument #1 to 'tokens.open' (file name expected, got " .. type(path) .. ")", 2)
  end
  if require("siamese.pg").is_url(path) then
    local backend, berr = require("siamese.app.web.tokens_pg").open(path)
    if not backend then return nil, berr end
    local entries, gen = backend:load()
    if not entries then
      backend:close()
      return nil, gen
    end
    return setmetatable({path = path, entries = entries, generation = gen, pg = backend}, Store)
  end
  local entries, gen = load(path)
  if not entries then return nil, gen end
  return setmetatable({path = path, entries = entries, generation = gen}, Store)
end

--- Closes a store kept in a database (a file store holds nothing open).
function Store:close()
  if self.pg then self.pg:close() end
end

-- Takes what a load gave: entries and their generation, or (entries nil)
-- the reason the store is unusable: it then knows no token (fail closed).
function Store:_take(entries, gen_or_err)
  if not entries then
    self.entries, self.generation, self.broken = {}, nil, gen_or_err
    return nil, gen_or_err
  end
  self.entries, self.generation, self.broken = entries, gen_or_err, nil
  return true
end

--- Reloads the file when another process changed it. true, or nil,
-- message (the store then knows no token until the file is good again).
function Store:refresh()
  if self.pg then
    local gen, gerr = self.pg:generation()
    if gen and gen == self.generation and not self.broken then return true end
    if not gen then return self:_take(nil, gerr) end
    return self:_take(self.pg:load())
  end
  local gen = core.gallery.generation(self.path)
  if gen ~= nil then -- a chmod does not change the generation: check the mode every time
    local ok, err = tokens.check_private(self.path, "the token store")
    if not ok then return self:_take(nil, err) end
  end
  if gen ~= nil and gen == self.generation and not self.broken then return true end
  if gen == nil and self.generation == nil and not self.broken then return true end
  return self:_take(load(self.path))
end

local function public(e)
  return {id = e.id, role = e.role, label = e.label, created = e.created}
end

--- The tokens: list of {id, role, label, created}, oldest first; or nil,
-- message when the file has become unusable.
function Store:list()
  local ok, err = self:refresh()
  if not ok then return nil, err end
  local out = {}
  for i, e in ipairs(self.entries) do out[i] = public(e) end
  table.sort(out, function(a, b)
    if a.created ~= b.created then return a.created < b.created end
    return a.id < b.id
  end)
  return out
end

-- Read-modify-write under the lock: fn(entries) returns true, result...
-- to save, or nil, message. Returns fn's results or nil, message.
function Store:update(fn)
  if self.pg then
    local res = table.pack(self.pg:update(fn))
    if res[1] then self.generation = nil; self:refresh() end
    return table.unpack(res, 1, res.n)
  end
  local lock, lerr = core.gallery.lock(self.path, tokens.LOCK_TIMEOUT)
  if not lock then return nil, tostring(lerr) end
  local res = table.pack(pcall(function()
    local entries, gen = load(self.path)
    if not entries then return nil, gen end -- damaged: never overwritten
    local r = table.pack(fn(entries))
    if not r[1] then return table.unpack(r, 1, r.n) end
    local text = encode(entries)
    local ok, werr
    if gen == nil then
      ok, werr = tokens.create_private(self.path, text)
    else
      ok, werr = core.write_atomic(self.path, text) -- keeps the file's mode (0600, checked by load)
    end
    if not ok then return nil, "cannot save " .. self.path .. ": " .. tostring(werr) end
    self.entries, self.generation, self.broken = entries, core.gallery.generation(self.path), nil
    return table.unpack(r, 1, r.n)
  end))
  lock:close()
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

--- Adds a token of role ("admin" or "door") with an optional label (text
-- up to 100 bytes, no control characters). Returns the token string (the
-- only time it exists: show it once) and the entry {id, role, label,
-- created}; or nil, message.
function Store:add(role, label)
  if not valid_role(role) then
    return nil, string.format("unknown role '%s' (admin or door)", tostring(role))
  end
  if label ~= nil then
    if type(label) == "string" then label = label:match("^%s*(.-)%s*$") end
    if label == "" then label = nil end
  end
  if label ~= nil then
    local why = label_problem(label)
    if why then return nil, why end
  end
  return self:update(function(entries)
    local taken = {}
    for _, e in ipairs(entries) do taken[e.id] = true end
    local id
    repeat id = hex(tokens.random_bytes(4)) until not taken[id]
    local secret = tokens.random_bytes(tokens.SECRET_BYTES)
    local e = {id = id, role = role, label = label, created = utc_now(), sha256 = secret_hash(secret)}
    entries[#entries + 1] = e
    return "sm_" .. id .. "_" .. tokens.b64url_encode(secret), public(e)
  end)
end

--- Revokes (deletes) the token with that id. true, or nil, message.
function Store:revoke(id)
  if type(id) ~= "string" then return nil, "a token id expected" end
  id = id:lower()
  return self:update(function(entries)
    for i, e in ipairs(entries) do
      if e.id == id then
        table.remove(entries, i)
        return true
      end
    end
    return nil, string.format("no token with id '%s' in %s", id, self.pg and self.pg.where or self.path)
  end)
end

--- Checks an Authorization header value "Bearer sm_<id>_<secret>" (a
-- string, or the list of values siamese.app.web.http1 gives: req.headers.authorization).
-- Returns the entry {id, role, label, created}, or nil and a reason:
-- "missing" (no header), "malformed" (not a bearer token of this form),
-- "unknown or revoked" (no such id, or a wrong secret: the two are not
-- told apart), or "unavailable: ..." (the store file went bad). The secret
-- is hashed and compared in constant time, also for an unknown id.
function Store:check(header)
  if type(header) == "table" then -- siamese.app.web.http1 keeps each header as a list of values
    if #header > 1 then return nil, "malformed" end -- two Authorization headers: ambiguous
    header = header[1]
  end
  if header == nil or (type(header) == "string" and not header:find("%S")) then return nil, "missing" end
  if type(header) ~= "string" then return nil, "malformed" end
  local token = header:match("^[Bb][Ee][Aa][Rr][Ee][Rr] +(%S+)%s*$")
  if not token then return nil, "malformed" end
  local id, secret = tokens.parse(token)
  if not id then return nil, "malformed" end
  local ok, err = self:refresh()
  if not ok then return nil, "unavailable: " .. tostring(err) end
  local entry
  for _, e in ipairs(self.entries) do
    if e.id == id then entry = e end
  end
  local presented = secret_hash(secret)
  local same = tokens.equal(presented, entry and entry.sha256 or DUMMY_HASH)
  if not entry or not same then return nil, "unknown or revoked" end
  return public(entry)
end

--- check, then tokens.allows(role, action): the entry, or nil, reason
-- (check's, or "forbidden"), HTTP status (401, 403 or 500).
function Store:authorize(header, action)
  local entry, reason = self:check(header)
  if not entry then return nil, reason, tokens.status(reason) end
  if not tokens.allows(entry.role, action) then return nil, "forbidden", 403 end
  return entry
end

return tokens
