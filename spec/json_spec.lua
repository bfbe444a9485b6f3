-- Specs of siamese.json: round trips, numbers, strings and escapes,
-- unicode, arrays vs objects, null, errors with byte positions, the depth
-- limit and deterministic output.
local json = require "siamese.json"

local function decode_ok(text)
  local v, err = json.decode(text)
  assert(err == nil, err)
  return v
end

local function decode_err(text)
  local v, err = json.decode(text)
  assert.is_nil(v)
  assert.is_string(err)
  return err
end

describe("siamese.json round trips", function()
  it("keeps nested values and their Lua types", function()
    local value = {
      name = "siamese", layers = { 1, 2, 3 }, ratio = 0.25, big = math.maxinteger,
      small = math.mininteger, on = true, off = false, nested = { a = { b = { c = "d" } } },
      floats = { 1.0, -0.0, 1e300, 5e-324, 2 ^ 53 },
    }
    local back = decode_ok(json.encode(value))
    assert.are.same(value.nested, back.nested)
    assert.are.equal("siamese", back.name)
    assert.are.equal(math.maxinteger, back.big)
    assert.are.equal(math.mininteger, back.small)
    assert.are.equal("integer", math.type(back.layers[2]))
    assert.is_true(back.on)
    assert.is_false(back.off)
    for i, x in ipairs(value.floats) do
      assert.are.equal("float", math.type(back.floats[i]))
      assert.are.equal(string.pack("<d", x), string.pack("<d", back.floats[i]))
    end
  end)

  it("round-trips random floats exactly with the fewest digits", function()
    local seed = tonumber(os.getenv("SIAMESE_SEED")) or 20240611
    math.randomseed(seed)
    for _ = 1, 2000 do
      local x = (math.random() - 0.5) * 10.0 ^ math.random(-300, 300)
      local text = json.encode(x)
      local back = decode_ok(text)
      assert(back == x and math.type(back) == "float",
             string.format("seed %d: %.17g encoded as %s came back as %s", seed, x, text, tostring(back)))
      assert(#text <= 24, text)
    end
    assert.are.equal("0.1", json.encode(0.1))
    assert.are.equal("2.0", json.encode(2.0))
    assert.are.equal("-0.0", json.encode(-0.0))
    assert.are.equal("1e+300", json.encode(1e300))
    assert.are.equal("3", json.encode(3))
  end)

  it("decodes integers as integers while they fit, floats otherwise", function()
    local v = decode_ok("[0, -7, 9223372036854775807, -9223372036854775808, 9223372036854775808, 1.5, 1e2, 2E-1]")
    assert.are.equal("integer", math.type(v[1]))
    assert.are.equal(-7, v[2])
    assert.are.equal(math.maxinteger, v[3])
    assert.are.equal(math.mininteger, v[4])
    assert.are.equal("float", math.type(v[5]))
    assert.are.equal(2.0 ^ 63, v[5])
    assert.are.equal(1.5, v[6])
    assert.are.equal("float", math.type(v[7]))
    assert.are.equal(100.0, v[7])
    assert.are.equal(0.2, v[8])
  end)

  it("refuses NaN and infinities on encode", function()
    for _, x in ipairs { 0 / 0, math.huge, -math.huge } do
      local ok, err = pcall(json.encode, { x = x })
      assert.is_false(ok)
      assert.matches("no NaN or infinity", err)
    end
  end)
end)

describe("siamese.json strings", function()
  it("escapes quotes, backslashes and every control character", function()
    assert.are.equal([["a\"b\\c"]], json.encode('a"b\\c'))
    assert.are.equal([["\b\f\n\r\t"]], json.encode("\b\f\n\r\t"))
    assert.are.equal([["\u0000\u0001\u001f\u007f"]], json.encode("\0\1\31\127"))
    assert.are.equal([["a/b"]], json.encode("a/b"))
    local all = {}
    for c = 0, 127 do all[#all + 1] = string.char(c) end
    all = table.concat(all)
    local text = json.encode(all)
    assert.is_nil(text:find("[%z\1-\31]"))
    assert.are.equal(all, decode_ok(text))
  end)

  it("decodes every escape, including \\/ and \\uXXXX", function()
    assert.are.equal('"\\/\b\f\n\r\t', decode_ok([["\"\\\/\b\f\n\r\t"]]))
    assert.are.equal("A\0", decode_ok([["\u0041\u0000"]]))
    assert.are.equal("é", decode_ok([["\u00e9"]]))
    assert.are.equal("€", decode_ok([["\u20AC"]]))
  end)

  it("joins surrogate pairs into one UTF-8 character", function()
    assert.are.equal("\xF0\x9F\x98\x80", decode_ok([["\ud83d\ude00"]]))
    assert.are.equal(utf8.char(0x10FFFF), decode_ok([["\uDBFF\uDFFF"]]))
    assert.matches("without a low surrogate .* at byte 2", decode_err([["\ud83d"]]))
    assert.matches("instead of a low surrogate at byte 8", decode_err([["\ud83d\u0041"]]))
    assert.matches("lone low surrogate \\ude00 at byte 2", decode_err([["\ude00"]]))
  end)

  it("passes UTF-8 through and refuses invalid UTF-8", function()
    local s = "naïve 顔 \xF0\x9F\x98\x80"
    assert.are.equal('"' .. s .. '"', json.encode(s))
    assert.are.equal(s, decode_ok(json.encode(s)))
    assert.matches("invalid UTF%-8 at byte 3", decode_err('"a\xff"'))
    assert.matches("invalid UTF%-8", decode_err('"\xed\xa0\x80"')) -- encoded surrogate
    local ok, err = pcall(json.encode, "a\xc3")
    assert.is_false(ok)
    assert.matches("not valid UTF%-8", err)
  end)
end)

describe("siamese.json arrays, objects and null", function()
  it("writes 1..n tables as arrays and string-keyed tables as objects", function()
    assert.are.equal("[1,2,3]", json.encode { 1, 2, 3 })
    assert.are.equal('{"a":1,"b":[true]}', json.encode { b = { true }, a = 1 })
    local many, keys = {}, {}
    for i = 1, 40 do many["k" .. (i * 7919 % 1000)] = i end
    for k in pairs(many) do keys[#keys + 1] = k end
    table.sort(keys)
    local text, order = json.encode(many), {}
    for k in text:gmatch('"(k%d+)":') do order[#order + 1] = k end
    assert.are.same(keys, order)                     -- sorted keys: the same value, the same text
  end)

  it("writes an empty table as {} unless marked with json.array", function()
    assert.are.equal("{}", json.encode {})
    assert.are.equal("[]", json.encode(json.array {}))
    assert.are.equal("[]", json.encode(json.array()))
    local t = {}
    assert.are.equal(t, json.array(t))
    assert.is_true(json.is_array(t))
    assert.are.equal('{"a":[],"b":{}}', json.encode(decode_ok('{"a":[],"b":{}}')))
  end)

  it("refuses sparse arrays, mixed keys and other key types", function()
    assert.has_error(function() json.encode { 1, nil, 3 } end)
    assert.has_error(function() json.encode { [2] = "x" } end)
    assert.has_error(function() json.encode { 1, a = 2 } end)
    assert.has_error(function() json.encode { [1.5] = 1 } end)
    assert.has_error(function() json.encode { [true] = 1 } end)
    assert.has_error(function() json.encode(print) end)
  end)

  it("uses json.null for null both ways", function()
    local v = decode_ok('{"a": null, "b": [null, 1]}')
    assert.are.equal(json.null, v.a)
    assert.are.equal(json.null, v.b[1])
    assert.are.equal(2, #v.b)
    assert.are.equal('{"a":null,"b":[null,1]}', json.encode(v))
    assert.are.equal("null", json.encode(json.null))
    assert.are.equal("null", json.encode(nil))
    assert.are.equal(json.null, decode_ok("null"))
  end)

  it("refuses cycles", function()
    local t = {}
    t.self = t
    local ok, err = pcall(json.encode, t)
    assert.is_false(ok)
    assert.matches("cycle", err)
    local shared = { 1 }
    assert.are.equal('{"a":[1],"b":[1]}', json.encode { a = shared, b = shared })
  end)
end)

describe("siamese.json output", function()
  it("sorts object keys, so equal values give equal text", function()
    local a, b = {}, {}
    local keys = { "zeta", "alpha", "mid", "Beta", "_x", "a1", "a10", "a2" }
    for i = 1, #keys do a[keys[i]] = i end
    for i = #keys, 1, -1 do b[keys[i]] = i end
    assert.are.equal(json.encode(a), json.encode(b))
    assert.are.equal('{"Beta":4,"_x":5,"a1":6,"a10":7,"a2":8,"alpha":2,"mid":3,"zeta":1}', json.encode(a))
    for _ = 1, 5 do assert.are.equal(json.encode(a, { indent = true }), json.encode(b, { indent = true })) end
  end)

  it("pretty-prints with indent = true", function()
    local text = json.encode({ a = { 1, 2 }, b = {}, c = json.array {} }, { indent = true })
    assert.are.equal('{\n  "a": [\n    1,\n    2\n  ],\n  "b": {},\n  "c": []\n}', text)
    assert.are.same({ a = { 1, 2 } }, decode_ok(json.encode({ a = { 1, 2 } }, { indent = true })))
  end)
end)

describe("siamese.json errors", function()
  it("returns nil and a message with the byte position", function()
    local cases = {
      { "", "expected a value, got end of text at byte 1" },
      { "   ", "at byte 4" },
      { "[1, 2", "expected ',' or ']' in array, got end of text at byte 6" },
      { "[1 2]", "expected ',' or ']' in array, got '2' at byte 4" },
      { '{"a" 1}', "expected ':' after object key, got '1' at byte 6" },
      { "{a: 1}", "expected a string key in object, got 'a' at byte 2" },
      { '{"a": 1,}', "expected a string key in object, got '}' at byte 9" },
      { "[1,]", "expected a value, got ']' at byte 4" },
      { "tru", "invalid literal %(expected true%) at byte 1" },
      { "nul", "invalid literal %(expected null%) at byte 1" },
      { "01", "unexpected '1' after the value at byte 2" },
      { "-", "invalid number at byte 1" },
      { "1.", "expected digits after the decimal point at byte 2" },
      { ".5", "expected a value, got '.' at byte 1" },
      { "1e", "expected digits in the exponent at byte 2" },
      { "+1", "expected a value, got '%+' at byte 1" },
      { '"abc', "unterminated string at byte 1" },
      { '"a\nb"', "unescaped control character 0x0a in string at byte 3" },
      { '"\\x"', "invalid escape \\x in string at byte 2" },
      { '"\\u12"', "expected four hex digits after \\u at byte 4" },
      { '{"a":1,"a":2}', 'duplicate key "a" in object at byte 8' },
      { "[1] [2]", "unexpected '%[' after the value at byte 5" },
      { "{} x", "unexpected 'x' after the value at byte 4" },
      { "\1", "expected a value, got byte 0x01 at byte 1" },
      { "NaN", "expected a value, got 'N' at byte 1" },
    }
    for _, case in ipairs(cases) do
      local err = decode_err(case[1])
      assert(err:find(case[2]), string.format("%q gave %q, expected %q", case[1], err, case[2]))
      assert.matches("^json: ", err)
    end
  end)

  it("accepts white space around values", function()
    assert.are.same({ 1 }, decode_ok(" \t\r\n[ 1 ] \n"))
  end)

  it("limits nesting depth to 200 on decode", function()
    assert.is_table(decode_ok(string.rep("[", 200) .. string.rep("]", 200)))
    assert.is_table(decode_ok(string.rep('{"a":', 199) .. "{}" .. string.rep("}", 199)))
    local err = decode_err(string.rep("[", 201) .. string.rep("]", 201))
    assert.matches("nesting deeper than 200 levels at byte 201", err)
    err = decode_err(string.rep("[", 100000))
    assert.matches("nesting deeper than 200", err)
  end)

  it("raises on misuse", function()
    local ok, err = pcall(json.decode, nil)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'json.decode' %(string expected, got nil%)", err)
    ok, err = pcall(json.encode, 1, "pretty")
    assert.is_false(ok)
    assert.matches("bad argument #2 to 'json.encode'", err)
  end)
end)
