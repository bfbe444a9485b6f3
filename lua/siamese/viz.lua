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

-- A white RGB canvas with pixel setting and line drawing, turned into an
-- image at the end.
local function canvas(w, h)
  local px = {}
  for i = 1, w * h * 3 do px[i] = 255 end
  local c = {}
  function c.set(x, y, col)
    x, y = math.floor(x + 0.5), math.floor(y + 0.5)
    if x < 0 or y < 0 or x >= w or y >= h then return end
    local i = (y * w + x) * 3
    px[i + 1], px[i + 2], px[i + 3] = col[1], col[2], col[3]
  end
  function c.line(x0, y0, x1, y1, col)
    local n = math.max(1, math.ceil(math.max(math.abs(x1 - x0), math.abs(y1 - y0))))
    for k = 0, n do c.set(x0 + (x1 - x0) * k / n, y0 + (y1 - y0) * k / n, col) end
  end
  function c.image()
    local bytes = {}
    for i = 1, #px do bytes[i] = string.char(px[i]) end
    return image.new(w, h, 3, table.concat(bytes))
  end
  return c
end

--- Draws a rectangle outline {x, y, width, height} (pixels, may leave the
-- image) in colour {r, g, b} on an RGB image, in place.
function viz.draw_box(img, box, colour, thickness)
  thickness = thickness or 2
  local x0, y0 = math.floor(box.x + 0.5), math.floor(box.y + 0.5)
  local x1, y1 = math.floor(box.x + box.width + 0.5), math.floor(box.y + box.height + 0.5)
  local function put(x, y)
    if x >= 0 and y >= 0 and x < img.width and y < img.height then img:set(x, y, colour[1], colour[2], colour[3]) end
  end
  for t = 0, thickness - 1 do
    for x = x0, x1 do put(x, y0 + t); put(x, y1 - t) end
    for y = y0, y1 do put(x0 + t, y); put(x1 - t, y) end
  end
  return img
end

--- Draws small crosses at points {{x, y}, ...} in place.
function viz.draw_points(img, points, colour)
  for _, p in ipairs(points) do
    local x, y = math.floor(p[1] + 0.5), math.floor(p[2] + 0.5)
    for d = -1, 1 do
      for _, q in ipairs{{x + d, y}, {x, y + d}} do
        if q[1] >= 0 and q[2] >= 0 and q[1] < img.width and q[2] < img.height then
          img:set(q[1], q[2], colour[1], colour[2], colour[3])
        end
      end
    end
  end
  return img
end

--- Writes text (5x7 font, upper-case, scaled by `scale`) with its top-left
-- at (x, y), on a background strip (default black) for legibility, in place.
function viz.draw_text(img, x, y, text, colour, scale, background)
  local font = require "siamese.font5x7"
  scale = scale or 2
  text = text:upper()
  local bg = background or {0, 0, 0}
  local w = #text * 6 * scale
  for yy = y - 1, y + 8 * scale do
    for xx = x - 1, x + w do
      if xx >= 0 and yy >= 0 and xx < img.width and yy < img.height then img:set(xx, yy, bg[1], bg[2], bg[3]) end
    end
  end
  for i = 1, #text do
    local glyph = font[text:sub(i, i)] or font["?"]
    for row = 1, 7 do
      for col = 0, 4 do
        if glyph[row] & (0x10 >> col) ~= 0 then
          for dy = 0, scale - 1 do
            for dx = 0, scale - 1 do
              local px, py = x + ((i - 1) * 6 + col) * scale + dx, y + (row - 1) * scale + dy
              if px >= 0 and py >= 0 and px < img.width and py < img.height then
                img:set(px, py, colour[1], colour[2], colour[3])
              end
            end
          end
        end
      end
    end
  end
  return img
end

-- Colours of annotate_faces, by decision state.
viz.FACE_COLOURS = {accepted = {40, 170, 70}, unknown = {210, 50, 40}, undecided = {128, 128, 128},
                    refused = {128, 128, 128}}

local function annotate_error(argn, fmt, ...)
  error(("bad argument #%d to 'annotate_faces' (" .. fmt .. ")"):format(argn, ...), 3)
end

