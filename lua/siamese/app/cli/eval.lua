--- siamese eval: verification and identification benchmarks.
--   lfw     the LFW verification benchmark with the face pipeline
--   pairs   verification on any pairs file, with any encoder
--   folder  verification and one-shot identification on a folder dataset
local args = require "siamese.app.cli.args"
local json = require "siamese.json"
local photo_options = require "siamese.app.cli.photo_options"

local eval_cmd = {
  summary = "benchmarks: lfw (10-fold protocol), pairs FILE, folder DIR (identification too)",
  usage = [=[
usage: siamese eval lfw --root DIR --pairs FILE [--pipeline mobilefacenet|faceapi]
                        [--align dlib|similarity|faceapi]
                        [--landmarks tiny|full] [--refine N] [--jitter N]
                        [--min-face N] [--no-flip]
                        [--l2] [--out DIR] [photo options] [--json]
       siamese eval pairs --pairs FILE --root DIR [--model face|NAME|PATH]
                        [--fallback none|threshold|centre] [--far F] [--roc FILE.png]
                        [photo options] [--json]
       siamese eval folder DIR [--model face|NAME|PATH] [--enroll N] [--strangers K]
                        [--seed S] [--far F] [--fallback ...] [--roc FILE.png]
                        [photo options] [--json]]=],
  description = [[
lfw: embeds every photo the pairs use (the best detection whose box contains
the photo's centre, down to score 0.1; if none, the centred region), and reports
10-fold accuracy (threshold chosen on 9 folds, applied to the 10th), AUC,
EER, TAR at FAR = 1e-3 and the wall time. --refine N (default 1) re-runs
the landmark net N times on the box re-derived from its landmarks. --jitter N averages each
photo's descriptor with those of N jittered copies of its chip (dlib's
test-time augmentation: N + 1 forward passes per photo); --l2 normalises
descriptors to unit length. Writes DIR/roc.png and
DIR/worst_pairs.png (the worst false accepts, red, and false rejects,
blue). --json prints the same figures as one JSON object.
--pipeline mobilefacenet (default): MTCNN (--min-face N pixels, default
20), five points, the ArcFace 112x112 chip and MobileFaceNet's unit-length
192-D descriptor, with its mirror's averaged in unless --no-flip.
--pipeline faceapi: --detector (face-api's tiny detector, default, or its
SSD MobileNet v1), --align, --landmarks, --refine and --jitter.

pairs: verification on an LFW-style pairs file (photos under --root as
NAME/NAME_0001.jpg) with the chosen encoder: k-fold accuracy (the folds of
the file), AUC, EER, TAR at FAR = --far (default 0.001).

folder: DIR holds one sub-folder per person. Verification over every pair
of photos (AUC, EER, TAR at --far, default 0.01, best accuracy), and
identification: the first --enroll photos (default 1) of each person are
enrolled in a gallery, the others identified (rank-1, closed set). With
--strangers K, K people (chosen by --seed) are left out of the gallery:
open-set identification reports the threshold at which at most --far of
the strangers' photos are accepted as someone, the rate of strangers
rejected there, and the detection-and-identification rate (DIR: enrolled
people's photos accepted with the right name).

--model: face (default, the pretrained face pipeline) or a trained encoder
(siamese.encoder.load: a name such as att, or a .safetensors path) that
embeds the whole photo. --fallback (face model, when no face is detected
at score 0.5): none by default, as in every command (pairs: a photo without
a face stops the run, folder: it is skipped); threshold retries at score
0.1, centre also takes the centred region of a portrait (LFW-style crops).
lfw follows its own protocol (the face containing the photo's centre, down
to score 0.1, else the centred region). --json prints the figures as one JSON object: pairs {"pairs",
"accuracy", "accuracy_std", "auc", "eer", "eer_threshold", "tar",
"tar_threshold", "far", "faces", "model", "seconds"}; folder {"people",
"photos", "skipped", "genuine_pairs", "impostor_pairs", "auc", "eer", "tar",
"best_accuracy", "rank1", "probes", "open_set": {"threshold", "rejection",
"dir", "far", "genuine", "strangers"}, "model", "seconds"}.]],
  epilog = [[
The options above are lfw's; siamese eval pairs --help and siamese eval
folder --help list theirs.]],
}

local SPEC = {
  root = {kind = "string", arg = "DIR", help = "the LFW photos, as NAME/NAME_0001.jpg"},
  pairs = {kind = "string", arg = "FILE", help = "LFW's pairs.txt (10 folds)"},
  align = {kind = "string", default = "dlib", choices = {"dlib", "similarity", "faceapi"},
           help = "faceapi: the chip the descriptor is computed on (default dlib)"},
  jitter = {kind = "number", default = 0, arg = "N",
            help = "faceapi: average each photo's descriptor with those of N jittered copies of its chip "
              .. "(default 0)"},
  refine = {kind = "number", default = 1, arg = "N",
            help = "faceapi: re-run the landmark net N times on the box re-derived from its landmarks "
              .. "(0..5, default 1)"},
  l2 = {kind = "flag", default = false, help = "normalise descriptors to unit length"},
  landmarks = {kind = "string", default = "tiny", choices = {"tiny", "full"},
               help = "faceapi: the landmark net (default tiny)"},
  min_face = {kind = "number"},
  no_flip = {kind = "flag", default = false, help = "mobilefacenet: leave the mirror's descriptor out"},
  out = {kind = "string", default = "build/lfw", arg = "DIR",
         help = "where roc.png and worst_pairs.png go (default build/lfw; created with its parents)"},
  json = {kind = "flag", default = false, help = "print the figures as one JSON object"},
  models = photo_options.MODELS,
}
photo_options.merge(SPEC)
eval_cmd.spec = SPEC

--- The command whose help `siamese eval ... --help` prints: pairs or
-- folder when named in argv, else eval (lfw's options).
function eval_cmd.help_for(argv)
  for _, a in ipairs(argv) do
    if a == "pairs" or a == "folder" then return require("siamese.app.cli.eval_" .. a) end
    if a == "lfw" then break end
  end
  return eval_cmd
end

local function progress_printer(start, clock)
  local last = 0
  return require("siamese.app.cli").track_progress(function(i, n)
    local now = clock()
    if now - last < 2 and i < n then return end
    last = now
    local rate = i / math.max(now - start, 1e-9)
    io.stderr:write(string.format("\rlfw: %d/%d photos, %.1f photos/s, ETA %ds   ", i, n, rate, math.floor((n - i) / rate)))
    if i == n then io.stderr:write("\n") end
  end)
end

-- The worst mistakes as pairs of chips side by side.
local function worst_montage(fr, root, pairs_, d, lfw, viz, image)
  local fa, fr_ = {}, {}
  for i, p in ipairs(pairs_) do
    if p.same then fr_[#fr_ + 1] = i else fa[#fa + 1] = i end
  end
  table.sort(fa, function(x, y) return d[x] < d[y] end)
  table.sort(fr_, function(x, y) return d[x] > d[y] end)
  local tiles = {}
  local function add(list, colour)
    for k = 1, math.min(6, #list) do
      local p = pairs_[list[k]]
      for _, side in ipairs{p.a, p.b} do
        local img = assert(image.load(lfw.image_path(root, side[1], side[2])))
        local f = lfw.find_face(fr, img)
        tiles[#tiles + 1] = {image = fr:align(img, f), border = colour}
      end
    end
  end
  add(fa, {230, 40, 40})
  add(fr_, {40, 90, 230})
  return viz.montage(tiles, {columns = 4, border = 4})
end

local function run_lfw(argv)
  local cli = require "siamese.app.cli"
  local opts, pos = args.parse(argv, SPEC)
  if not opts then return cli.fail(pos, eval_cmd.usage) end
  if pos[1] ~= "lfw" then return cli.fail("expected 'siamese eval lfw'", eval_cmd.usage) end
  if #pos > 1 then return cli.fail("unexpected argument '" .. pos[2] .. "'", eval_cmd.usage) end
  if not opts.root or not opts.pairs then return cli.fail("--root DIR and --pairs FILE are required", eval_cmd.usage) end
  local jitter = math.tointeger(opts.jitter)
  if not jitter or jitter < 0 then
    return cli.fail("--jitter must be a non-negative integer, got " .. tostring(opts.jitter), eval_cmd.usage)
  end
  local refine = math.tointeger(opts.refine)
  if not refine or refine < 0 or refine > 5 then
    return cli.fail("--refine must be an integer from 0 to 5, got " .. tostring(opts.refine), eval_cmd.usage)
  end
  if opts.out == "" then return cli.fail("--out needs a directory name", eval_cmd.usage) end
  local pok, perr = photo_options.apply(opts)
  if not pok then return cli.fail(perr, eval_cmd.usage) end
  local detector = opts.detector or "tiny"
  local siamese = require "siamese"
  local lfw = require "siamese.face.lfw"
  local pairs_, err = lfw.read_pairs(opts.pairs)
  if not pairs_ then return cli.fail(err) end
  -- the output directory before the long part: a bad --out fails at once
  local mok, merr = require("siamese.fs").mkdir_p(opts.out)
  if not mok then return cli.fail("--out " .. merr) end
  local mfn = opts.pipeline == "mobilefacenet"
  if mfn and (jitter > 0 or opts.detector) then
    return cli.fail("--jitter and --detector are for --pipeline faceapi", eval_cmd.usage)
  end
  if not mfn and (opts.min_face or opts.no_flip) then
    return cli.fail("--min-face and --no-flip are for --pipeline mobilefacenet", eval_cmd.usage)
  end
  if opts.min_face and not (opts.min_face >= 6 and opts.min_face <= 10000) then
    return cli.fail("--min-face must be a number of pixels from 6 to 10000, got " .. tostring(opts.min_face),
      eval_cmd.usage)
  end
  local fr, ferr
  if mfn then
    fr, ferr = siamese.face.load{model = "mobilefacenet", models_dir = opts.models, min_face = opts.min_face,
                                 flip = not opts.no_flip}
    detector = "mtcnn"
  else
    fr, ferr = siamese.face.load{model = "faceapi", align = opts.align, detector = detector,
                                 landmarks = opts.landmarks, models_dir = opts.models, refine = refine}
  end
  if not fr then return cli.fail(ferr) end
  local start = siamese.clock()
  local descriptors, how = lfw.embed_images(fr, opts.root, pairs_, progress_printer(start, siamese.clock),
    {jitter = jitter, l2 = opts.l2})
  local d, same, folds = lfw.distances(pairs_, descriptors)
  local m, roc = lfw.metrics(d, same, folds)
  m.seconds = siamese.clock() - start
  m.pipeline = opts.pipeline
  m.model = fr.model_id
  m.align = mfn and "arcface" or opts.align
  m.detector = detector
  m.landmarks = mfn and "mtcnn5" or opts.landmarks
  m.jitter = jitter
  m.refine = refine
  m.l2 = opts.l2
  m.pairs_file = opts.pairs
  m.faces = how
  m.roc_png = opts.out .. "/roc.png"
  m.worst_png = opts.out .. "/worst_pairs.png"
  local ok, serr = siamese.viz.roc_image(roc):save(m.roc_png)
  if not ok then return cli.fail(serr) end
  ok, serr = worst_montage(fr, opts.root, pairs_, d, lfw, siamese.viz, siamese.image):save(m.worst_png)
  if not ok then return cli.fail(serr) end
  if opts.json then
    print(json.encode(m))
  else
    if mfn then
      print(string.format("LFW %s, %d pairs, model %s (MTCNN, min face %g px)", opts.pairs, m.pairs, fr.model_id,
        fr.min_face))
    else
      print(string.format("LFW %s, %d pairs, align %s, detector %s, landmarks %s (refined %d), jitter %d%s",
        opts.pairs, m.pairs, opts.align, detector, opts.landmarks, refine, jitter, opts.l2 and ", L2-normalised" or ""))
    end
    local k = 0
    for _, p in ipairs(pairs_) do k = math.max(k, p.fold or 0) end
    print(string.format("  accuracy      %.2f %% +- %.2f (%d-fold)", 100 * m.accuracy, 100 * m.accuracy_std, k))
    print(string.format("  AUC           %.4f", m.auc))
    print(string.format("  EER           %.2f %% (distance %.3f)", 100 * m.eer, m.eer_threshold))
    print(string.format("  TAR@FAR=1e-3  %.2f %% (distance %.3f)", 100 * m.tar_at_far_1e3, m.tar_threshold))
    print(string.format("  faces         %d detected, %d at a low threshold, %d centred fallback",
      how.detected, how.low_threshold, how.centre))
    print(string.format("  wall time     %.1f s; wrote %s, %s", m.seconds, m.roc_png, m.worst_png))
  end
  return 0
end

function eval_cmd.run(argv)
  local cli = require "siamese.app.cli"
  -- The benchmark is the first of lfw / pairs / folder in the arguments
  -- (options may come before it).
  local which
  for _, a in ipairs(argv) do
    if a == "lfw" or a == "pairs" or a == "folder" then which = a break end
  end
  if not which then
    for _, a in ipairs(argv) do
      if not a:match("^%-") then which = a break end
    end
  end
  if which == "lfw" then return run_lfw(argv) end
  if which == "pairs" or which == "folder" then
    local rest, dropped = {}, false
    for _, a in ipairs(argv) do
      if a == which and not dropped then dropped = true else rest[#rest + 1] = a end
    end
    return require("siamese.app.cli.eval_" .. which).run(rest)
  end
  return cli.fail(which and "unknown benchmark '" .. which .. "' (lfw, pairs or folder)"
                        or "expected 'siamese eval lfw|pairs|folder'", eval_cmd.usage)
end

return eval_cmd
