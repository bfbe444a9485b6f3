--- siamese eval folder: verification and one-shot identification on a
-- folder dataset (one sub-folder per person).
local args = require "siamese.app.cli.args"
local json = require "siamese.json"
local encoders = require "siamese.app.cli.encoders"
local inputs = require "siamese.app.cli.inputs"
local pair_sets = require "siamese.app.cli.pair_sets"
local output = require "siamese.app.cli.output"
local photo_options = require "siamese.app.cli.photo_options"

local eval_folder = {
  usage = [=[
usage: siamese eval folder DIR [--model face|NAME|PATH] [--enroll N] [--strangers K]
                           [--seed S] [--far F] [--fallback ...] [--roc FILE.png]
                           [photo options] [--json]]=],
  description = [[
DIR holds one sub-folder per person. Verification over every pair of
photos (AUC, EER, TAR at --far, best accuracy), and identification: the
first --enroll photos of each person are enrolled in a gallery, the others
identified (rank-1, closed set). With --strangers K, K people (chosen by
--seed) are left out of the gallery: open-set identification reports the
threshold at which at most --far of the strangers' photos are accepted as
someone, the rate of strangers rejected there, and the
detection-and-identification rate (DIR: enrolled people's photos accepted
with the right name).]],
}

local SPEC = {
  model = photo_options.ENCODER,
  models = photo_options.MODELS,
  metric = photo_options.METRIC,
  fallback = photo_options.fallback("face model, when no face is detected at score 0.5: none "
    .. "(default: the photo is skipped), threshold: retry at score 0.1, centre: also the centred region"),
  enroll = {kind = "number", default = 1, arg = "N", help = "photos enrolled per person (default 1)"},
  strangers = {kind = "number", default = 0, arg = "K",
               help = "people left out of the gallery for open-set identification (default 0)"},
  seed = {kind = "number", default = 1, arg = "S", help = "chooses the strangers (default 1)"},
  far = {kind = "number", default = 0.01, arg = "F",
         help = "the false-accept rate of the TAR and of the open-set threshold (default 0.01)"},
  max_pairs = {kind = "number", default = 300000, arg = "N",
               help = "impostor pairs sampled past N pairs (default 300000)"},
  roc = {kind = "string", arg = "FILE.png", help = "write the ROC curve as PNG"},
  json = {kind = "flag", default = false,
          help = 'print {"people", "photos", "skipped", "genuine_pairs", "impostor_pairs", "auc", "eer", '
            .. '"tar", "best_accuracy", "rank1", "probes", "open_set": {"threshold", "rejection", "dir", '
            .. '"far", "genuine", "strangers"}, "model", "seconds"}'},
}
photo_options.merge(SPEC)
eval_folder.spec = SPEC

