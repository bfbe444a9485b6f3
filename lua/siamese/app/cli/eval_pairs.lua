--- siamese eval pairs: verification on a pairs file with any encoder.
local args = require "siamese.app.cli.args"
local json = require "siamese.json"
local encoders = require "siamese.app.cli.encoders"
local pair_sets = require "siamese.app.cli.pair_sets"
local output = require "siamese.app.cli.output"
local photo_options = require "siamese.app.cli.photo_options"

local eval_pairs = {
  usage = [=[
usage: siamese eval pairs --pairs FILE --root DIR [--model face|NAME|PATH]
                          [--fallback none|threshold|centre] [--far F] [--roc FILE.png]
                          [photo options] [--json]]=],
  description = [[
Verification on an LFW-style pairs file with the chosen encoder: k-fold
accuracy (the folds of the file), AUC, EER, TAR at FAR = --far.]],
}

local SPEC = {
  pairs = {kind = "string", arg = "FILE", help = "the pairs file (LFW's format)"},
  root = {kind = "string", arg = "DIR", help = "the photos, as NAME/NAME_0001.jpg"},
  model = photo_options.ENCODER,
  models = photo_options.MODELS,
  metric = photo_options.METRIC,
  fallback = photo_options.fallback("face model, when no face is detected at score 0.5: none "
    .. "(default: a photo without a face stops the run), threshold: retry at score 0.1, centre: also the "
    .. "centred region"),
  far = {kind = "number", default = 0.001, arg = "F", help = "the false-accept rate of the TAR (default 0.001)"},
  roc = {kind = "string", arg = "FILE.png", help = "write the ROC curve as PNG"},
  json = {kind = "flag", default = false,
          help = 'print {"pairs", "accuracy", "accuracy_std", "auc", "eer", "eer_threshold", "tar", '
            .. '"tar_threshold", "far", "faces", "model", "seconds"}'},
}
photo_options.merge(SPEC)
eval_pairs.spec = SPEC

function eval_pairs.run(argv)
  local cli = require "siamese.app.cli"
  local usage = require("siamese.app.cli.eval").usage
  local opts, pos = args.parse(argv, SPEC)
  if not opts then return cli.fail(pos, usage) end
  if #pos > 0 then return cli.fail("unexpected argument '" .. pos[1] .. "'", usage) end
  if not opts.pairs or not opts.root then return cli.fail("--pairs FILE and --root DIR are required", usage) end
  if not (opts.far > 0 and opts.far < 1) then
    return cli.fail("--far must be between 0 and 1, got " .. tostring(opts.far), usage)
  end
  local pok, perr0 = photo_options.apply(opts)
  if not pok then return cli.fail(perr0, usage) end
  local enc, err = encoders.encoder(opts)
  if not enc then return cli.fail(err) end
  opts.metric = opts.metric or enc.metric or "euclidean"
  local siamese = require "siamese"
  local eval = siamese.eval
  local start = siamese.clock()
  local d, same, folds, how = pair_sets.pair_distances(enc, opts.pairs, opts.root, opts.metric,
    cli.track_progress(output.progress("eval pairs", "photos")))
  if not d then return cli.fail(same) end
  local m = {pairs_file = opts.pairs, pairs = #d, model = enc.model_id, metric = opts.metric, far = opts.far, faces = how}
  local k = 0
  for _, f in ipairs(folds) do k = math.max(k, f) end
  if k >= 2 then m.accuracy, m.accuracy_std = eval.kfold_accuracy(d, same, folds) end
  local roc = eval.roc(d, same)
  m.auc = eval.auc(roc)
  m.eer, m.eer_threshold = eval.eer(roc)
  m.tar, m.tar_threshold = eval.tar_at_far(roc, opts.far)
  if m.tar_threshold == -math.huge then m.tar_threshold = json.null end
  m.seconds = siamese.clock() - start
  if opts.roc then
    local ok, perr = siamese.viz.roc_image(roc, {title = "ROC: " .. enc.name}):save(opts.roc)
    if not ok then return cli.fail(perr) end
    m.roc_png = opts.roc
  end
  if opts.json then
    print(json.encode(m))
  else
    print(string.format("%s: %s, model %s (%s)", opts.pairs, output.plural(#d, "pair", "pairs"), enc.model_id,
      opts.metric))
    if m.accuracy then
      print(string.format("  accuracy      %.2f %% +- %.2f (%d-fold)", 100 * m.accuracy, 100 * m.accuracy_std, k))
    end
    print(string.format("  AUC           %.4f", m.auc))
    print(string.format("  EER           %.2f %% (distance %.3f)", 100 * m.eer, m.eer_threshold))
    print(string.format("  TAR@FAR=%g  %.2f %%", opts.far, 100 * m.tar))
    if m.roc_png then print("  wrote " .. m.roc_png) end
  end
  return 0
end

return eval_pairs
