--- siamese.app.web.base64: RFC 4648 base64 (standard alphabet, '=' padding),
-- for data: URLs of result pictures and WebDriver screenshots.
local base64 = {}

local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

-- PAIR[n] for 0 <= n < 4096: the two characters coding the 12 bits n, so
-- that three input bytes (24 bits) become two table look-ups.
local PAIR, VALUE = {}, {}
for i = 0, 63 do
  VALUE[ALPHABET:byte(i + 1)] = i
  for j = 0, 63 do PAIR[i * 64 + j] = ALPHABET:sub(i + 1, i + 1) .. ALPHABET:sub(j + 1, j + 1) end
end

--- The base64 text of a byte string.
function base64.encode(s)
  if type(s) ~= "string" then
    error(("bad argument #1 to 'encode' (string expected, got %s)"):format(type(s)), 2)
  end
  local out, n = {}, #s
  local full = n - n % 3
  for i = 1, full, 3 do
    local a, b, c = s:byte(i, i + 2)
    local v = a << 16 | b << 8 | c
    out[#out + 1] = PAIR[v >> 12] .. PAIR[v & 4095]
  end
  local rest = n - full
  if rest == 1 then
    local v = s:byte(n) << 16
    out[#out + 1] = PAIR[v >> 12] .. "=="
  elseif rest == 2 then
    local a, b = s:byte(n - 1, n)
    local v = a << 16 | b << 8
    out[#out + 1] = PAIR[v >> 12] .. ALPHABET:sub((v >> 6 & 63) + 1, (v >> 6 & 63) + 1) .. "="
  end
  return table.concat(out)
end

--- The bytes of base64 text (whitespace ignored), or nil and a message.
function base64.decode(text)
  if type(text) ~= "string" then
    error(("bad argument #1 to 'decode' (string expected, got %s)"):format(type(text)), 2)
  end
  local s = text:gsub("%s", "")
  if #s % 4 ~= 0 then return nil, "base64: length " .. #s .. " is not a multiple of 4" end
  local pad = s:match("(=*)$")
  if #pad > 2 then return nil, "base64: too much padding" end
  local out = {}
  for i = 1, #s, 4 do
    local a, b, c, d = s:byte(i, i + 3)
    local last = i + 3 == #s
    local va, vb = VALUE[a], VALUE[b]
    local vc = (last and c == 61 and #pad == 2) and 0 or VALUE[c]
    local vd = (last and d == 61) and 0 or VALUE[d]
    if not (va and vb and vc and vd) then
      return nil, "base64: invalid character near offset " .. i
    end
    local v = va << 18 | vb << 12 | vc << 6 | vd
    out[#out + 1] = string.char(v >> 16, v >> 8 & 255, v & 255)
  end
  local bytes = table.concat(out)
  return bytes:sub(1, #bytes - #pad)
end

return base64
