--- siamese.json: a small, strict JSON encoder and decoder in pure Lua
-- (RFC 8259), used for safetensors headers and for metadata.
--
-- Mapping between JSON and Lua values:
--
--   null     <-> json.null (a sentinel; Lua nil cannot live in a table)
--   true/false <-> booleans
--   numbers  <-> integers when written without fraction or exponent and they
--                fit in a Lua integer, floats otherwise; floats are written
--                with the fewest digits (up to 17) that read back the same
--                value, and keep a ".0" so they decode as floats again;
--                NaN and infinities cannot be encoded (error)
--   strings  <-> strings (UTF-8; \uXXXX escapes incl. surrogate pairs)
--   arrays   <-> tables with keys 1..n; decoded arrays carry the array
--                marker, so an empty one encodes back as [] (mark your own
--                with json.array(t)); an unmarked empty table encodes as {}
--   objects  <-> tables with string keys, written in sorted key order so
--                the same value always gives the same text
--
-- json.encode(value [, {indent = true}]) -> string   (raises on misuse)
-- json.decode(text) -> value | nil, "json: <what> at byte <n>"
--
-- Why not Debian's lua-cjson (2.1): it decodes every number as a float
-- (safetensors offsets and shapes must be integers), writes at most 14
-- significant digits (0.1 + 0.2 comes back as 0.3, and integers past 1e14
-- are damaged), has no key order (headers would differ from run to run)
-- and no empty-array marker. lua-dkjson writes floats with tostring's 14
-- digits too. spec/json_spec.lua pins each of these properties.

local json = {}

local MAX_DEPTH = 200

local null_mt = {
  __tostring = function() return "json.null" end,
  __name = "json.null",
}
--- The value standing for JSON null in decoded data and in data to encode.
json.null = setmetatable({}, null_mt)

local array_mt = { __name = "json.array" }
json.array_mt = array_mt

--- Marks t (default: a new table) as a JSON array, so that it encodes as
-- [] even when empty; returns t.
function json.array(t)
  t = t or {}
  assert(type(t) == "table", "json.array: expected a table")
  return setmetatable(t, array_mt)
end

--- True when t is a table marked as an array (decoded arrays are marked).
function json.is_array(t)
  return type(t) == "table" and getmetatable(t) == array_mt
end

-- ---------------------------------------------------------------- encoding

local ESCAPES = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}

local function escape_char(c)
  return ESCAPES[c] or string.format("\\u%04x", c:byte())
end

local function encode_string(s)
  if not utf8.len(s) then
    local _, bad = utf8.len(s)
    error(string.format("json.encode: string is not valid UTF-8 (byte %d)", bad), 0)
  end
  return '"' .. s:gsub('[%c"\\]', escape_char) .. '"'
end

-- Shortest of %.15g, %.16g, %.17g that reads back as the same float, with
-- ".0" appended when it would otherwise look like an integer.
local function encode_float(x)
  if x ~= x or x == math.huge or x == -math.huge then
    local name = x ~= x and "NaN" or (x > 0 and "infinity" or "-infinity")
    error("json.encode: cannot encode " .. name .. " (JSON has no NaN or infinity)", 0)
  end
  local text
  for digits = 15, 17 do
    text = string.format("%." .. digits .. "g", x)
    if tonumber(text) == x then break end
  end
  if not text:find("[%.eEn]") then text = text .. ".0" end
  return text
end

local function encode_number(x)
  if math.type(x) == "integer" then return string.format("%d", x) end
  return encode_float(x)
end

-- Returns "array", n or "object", sorted keys; raises on mixed keys.
local function classify_table(t)
  if getmetatable(t) == array_mt then return "array", #t end
  local count, max_int, has_string = 0, 0, false
  for k in pairs(t) do
    count = count + 1
    if math.type(k) == "integer" and k >= 1 then
      if k > max_int then max_int = k end
    elseif type(k) == "string" then
      has_string = true
    else
      error("json.encode: table key " .. tostring(k) .. " is neither a string nor an array index", 0)
    end
  end
  if count == 0 then return "object", {} end
  if not has_string and max_int == count then return "array", count end
  if max_int > 0 then
    error("json.encode: table mixes string keys with integer keys, or is a sparse array", 0)
  end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return "object", keys
end

local encode_value

