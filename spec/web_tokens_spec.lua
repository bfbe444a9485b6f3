-- Specs of siamese.app.web.tokens: the bearer-token store of the web server
-- (add/list/revoke/check, hashes never tokens, file modes, constant-time
-- comparison, damaged files refused and left alone, role permissions).
local tokens = require "siamese.app.web.tokens"
local hash = require "siamese.hash"
local lfs = require "lfs"
local support = dofile("spec/support.lua")

local q = support.q

local function chmod(mode, path)
  assert(os.execute("chmod " .. mode .. " " .. q(path)))
end

describe("siamese.app.web.tokens", function()
  local dir, path
  before_each(function()
    dir = support.temp_dir("web_tokens")
    path = dir .. "/office.gallery.tokens"
  end)
  after_each(function() os.execute("rm -rf " .. q(dir)) end)

  it("a missing file is an empty store; add, list, check and revoke", function()
    local store = assert(tokens.open(path))
    assert.are.same({}, store:list())
    assert.is_nil(lfs.attributes(path)) -- nothing written until the first add

    local admin, ea = assert(store:add("admin", "  laptop of Ana  "))
    local door, ed = assert(store:add("door"))
    assert.matches("^sm_%x%x%x%x%x%x%x%x_[%w_%-]+$", admin)
    assert.are.equal(3 + 8 + 1 + 43, #admin)  -- 32 bytes in unpadded base64url
    assert.are.equal("sm_" .. ea.id .. "_", admin:sub(1, 12))
    assert.are.equal("laptop of Ana", ea.label)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", ea.created)
    assert.is_nil(ea.sha256)
    assert.is_nil(ed.label)
    assert.are_not.equal(ea.id, ed.id)

    local list = store:list()
    assert.are.equal(2, #list)
    for _, t in ipairs(list) do
      for k in pairs(t) do
        assert.truthy(k == "id" or k == "role" or k == "label" or k == "created", k)
      end
    end

    local who = assert(store:check("Bearer " .. admin))
    assert.are.same({id = ea.id, role = "admin", label = "laptop of Ana", created = ea.created}, who)
    assert.are.equal("door", assert(store:check("bearer   " .. door)).role) -- the scheme ignores case
    -- another process sees them
    local other = assert(tokens.open(path))
    assert.are.equal(ed.id, assert(other:check("Bearer " .. door)).id)

    assert.is_true(store:revoke(ed.id))
    local none, why = store:check("Bearer " .. door)
    assert.is_nil(none)
    assert.are.equal("unknown or revoked", why)
    -- the other store notices the change on the file
    assert.are.same({nil, "unknown or revoked"}, {other:check("Bearer " .. door)})
    assert.are.equal(1, #other:list())
    local nok, msg = store:revoke(ed.id)
    assert.is_nil(nok)
    assert.matches("no token with id '" .. ed.id .. "'", msg, 1, true)
  end)

  it("check tells missing, malformed and unknown or revoked tokens apart", function()
    local store = assert(tokens.open(path))
    local tok, e = assert(store:add("door"))
    local function reason(h) return select(2, store:check(h)) end
    assert.are.equal("missing", reason(nil))
    assert.are.equal("missing", reason(""))
    assert.are.equal("missing", reason("   "))
    assert.are.equal("missing", reason({}))                   -- http1's header lists
    assert.are.equal(e.id, assert(store:check({"Bearer " .. tok})).id)
    assert.are.equal("malformed", reason({"Bearer " .. tok, "Bearer " .. tok}))
    assert.are.equal("malformed", reason(42))
    assert.are.equal("malformed", reason("Basic dXNlcjpwYXNz"))
    assert.are.equal("malformed", reason("Bearer"))
    assert.are.equal("malformed", reason(tok)) -- no scheme
    assert.are.equal("malformed", reason("Bearer " .. tok .. " extra"))
    assert.are.equal("malformed", reason("Bearer " .. tok:sub(1, -2)))           -- 31.x bytes
    assert.are.equal("malformed", reason("Bearer " .. tok .. "AAAA"))            -- 35 bytes
    assert.are.equal("malformed", reason("Bearer " .. tok:upper()))              -- id in capitals
    assert.are.equal("malformed", reason("Bearer sm_" .. e.id .. "_" .. string.rep("!", 43)))
    -- right id, wrong secret; unknown id with the right secret
    local other = tokens.b64url_encode(string.rep("\0", 32))
    assert.are.equal("unknown or revoked", reason("Bearer sm_" .. e.id .. "_" .. other))
    local unknown_id = e.id == "00000000" and "00000001" or "00000000"
    assert.are.equal("unknown or revoked", reason("Bearer " .. tok:gsub(e.id, unknown_id)))
    for _, r in ipairs{"missing", "malformed", "unknown or revoked"} do assert.are.equal(401, tokens.status(r)) end
    assert.are.equal(403, tokens.status("forbidden"))
    -- authorize = check + permission
    assert.are.same({nil, "forbidden", 403}, {store:authorize("Bearer " .. tok, "enroll")})
    assert.are.same({nil, "missing", 401}, {store:authorize(nil, "verify")})
    assert.are.equal(e.id, assert(store:authorize("Bearer " .. tok, "verify")).id)
  end)

  it("keeps SHA-256 hashes, never the tokens, in a 0600 file", function()
    local store = assert(tokens.open(path))
    local tok, e = assert(store:add("admin", "ops"))
    local text = support.read_file(path)
    local secret = tok:match("^sm_%x+_(.+)$")
    local bytes = assert(tokens.b64url_decode(secret))
    assert.are.equal(32, #bytes)
    assert.is_nil(text:find(secret, 1, true))
    assert.is_nil(text:find(tok, 1, true))
    assert.is_nil(text:find(bytes, 1, true))
    assert.truthy(text:find('"sha256": "' .. hash.sha256(bytes) .. '"', 1, true))
    assert.truthy(text:find('"id": "' .. e.id .. '"', 1, true))
    assert.are.equal("rw-------", lfs.attributes(path, "permissions"))
    -- saves keep the mode; no temporary is left behind
    assert(store:add("door"))
    assert(store:revoke(e.id))
    assert.are.equal("rw-------", lfs.attributes(path, "permissions"))
    for _, name in ipairs(support.list_dir(dir)) do
      assert.truthy(name == "office.gallery.tokens" or name == "office.gallery.tokens.lock", name)
    end
    assert.are.equal("rw-------", lfs.attributes(path .. ".lock", "permissions"))
  end)

  it("refuses a store that group or others may read or write, naming the mode", function()
    local store = assert(tokens.open(path))
    local tok = assert(store:add("admin"))
    local before = support.read_file(path)
    for _, mode in ipairs{"644", "640", "604", "620", "602"} do
      chmod(mode, path)
      local s, msg = tokens.open(path)
      assert.is_nil(s, mode)
      assert.matches("permissions 0" .. mode .. " are too open", msg, 1, true)
      assert.matches("chmod 600", msg, 1, true)
      -- an open store stops accepting tokens (fail closed) and refuses to write
      assert.are.equal(nil, (store:check("Bearer " .. tok)))
      assert.matches("^unavailable: ", select(2, store:check("Bearer " .. tok)))
      assert.are.equal(500, select(3, store:authorize("Bearer " .. tok, "list")))
      assert.is_nil((store:add("door")))
      assert.is_nil((store:revoke("00000000")))
      assert.are.equal(before, support.read_file(path))
    end
    chmod("600", path)
    assert.are.equal("admin", assert(store:check("Bearer " .. tok)).role)
    chmod("400", path) -- owner read-only is private enough
    assert(tokens.open(path))
  end)

  it("refuses a damaged or tampered file and never overwrites it", function()
    local store = assert(tokens.open(path))
    local tok, e = assert(store:add("door", "gate"))
    local good = support.read_file(path)
    local bad = {
      "",
      "{",
      "not json at all",
      "[]",
      '{"format": "siamese-tokens", "version": 1}',
      '{"format": "other", "version": 1, "tokens": []}',
      '{"format": "siamese-tokens", "version": 2, "tokens": []}',
      '{"format": "siamese-tokens", "version": 1, "tokens": [], "extra": 1}',
      good:gsub('"door"', '"root"'),
      good:gsub('"id": "%x+"', '"id": "xyz"'),
      good:gsub('"sha256": "%x+"', '"sha256": "abc"'),
      good:gsub('"created": "[^"]+"', '"created": 5'),
      good:gsub('"label": "gate"', '"label": "a\\u0007b"'),
      good:gsub('"role"', '"token": "sm_x", "role"'),
      good:gsub('%[', '[{"id": "' .. e.id .. '", "role": "admin", "created": "2026-01-01T00:00:00Z", "sha256": "'
        .. string.rep("a", 64) .. '"},'),  -- a second entry with the same id
      good:sub(1, #good // 2),
    }
    for i, text in ipairs(bad) do
      support.write_file(path, text)
      chmod("600", path)
      local s, msg = tokens.open(path)
      assert.is_nil(s, "case " .. i)
      assert.is_string(msg)
      assert.matches(path, msg, 1, true)
      -- an open store refuses to add to or revoke from it, and checks fail closed
      local t2, aerr = store:add("admin")
      assert.is_nil(t2, "case " .. i)
      assert.is_string(aerr)
      assert.is_nil((store:revoke(e.id)))
      assert.is_nil((store:check("Bearer " .. tok)))
      assert.are.equal(text, support.read_file(path), "case " .. i)
    end
    -- repaired: works again
    support.write_file(path, good)
    assert.are.equal(e.id, assert(store:check("Bearer " .. tok)).id)
  end)

  it("refuses bad roles and labels", function()
    local store = assert(tokens.open(path))
    assert.matches("unknown role 'root'", select(2, store:add("root")), 1, true)
    assert.matches("unknown role", select(2, store:add(nil)), 1, true)
    assert.matches("control characters", select(2, store:add("door", "a\nb")), 1, true)
    assert.matches("longer than 100 bytes", select(2, store:add("door", string.rep("x", 101))), 1, true)
    assert.matches("not valid UTF-8", select(2, store:add("door", "\xff")), 1, true)
    assert.is_nil(lfs.attributes(path))
    local _, e = assert(store:add("door", "Café 東京 \"quoted\""))
    assert.are.equal("Café 東京 \"quoted\"", assert(tokens.open(path)):list()[1].label)
    assert.are.equal(e.id, store:list()[1].id)
  end)

  it("compares in constant time: equal, unequal, different lengths", function()
    assert.is_true(tokens.equal("", ""))
    assert.is_true(tokens.equal("abc", "abc"))
    local h = hash.sha256("x")
    assert.is_true(tokens.equal(h, hash.sha256("x")))
    assert.is_false(tokens.equal(h, hash.sha256("y")))
    assert.is_false(tokens.equal("abc", "abd"))       -- last byte
    assert.is_false(tokens.equal("xbc", "abc"))       -- first byte
    assert.is_false(tokens.equal("abc", "ab"))        -- lengths
    assert.is_false(tokens.equal("ab", "abc"))
    assert.is_false(tokens.equal("", "a"))
    assert.is_false(tokens.equal("a\0", "a"))
    assert.is_false(tokens.equal("\0", "\128"))       -- high bit
    assert.is_false(tokens.equal(nil, "a"))
    assert.is_false(tokens.equal("a", 1))
    -- no early exit: the loop runs over every byte (a mismatch in the first
    -- byte costs as many byte visits as one in the last)
    local visits = 0
    local real_byte = string.byte
    local meta = getmetatable("").__index
    meta.byte = function(s, i, j)
      visits = visits + 1
      return real_byte(s, i, j)
    end
    local ok, err = pcall(function()
      tokens.equal("Xbcdefgh", "abcdefgh")
      local first = visits
      visits = 0
      tokens.equal("abcdefgX", "abcdefgh")
      assert.are.equal(first, visits)
      assert.are.equal(16, first)
    end)
    meta.byte = real_byte
    assert(ok, err)
  end)

  it("base64url round trips and refuses non-canonical text", function()
    for _, n in ipairs{0, 1, 2, 3, 31, 32, 33} do
      local s = tokens.random_bytes(n)
      assert.are.equal(n, #s)
      local t = tokens.b64url_encode(s)
      assert.is_nil(t:find("[+/=]"))
      assert.are.equal(s, tokens.b64url_decode(t))
    end
    assert.are.equal("\251\255", tokens.b64url_decode("-_8"))
    assert.is_nil(tokens.b64url_decode("-_9"))  -- stray low bits
    assert.is_nil(tokens.b64url_decode("A"))
    assert.is_nil(tokens.b64url_decode("AA=="))
    assert.is_nil(tokens.b64url_decode("A+/A"))
    assert.are_not.equal(tokens.random_bytes(32), tokens.random_bytes(32))
  end)

  it("creates private files with mode 0600 and never replaces one", function()
    local p = dir .. "/private"
    assert.is_true(tokens.create_private(p, "hello"))
    assert.are.equal("rw-------", lfs.attributes(p, "permissions"))
    assert.are.equal("hello", support.read_file(p))
    local ok, msg, tag = tokens.create_private(p, "other")
    assert.is_nil(ok)
    assert.are.equal("exists", tag)
    assert.matches("exists", msg)
    assert.are.equal("hello", support.read_file(p))
    assert.is_true(tokens.create_private(dir .. "/empty", ""))
    assert.are.equal("rw-------", lfs.attributes(dir .. "/empty", "permissions"))
    assert.are.same({"empty", "private"}, support.list_dir(dir))
    assert.is_nil((tokens.create_private(dir .. "/no/such/dir/file", "x")))
    support.assert_error(function() tokens.create_private(dir .. "/x", nil) end,
      "bad argument #2 to 'tokens.create_private' (string expected, got nil)")
    assert.are.same({"empty", "private"}, support.list_dir(dir))
  end)

  it("create_private never replaces a file that appeared while it wrote", function()
    local core = require "siamese.core"
    local p = dir .. "/raced"
    local write_atomic = core.write_atomic
    core.write_atomic = function(...)           -- another process wins the name meanwhile
      support.write_file(p, "theirs")
      return write_atomic(...)
    end
    local ok, msg, tag
    local pok, perr = pcall(function() ok, msg, tag = tokens.create_private(p, "mine") end)
    core.write_atomic = write_atomic
    assert(pok, perr)
    assert.is_nil(ok)
    assert.are.equal("exists", tag)
    assert.matches("exists", msg)
    assert.are.equal("theirs", support.read_file(p))
    assert.are.same({"raced"}, support.list_dir(dir))  -- the fresh file is gone
  end)

  it("create_private gives 0600 whatever the usual umask, and refuses one that takes the owner's bits", function()
    -- in a child: this process's umask cannot be set from Lua
    local function create(umask, file)
      local code = string.format([[local ok, err = require("siamese.app.web.tokens").create_private(%q, "secret")
        io.write(tostring(ok), " ", tostring(err))]], file)
      local cmd = string.format("umask %s && LUA_PATH_5_4=%s LUA_CPATH_5_4=%s lua5.4 -e %s", umask,
        q(package.path), q(package.cpath), q(code))
      local f = assert(io.popen(cmd))
      local out = f:read("a")
      f:close()
      return out
    end
    for _, umask in ipairs{"000", "022", "077"} do
      local file = dir .. "/u" .. umask
      assert.are.equal("true nil", create(umask, file), umask)
      assert.are.equal("rw-------", lfs.attributes(file, "permissions"), umask)
      assert.are.equal("secret", support.read_file(file))
    end
    local out = create("0277", dir .. "/readonly")
    assert.matches("cannot create .*readonly with mode 0600 %(got r%-%-%-%-%-%-%-%-: check the umask%)", out)
    assert.are.same({"u000", "u022", "u077"}, support.list_dir(dir))
  end)

  it("roles: admin changes the gallery, door verifies and identifies", function()
    local expect = {
      admin = {list = true, people = true, enroll = true, add = true, remove = true, rename = true,
               verify = false, identify = false},
      door = {list = false, people = false, enroll = false, add = false, remove = false, rename = false,
              verify = true, identify = true},
    }
    for role, actions in pairs(expect) do
      for action, allowed in pairs(actions) do
        assert.are.equal(allowed, tokens.allows(role, action), role .. " " .. action)
      end
      assert.is_false(tokens.allows(role, "shutdown"))
      assert.is_false(tokens.allows(role, nil))
    end
    assert.is_false(tokens.allows("root", "verify"))
    assert.is_false(tokens.allows(nil, "verify"))
    assert.is_false(tokens.allows("__index", "verify"))
    assert.are.equal("g.gallery.tokens", tokens.path_for("g.gallery"))
  end)
end)