--- Splits an embedded set: the first `enroll` photos of each person not in
-- `strangers` (set of labels) are enrolled, the rest are probes.
-- Returns enrolled indices, probe indices.
function eval_folder.split(set, enroll, strangers)
  local seen, enrolled, probes = {}, {}, {}
  for i, label in ipairs(set.labels) do
    seen[label] = (seen[label] or 0) + 1
    if not strangers[label] and seen[label] <= enroll then
      enrolled[#enrolled + 1] = i
    else
      probes[#probes + 1] = i
    end
  end
  return enrolled, probes
end

--- A gallery of the enrolled photos (one identity per person).
function eval_folder.gallery(set, enrolled, enc, metric)
  local siamese = require "siamese"
  local g = siamese.gallery.new{dim = enc.dim, metric = metric, threshold = 1, model = enc.model_id}
  local names, rows = {}, {}
  for k, i in ipairs(enrolled) do
    names[k], rows[k] = set.names[set.labels[i]], set.descriptors[i]:view(1, -1)
  end
  g:add_many(names, siamese.tensor.cat(rows, 1))
  return g
end

--- Identification of the probes against the gallery (siamese.eval.rank1
-- and, with far, siamese.eval.open_set): rank1 (closed set over the
-- enrolled people's probes) and open_set = {threshold, dir, rejection
-- (strangers' probes rejected), far (achieved), genuine, strangers}.
function eval_folder.identification(g, set, probes, far)
  local siamese = require "siamese"
  local eval = siamese.eval
  local rows, truth = {}, {}
  for k, i in ipairs(probes) do
    rows[k] = set.descriptors[i]:view(1, -1)
    local name = set.names[set.labels[i]]
    truth[k] = g:has(name) and name or false
  end
  local out = {}
  local rank1, predicted, distances = eval.rank1(g, siamese.tensor.cat(rows, 1), truth)
  out.rank1 = rank1
  if far then
    local dir, threshold, info = eval.open_set{distances = distances, predicted = predicted, labels = truth, far = far}
    -- threshold -inf: no probe can be accepted at that rate
    out.open_set = {threshold = threshold > -math.huge and threshold or nil, dir = dir, far = info.far, rejection = info.far and 1 - info.far,
                    genuine = info.genuine, strangers = info.impostors}
  end
  return out
end

-- K of the people with at least one embedded photo, chosen by seed (a
-- set of labels), or nil when there are not more than K of them.
local function choose_strangers(set, k, seed)
  local present, seen = {}, {}
  for _, l in ipairs(set.labels) do
    if not seen[l] then seen[l] = true; present[#present + 1] = l end
  end
  if #present <= k then return nil end
  local order = require("siamese.core").data.permutation(#present, seed)
  local out = {}
  for i = 1, k do out[present[order[i]]] = true end
  return out
end

function eval_folder.run(argv)
  local cli = require "siamese.app.cli"
  local usage = require("siamese.app.cli.eval").usage
  local opts, pos = args.parse(argv, SPEC)
  if not opts then return cli.fail(pos, usage) end
  if #pos ~= 1 then return cli.fail("expected 'siamese eval folder DIR'", usage) end
  for _, key in ipairs{"enroll", "strangers", "seed", "max_pairs"} do
    local v = math.tointeger(opts[key])
    if not v or v < (key == "strangers" and 0 or 1) then
      return cli.fail("--" .. key:gsub("_", "-") .. " must be a " .. (key == "strangers" and "non-negative" or "positive")
        .. " integer, got " .. tostring(opts[key]), usage)
    end
    opts[key] = v
  end
  if not (opts.far > 0 and opts.far < 1) then
    return cli.fail("--far must be between 0 and 1, got " .. tostring(opts.far), usage)
  end
  local pok, perr0 = photo_options.apply(opts)
  if not pok then return cli.fail(perr0, usage) end
  local kind = require("siamese.fs").kind(pos[1])
  if kind ~= "directory" then
    return cli.fail(pos[1] .. (kind and ": not a directory" or ": no such directory"))
  end
  local people, perr = inputs.people(pos[1])
  if not people then return cli.fail(perr) end
  if opts.strangers >= #people then
    return cli.fail(string.format("--strangers %d leaves nobody to enroll among %s", opts.strangers,
      output.plural(#people, "person", "people")), usage)
  end
  local enc, err = encoders.encoder(opts)
  if not enc then return cli.fail(err) end
  opts.metric = opts.metric or enc.metric or "euclidean"
  local siamese = require "siamese"
  local eval = siamese.eval
  local start = siamese.clock()
  local set, skipped = pair_sets.embed_people(enc, people,
    cli.track_progress(output.progress("eval folder", "photos")))
  if #set.descriptors < 2 then return cli.fail(pos[1] .. ": fewer than two photos with a face") end

  local m = {folder = pos[1], people = #people, photos = #set.descriptors, skipped = #skipped,
             model = enc.model_id, metric = opts.metric, far = opts.far, enroll = opts.enroll}
  -- verification over every pair of photos
  local d, same = pair_sets.all_pairs(set, opts.metric, opts.max_pairs)
  local genuine = 0
  for _, s in ipairs(same) do if s then genuine = genuine + 1 end end
  m.genuine_pairs, m.impostor_pairs = genuine, #same - genuine
  if genuine > 0 and genuine < #same then
    local roc = eval.roc(d, same)
    m.auc = eval.auc(roc)
    m.eer, m.eer_threshold = eval.eer(roc)
    m.tar, m.tar_threshold = eval.tar_at_far(roc, opts.far)
    if m.tar_threshold == -math.huge then m.tar_threshold = json.null end
    m.best_threshold, m.best_accuracy = eval.best_threshold(d, same)
    if opts.roc then
      local ok, rerr = siamese.viz.roc_image(roc, {title = "ROC: " .. enc.name}):save(opts.roc)
      if not ok then return cli.fail(rerr) end
      m.roc_png = opts.roc
    end
  end

  -- closed set: everybody enrolled
  local enrolled, probes = eval_folder.split(set, opts.enroll, {})
  if #probes > 0 then
    local g = eval_folder.gallery(set, enrolled, enc, opts.metric)
    m.rank1 = eval_folder.identification(g, set, probes).rank1
    m.probes = #probes
  end
  -- open set: strangers left out
  if opts.strangers > 0 then
    local strangers = choose_strangers(set, opts.strangers, opts.seed)
    if not strangers then
      return cli.fail(string.format("--strangers %d leaves nobody to enroll among the people with a face found",
        opts.strangers), usage)
    end
    local e2, p2 = eval_folder.split(set, opts.enroll, strangers)
    local g = eval_folder.gallery(set, e2, enc, opts.metric)
    m.strangers = opts.strangers
    m.open_set = eval_folder.identification(g, set, p2, opts.far).open_set
  end
  m.seconds = siamese.clock() - start
  if opts.json then
    print(json.encode(m))
  else
    print(string.format("%s: %s, %s (%d skipped), model %s (%s)", pos[1], output.plural(m.people, "person", "people"),
      output.plural(m.photos, "photo", "photos"), m.skipped, enc.model_id, opts.metric))
    if m.auc then
      print(string.format("  verification  AUC %.4f, EER %.2f %%, TAR@FAR=%g %.2f %%, best accuracy %.2f %%",
        m.auc, 100 * m.eer, opts.far, 100 * m.tar, 100 * m.best_accuracy))
    end
    if m.rank1 then
      print(string.format("  rank-1        %.2f %% (%d enrolled per person, %s)", 100 * m.rank1, opts.enroll,
        output.plural(m.probes, "probe", "probes")))
    end
    if m.open_set then
      local o = m.open_set
      print(string.format("  open set      %s: at FAR %g threshold %s, strangers rejected %.2f %%, DIR %.2f %%",
        output.plural(opts.strangers, "stranger", "strangers"), opts.far, o.threshold and string.format("%.3f", o.threshold) or "none",
        100 * (o.rejection or 0), 100 * (o.dir or 0)))
    end
  end
  return 0
end

return eval_folder
