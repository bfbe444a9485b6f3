-- Generated images with no person in them, for the door-safety spec
-- (spec/door_nonface_spec.lua): gradients at several sizes and colour
-- pairs, flat colours, noise, stripes, checkerboards, skin-coloured
-- ellipses, drawn smileys and text. Deterministic: the same seed gives the
-- same images on every machine (a 32-bit LCG of our own, integer pixel
-- arithmetic only).
--
--   local nonface = dofile("spec/nonface_images.lua")
--   for _, item in ipairs(nonface.generate(20261202)) do ... item.name, item.image ... end
local image = require "siamese.image"
local font = require "siamese.font5x7"

local nonface = {}

-- A canvas of w x h RGB pixels as a flat list of bytes.
local function canvas(w, h, rgb)
  local px = {}
  for i = 0, w * h - 1 do
    px[3 * i + 1], px[3 * i + 2], px[3 * i + 3] = rgb[1], rgb[2], rgb[3]
  end
  return {w = w, h = h, px = px}
end

local function set(c, x, y, rgb)
  if x < 0 or y < 0 or x >= c.w or y >= c.h then return end
  local i = 3 * (y * c.w + x)
  c.px[i + 1], c.px[i + 2], c.px[i + 3] = rgb[1], rgb[2], rgb[3]
end