--- Draws each face's box, five points and a label on an RGB image, in
-- place (returns img): a frame of `siamese watch --out`, a result photo.
-- faces: a list of {box = {x, y, width, height}, points = {{x, y}, ...}
-- (or points5; optional), name, id (a track id, shown as "#id"), state =
-- "accepted" | "unknown" | "undecided" | "refused" (default: from
-- accepted = true / false, else undecided), label (replaces the text)}.
-- Colours: green accepted, red unknown, gray undecided or refused
-- (viz.FACE_COLOURS). The label is the name (accepted) or the state, above
-- the box (below it at the top edge). opts: thickness (default 2),
-- text_scale (default 2: 12 px a character).
function viz.annotate_faces(img, faces, opts)
  local mt = getmetatable(img)
  if not (type(mt) == "table" and mt.__name == "siamese.Image") then
    annotate_error(1, "siamese.Image expected, got %s", type(img))
  end
  if img.channels ~= 3 then annotate_error(1, "an RGB image expected, got %d channels", img.channels) end
  if type(faces) ~= "table" then annotate_error(2, "list of faces expected, got %s", type(faces)) end
  if opts ~= nil and type(opts) ~= "table" then annotate_error(3, "table expected, got %s", type(opts)) end
  opts = opts or {}
  local thickness, scale = opts.thickness or 2, opts.text_scale or 2
  if math.type(thickness) ~= "integer" or thickness < 1 or thickness > 64 then
    annotate_error(3, "thickness must be an integer 1..64, got %s", tostring(thickness))
  end
  if math.type(scale) ~= "integer" or scale < 1 or scale > 16 then
    annotate_error(3, "text_scale must be an integer 1..16, got %s", tostring(scale))
  end
  for i, f in ipairs(faces) do
    local b = type(f) == "table" and f.box
    if type(b) ~= "table" or type(b.x) ~= "number" or type(b.y) ~= "number" or type(b.width) ~= "number"
      or type(b.height) ~= "number" then
      annotate_error(2, "faces[%d].box must be {x, y, width, height}", i)
    end
    local state = f.state or (f.accepted == true and "accepted") or (f.accepted == false and "unknown") or "undecided"
    local colour = viz.FACE_COLOURS[state]
    if not colour then annotate_error(2, "faces[%d].state must be accepted, unknown, undecided or refused, got %s", i,
                                      tostring(state)) end
    viz.draw_box(img, b, colour, thickness)
    local points = f.points or f.points5
    if type(points) == "table" then viz.draw_points(img, points, {255, 220, 0}) end
    local text = f.label or (state == "accepted" and f.name) or state
    text = tostring(text) .. (f.id ~= nil and (" #" .. tostring(f.id)) or "")
    local th = 8 * scale + 2
    local ty = b.y - th - 1
    if ty < 1 then ty = b.y + b.height + 3 end
    local tx = math.max(1, math.min(b.x, img.width - #text * 6 * scale - 1))
    viz.draw_text(img, math.floor(tx), math.floor(ty), text, {255, 255, 255}, scale, colour)
  end
  return img
end

--- A ROC curve (true-accept rate against false-accept rate, log-scaled
-- from 1e-4 to 1 on x) as an RGB image; several curves may be given as
-- {roc, ...} with colours {{r,g,b}, ...}. Grid lines mark each decade and
-- every 0.1 of TAR.
function viz.roc_image(rocs, opts)
  opts = opts or {}
  if rocs.fpr then rocs = {rocs} end
  local W, H, m = opts.width or 480, opts.height or 400, 30
  local c = canvas(W, H)
  local lo = math.log(opts.min_far or 1e-4, 10)
  local function X(fpr) return m + (W - 2 * m) * (math.log(math.max(fpr, 10 ^ lo), 10) - lo) / -lo end
  local function Y(tpr) return H - m - (H - 2 * m) * tpr end
  local grid = {220, 220, 220}
  for d = lo, 0 do c.line(X(10 ^ d), Y(0), X(10 ^ d), Y(1), grid) end
  for t = 0, 10 do c.line(X(10 ^ lo), Y(t / 10), X(1), Y(t / 10), grid) end
  c.line(X(10 ^ lo), Y(0), X(1), Y(0), {0, 0, 0})
  c.line(X(10 ^ lo), Y(0), X(10 ^ lo), Y(1), {0, 0, 0})
  local colours = opts.colours or {{200, 30, 30}, {30, 90, 200}, {30, 150, 60}}
  for k, roc in ipairs(rocs) do
    local col = colours[(k - 1) % #colours + 1]
    for i = 2, #roc.fpr do
      c.line(X(roc.fpr[i - 1]), Y(roc.tpr[i - 1]), X(roc.fpr[i]), Y(roc.tpr[i - 1]), col)
      c.line(X(roc.fpr[i]), Y(roc.tpr[i - 1]), X(roc.fpr[i]), Y(roc.tpr[i]), col)
    end
  end
  local img = c.image()
  local ink, paper = {60, 60, 60}, {255, 255, 255}
  for d = lo, 0 do
    local label = d == 0 and "1" or string.format("1E%d", math.floor(d + 0.5))
    viz.draw_text(img, math.floor(X(10 ^ d)) - 3 * #label, H - m + 8, label, ink, 1, paper)
  end
  for _, t in ipairs{0, 0.5, 1} do viz.draw_text(img, 2, math.floor(Y(t)) - 3, tostring(t), ink, 1, paper) end
  viz.draw_text(img, m + 4, 8, opts.title or "ROC: TAR AGAINST FAR", ink, 1, paper)
  return img
end

return viz
