--- siamese.viz: pictures people would rather see than read.
local image = require "siamese.image"

local viz = {}

local function color_bytes(c)
  return string.char(c[1], c[2], c[3])
end

--- Lays tiles out in a grid and returns one RGB image.
-- tiles: a list of images, or of {image = img, border = {r, g, b}}.
-- opts.columns (default ceil(sqrt(n))), opts.border (pixels, default 3),
-- opts.tile_width / opts.tile_height (default: the first tile's size; other
-- tiles are resized to it), opts.background = {r, g, b} (default dark grey).
function viz.montage(tiles, opts)
  opts = opts or {}
  assert(type(tiles) == "table" and #tiles > 0, "montage: tiles must be a non-empty list")
  local first = tiles[1].image or tiles[1]
  local tw = opts.tile_width or first.width
  local th = opts.tile_height or first.height
  local b = opts.border or 3
  local cols = opts.columns or math.ceil(math.sqrt(#tiles))
  local rows = math.ceil(#tiles / cols)
  local bg = color_bytes(opts.background or {40, 40, 40})
  local cw = tw + 2 * b

  -- Every cell as a list of RGB row strings.
  local cells = {}
  for i, t in ipairs(tiles) do
    local img = t.image or t
    if img.width ~= tw or img.height ~= th then
      img = img:resize(tw, th)
    end
    local px = img:to_rgb():bytes()
    local frame = color_bytes(t.border or opts.background or {40, 40, 40})
    local side = frame:rep(b)
    local lines = {}
    for _ = 1, b do lines[#lines + 1] = frame:rep(cw) end
    for y = 0, th - 1 do
      lines[#lines + 1] = side .. px:sub(y * tw * 3 + 1, (y + 1) * tw * 3) .. side
    end
    for _ = 1, b do lines[#lines + 1] = frame:rep(cw) end
    cells[i] = lines
  end

  local out = {}
  local blank = bg:rep(cw)
  for r = 0, rows - 1 do
    for y = 1, th + 2 * b do
      local parts = {}
      for c = 1, cols do
        local cell = cells[r * cols + c]
        parts[c] = cell and cell[y] or blank
      end
      out[#out + 1] = table.concat(parts)
    end
  end
  return image.new(cols * cw, rows * (th + 2 * b), 3, table.concat(out))
end

return viz