local function to_image(c)
  local parts, px = {}, c.px
  for i = 1, #px, 3000 do
    parts[#parts + 1] = string.char(table.unpack(px, i, math.min(i + 2999, #px)))
  end
  return image.new(c.w, c.h, 3, table.concat(parts))
end

-- The generator: a 32-bit LCG (Numerical Recipes constants).
local function lcg(seed)
  local s = seed & 0xffffffff
  return function(n) -- an integer in [0, n)
    s = (s * 1664525 + 1013904223) & 0xffffffff
    return (s >> 8) % n
  end
end

local function mix(a, b, t, n) -- a + (b - a) t / n, per channel, integers
  return {a[1] + (b[1] - a[1]) * t // n, a[2] + (b[2] - a[2]) * t // n, a[3] + (b[3] - a[3]) * t // n}
end

local function gradient(w, h, a, b, dir)
  local c = canvas(w, h, a)
  for y = 0, h - 1 do
    for x = 0, w - 1 do
      local t, n
      if dir == "vertical" then t, n = y, math.max(h - 1, 1)
      elseif dir == "horizontal" then t, n = x, math.max(w - 1, 1)
      else t, n = x + y, math.max(w + h - 2, 1) end
      set(c, x, y, mix(a, b, t, n))
    end
  end
  return c
end

local function noise(w, h, rand, gray)
  local c = canvas(w, h, {0, 0, 0})
  for i = 1, #c.px, 3 do
    if gray then
      local v = rand(256)
      c.px[i], c.px[i + 1], c.px[i + 2] = v, v, v
    else
      c.px[i], c.px[i + 1], c.px[i + 2] = rand(256), rand(256), rand(256)
    end
  end
  return c
end

local function stripes(w, h, a, b, width, dir)
  local c = canvas(w, h, a)
  for y = 0, h - 1 do
    for x = 0, w - 1 do
      local k = dir == "vertical" and x or dir == "horizontal" and y or x + y
      if (k // width) % 2 == 1 then set(c, x, y, b) end
    end
  end
  return c
end

local function checkerboard(w, h, a, b, cell)
  local c = canvas(w, h, a)
  for y = 0, h - 1 do
    for x = 0, w - 1 do
      if ((x // cell) + (y // cell)) % 2 == 1 then set(c, x, y, b) end
    end
  end
  return c
end

-- A filled ellipse centred at (cx, cy) with semi-axes rx, ry.
local function ellipse(c, cx, cy, rx, ry, rgb)
  for y = math.max(0, cy - ry), math.min(c.h - 1, cy + ry) do
    for x = math.max(0, cx - rx), math.min(c.w - 1, cx + rx) do
      local dx, dy = x - cx, y - cy
      if dx * dx * ry * ry + dy * dy * rx * rx <= rx * rx * ry * ry then set(c, x, y, rgb) end
    end
  end
end

-- A ring (circle outline of thickness t).
local function ring(c, cx, cy, r, t, rgb)
  for y = math.max(0, cy - r), math.min(c.h - 1, cy + r) do
    for x = math.max(0, cx - r), math.min(c.w - 1, cx + r) do
      local d2 = (x - cx) ^ 2 + (y - cy) ^ 2
      if d2 <= r * r and d2 >= (r - t) ^ 2 then set(c, x, y, rgb) end
    end
  end
end

-- A smiley: a yellow (or skin) disc, two dark eyes, a smiling arc.
local function smiley(c, cx, cy, r, face, ink)
  ellipse(c, cx, cy, r, r, face)
  ring(c, cx, cy, r, math.max(2, r // 15), ink)
  local eye = math.max(2, r // 8)
  ellipse(c, cx - r * 2 // 5, cy - r // 4, eye, eye + eye // 2, ink)
  ellipse(c, cx + r * 2 // 5, cy - r // 4, eye, eye + eye // 2, ink)
  local t = math.max(2, r // 12)
  for y = cy, cy + r * 3 // 5 do
    for x = cx - r // 2, cx + r // 2 do
      local d2 = (x - cx) ^ 2 + (y - cy + r // 8) ^ 2
      local rr = r // 2
      if d2 <= rr * rr and d2 >= (rr - t) ^ 2 then set(c, x, y, ink) end
    end
  end
end

local function text(c, x0, y0, s, scale, rgb)
  local x = x0
  for ch in s:upper():gmatch(".") do
    local g = font[ch] or font["?"]
    for row = 1, 7 do
      for col = 0, 4 do
        if (g[row] >> (4 - col)) & 1 == 1 then
          for dy = 0, scale - 1 do
            for dx = 0, scale - 1 do set(c, x + col * scale + dx, y0 + (row - 1) * scale + dy, rgb) end
          end
        end
      end
    end
    x = x + 6 * scale
  end
end

local COLOURS = {
  {0, 0, 255}, {255, 255, 0}, {255, 0, 0}, {0, 255, 0}, {0, 0, 0}, {255, 255, 255}, {128, 128, 128},
  {255, 128, 0}, {0, 255, 255}, {128, 0, 128},
}
local SKIN = {{224, 172, 105}, {241, 194, 125}, {198, 134, 66}, {141, 85, 36}, {255, 219, 172}, {92, 51, 23}}
local SIZES = {{400, 300}, {300, 400}, {640, 480}, {160, 160}, {250, 250}, {96, 112}}
local WORDS = {"NO FACE HERE", "HELLO 123", "DOOR", "ACCESS DENIED", "SIAMESE", "Q.E.D.", "LOREM IPSUM"}

--- The images: a list of {name, image}, about 300 of them.
function nonface.generate(seed)
  local rand = lcg(seed)
  local out = {}
  local function add(name, c) out[#out + 1] = {name = name, image = to_image(c)} end
  local function colour() return COLOURS[rand(#COLOURS) + 1] end
  local function size() local s = SIZES[rand(#SIZES) + 1]; return s[1], s[2] end
  -- the gradient of the report first: 400x300 blue to yellow, top to bottom
  add("gradient blue-yellow 400x300", gradient(400, 300, {0, 0, 255}, {255, 255, 0}, "vertical"))
  for i = 1, 60 do
    local w, h = size()
    local a, b = colour(), colour()
    local dir = ({"vertical", "horizontal", "diagonal"})[i % 3 + 1]
    add(string.format("gradient %d %s %dx%d", i, dir, w, h), gradient(w, h, a, b, dir))
  end
  for i = 1, 20 do
    local w, h = size()
    add(string.format("flat %d %dx%d", i, w, h), canvas(w, h, {rand(256), rand(256), rand(256)}))
  end
  for i = 1, 30 do
    local w, h = size()
    add(string.format("noise %d %dx%d", i, w, h), noise(w, h, rand, i % 2 == 0))
  end
  for i = 1, 40 do
    local w, h = size()
    local dir = ({"vertical", "horizontal", "diagonal"})[i % 3 + 1]
    add(string.format("stripes %d %s %dx%d", i, dir, w, h), stripes(w, h, colour(), colour(), 2 + rand(30), dir))
  end
  for i = 1, 30 do
    local w, h = size()
    add(string.format("checkerboard %d %dx%d", i, w, h), checkerboard(w, h, colour(), colour(), 4 + rand(40)))
  end
  for i = 1, 50 do
    local w, h = size()
    local c = i % 2 == 0 and gradient(w, h, colour(), colour(), "vertical") or canvas(w, h, colour())
    local rx = w // 6 + rand(w // 4)
    local ry = rx * (5 + rand(4)) // 4
    ellipse(c, w // 2 + rand(21) - 10, h // 2 + rand(21) - 10, rx, ry, SKIN[rand(#SKIN) + 1])
    add(string.format("skin ellipse %d %dx%d", i, w, h), c)
  end
  for i = 1, 40 do
    local w, h = size()
    local c = canvas(w, h, i % 3 == 0 and colour() or {255, 255, 255})
    local r = math.min(w, h) // 4 + rand(math.min(w, h) // 5)
    local face = i % 2 == 0 and {255, 220, 0} or SKIN[rand(#SKIN) + 1]
    smiley(c, w // 2, h // 2, r, face, {0, 0, 0})
    add(string.format("smiley %d %dx%d", i, w, h), c)
  end
  for i = 1, 30 do
    local w, h = size()
    local c = canvas(w, h, colour())
    local scale = 1 + rand(4)
    for line = 0, 3 do
      text(c, 4 + rand(20), 8 + line * 10 * scale, WORDS[rand(#WORDS) + 1], scale, colour())
    end
    add(string.format("text %d %dx%d", i, w, h), c)
  end
  return out
end

return nonface
