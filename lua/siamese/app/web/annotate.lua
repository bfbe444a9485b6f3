--- siamese.app.web.annotate: result pictures for the page — the photo scaled
-- down for display, a box and a label per face — as data: URLs.
local viz = require "siamese.viz"
local base64 = require "siamese.app.web.base64"

local annotate = {}

annotate.GREEN = {40, 170, 70}
annotate.RED = {210, 50, 40}
annotate.BLUE = {40, 100, 210}

--- A JPEG data: URL of `img` with each mark drawn: marks = {{box = {x, y,
-- width, height} (image pixels), label = "TEXT", colour = {r, g, b}}}.
-- The picture is scaled so that its longer side is at most max_side
-- (default 640) before drawing, so boxes and text keep their width.
function annotate.data_url(img, marks, max_side)
  max_side = max_side or 640
  local s = math.min(1, max_side / math.max(img.width, img.height))
  local out = img:to_rgb() -- always a new image, safe to draw on
  if s < 1 then
    out = out:resize(math.max(1, math.floor(img.width * s + 0.5)), math.max(1, math.floor(img.height * s + 0.5)))
  end
  for _, m in ipairs(marks) do
    local b = {x = m.box.x * s, y = m.box.y * s, width = m.box.width * s, height = m.box.height * s}
    local colour = m.colour or annotate.BLUE
    viz.draw_box(out, b, colour, 3)
    if m.label and m.label ~= "" then
      local ty = b.y - 19
      if ty < 1 then ty = b.y + b.height + 3 end
      -- the font has ASCII capitals only; other bytes print as '?'.
      -- The label is moved left when it would leave the picture.
      local tx = math.max(1, math.min(math.floor(b.x), out.width - #m.label * 12 - 1))
      viz.draw_text(out, tx, math.floor(ty), m.label, {255, 255, 255}, 2, colour)
    end
  end
  return "data:image/jpeg;base64," .. base64.encode(out:encode("jpeg", {quality = 85}))
end

return annotate
