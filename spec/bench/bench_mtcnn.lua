-- MTCNN + MobileFaceNet speed (run by `make bench`; one JSON line per
-- figure, like spec/bench/run.lua), against PyTorch running the same four
-- graphs (spec/bench/torch_mtcnn.py: Debian's python3-torch, our weights,
-- torch.set_num_threads(THREADS), torch.no_grad(), medians) and against
-- the face-api pipeline (siamese.face.load{model = "faceapi"}) in the same
-- run. Photo: spec/fixtures/faceapi/sample1.jpg (1920x1280; another size
-- would be resized to 1920x1280 with the area filter, and the rows say so).
--
-- Rows (ratio > 1: ours is faster, except where said):
--   torch_conformance                  the PyTorch port against the independent reference
--                                      outputs (../shared/fixtures/mtcnn_mobilefacenet/nets.safetensors):
--                                      max abs difference per net, embedding cosine
--   mtcnn_detect_1920x1280_min20|40|80 ms/photo of detector:detect; baseline: PyTorch's time for
--                                      the same network forwards (P-Net on every pyramid level,
--                                      whole levels; R-Net and O-Net on the same crop batches),
--                                      ratio = baseline / ours. Ours also resamples the pyramid,
--                                      cuts the crops and runs the NMS: `nets_ms` is our time for
--                                      the forwards alone
--   mtcnn_pnet_WxH_b1, mtcnn_rnet_b1, mtcnn_onet_b1, mobilefacenet_forward_b1
--                                      ms per forward at batch 1, ratio = PyTorch / ours
--   mobilefacenet_embed_b1|b16         ms/face of recognizer:embed_batch (the chips' forward, and
--                                      their mirrors' with flip, the default: 2 forwards a face);
--                                      baseline: PyTorch's time for the same forwards
--   pipeline_mobilefacenet_1920x1280_min20|40
--                                      ms/photo of embed_all (detect, align, embed every face);
--                                      baseline: the face-api pipeline's embed_all on the same
--                                      photo in this run, ratio = faceapi / ours (>= 1: no
--                                      slower); `torch_ms`: PyTorch's time for the network
--                                      forwards of the same work; `faceapi_wasm_ms`: face-api's
--                                      own WASM pipeline (spec/bench/faceapi/bench.js), detection
--                                      + one descriptor per face (its landmarks net not timed)
-- Environment: SIAMESE_THREADS (2), SIAMESE_PYTHON (/usr/bin/python3), CLOCK=cpu
-- (processor time for ours and PyTorch's instead of the wall clock: with
-- SIAMESE_THREADS=1 when other jobs share the machine, as face_stages.lua;
-- face-api's WASM figure stays wall-clock). Without torch the PyTorch
-- figures are left out and the rows say `skipped`.
local siamese = require "siamese"
local json = require "siamese.json"
local bench = dofile("spec/bench/support.lua")
local mtcnn = require "siamese.face.mtcnn"
local T = siamese.tensor

siamese.set_num_threads(bench.threads)
siamese.manual_seed(1)
local cpu_clock = os.getenv("CLOCK") == "cpu"
if cpu_clock then bench.clock = os.clock end
local function emit(t)
  if cpu_clock then t.clock = "cpu" end
  bench.emit(t)
end

local python = os.getenv("SIAMESE_PYTHON") or "/usr/bin/python3"
local PHOTO, W, H = "spec/fixtures/faceapi/sample1.jpg", 1920, 1280
local ROUNDS = 5

local function note(msg) io.stderr:write("bench_mtcnn: ", msg, "\n") end
local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local function ms(fn, rounds, min_time) return bench.median_time(fn, rounds or ROUNDS, min_time) * 1000 end

-- The last JSON object python printed, or nil and a reason.
local function run_python(args)
  local p = io.popen(sh_quote(python) .. " spec/bench/torch_mtcnn.py " .. args .. " 2>&1")
  if not p then return nil, "cannot start " .. python end
  local out = p:read("a")
  p:close()
  local line = out:match("(%b{})%s*$")
  local ok, r = pcall(json.decode, line or "")
  if not ok or type(r) ~= "table" then return nil, "torch_mtcnn.py gave no result: " .. out:sub(1, 300) end
  if r.skipped then return nil, r.skipped end
  return r
end

local photo = assert(siamese.image.load(PHOTO))
local photo_note
if photo.width ~= W or photo.height ~= H then
  photo_note = string.format("%s is %dx%d, resized to %dx%d (area)", PHOTO, photo.width, photo.height, W, H)
  photo = photo:resize(W, H, {method = "area"})
  note(photo_note)
end
local rgb = photo.channels == 3 and photo or photo:to_rgb()

-- ---------------------------------------------------------------- conformance
do
  local r, why = run_python("conformance")
  if r then
    local worst = math.max(r.pnet, r.rnet, r.onet, r.mobilefacenet)
    emit{name = "torch_conformance", value = worst, unit = "max abs diff", pnet = r.pnet, rnet = r.rnet,
               onet = r.onet, mobilefacenet = r.mobilefacenet, mobilefacenet_cosine_min = r.mobilefacenet_cosine_min,
               mobilefacenet_max_abs = r.mobilefacenet_max_abs, ok = r.ok, bound = r.cap, cosine_bound = r.cosine_cap,
               baseline_name = "reference outputs of ../shared/fixtures/mtcnn_mobilefacenet/nets.safetensors",
               version = r.version}
  else
    emit{name = "torch_conformance", skipped = why}
  end
end

-- ---------------------------------------------------------------- what each detection runs
local MIN_FACES = {20, 40, 80}
local cases = {}
for _, mf in ipairs(MIN_FACES) do
  local det = assert(mtcnn.load(nil, {min_face = mf}))
  local levels = {}
  for _, s in ipairs(mtcnn.scales(W, H, mf, det.factor)) do
    levels[#levels + 1] = {math.ceil(W * s), math.ceil(H * s)}  -- P-Net's input is [1, 3, ws, hs] (transposed)
  end
  local props = det:proposals(rgb)
  local refined = #props > 0 and det:refine(rgb, props) or {}
  local function batches(n)
    local b = {}
    while n > 0 do b[#b + 1] = math.min(n, det.max_batch); n = n - b[#b] end
    return b
  end
  cases[#cases + 1] = {mf = mf, det = det, levels = levels, rnet = batches(#props), onet = batches(#refined),
                       faces = #det:detect(photo)}
end

-- the pipelines, and the chips they embed
local fr = {}
for _, mf in ipairs{20, 40} do fr[mf] = assert(siamese.face.load{model = "mobilefacenet", min_face = mf}) end
local faceapi = assert(siamese.face.load{model = "faceapi"})
local found = fr[40]:detect(photo)
assert(#found > 0, "no face found in " .. PHOTO)
local chip = fr[40]:align(photo, found[1])
local chips16 = {}
for i = 1, 16 do chips16[i] = chip end
local pipeline_faces = {}
for _, mf in ipairs{20, 40} do pipeline_faces[mf] = #fr[mf]:embed_all(photo) end
local flip_forwards = fr[40].flip and 2 or 1

-- The per-network batch-1 P-Net level: the first level at min_face 80
-- (below mtcnn.PNET_TILE: one forward, as PyTorch's).
local pnet_level = cases[3].levels[1]

-- ---------------------------------------------------------------- PyTorch
local spec = {threads = bench.threads, reps = ROUNDS, clock = cpu_clock and "cpu" or "wall", pnet = {}, rnet = {1},
              onet = {1}, mobilefacenet = {1, 16}}
local at = {pnet = {}, rnet = {[1] = 1}, onet = {[1] = 1}, mobilefacenet = {[1] = 1, [16] = 2}}
local function want(net, key, value)
  if not at[net][key] then
    spec[net][#spec[net] + 1] = value
    at[net][key] = #spec[net]
  end
end
want("pnet", pnet_level[1] .. "x" .. pnet_level[2], pnet_level)
for _, c in ipairs(cases) do
  for _, l in ipairs(c.levels) do want("pnet", l[1] .. "x" .. l[2], l) end
  for _, n in ipairs(c.rnet) do want("rnet", n, n) end
  for _, n in ipairs(c.onet) do want("onet", n, n) end
end
for _, n in pairs(pipeline_faces) do if n > 0 then want("mobilefacenet", n, n) end end
local spec_file = os.tmpname()
do
  local f = assert(io.open(spec_file, "w"))
  f:write(json.encode(spec))
  f:close()
end
local torch, torch_why = run_python("time " .. sh_quote(spec_file))
os.remove(spec_file)
if not torch then note("PyTorch figures skipped: " .. tostring(torch_why)) end
local function torch_ms(net, key)
  return torch and torch[net][at[net][key]]
end
local torch_name = torch and string.format("%s, %d threads, same graphs and shapes, no_grad, median%s",
                                           torch.version, torch.threads, cpu_clock and ", processor time" or "")

-- Adds baseline (PyTorch's ms), ratio = baseline / value and the name to row r.
local function versus_torch(r, base)
  if base then
    r.baseline, r.ratio, r.baseline_name = base, base / r.value, torch_name
  else
    r.skipped = "PyTorch: " .. tostring(torch_why)
  end
  return r
end

-- ---------------------------------------------------------------- detection
for _, c in ipairs(cases) do
  local value = ms(function() c.det:detect(photo) end)
  -- our own time for the same forwards (P-Net through pnet_maps, tiles and all)
  local inputs = {}
  for i, l in ipairs(c.levels) do inputs[i] = mtcnn.level_input(rgb, l[1], l[2], c.det.resize) end
  local rin, oin = {}, {}
  for i, n in ipairs(c.rnet) do rin[i] = T.randn{n, 3, 24, 24} end
  for i, n in ipairs(c.onet) do oin[i] = T.randn{n, 3, 48, 48} end
  local nets = ms(function()
    for _, x in ipairs(inputs) do c.det:pnet_maps(x) end
    for _, x in ipairs(rin) do c.det.rnet:forward(x) end
    for _, x in ipairs(oin) do c.det.onet:forward(x) end
  end)
  local base
  if torch then
    base = 0
    for _, l in ipairs(c.levels) do base = base + torch_ms("pnet", l[1] .. "x" .. l[2]) end
    for _, n in ipairs(c.rnet) do base = base + torch_ms("rnet", n) end
    for _, n in ipairs(c.onet) do base = base + torch_ms("onet", n) end
  end
  emit(versus_torch({name = string.format("mtcnn_detect_%dx%d_min%d", W, H, c.mf), value = value,
                           unit = "ms/photo", nets_ms = nets, levels = #c.levels, rnet_crops = c.rnet,
                           onet_crops = c.onet, faces = c.faces, photo_note = photo_note}, base))
end

-- ---------------------------------------------------------------- networks at batch 1
do
  local det = cases[1].det
  local px = mtcnn.level_input(rgb, pnet_level[1], pnet_level[2], det.resize)
  local rx, ox = T.randn{1, 3, 24, 24}, T.randn{1, 3, 48, 48}
  local mx = T.randn{1, 3, 112, 112}
  local rows = {
    {string.format("mtcnn_pnet_%dx%d_b1", pnet_level[1], pnet_level[2]), function() det.pnet:forward(px) end,
     "pnet", pnet_level[1] .. "x" .. pnet_level[2]},
    {"mtcnn_rnet_b1", function() det.rnet:forward(rx) end, "rnet", 1},
    {"mtcnn_onet_b1", function() det.onet:forward(ox) end, "onet", 1},
    {"mobilefacenet_forward_b1", function() fr[40].net:forward(mx) end, "mobilefacenet", 1},
  }
  for _, r in ipairs(rows) do
    emit(versus_torch({name = r[1], value = ms(r[2]), unit = "ms"}, torch_ms(r[3], r[4])))
  end
end

-- ---------------------------------------------------------------- MobileFaceNet per face
for _, b in ipairs{1, 16} do
  local list = b == 1 and {chip} or chips16
  local value = ms(function() fr[40]:embed_batch(list) end) / b
  local x = T.randn{b, 3, 112, 112}
  local forward = ms(function() fr[40].net:forward(x) end) / b
  local base = torch and torch_ms("mobilefacenet", b) * flip_forwards / b
  local r = versus_torch({name = "mobilefacenet_embed_b" .. b, value = value, unit = "ms/face",
                          forwards_per_face = flip_forwards, forward_ms = forward}, base)
  if torch then r.forward_ratio = torch_ms("mobilefacenet", b) / b / forward end
  emit(r)
end

-- ---------------------------------------------------------------- whole pipeline
do
  local faceapi_before = bench.faceapi_times()
  local base = ms(function() faceapi:embed_all(photo) end)
  local base_faces = #faceapi:embed_all(photo)
  local rows = {}
  for _, mf in ipairs{20, 40} do
    local value = ms(function() fr[mf]:embed_all(photo) end)
    local r = {name = string.format("pipeline_mobilefacenet_%dx%d_min%d", W, H, mf), value = value, unit = "ms/photo",
               faces = pipeline_faces[mf], baseline = base, ratio = base / value, faceapi_faces = base_faces,
               baseline_name = "siamese.face.load{model = 'faceapi'}:embed_all, same photo, this run",
               photo_note = photo_note}
    if torch then
      local c
      for _, cc in ipairs(cases) do if cc.mf == mf then c = cc end end
      local t = 0
      for _, l in ipairs(c.levels) do t = t + torch_ms("pnet", l[1] .. "x" .. l[2]) end
      for _, n in ipairs(c.rnet) do t = t + torch_ms("rnet", n) end
      for _, n in ipairs(c.onet) do t = t + torch_ms("onet", n) end
      if pipeline_faces[mf] > 0 then t = t + flip_forwards * torch_ms("mobilefacenet", pipeline_faces[mf]) end
      r.torch_ms, r.torch_ratio = t, t / value
    end
    rows[#rows + 1] = r
  end
  local faceapi_after = bench.faceapi_times()
  local wasm, source
  for _, f in ipairs{faceapi_before or false, faceapi_after or false} do
    if f then
      local t = f.detect_ms + (f.faces or base_faces) * f.embed_ms
      if not wasm or t < wasm then wasm = t end
    end
  end
  if wasm then
    source = "face-api 1.7.15 tfjs-backend-wasm: detection + faces x one descriptor (landmarks not timed), this run"
  else
    -- face-api's figures measured earlier on these machines (spec/bench/run.lua's fallback)
    wasm, source = 91 + base_faces * 29.6, "face-api's figures measured earlier (node or its packages missing)"
  end
  for _, r in ipairs(rows) do
    r.faceapi_wasm_ms, r.faceapi_wasm_ratio, r.faceapi_wasm_source = wasm, wasm / r.value, source
    emit(r)
  end
end
