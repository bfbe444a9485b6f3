-- Alignment, landmark, detection, test-time augmentation and quantisation
-- experiments on LFW's development pairs only (pairsDevTrain.txt +
-- pairsDevTest.txt: 3,200 pairs, 4,992 photos; each file split into 10
-- interleaved folds, fold k of both files together = fold k here), on the
-- detections cached by models/lfw_dev_cache.lua (run it first).
--
--   nice -n 19 lua5.4 models/tune_lfw.lua SPEC... [--analyse=SPEC] [--mirror=tiny|full]
-- (from the checkout; --analyse: the failure analysis of that setting;
-- descriptors already computed for an earlier SPEC of the same run are
-- reused; --mirror: the check of flip-averaged landmarks, see mirror_check)
--
-- A SPEC is comma-separated key=value settings (defaults in brackets):
--   chip=sim|faceapi|dlib|inner|five  [sim] siamese's similarity chip,
--        face-api's square crop, dlib's chip fitted on dlib's 33 points,
--        on all 51 inner points, on the 5 points (siamese.face.align)
--   lm=tiny|full|ens [tiny]   landmark net (ens: the mean of the tiny and
--        full nets' 68 points, at every pass)
--   refine=0|1|2 [0] re-runs of the landmark net on a box re-derived from
--        the previous landmarks
--   lmflip=1 [0] each landmark pass also runs the net on the mirrored crop
--        and averages (Landmarks:predict's flip option)
--   det=base|s320|s512|s608|padded|zoomed [base] for the photos without a
--        detection at 0.5: that detector variant's box when it finds one;
--        det=central: when the cached box misses the photo's centre, the
--        best detection at 0.1 containing the centre, else the centred region
--   alt=s320|s512|s608|padded|zoomed [none] with det=central: a photo without
--        a detection at 0.5 takes that variant's box when the variant scores
--        it at 0.5 or more and the box contains the photo's centre (else the
--        det=central rule)
--   jitter=N [0] N dlib-style jittered chips (+ the plain one) averaged
--   flip=1 [0] average with the mirrored chip    both=1 [0] average the chip's
--        descriptor with face-api's square crop's    l2=1 [0] L2-normalise
--        descriptors (after averaging)   bits=7|6 [8] re-quantise the
--        recognition weights to that many bits per tensor
-- LFW_DEV_FILES=pairsDevTest.txt restricts the run to one file (cheaper).
-- One thread (the machine is shared; SIAMESE_THREADS=n to change it).
-- Each prints Dev 10-fold accuracy +- std (and per file), AUC, errors and
-- the time; lines are appended to build/lfw_tune.txt.
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./build/?.so;" .. package.cpath
local siamese = require "siamese"
local lfw = require "siamese.face.lfw"
local align = require "siamese.face.align"
local landmarks_mod = require "siamese.face.landmarks"
local recognition = require "siamese.face.recognition"
local safetensors = require "siamese.safetensors"
local weights = require "siamese.face.weights"
local eval = require "siamese.eval"

local root = os.getenv("LFW_ROOT") or "../shared/data/lfw"
local cache = assert(loadfile("build/lfw_dev_faces.lua"), "run models/lfw_dev_cache.lua first")()
siamese.set_num_threads(math.tointeger(tonumber(os.getenv("SIAMESE_THREADS") or "1")))
local fr = assert(siamese.face.load())
local full_net

-- Pairs of both development files; fold k of each file -> fold k.
local pairs_, file_of = {}, {}
local files = {}
for file in (os.getenv("LFW_DEV_FILES") or "pairsDevTrain.txt,pairsDevTest.txt"):gmatch("[^,]+") do
  files[#files + 1] = file
end
for _, file in ipairs(files) do
  for _, p in ipairs(assert(lfw.read_pairs(root .. "/" .. file))) do
    pairs_[#pairs_ + 1] = p
    file_of[#pairs_] = file
  end
end
local keys, seen = lfw.photos(pairs_)

local function box_of(b) return {x = b[1], y = b[2], width = b[3], height = b[4]} end

-- Refinement boxes: the library's own (siamese.face.box_from_landmarks,
-- face.REFINE_BOX), so that refine=N measures what siamese.face.load{refine
-- = N} does. The landmarks are always predicted here from the cached box:
-- the cache's own were made by siamese.face.load's default (already refined
-- once since refine = 1 became the default), so re-using them would add a pass.
local box_from_landmarks = siamese.face.box_from_landmarks

-- The recognition network, re-quantised to `bits` per tensor when asked:
-- each tensor's 8-bit codes q (0..255) become round(q (2^b - 1) / 255) on
-- the same [min, max] range (float32 rounding: x + 1.5 * 2^23 - 1.5 * 2^23).
local nets = {}
local function recognition_net(bits)
  if nets[bits] then return nets[bits] end
  if bits == 8 then nets[8] = fr.recognition; return nets[8] end
  local path = recognition.default_path()
  local tensors, meta = assert(safetensors.load(path))
  local quant = siamese.json.decode(meta.quantization)
  local levels = 2 ^ bits - 1
  for name, q in pairs(quant) do
    local t = tensors[name]
    t:scale_(levels / 255):add_(12582912):sub_(12582912)
    require("siamese.core").dequantize(t, q.scale * 255 / levels, q.min)
  end
  nets[bits] = setmetatable({net = recognition.build(tensors)}, getmetatable(fr.recognition))
  return nets[bits]
end

local function parse(spec)
  local o = {chip = "sim", lm = "tiny", refine = 0, det = "base", jitter = 0, flip = 0, both = 0, l2 = 0, bits = 8,
             lmflip = 0, alt = "none"}
  for kv in spec:gmatch("[^,]+") do
    if kv == "base" then goto continue end
    local k, v = kv:match("^(%w+)=([%w_]+)$")
    assert(k and o[k] ~= nil, "bad setting '" .. kv .. "'")
    o[k] = type(o[k]) == "number" and assert(tonumber(v)) or v
    ::continue::
  end
  return o
end

-- The face's landmarks and how it was found under the settings.
local function face_of(img, r, o)
  local box, how = box_of(r.box), r.how
  if o.det ~= "base" and r.variants then
    local v = r.variants[o.det]
    if v then
      box = box_of(v.box)
      how = v.score >= 0.5 and "detected" or "low_threshold"
    end
  end
  local alt = o.alt ~= "none" and r.variants and r.variants[o.alt]
  local function contains_centre(b)
    return b.x <= img.width / 2 and b.x + b.width >= img.width / 2
       and b.y <= img.height / 2 and b.y + b.height >= img.height / 2
  end
  if o.det == "central" and alt and alt.score >= 0.5 and contains_centre(box_of(alt.box)) then
    box, how = box_of(alt.box), "detected"
  elseif o.det == "central" then
    -- LFW's subject is the face at the centre: when the cached box misses
    -- the image centre, the best detection at 0.1 whose box contains it,
    -- else the centred region
    local b, cx, cy = r.box, img.width / 2, img.height / 2
    if not (b[1] <= cx and b[1] + b[3] >= cx and b[2] <= cy and b[2] + b[4] >= cy) then
      local best
      for _, f in ipairs(fr.detector:detect(img, {input_size = 416, score_threshold = 0.1})) do
        local fb = f.box
        if fb.x <= cx and fb.x + fb.width >= cx and fb.y <= cy and fb.y + fb.height >= cy
           and (not best or f.score > best.score) then best = f end
      end
      if best then
        box, how = best.box, best.score >= 0.5 and "detected" or "low_threshold"
      else
        box, how = {x = img.width * 0.3, y = img.height * 0.28, width = img.width * 0.4, height = img.height * 0.44}, "centre"
      end
    end
  end
  local net = fr.landmarks
  if o.lm == "full" or o.lm == "ens" then
    full_net = full_net or assert(landmarks_mod.load(require("siamese.models").dir() .. "/faceapi_landmarks68.safetensors"))
    net = o.lm == "full" and full_net or net
  end
  local popts = {flip = o.lmflip == 1}
  local function predict(b)
    local p = assert(net:predict(img, b, popts))
    if o.lm == "ens" then
      -- the mean of the two nets' points
      local q = assert(full_net:predict(img, b, popts))
      for i = 1, #p do p[i][1], p[i][2] = (p[i][1] + q[i][1]) / 2, (p[i][2] + q[i][2]) / 2 end
    end
    return p
  end
  local points = predict(box)
  for _ = 1, o.refine do points = predict(box_from_landmarks(points)) end
  return points, how
end

local function chips_of(img, points, o, rand)
  local list = {}
  local function plain(jitter)
    if o.chip == "sim" then
      local m = align.chip_transform(points, 150)
      if jitter then m = align.compose(align.invert(m), jitter) else m = align.invert(m) end
      return (img.channels == 3 and img or img:to_rgb()):warp_affine(m, 150, 150, {inverse = true})
    elseif o.chip == "faceapi" then
      local rect = landmarks_mod.descriptor_rect(points, img.width, img.height)
      return img:crop(rect.x, rect.y, rect.width, rect.height)
    end
    return align.dlib_chip(img, points, 150, 0.25, o.chip, jitter)
  end
  list[1] = plain()
  if o.flip == 1 then list[#list + 1] = list[1]:flip() end
  if o.both == 1 then
    local rect = landmarks_mod.descriptor_rect(points, img.width, img.height)
    list[#list + 1] = img:crop(rect.x, rect.y, rect.width, rect.height)
  end
  for _ = 1, o.jitter do
    local m, mirror = align.jitter_transform(150, rand)
    local c = plain(m)
    list[#list + 1] = mirror and c:flip() or c
  end
  return list
end

-- Descriptor sums already computed in this run, by photo, chip settings
-- and landmarks (so a detection variant only re-embeds the photos it moves).
-- Kept across runs in build/lfw_tune_memo.txt: "memo key<TAB>count<TAB>128 numbers".
local memo = {}
local MEMO_FILE = "build/lfw_tune_memo.txt"
do
  local f = io.open(MEMO_FILE, "r")
  if f then
    for line in f:lines() do
      local k, n, v = line:match("^(.-)\t(%d+)\t(.*)$")
      if k then
        local list = {}
        for x in v:gmatch("%S+") do list[#list + 1] = tonumber(x) end
        if #list == 128 then memo[k] = {siamese.tensor.new(list), tonumber(n)} end
      end
    end
    f:close()
  end
end
local function save_memo(entries)
  local f = assert(io.open(MEMO_FILE, "a"))
  for k, v in pairs(entries) do
    local t = v[1]:totable()
    for i = 1, #t do t[i] = string.format("%.7g", t[i]) end
    f:write(k, "\t", v[2], "\t", table.concat(t, " "), "\n")
  end
  f:close()
end
local function fingerprint(points)
  local parts = {}
  for i = 1, 68, 7 do parts[#parts + 1] = string.format("%.2f,%.2f", points[i][1], points[i][2]) end
  return table.concat(parts, ";")
end

local function descriptors_for(spec)
  local o = parse(spec)
  local net = recognition_net(o.bits)
  local seed = 1
  local function rand() -- a small LCG, so runs repeat whatever math.random does
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed / 2147483648
  end
  local desc, how, points_of, memo_keys = {}, {}, {}, {}
  local start = siamese.clock()
  local queue, owners = {}, {}
  local function flush()
    if #queue == 0 then return end
    local d = net:embed_batch(queue)
    for i, key in ipairs(owners) do
      local row = d:select(1, i)
      if desc[key] then desc[key][1]:add_(row); desc[key][2] = desc[key][2] + 1
      else desc[key] = {row:clone(), 1} end
    end
    queue, owners = {}, {}
  end
  local settings = table.concat({o.chip, o.jitter, o.flip, o.both, o.bits}, " ")
  for i, key in ipairs(keys) do
    local side = seen[key]
    local img = assert(siamese.image.load(lfw.image_path(root, side[1], side[2])))
    local points, h = face_of(img, cache[key], o)
    how[key], points_of[key] = h, points
    -- the same photo, landmarks and chip settings as in an earlier spec of
    -- this run: its descriptor sum again
    local memo_key = key .. " " .. settings .. " " .. fingerprint(points)
    if memo[memo_key] then
      desc[key] = {memo[memo_key][1]:clone(), memo[memo_key][2]}
    else
      memo_keys[key] = memo_key
      for _, chip in ipairs(chips_of(img, points, o, rand)) do
        queue[#queue + 1], owners[#owners + 1] = chip, key
        if #queue == 16 then flush() end
      end
    end
    if i % 500 == 0 then
      local rate = i / (siamese.clock() - start)
      io.stderr:write(string.format("\r%s: %d/%d photos, %.1f photos/s, ETA %ds   ", spec, i, #keys, rate,
        math.floor((#keys - i) / rate)))
    end
  end
  flush()
  local fresh = {}
  for key, mk in pairs(memo_keys) do
    memo[mk] = {desc[key][1]:clone(), desc[key][2]}
    fresh[mk] = memo[mk]
  end
  save_memo(fresh)
  io.stderr:write("\n")
  local out = {}
  for key, v in pairs(desc) do
    local d = v[1]:scale(1 / v[2])
    if o.l2 == 1 then d = d:scale(1 / d:norm()) end
    out[key] = d
  end
  return out, how, points_of, siamese.clock() - start
end

local function report(spec, d, same, folds, seconds)
  local mean, std, per = eval.kfold_accuracy(d, same, folds)
  local roc = eval.roc(d, same)
  local sub = {}
  for k = 1, 2 do
    local file = files[k] or files[1]
    local dd, ss, ff = {}, {}, {}
    for i = 1, #d do
      if file_of[i] == file then dd[#dd + 1], ss[#ss + 1], ff[#ff + 1] = d[i], same[i], folds[i] end
    end
    sub[#sub + 1] = eval.kfold_accuracy(dd, ss, ff)
  end
  local errors = 0
  for i = 1, #d do
    if (d[i] <= per[folds[i]].threshold) ~= same[i] then errors = errors + 1 end
  end
  local line = string.format("%-40s %s %.2f %% +- %.2f (Train %.2f, Test %.2f)  AUC %.4f  errors %d/%d  %.0f s",
    spec, #files == 2 and "Dev" or files[1], 100 * mean, 100 * std, 100 * sub[1], 100 * sub[2], eval.auc(roc), errors, #d, seconds)
  print(line)
  io.stdout:flush()
  local f = io.open("build/lfw_tune.txt", "a")
  if f then f:write(os.date("!%Y-%m-%d %H:%M "), line, "\n"); f:close() end
  return per
end

local function run(spec)
  local desc, how, points_of, seconds = descriptors_for(spec)
  local d, same, folds = lfw.distances(pairs_, desc)
  return report(spec, d, same, folds, seconds), d, same, folds, how, points_of
end

-- Failure analysis: errors at the 10-fold thresholds by how the pair's
-- faces were found, and a montage of the worst pairs.
local function analyse(spec)
  local per, d, same, folds, how = run(spec)
  local rank = {detected = 1, low_threshold = 2, centre = 3}
  local names = {"detected", "low_threshold", "centre"}
  local cat = {}
  for k = 1, 3 do cat[k] = {pairs = 0, errors = 0, fa = 0, fr = 0} end
  local wrong = {}
  for i, p in ipairs(pairs_) do
    local ka, kb = p.a[1] .. "/" .. p.a[2], p.b[1] .. "/" .. p.b[2]
    local k = math.max(rank[how[ka]], rank[how[kb]])
    local c = cat[k]
    c.pairs = c.pairs + 1
    local t = per[folds[i]].threshold
    if (d[i] <= t) ~= same[i] then
      c.errors = c.errors + 1
      if same[i] then c.fr = c.fr + 1 else c.fa = c.fa + 1 end
      wrong[#wrong + 1] = {i = i, margin = math.abs(d[i] - t), ka = ka, kb = kb, t = t}
    end
  end
  for k = 1, 3 do
    local c = cat[k]
    print(string.format("  worst face %-13s %4d pairs, %3d errors (%.2f %%): %d false accepts, %d false rejects",
      names[k], c.pairs, c.errors, 100 * c.errors / math.max(c.pairs, 1), c.fa, c.fr))
  end
  table.sort(wrong, function(x, y) return x.margin > y.margin end)
  local f = assert(io.open("build/lfw_dev_errors.txt", "w"))
  for _, w in ipairs(wrong) do
    local p = pairs_[w.i]
    f:write(string.format("%s %s %s d=%.3f t=%.3f %s/%s\n", p.same and "same" or "diff", w.ka, w.kb, d[w.i], w.t,
      how[w.ka], how[w.kb]))
  end
  f:close()
  -- Montage: each error as (photo a, chip a, chip b, photo b); red false
  -- accept, blue false reject; the photos are outlined by how the face was
  -- found (grey detected, yellow low threshold, magenta centre).
  local colour = {detected = {150, 150, 150}, low_threshold = {230, 200, 40}, centre = {220, 40, 220}}
  local o = parse(spec)
  local tiles = {}
  for k = 1, math.min(24, #wrong) do
    local w = wrong[k]
    local p = pairs_[w.i]
    local border = p.same and {40, 90, 230} or {230, 40, 40}
    local row = {}
    for s, key in ipairs{w.ka, w.kb} do
      local side = seen[key]
      local img = assert(siamese.image.load(lfw.image_path(root, side[1], side[2])))
      local points = face_of(img, cache[key], o)
      local chip = chips_of(img, points, o, math.random)[1]
      local photo = img:resize(150, 150)
      if s == 1 then
        row[1] = {image = photo, border = colour[how[key]]}
        row[2] = {image = chip, border = border}
      else
        row[3] = {image = chip, border = border}
        row[4] = {image = photo, border = colour[how[key]]}
      end
    end
    for _, t in ipairs(row) do tiles[#tiles + 1] = t end
  end
  assert(siamese.viz.montage(tiles, {columns = 8, border = 4}):save("build/lfw_dev_worst.png"))
  print("  wrote build/lfw_dev_errors.txt, build/lfw_dev_worst.png")
end

-- The mirror check of flip-averaged landmarks (--mirror=tiny|full): on
-- about 200 photos detected at 0.5, the net's points on the mirrored crop,
-- mapped back (u -> w - u, landmarks.MIRROR), against its points on the
-- crop: the mean offset and distance in crop widths, with and without the
-- left/right permutation, and the points that move most.
local function mirror_check(which)
  local detector = require "siamese.face.detector"
  local net = which == "full" and assert(landmarks_mod.load(require("siamese.models").dir() .. "/faceapi_landmarks68.safetensors"))
    or fr.landmarks
  local detected = {}
  for _, key in ipairs(keys) do if cache[key].how == "detected" then detected[#detected + 1] = key end end
  table.sort(detected)
  local function run_net(crop, w, h)
    return landmarks_mod.decode(net.net:forward(require("siamese.face.tfjs").to_batch_tensor(crop, landmarks_mod.INPUT_SIZE, true,
      landmarks_mod.MEAN_RGB)), w, h, 0, 0)
  end
  local n, dx, dy, dist, dist_id, per = 0, 0, 0, 0, 0, {}
  for i = 1, 68 do per[i] = 0 end
  for j = 1, #detected, #detected // 200 do
    local side = seen[detected[j]]
    local img = assert(siamese.image.load(lfw.image_path(root, side[1], side[2])))
    local rect = assert(landmarks_mod.clip_box(box_of(cache[detected[j]].box), img.width, img.height))
    local crop = img:crop(rect.x, rect.y, rect.width, rect.height)
    local p, m = run_net(crop, rect.width, rect.height), run_net(crop:flip(), rect.width, rect.height)
    local w = rect.width
    for i = 1, 68 do
      local q, r = m[landmarks_mod.MIRROR[i]], m[i]
      local ux, uy = w - q[1], q[2]
      dx, dy = dx + (ux - p[i][1]) / w, dy + (uy - p[i][2]) / w
      local d = math.sqrt((ux - p[i][1]) ^ 2 + (uy - p[i][2]) ^ 2) / w
      dist, per[i] = dist + d, per[i] + d
      dist_id = dist_id + math.sqrt((w - r[1] - p[i][1]) ^ 2 + (r[2] - p[i][2]) ^ 2) / w
    end
    n = n + 1
  end
  local N = 68 * n
  print(string.format("mirror check, %s net, %d faces: mapped back - plain = (%.4f, %.4f) crop widths; "
    .. "mean distance %.4f (%.4f without the permutation)", which, n, dx / N, dy / N, dist / N, dist_id / N))
  local order = {}
  for i = 1, 68 do order[i] = i end
  table.sort(order, function(a, b) return per[a] > per[b] end)
  local worst = {}
  for k = 1, 6 do worst[k] = string.format("%d: %.4f", order[k] - 1, per[order[k]] / n) end
  print("  most moved points (0-based iBUG): " .. table.concat(worst, ", "))
end

for _, a in ipairs(arg) do
  local spec = a:match("^%-%-analyse=(.*)$")
  local mirror = a:match("^%-%-mirror=(%a+)$")
  if spec then analyse(spec) elseif mirror then mirror_check(mirror) else run(a) end
end
