-- Detection on real photos: face-api's six demo photos
-- (spec/fixtures/faceapi/sample1-6.jpg) and the README demo's 25 LFW photos
-- (examples/data/faces), against a hand-made truth (TRUTH below), for the
-- three detectors:
--   tiny   face-api's tiny detector (siamese.face.detector), score >= 0.5
--   ssd    face-api's SSD MobileNet v1 (siamese.face.ssd), score >= 0.5
--   mtcnn  MTCNN (siamese.face.mtcnn), min face 20 px, default options
-- Per detector and photo: faces found, how many are true faces, false
-- detections, misses. Each detection also goes through the quality gate as
-- the door applies it (siamese.door.face_encoder(...).faces(img, true):
-- siamese.face.quality with its defaults) in the pipeline that uses that
-- detector: mtcnn -> the mobilefacenet pipeline, tiny -> the faceapi one,
-- ssd -> the faceapi one with detector = "ssd". Then the face MTCNN misses
-- in sample2 (the woman in the middle, looking down) is looked for at other
-- minimum face sizes, pyramid factors, thresholds and the Android
-- convention, and traced stage by stage.
--
--   lua5.4 models/measure_demo_detections.lua [OUT_DIR]
--     (from the checkout, after make; OUT_DIR default build/detections;
--     SIAMESE_BUILD=DIR for another build folder)
--
-- Writes OUT_DIR/samples.png (a row per photo: tiny | SSD | MTCNN),
-- OUT_DIR/demo_{tiny,ssd,mtcnn}.png (the 25 photos, 5 x 5) and
-- OUT_DIR/sample2_search.png (MTCNN on sample2 with the O-Net threshold at
-- 0.6). Boxes: green = a true face, cyan = a real face partly out of the
-- photo or in the background, red = a false detection (with the gate's
-- verdict); a true face the gate refuses has its score in yellow; a magenta
-- cross marks a face missed. Prints a table on stderr and one JSON object on
-- stdout.
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./" .. (os.getenv("SIAMESE_BUILD") or "build") .. "/?.so;" .. package.cpath
local siamese = require "siamese"
local json = require "siamese.json"
local viz = siamese.viz
local mtcnn = require "siamese.face.mtcnn"
local door = require "siamese.door"
local quality = require "siamese.face.quality"

local OUT = arg[1] or "build/detections"

