--- siamese calibrate: measure the gallery encoder's ROC on labelled data
-- and store the threshold for a target false-accept rate in the gallery.
local args = require "siamese.app.cli.args"
local json = require "siamese.json"
local encoders = require "siamese.app.cli.encoders"
local galleries = require "siamese.app.cli.galleries"
local inputs = require "siamese.app.cli.inputs"
local pair_sets = require "siamese.app.cli.pair_sets"
local output = require "siamese.app.cli.output"
local photo_options = require "siamese.app.cli.photo_options"

local calibrate = {
  summary = "choose the gallery's threshold at a target false-accept rate",
  usage = [=[
usage: siamese calibrate --gallery FILE (--pairs FILE --root DIR | --folder DIR)
                         [--far 0.01] [--roc out.png] [--dry-run] [photo options] [--json]]=],
  description = [[
Embeds labelled data with the gallery's encoder: the pairs of an
LFW-style pairs file (--pairs, photos under --root as NAME/NAME_0001.jpg),
or every pair of photos of a folder with one sub-folder per person
(--folder). From the distances: ROC, AUC, EER, and the threshold at which
at most --far of impostor pairs are accepted (default 0.01), with the
true-accept rate there. The threshold is stored in the gallery (saved
atomically, under the gallery's lock, on the file as it is then) unless
--dry-run. --roc writes the ROC curve as PNG.]],
  epilog = [[
exit status: 0 calibrated, 2 error.]],
}

local SPEC = {
  gallery = {kind = "string", arg = "FILE", help = "the gallery to calibrate"},
  pairs = {kind = "string", arg = "FILE", help = "labelled pairs (with --root DIR)"},
  root = {kind = "string", arg = "DIR", help = "the folder the photos of --pairs are under"},
  folder = {kind = "string", arg = "DIR", help = "one sub-folder per person"},
  far = {kind = "number", default = 0.01,
         arg = "F", help = "target false-accept rate (0 < F < 1, default 0.01)"},
  roc = {kind = "string", arg = "FILE.png", help = "the ROC curve"},
  model = photo_options.GALLERY_MODEL,
  models = photo_options.MODELS,
  fallback = photo_options.fallback("when no face is detected at score 0.5: skip the photo "
    .. "(default, as in every command), retry at score 0.1, or also use the centred region of "
    .. "a portrait (LFW-style crops)"),
  max_pairs = {kind = "number", default = 300000,
               arg = "N", help = "folder: impostor pairs sampled past N pairs (300000)"},
  dry_run = {kind = "flag", default = false, help = "report only, leave the gallery as it is"},
  json = {kind = "flag", default = false,
          help = 'print {"gallery", "pairs", "genuine", "impostor", "auc", "eer", "eer_threshold", "far", '
            .. '"threshold", "tar", "accuracy", "previous_threshold", "saved", "roc_png", "skipped"}'},
}
photo_options.merge(SPEC)
calibrate.spec = SPEC

--- Distances and labels of the data named by opts (pairs or folder), with
-- the encoder; or nil, message. Shared with siamese eval.
function calibrate.labelled_distances(enc, opts, metric)
  if opts.pairs then
    local d, same, folds, how = pair_sets.pair_distances(enc, opts.pairs, opts.root, metric,
      require("siamese.app.cli").track_progress(output.progress("embed", "photos")))
    if not d then return nil, same end
    return {distances = d, same = same, folds = folds, how = how, skipped = {}}
  end
  local people, err = inputs.people(opts.folder)
  if not people then return nil, err end
  local set, skipped = pair_sets.embed_people(enc, people,
    require("siamese.app.cli").track_progress(output.progress("embed", "photos")))
  if #set.descriptors < 2 then return nil, opts.folder .. ": fewer than two photos with a face" end
  local d, same = pair_sets.all_pairs(set, metric, math.floor(opts.max_pairs))
  return {distances = d, same = same, set = set, skipped = skipped}
end

local function counts(same)
  local g = 0
  for _, s in ipairs(same) do if s then g = g + 1 end end
  return g, #same - g
end

function calibrate.run(argv)
  local cli = require "siamese.app.cli"
  local opts, pos = args.parse(argv, SPEC)
  if not opts then return cli.fail(pos, calibrate.usage) end
  if #pos > 0 then return cli.fail("unexpected argument '" .. pos[1] .. "'", calibrate.usage) end
  if not opts.gallery then return cli.fail("--gallery FILE is required", calibrate.usage) end
  if (opts.pairs == nil) == (opts.folder == nil) then
    return cli.fail("give either --pairs FILE --root DIR or --folder DIR", calibrate.usage)
  end
  if opts.pairs and not opts.root then return cli.fail("--pairs needs --root DIR", calibrate.usage) end
  if not (opts.far > 0 and opts.far < 1) then
    return cli.fail("--far must be between 0 and 1, got " .. tostring(opts.far), calibrate.usage)
  end
  local max_pairs = math.tointeger(opts.max_pairs)
  if not max_pairs or max_pairs < 1 then
    return cli.fail("--max-pairs must be a positive integer, got " .. tostring(opts.max_pairs), calibrate.usage)
  end
  opts.max_pairs = max_pairs
  if opts.roc and not opts.roc:lower():match("%.png$") then
    return cli.fail("--roc needs a .png file name, got '" .. opts.roc .. "'", calibrate.usage)
  end
  local pok, perr = photo_options.apply(opts)
  if not pok then return cli.fail(perr, calibrate.usage) end
  if opts.folder then
    local kind = require("siamese.fs").kind(opts.folder)
    if kind ~= "directory" then
      return cli.fail("--folder " .. opts.folder .. (kind and ": not a directory" or ": no such directory"))
    end
  end
  local g, err = galleries.load_gallery(opts.gallery)
  if not g then return cli.fail(err) end
  local enc, eerr = encoders.encoder_for(g, opts)
  if not enc then return cli.fail(eerr) end

  local data, derr = calibrate.labelled_distances(enc, opts, g:metric())
  if not data then return cli.fail(derr) end
  local genuine, impostor = counts(data.same)
  if genuine == 0 or impostor == 0 then
    return cli.fail(string.format("need genuine and impostor pairs, got %s and %s",
      output.plural(genuine, "genuine pair", "genuine pairs"), output.plural(impostor, "impostor pair", "impostor pairs")))
  end
  local eval = require "siamese.eval"
  local roc = eval.roc(data.distances, data.same)
  local tar, threshold = eval.tar_at_far(roc, opts.far)
  if threshold == -math.huge then
    return cli.fail(string.format("no threshold accepts anyone at FAR <= %g with %s (raise --far)",
      opts.far, output.plural(impostor, "impostor pair", "impostor pairs")))
  end
  local eer, eer_t = eval.eer(roc)
  local m = {gallery = opts.gallery, pairs = #data.distances, genuine = genuine, impostor = impostor,
             auc = eval.auc(roc), eer = eer, eer_threshold = eer_t, far = opts.far, threshold = threshold,
             tar = tar, accuracy = eval.accuracy(data.distances, data.same, threshold),
             previous_threshold = g:threshold(), saved = false, skipped = #data.skipped, model = g:model()}
  if opts.roc then
    local ok, perr = require("siamese.viz").roc_image(roc, {title = "ROC: " .. enc.name}):save(opts.roc)
    if not ok then return cli.fail(perr) end
    m.roc_png = opts.roc
  end
  if not opts.dry_run then
    -- Under the gallery's lock, on the file as it is now: only the
    -- threshold changes (people enrolled meanwhile stay).
    local model_changed
    local ok, serr = require("siamese.gallery").update(opts.gallery, function(lg)
      if lg:model() ~= m.model then
        model_changed = string.format("%s: the gallery was replaced meanwhile by one made with model %s "
          .. "(calibrated with %s): threshold not saved", opts.gallery, lg:model(), m.model)
        return false
      end
      lg:set_threshold(threshold)
      return true
    end)
    if model_changed then return cli.fail(model_changed) end
    if not ok then return cli.fail(serr) end
    m.saved = true
  end
  if opts.json then
    print(json.encode(m))
  else
    print(string.format("%s: %s (%d genuine, %d impostor), %s skipped", opts.gallery,
      output.plural(m.pairs, "pair", "pairs"), genuine, impostor, output.plural(m.skipped, "photo", "photos")))
    print(string.format("  AUC %.4f, EER %.2f %% at distance %.3f", m.auc, 100 * eer, eer_t))
    print(string.format("  at FAR <= %g: threshold %.4f, TAR %.2f %%, accuracy %.2f %%", opts.far, threshold,
      100 * tar, 100 * m.accuracy))
    print(m.saved and string.format("  threshold %.4f -> %.4f saved", m.previous_threshold, threshold)
                  or "  dry run: gallery unchanged")
    if m.roc_png then print("  wrote " .. m.roc_png) end
  end
  return 0
end

return calibrate
