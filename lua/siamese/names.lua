--- siamese.names: the names people are enrolled under, checked the same way
-- everywhere (command line, Lua, web).
--
--   local names = require "siamese.names"
--   local name, err = names.check("  Alice  ")   --> "Alice"
--   names.check("Al\u{200B}ice")                  --> nil, "... invisible or control character U+200B ..."
--   names.key("ÉLODIE") == names.key("élodie")    --> true (duplicates)
--
-- A name is trimmed of surrounding white space; it must be valid UTF-8, 1
-- to names.MAX_BYTES bytes, and free of C0 and C1 control characters,
-- Unicode format characters (zero-width space and joiners, soft hyphen,
-- word joiner, byte-order mark, ...) and bidirectional controls (U+202A-
-- U+202E, U+2066-U+2069, U+200E/F, U+061C), which can make two different
-- names print alike or reorder what a log shows. Two names are the same
-- person's when their keys (names.key: case folded) are equal.
local names = {}

names.MAX_BYTES = 64

-- Code points refused, as {first, last} ranges.
local REFUSED = {
  {0x00, 0x1F}, {0x7F, 0x9F},           -- C0, DEL, C1 controls
  {0xAD, 0xAD},                          -- soft hyphen
  {0x034F, 0x034F},                      -- combining grapheme joiner
  {0x061C, 0x061C},                      -- Arabic letter mark (bidi)
  {0x115F, 0x1160}, {0x3164, 0x3164}, {0xFFA0, 0xFFA0}, -- Hangul fillers (invisible)
  {0x17B4, 0x17B5},                      -- Khmer invisible vowels
  {0x180B, 0x180F},                      -- Mongolian variation selectors and vowel separator
  {0x200B, 0x200F},                      -- zero-width space, non-joiner, joiner, LRM, RLM
  {0x2028, 0x202E},                      -- line/paragraph separators, bidi embeddings and overrides
  {0x2060, 0x206F},                      -- word joiner, invisible operators, bidi isolates, deprecated formats
  {0xFE00, 0xFE0F},                      -- variation selectors
  {0xFEFF, 0xFEFF},                      -- byte-order mark / zero-width no-break space
  {0xFFF9, 0xFFFB},                      -- interlinear annotation
  {0x1BCA0, 0x1BCA3},                    -- shorthand format controls
  {0x1D173, 0x1D17A},                    -- musical symbol format controls
  {0xE0000, 0xE0FFF},                    -- tags and variation selectors supplement
}
names.REFUSED = REFUSED -- read-only by convention (siamese.gallery_pg makes them constraints)

local function refused(cp)
  for _, r in ipairs(REFUSED) do
    if cp >= r[1] and cp <= r[2] then return true end
  end
  return false
end

--- The trimmed name, or nil and a reason naming what is wrong. what
-- (default "name") names the value in the reason ("field 'name'", "NAME").
function names.check(raw, what)
  what = what or "name"
  if type(raw) ~= "string" then return nil, what .. " must be a string, got " .. type(raw) end
  -- Fast path (the result the loop below gives, found by one C match): a
  -- name of printable ASCII, neither starting nor ending with a space.
  if #raw <= names.MAX_BYTES and raw:find("^[%w%p][%w%p ]*$") and raw:byte(-1) ~= 32 then return raw end
  if not utf8.len(raw) then return nil, what .. " is not valid UTF-8" end
  -- trim ASCII white space and the Unicode spaces U+00A0, U+2000-U+200A, U+3000
  local name = raw
  local function is_space(cp)
    return cp == 0x20 or (cp >= 0x09 and cp <= 0x0D) or cp == 0xA0 or (cp >= 0x2000 and cp <= 0x200A)
      or cp == 0x3000 or cp == 0x1680 or cp == 0x202F or cp == 0x205F
  end
  local cps = {}
  for _, cp in utf8.codes(name) do cps[#cps + 1] = cp end
  local a, b = 1, #cps
  while a <= b and is_space(cps[a]) do a = a + 1 end
  while b >= a and is_space(cps[b]) do b = b - 1 end
  if a > b then return nil, what .. " is empty" end
  for i = a, b do
    if refused(cps[i]) then
      return nil, string.format("%s contains an invisible or control character U+%04X", what, cps[i])
    end
  end
  name = utf8.char(table.unpack(cps, a, b))
  if #name > names.MAX_BYTES then
    return nil, string.format("%s is %d bytes long, at most %d allowed", what, #name, names.MAX_BYTES)
  end
  return name
end

-- Simple case folding: ASCII, Latin-1, Latin Extended-A (pairs), Greek and
-- Cyrillic capitals; other scripts compare as written.
local function fold(cp)
  if (cp >= 0x41 and cp <= 0x5A) or (cp >= 0xC0 and cp <= 0xDE and cp ~= 0xD7) then return cp + 32 end
  if cp >= 0x100 and cp <= 0x17F and cp % 2 == 0 and cp ~= 0x130 and cp ~= 0x138 then
    if not (cp >= 0x139 and cp <= 0x148) and not (cp >= 0x179 and cp <= 0x17E) then return cp + 1 end
  end
  if (cp >= 0x139 and cp <= 0x148) or (cp >= 0x179 and cp <= 0x17E) then
    if cp % 2 == 1 then return cp + 1 end
  end
  if cp >= 0x391 and cp <= 0x3AB and cp ~= 0x3A2 then return cp + 32 end
  if cp >= 0x410 and cp <= 0x42F then return cp + 32 end
  if cp >= 0x400 and cp <= 0x40F then return cp + 80 end
  return cp
end

--- The comparison key of a checked name: case folded, so that "alice" and
-- "ALICE" are the same identity.
function names.key(name)
  if not name:find("[\128-\255]") then return name:lower() end -- ASCII: fold is A-Z only
  local out = {}
  for _, cp in utf8.codes(name) do out[#out + 1] = utf8.char(fold(cp)) end
  return table.concat(out)
end

--- The enrolled name (in names_list) that is the same as name but for
-- case, or nil.
function names.same_as(name, names_list)
  local k = names.key(name)
  for _, other in ipairs(names_list) do
    if other ~= name and names.key(other) == k then return other end
  end
  return nil
end

return names