local function encode_table(t, out, state, depth)
  if state.open[t] then error("json.encode: the value contains a cycle", 0) end
  if depth > MAX_DEPTH then error("json.encode: nesting deeper than " .. MAX_DEPTH, 0) end
  state.open[t] = true
  local kind, info = classify_table(t)
  local pad = state.indent and "\n" .. string.rep("  ", depth + 1) or ""
  local close_pad = state.indent and "\n" .. string.rep("  ", depth) or ""
  local colon = state.indent and ": " or ":"
  local empty = (kind == "array" and info == 0) or (kind == "object" and #info == 0)
  out[#out + 1] = kind == "array" and "[" or "{"
  if kind == "array" then
    for i = 1, info do
      if i > 1 then out[#out + 1] = "," end
      out[#out + 1] = pad
      encode_value(t[i], out, state, depth + 1)
    end
  else
    for i, k in ipairs(info) do
      if i > 1 then out[#out + 1] = "," end
      out[#out + 1] = pad .. encode_string(k) .. colon
      encode_value(t[k], out, state, depth + 1)
    end
  end
  if not empty then out[#out + 1] = close_pad end
  out[#out + 1] = kind == "array" and "]" or "}"
  state.open[t] = nil
end

function encode_value(v, out, state, depth)
  local tv = type(v)
  if v == json.null or v == nil then
    out[#out + 1] = "null"
  elseif tv == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif tv == "number" then
    out[#out + 1] = encode_number(v)
  elseif tv == "string" then
    out[#out + 1] = encode_string(v)
  elseif tv == "table" then
    encode_table(v, out, state, depth)
  else
    error("json.encode: cannot encode a " .. tv, 0)
  end
end

--- Encodes value as JSON text. opts.indent = true pretty-prints with two
-- spaces per level. Raises on values JSON cannot hold (functions, NaN,
-- cycles, tables mixing array and object keys, invalid UTF-8).
function json.encode(value, opts)
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #2 to 'json.encode' (table expected, got " .. type(opts) .. ")", 2)
  end
  local out = {}
  encode_value(value, out, { open = {}, indent = opts and opts.indent }, 0)
  return table.concat(out)
end

-- ---------------------------------------------------------------- decoding

-- Errors inside the decoder are raised as tables and turned into nil, msg.
local decode_error_mt = {}

local function fail(pos, fmt, ...)
  error(setmetatable({ pos = pos, msg = string.format(fmt, ...) }, decode_error_mt), 0)
end

local function skip_space(s, pos)
  return s:find("[^ \t\r\n]", pos) or #s + 1
end

local function describe_char(s, pos)
  if pos > #s then return "end of text" end
  local c = s:sub(pos, pos)
  if c:match("^[%g ]$") then return "'" .. c .. "'" end
  return string.format("byte 0x%02x", c:byte())
end

local function read_hex4(s, pos)
  local hex = s:match("^%x%x%x%x", pos)
  if not hex then fail(pos, "expected four hex digits after \\u") end
  return tonumber(hex, 16)
end

-- Reads the \uXXXX escape whose backslash is at pos; returns the UTF-8
-- text and the next position.
local function read_unicode_escape(s, pos)
  local cp = read_hex4(s, pos + 2)
  local next_pos = pos + 6
  if cp >= 0xDC00 and cp <= 0xDFFF then
    fail(pos, "lone low surrogate \\u%04x", cp)
  elseif cp >= 0xD800 and cp <= 0xDBFF then
    if s:sub(next_pos, next_pos + 1) ~= "\\u" then
      fail(pos, "high surrogate \\u%04x without a low surrogate after it", cp)
    end
    local low = read_hex4(s, next_pos + 2)
    if low < 0xDC00 or low > 0xDFFF then
      fail(next_pos, "high surrogate \\u%04x followed by \\u%04x instead of a low surrogate", cp, low)
    end
    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00)
    next_pos = next_pos + 6
  end
  return utf8.char(cp), next_pos
end

local SIMPLE_ESCAPES = {
  ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t",
}

-- pos is at the opening quote; returns the string and the next position.
local function read_string(s, pos)
  local parts, i = {}, pos + 1
  while true do
    local j = s:find('[%z\1-\31"\\]', i)
    if not j then fail(pos, "unterminated string") end
    if j > i then parts[#parts + 1] = s:sub(i, j - 1) end
    local c = s:sub(j, j)
    if c == '"' then
      return table.concat(parts), j + 1
    elseif c == "\\" then
      local e = s:sub(j + 1, j + 1)
      if e == "u" then
        parts[#parts + 1], i = read_unicode_escape(s, j)
      elseif SIMPLE_ESCAPES[e] then
        parts[#parts + 1], i = SIMPLE_ESCAPES[e], j + 2
      else
        fail(j, "invalid escape \\%s in string", e)
      end
    else
      fail(j, "unescaped control character 0x%02x in string", c:byte())
    end
  end
end

-- -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
local function read_number(s, pos)
  local int_end = select(2, s:find("^-?0", pos)) or select(2, s:find("^-?[1-9]%d*", pos))
  if not int_end then fail(pos, "invalid number") end
  local last = int_end
  if s:sub(last + 1, last + 1) == "." then
    local frac_end = select(2, s:find("^%d+", last + 2))
    if not frac_end then fail(last + 1, "expected digits after the decimal point") end
    last = frac_end
  end
  if s:find("^[eE]", last + 1) then
    local exp_end = select(2, s:find("^[+-]?%d+", last + 2))
    if not exp_end then fail(last + 1, "expected digits in the exponent") end
    last = exp_end
  end
  local text = s:sub(pos, last)
  -- Lua reads a fraction or exponent as a float, and an integer literal
  -- too big for a Lua integer as a float too.
  return tonumber(text), last + 1
end

local read_value

local function read_array(s, pos, depth)
  local arr, n = setmetatable({}, array_mt), 0
  pos = skip_space(s, pos + 1)
  if s:sub(pos, pos) == "]" then return arr, pos + 1 end
  while true do
    n = n + 1
    arr[n], pos = read_value(s, pos, depth)
    pos = skip_space(s, pos)
    local c = s:sub(pos, pos)
    if c == "]" then return arr, pos + 1 end
    if c ~= "," then fail(pos, "expected ',' or ']' in array, got %s", describe_char(s, pos)) end
    pos = skip_space(s, pos + 1)
  end
end

local function read_object(s, pos, depth)
  local obj = {}
  pos = skip_space(s, pos + 1)
  if s:sub(pos, pos) == "}" then return obj, pos + 1 end
  while true do
    if s:sub(pos, pos) ~= '"' then
      fail(pos, "expected a string key in object, got %s", describe_char(s, pos))
    end
    local key_pos = pos
    local key
    key, pos = read_string(s, pos)
    if obj[key] ~= nil then fail(key_pos, "duplicate key %q in object", key) end
    pos = skip_space(s, pos)
    if s:sub(pos, pos) ~= ":" then fail(pos, "expected ':' after object key, got %s", describe_char(s, pos)) end
    obj[key], pos = read_value(s, skip_space(s, pos + 1), depth)
    pos = skip_space(s, pos)
    local c = s:sub(pos, pos)
    if c == "}" then return obj, pos + 1 end
    if c ~= "," then fail(pos, "expected ',' or '}' in object, got %s", describe_char(s, pos)) end
    pos = skip_space(s, pos + 1)
  end
end

local LITERALS = { t = { "true", true }, f = { "false", false }, n = { "null", json.null } }

function read_value(s, pos, depth)
  local c = s:sub(pos, pos)
  if c == "{" or c == "[" then
    if depth >= MAX_DEPTH then fail(pos, "nesting deeper than %d levels", MAX_DEPTH) end
    if c == "{" then return read_object(s, pos, depth + 1) end
    return read_array(s, pos, depth + 1)
  elseif c == '"' then
    return read_string(s, pos)
  elseif c == "-" or c:match("^%d$") then
    return read_number(s, pos)
  elseif LITERALS[c] then
    local word, value = LITERALS[c][1], LITERALS[c][2]
    if s:sub(pos, pos + #word - 1) ~= word then fail(pos, "invalid literal (expected %s)", word) end
    return value, pos + #word
  end
  fail(pos, "expected a value, got %s", describe_char(s, pos))
end

--- Decodes JSON text. Returns the value, or nil and a message giving the
-- byte position (1-based) of the problem: invalid syntax, invalid UTF-8,
-- lone surrogates, duplicate object keys, nesting deeper than 200 levels,
-- or anything but white space after the value.
function json.decode(text)
  if type(text) ~= "string" then
    error("bad argument #1 to 'json.decode' (string expected, got " .. type(text) .. ")", 2)
  end
  local valid, bad = utf8.len(text)
  if not valid then return nil, string.format("json: invalid UTF-8 at byte %d", bad) end
  local ok, value, pos = pcall(function()
    local v, p = read_value(text, skip_space(text, 1), 0)
    return v, skip_space(text, p)
  end)
  if not ok then
    if getmetatable(value) ~= decode_error_mt then error(value, 0) end
    return nil, string.format("json: %s at byte %d", value.msg, value.pos)
  end
  if pos <= #text then
    return nil, string.format("json: unexpected %s after the value at byte %d", describe_char(text, pos), pos)
  end
  return value
end

return json