-- The truth, decided once by looking at the photos (full size, and with every
-- detector's boxes drawn): the faces a person sees, as their approximate
-- centres {x, y} in photo pixels (between the eyes and the mouth). `faces` must
-- be found (a detector that does not is charged a miss); `partial` are real
-- faces mostly outside the photo or half hidden behind the person photographed
-- (LFW crops): a detection there is true, not a false detection, and no miss
-- is charged when none finds them. True face count per photo = #faces:
--   sample1 3, sample2 3 (left: profile, middle: looking down), sample3 3,
--   sample4 4, sample5 5, sample6 4: 22 faces (face-api's SSD references
--   have the same 22); each of the 25 demo photos 1, and 3 partial faces:
--   Gloria_Macapagal_Arroyo_0003 (a guard behind her, cut by the top edge),
--   Junichiro_Koizumi_0001 (a man with glasses at the left edge, half
--   hidden), Tony_Blair_0001 (a man's profile at the left edge).
local TRUTH = {
  sample1 = {faces = {{500, 475}, {932, 538}, {1578, 325}}},
  sample2 = {faces = {{425, 270}, {977, 336}, {1540, 282}}},
  sample3 = {faces = {{686, 463}, {1175, 355}, {1595, 431}}},
  sample4 = {faces = {{340, 318}, {750, 180}, {1070, 297}, {1348, 268}}},
  sample5 = {faces = {{464, 1013}, {682, 540}, {866, 218}, {1198, 316}, {1497, 526}}},
  sample6 = {faces = {{359, 619}, {762, 478}, {1271, 446}, {1591, 408}}},
  Colin_Powell_0001 = {faces = {{117, 125}}},
  Colin_Powell_0002 = {faces = {{117, 127}}},
  Colin_Powell_0003 = {faces = {{133, 121}}},
  Colin_Powell_0004 = {faces = {{124, 124}}},
  Colin_Powell_0005 = {faces = {{130, 124}}},
  Gloria_Macapagal_Arroyo_0001 = {faces = {{121, 124}}},
  Gloria_Macapagal_Arroyo_0002 = {faces = {{133, 127}}},
  Gloria_Macapagal_Arroyo_0003 = {faces = {{124, 126}}, partial = {{122, 19}}},
  Gloria_Macapagal_Arroyo_0004 = {faces = {{127, 123}}},
  Gloria_Macapagal_Arroyo_0005 = {faces = {{138, 127}}},
  Junichiro_Koizumi_0001 = {faces = {{121, 127}}, partial = {{48, 97}}},
  Junichiro_Koizumi_0002 = {faces = {{117, 125}}},
  Junichiro_Koizumi_0003 = {faces = {{129, 126}}},
  Junichiro_Koizumi_0004 = {faces = {{130, 123}}},
  Junichiro_Koizumi_0005 = {faces = {{131, 127}}},
  Serena_Williams_0001 = {faces = {{122, 132}}},
  Serena_Williams_0002 = {faces = {{122, 127}}},
  Serena_Williams_0003 = {faces = {{124, 130}}},
  Serena_Williams_0004 = {faces = {{121, 128}}},
  Serena_Williams_0005 = {faces = {{127, 121}}},
  Tony_Blair_0001 = {faces = {{143, 128}}, partial = {{28, 74}}},
  Tony_Blair_0002 = {faces = {{124, 125}}},
  Tony_Blair_0003 = {faces = {{127, 130}}},
  Tony_Blair_0004 = {faces = {{136, 121}}},
  Tony_Blair_0005 = {faces = {{128, 121}}},
}
-- A detection is a face of the truth when that face's centre lies within
-- MATCH of the box's size from the box's centre (boxes differ: the SSD's
-- include the forehead, the tiny detector's the chin); each face is matched
-- once, detections taken by descending score (a second box on a face is a
-- false detection).
local MATCH = 0.3

local SETS = {
  {name = "samples", title = "face-api samples", photos = {}},
  {name = "demo", title = "README demo photos", photos = {}},
}
for i = 1, 6 do
  SETS[1].photos[i] = {name = "sample" .. i, path = "spec/fixtures/faceapi/sample" .. i .. ".jpg"}
end
for _, person in ipairs{"Colin_Powell", "Gloria_Macapagal_Arroyo", "Junichiro_Koizumi", "Serena_Williams", "Tony_Blair"} do
  for k = 1, 5 do
    local name = string.format("%s_%04d", person, k)
    SETS[2].photos[#SETS[2].photos + 1] = {name = name, path = "examples/data/faces/" .. person .. "/" .. name .. ".jpg"}
  end
end

local DETECTORS = {"tiny", "ssd", "mtcnn"}
local LABEL = {tiny = "tiny", ssd = "SSD", mtcnn = "MTCNN"}
local PIPELINE = {tiny = "faceapi (tiny)", ssd = "faceapi (ssd)", mtcnn = "mobilefacenet"}

io.stderr:write("measure_demo_detections: loading the detectors and the pipelines\n")
local tiny = assert(require("siamese.face.detector").load())
local ssd = assert(require("siamese.face.ssd").load())
local mt = assert(mtcnn.load(nil, {min_face = 20}))
local detect = {
  tiny = function(img) return tiny:detect(img, {score_threshold = 0.5}) end,
  ssd = function(img) return ssd:detect(img, {min_score = 0.5}) end,
  mtcnn = function(img) return mt:detect(img) end,
}
-- The door's encoders (default quality options, no fallback), one per detector.
local encoders = {
  tiny = assert(door.face_encoder{pipeline = "faceapi", detector = "tiny"}),
  ssd = assert(door.face_encoder{pipeline = "faceapi", detector = "ssd"}),
  mtcnn = assert(door.face_encoder{pipeline = "mobilefacenet", min_face = 20}),
}

local function iou(a, b)
  local x1, y1 = math.max(a.x, b.x), math.max(a.y, b.y)
  local x2, y2 = math.min(a.x + a.width, b.x + b.width), math.min(a.y + a.height, b.y + b.height)
  local inter = math.max(0, x2 - x1) * math.max(0, y2 - y1)
  local union = a.width * a.height + b.width * b.height - inter
  return union > 0 and inter / union or 0
end

-- The truth face a box matches (normalised distance), among the unused ones.
local function match(box, points, used)
  local cx, cy = box.x + box.width / 2, box.y + box.height / 2
  local best, bd
  for i, p in ipairs(points) do
    local dx, dy = math.abs(p[1] - cx) / box.width, math.abs(p[2] - cy) / box.height
    if not used[i] and dx <= MATCH and dy <= MATCH then
      local d = dx * dx + dy * dy
      if not bd or d < bd then best, bd = i, d end
    end
  end
  return best
end

-- The geometry measures of quality.check's last step (it returns only roll and
-- eyes): nose and mouth along / across the eye line in eye distances, mouth width.
local function geometry(pts)
  local m = require("siamese.face.quality").point_measures(pts)
  m.roll = nil -- reported by quality.check itself
  return m
end

local function round(v, d)
  local m = 10 ^ (d or 3)
  return math.floor(v * m + 0.5) / m
end

-- The gate's verdict on a detection: the pipeline face with the largest IoU (>= 0.5).
local function gate_verdict(box, pfaces)
  local best, bi
  for _, f in ipairs(pfaces) do
    local v = iou(box, f.box)
    if v >= 0.5 and (not bi or v > bi) then best, bi = f, v end
  end
  if not best then return {in_pipeline = false} end
  local q = best.quality
  local v = {in_pipeline = true, iou = round(bi), ok = q.ok, reason = q.reason, score = round(q.score),
             size = round(q.size, 1), overlap = q.overlap and round(q.overlap), roll = q.roll and round(q.roll, 1),
             eyes = q.eyes and round(q.eyes)}
  local pts = quality.points5(best)
  if pts then
    for k, x in pairs(geometry(pts)) do v[k] = round(x) end
    v.checks = best.landmarks and "score, size, landmarks/box overlap, geometry" or "score, size, geometry (five points: no overlap check)"
  end
  return v
end

-- ---------------------------------------------------------------------------
-- Detect, match, gate
-- ---------------------------------------------------------------------------

local GREEN, CYAN, RED, MAGENTA, WHITE, YELLOW = {0, 220, 0}, {0, 220, 255}, {255, 40, 40}, {255, 0, 255}, {255, 255, 255},
  {255, 220, 0}

local function draw_cross(img, p, colour, size, thick)
  for t = -thick, thick do
    for d = -size, size do
      for _, q in ipairs{{p[1] + d, p[2] + d + t}, {p[1] + d, p[2] - d + t}} do
        local x, y = math.floor(q[1] + 0.5), math.floor(q[2] + 0.5)
        if x >= 0 and y >= 0 and x < img.width and y < img.height then img:set(x, y, colour[1], colour[2], colour[3]) end
      end
    end
  end
end

-- A tile: the photo with one detector's result drawn, resized to tile_w wide
-- and padded (black) to tile_w x tile_h.
local function tile(img, r, tile_w, tile_h)
  local c = img:to_rgb():clone()
  local s = tile_w / img.width
  local thick = math.max(1, math.floor(2 / s + 0.5))
  for _, d in ipairs(r.detections) do
    viz.draw_box(c, d.box, d.kind == "true" and GREEN or d.kind == "partial" and CYAN or RED, thick)
  end
  for _, p in ipairs(r.missed_points) do draw_cross(c, p, MAGENTA, math.floor(12 / s), math.max(0, thick // 2)) end
  if s ~= 1 then c = c:resize(tile_w, math.floor(img.height * s + 0.5), {method = "area"}) end
  if c.height ~= tile_h then c = c:crop(0, 0, tile_w, tile_h) end
  local scale = tile_w >= 500 and 2 or 1
  for _, d in ipairs(r.detections) do
    local text = string.format("%.2f", d.score)
    if d.kind == "false" then
      text = text .. (d.gate.in_pipeline and (d.gate.ok and " GATE PASSES" or " GATE REFUSES") or " NOT IN PIPELINE")
    elseif not (d.gate.in_pipeline and d.gate.ok) then
      text = text .. " GATE REFUSES"
    end
    local x = math.floor(d.box.x * s)
    local y = math.floor((d.box.y + d.box.height) * s) + 3
    if y > tile_h - 9 * scale then y = math.max(0, math.floor(d.box.y * s) - 9 * scale - 2) end
    viz.draw_text(c, math.max(1, math.min(x, tile_w - #text * 6 * scale)), y, text,
      d.kind == "false" and RED or (d.gate.in_pipeline and d.gate.ok) and WHITE or YELLOW, scale)
  end
  local head = string.format("%s: %d found, %d true, %d false, %d missed", LABEL[r.detector], r.found, r.true_faces,
    r.false_detections, r.misses)
  if tile_w < 500 then head = string.format("%s %d/%d F%d M%d", LABEL[r.detector], r.true_faces, r.found, r.false_detections, r.misses) end
  viz.draw_text(c, 2, 2, head, WHITE, scale)
  return c
end

local results = {} -- per set: {name, photos = {...}, totals = {det = {...}}}
local false_list = {}
local tiles = {samples = {}, demo = {tiny = {}, ssd = {}, mtcnn = {}}}
local start = siamese.clock()
for _, set in ipairs(SETS) do
  local sres = {name = set.name, title = set.title, photos = {}, totals = {}}
  for _, d in ipairs(DETECTORS) do
    sres.totals[d] = {faces = 0, found = 0, true_faces = 0, partial = 0, false_detections = 0, misses = 0,
                      missed = {}, false_names = {}, gate_passes_true = 0, gate_refuses_true = 0,
                      gate_refuses_false = 0, gate_passes_false = 0}
  end
  for _, photo in ipairs(set.photos) do
    local truth = assert(TRUTH[photo.name], photo.name .. ": no truth")
    local img = assert(siamese.image.load(photo.path))
    local pres = {name = photo.name, truth = #truth.faces, detectors = {}}
    for _, d in ipairs(DETECTORS) do
      local faces = detect[d](img)
      table.sort(faces, function(a, b) return a.score > b.score end)
      local pfaces = encoders[d].faces(img, true)
      local used, used_p = {}, {}
      local r = {detector = d, found = #faces, true_faces = 0, partial = 0, false_detections = 0, misses = 0,
                 detections = {}, missed_points = {}, missed = {}}
      for _, f in ipairs(faces) do
        local det = {box = f.box, score = f.score, gate = gate_verdict(f.box, pfaces)}
        local i = match(f.box, truth.faces, used)
        if i then
          used[i], det.kind, det.face = true, "true", i
          r.true_faces = r.true_faces + 1
        else
          local j = truth.partial and match(f.box, truth.partial, used_p)
          if j then
            used_p[j], det.kind = true, "partial"
            r.partial = r.partial + 1
          else
            det.kind = "false"
            r.false_detections = r.false_detections + 1
          end
        end
        r.detections[#r.detections + 1] = det
      end
      for i, p in ipairs(truth.faces) do
        if not used[i] then
          r.misses = r.misses + 1
          r.missed_points[#r.missed_points + 1] = p
          r.missed[#r.missed + 1] = string.format("%s face %d at (%d, %d)", photo.name, i, p[1], p[2])
        end
      end
      local t = sres.totals[d]
      t.faces = t.faces + #truth.faces
      t.found, t.true_faces, t.partial = t.found + r.found, t.true_faces + r.true_faces, t.partial + r.partial
      t.false_detections, t.misses = t.false_detections + r.false_detections, t.misses + r.misses
      for _, m in ipairs(r.missed) do t.missed[#t.missed + 1] = m end
      for _, det in ipairs(r.detections) do
        local g = det.gate
        if det.kind == "false" then
          t.false_names[#t.false_names + 1] = string.format("%s (score %.3f)", photo.name, det.score)
          if g.in_pipeline and g.ok then t.gate_passes_false = t.gate_passes_false + 1
          else t.gate_refuses_false = t.gate_refuses_false + 1 end
          false_list[#false_list + 1] = {photo = photo.name, detector = d, pipeline = PIPELINE[d], score = round(det.score),
            box = {x = round(det.box.x, 1), y = round(det.box.y, 1), width = round(det.box.width, 1),
                   height = round(det.box.height, 1)}, gate = g}
        elseif det.kind == "true" then
          if g.in_pipeline and g.ok then t.gate_passes_true = t.gate_passes_true + 1
          else t.gate_refuses_true = t.gate_refuses_true + 1 end
        end
      end
      local dets = {}
      for _, det in ipairs(r.detections) do
        dets[#dets + 1] = {kind = det.kind, face = det.face, score = round(det.score),
                           box = {x = round(det.box.x, 1), y = round(det.box.y, 1), width = round(det.box.width, 1),
                                  height = round(det.box.height, 1)},
                           gate = det.gate.in_pipeline and (det.gate.ok and "passes" or det.gate.reason) or "not in the pipeline"}
      end
      pres.detectors[d] = {found = r.found, true_faces = r.true_faces, partial = r.partial,
                           false_detections = r.false_detections, misses = r.misses, detections = json.array(dets)}
      io.stderr:write(string.format("  %-30s %-6s found %d, true %d, partial %d, false %d, missed %d\n", photo.name, d,
        r.found, r.true_faces, r.partial, r.false_detections, r.misses))
      if set.name == "samples" then
        tiles.samples[#tiles.samples + 1] = tile(img, r, 640, 520)
      else
        tiles.demo[d][#tiles.demo[d] + 1] = tile(img, r, 250, 250)
      end
    end
    sres.photos[#sres.photos + 1] = pres
  end
  for _, d in ipairs(DETECTORS) do
    sres.totals[d].missed = json.array(sres.totals[d].missed)
    sres.totals[d].false_names = json.array(sres.totals[d].false_names)
  end
  sres.photos = json.array(sres.photos)
  results[#results + 1] = sres
end

local fs = require "siamese.fs"
assert(fs.mkdir_p(OUT))
assert(viz.montage(tiles.samples, {columns = 3, border = 2}):save(OUT .. "/samples.png"))
for _, d in ipairs(DETECTORS) do
  assert(viz.montage(tiles.demo[d], {columns = 5, border = 2}):save(OUT .. "/demo_" .. d .. ".png"))
end

-- ---------------------------------------------------------------------------
-- The face MTCNN misses in sample2
-- ---------------------------------------------------------------------------

io.stderr:write("measure_demo_detections: the sample2 miss\n")
local S2 = TRUTH.sample2.faces[2] -- the middle woman, looking down
local s2img = assert(siamese.image.load("spec/fixtures/faceapi/sample2.jpg"))
local function s2_detector(opts)
  local o = {pnet = mt.pnet, rnet = mt.rnet, onet = mt.onet, min_face = 20}
  for k, v in pairs(opts) do o[k] = v end
  return mtcnn.new(o)
end
local function s2_find(faces)
  for _, f in ipairs(faces) do
    if match(f.box, {S2}, {}) then return f end
  end
end
local search = {}
local VARIANTS = {
  {label = "defaults (min face 20, thresholds 0.6/0.7/0.7, factor 0.709)", opts = {}},
  {label = "min face 12", opts = {min_face = 12}},
  {label = "min face 40", opts = {min_face = 40}},
  {label = "min face 80", opts = {min_face = 80}},
  {label = "min face 120", opts = {min_face = 120}},
  {label = "factor 0.8 (denser pyramid)", opts = {factor = 0.8}},
  {label = "android convention", opts = {convention = "android"}},
  {label = "P-Net 0.4 (thresholds 0.4/0.7/0.7)", opts = {thresholds = {0.4, 0.7, 0.7}}},
  {label = "R-Net 0.5 (thresholds 0.6/0.5/0.7)", opts = {thresholds = {0.6, 0.5, 0.7}}},
  {label = "O-Net 0.6 (thresholds 0.6/0.7/0.6)", opts = {thresholds = {0.6, 0.7, 0.6}}},
  {label = "the pipeline's fallback thresholds 0.3/0.4/0.1", opts = {thresholds = {0.3, 0.4, 0.1}}},
}
local found_o6
for _, v in ipairs(VARIANTS) do
  local faces = s2_detector(v.opts):detect(s2img)
  local f = s2_find(faces)
  search[#search + 1] = {variant = v.label, faces = #faces, found = f ~= nil, score = f and round(f.score),
                         box = f and {x = f.box.x, y = f.box.y, width = f.box.width, height = f.box.height}}
  io.stderr:write(string.format("  %-58s %d faces, the middle face %s\n", v.label, #faces,
    f and string.format("found at %.3f", f.score) or "not found"))
  if v.opts.thresholds and v.opts.thresholds[3] == 0.6 then found_o6 = faces end
end
-- Stage by stage at the default thresholds: the P-Net proposals, the R-Net
-- boxes and their O-Net scores on the face.
local function contains(b, p) return p[1] >= b[1] and p[1] <= b[3] and p[2] >= b[2] and p[2] <= b[4] end
local def = s2_detector{}
local props = def:proposals(s2img)
local on_face = {}
for _, b in ipairs(props) do if contains(b, S2) then on_face[#on_face + 1] = b end end
local rnet_boxes = #props > 0 and def:refine(s2img, props) or {}
local trace = {pnet_proposals = #props, pnet_on_face = #on_face, rnet_on_face = {}}
local any = s2_detector{thresholds = {0, 0, 0}}
for _, b in ipairs(rnet_boxes) do
  if contains(b, S2) then
    local o = any:output(s2img, {b})[1]
    trace.rnet_on_face[#trace.rnet_on_face + 1] = {rnet_score = round(b.score), onet_score = o and round(o.score),
                                                   box = {b[1], b[2], b[3], b[4]}}
    io.stderr:write(string.format("  R-Net box (%d, %d)-(%d, %d) after regression: O-Net scores it %.3f (threshold %.1f)\n",
      b[1], b[2], b[3], b[4], o and o.score or -1, mtcnn.DEFAULTS.thresholds[3]))
  end
end
trace.rnet_on_face = json.array(trace.rnet_on_face)
io.stderr:write(string.format("  P-Net: %d proposals, %d contain the face's centre; R-Net keeps %d boxes there\n",
  #props, #on_face, #trace.rnet_on_face))
-- With the O-Net threshold at 0.6, is the face found and does the door's gate take it?
local s2gate
do
  local f = found_o6 and s2_find(found_o6)
  if f then
    f.points5 = f.points
    local ok, reason, q = quality.check(f)
    s2gate = {ok = ok, reason = reason, size = round(q.size, 1), roll = q.roll and round(q.roll, 1),
              eyes = q.eyes and round(q.eyes)}
    for k, x in pairs(geometry(f.points)) do s2gate[k] = round(x) end
    local c = s2img:clone()
    for _, g in ipairs(found_o6) do viz.draw_box(c, g.box, g == f and GREEN or CYAN, 6) end
    c = c:resize(960, math.floor(s2img.height * 960 / s2img.width + 0.5), {method = "area"})
    viz.draw_text(c, 4, 4, string.format("MTCNN O-NET 0.6: MIDDLE FACE %.3f, GATE %s", f.score,
      ok and "PASSES" or "REFUSES"), WHITE, 2)
    assert(c:save(OUT .. "/sample2_search.png"))
  end
end

-- The price of the O-Net threshold at 0.6 on all 31 photos: true faces,
-- false detections and misses (against the truth, as above).
local o6 = s2_detector{thresholds = {0.6, 0.7, 0.6}}
local o6_totals = {}
for _, set in ipairs(SETS) do
  local t = {faces = 0, true_faces = 0, partial = 0, false_detections = 0, misses = 0, false_names = {}}
  for _, photo in ipairs(set.photos) do
    local truth = TRUTH[photo.name]
    local faces = o6:detect(assert(siamese.image.load(photo.path)))
    local used, used_p = {}, {}
    for _, f in ipairs(faces) do
      local i = match(f.box, truth.faces, used)
      if i then
        used[i], t.true_faces = true, t.true_faces + 1
      else
        local j = truth.partial and match(f.box, truth.partial, used_p)
        if j then
          used_p[j], t.partial = true, t.partial + 1
        else
          t.false_detections = t.false_detections + 1
          t.false_names[#t.false_names + 1] = string.format("%s (score %.3f)", photo.name, f.score)
        end
      end
    end
    t.faces = t.faces + #truth.faces
    t.misses = t.misses + #truth.faces - (function() local n = 0 for _ in pairs(used) do n = n + 1 end return n end)()
  end
  t.false_names = json.array(t.false_names)
  o6_totals[set.name] = t
  io.stderr:write(string.format("  MTCNN with O-Net 0.6 on the %s: %d/%d true, %d false, %d missed\n", set.name,
    t.true_faces, t.faces, t.false_detections, t.misses))
end

-- ---------------------------------------------------------------------------
-- Report
-- ---------------------------------------------------------------------------

io.stderr:write(string.format("\n%-22s %-22s %-22s %-22s\n", "photos (true faces)", "tiny", "SSD", "MTCNN"))
for _, s in ipairs(results) do
  local cells = {}
  for _, d in ipairs(DETECTORS) do
    local t = s.totals[d]
    cells[#cells + 1] = string.format("%d/%d, %d false", t.true_faces, t.faces, t.false_detections)
  end
  io.stderr:write(string.format("%-22s %-22s %-22s %-22s\n", string.format("%s (%d)", s.name, s.totals.tiny.faces),
    table.unpack(cells)))
end
io.stderr:write("\nfalse detections and the door's gate:\n")
for _, f in ipairs(false_list) do
  local g = f.gate
  io.stderr:write(string.format("  %-12s %-6s score %.3f box %.0f,%.0f %.0fx%.0f: %s\n", f.photo, f.detector, f.score,
    f.box.x, f.box.y, f.box.width, f.box.height,
    not g.in_pipeline and "not among the pipeline's faces"
      or g.ok and string.format("PASSES the gate (size %.0f, overlap %s, roll %.1f, eyes %.2f, nose %.2f below, mouth %.2f below, %.2f wide)",
                                g.size, tostring(g.overlap), g.roll, g.eyes, g.nose_below, g.mouth_below, g.mouth_width)
      or "refused: " .. g.reason))
end
io.stderr:write(string.format("(%.0f s) montages in %s\n", siamese.clock() - start, OUT))

print(json.encode({
  truth_rule = string.format("a detection is a true face when a truth face centre lies within %.1f of its box's width and height from its centre", MATCH),
  settings = {tiny = "score >= 0.5", ssd = "score >= 0.5", mtcnn = "min_face 20, thresholds 0.6/0.7/0.7, factor 0.709",
              gate = "siamese.door.face_encoder(...).faces(img, true): siamese.face.quality defaults"},
  sets = json.array(results),
  false_detections = json.array(false_list),
  sample2 = {face = S2, search = json.array(search), trace = trace, onet_0_6_gate = s2gate, onet_0_6_all = o6_totals},
  montages = json.array{OUT .. "/samples.png", OUT .. "/demo_tiny.png", OUT .. "/demo_ssd.png", OUT .. "/demo_mtcnn.png",
                        OUT .. "/sample2_search.png"},
}))
