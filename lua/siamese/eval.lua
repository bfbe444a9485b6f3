--- siamese.eval: verification metrics from distances, and identification
-- metrics (closed-set rank-1, open-set DIR at a false-alarm rate).
-- Convention: a pair is accepted as "same person" when distance <= threshold.
local eval = {}

--- ROC curve of distances with labels (true = same person).
-- Returns {fpr = {...}, tpr = {...}, thresholds = {...}}, ordered from the
-- strictest threshold (nothing accepted) to the loosest (everything accepted).
function eval.roc(distances, labels)
  local n = #distances
  assert(n == #labels and n > 0, "roc: distances and labels must be non-empty lists of the same length")
  local order, pos, neg = {}, 0, 0
  for i = 1, n do
    order[i] = i
    if labels[i] then pos = pos + 1 else neg = neg + 1 end
  end
  assert(pos > 0 and neg > 0, "roc: need both genuine and impostor pairs")
  table.sort(order, function(a, b) return distances[a] < distances[b] end)
  local fpr, tpr, thr = {0}, {0}, {-math.huge}
  local tp, fp, i = 0, 0, 1
  while i <= n do
    local d = distances[order[i]]
    -- Ties enter together: one threshold accepts all of them.
    while i <= n and distances[order[i]] == d do
      if labels[order[i]] then tp = tp + 1 else fp = fp + 1 end
      i = i + 1
    end
    fpr[#fpr + 1], tpr[#tpr + 1], thr[#thr + 1] = fp / neg, tp / pos, d
  end
  return {fpr = fpr, tpr = tpr, thresholds = thr}
end

--- Area under the ROC curve (trapezoids).
function eval.auc(roc)
  local a = 0
  for i = 2, #roc.fpr do
    a = a + (roc.fpr[i] - roc.fpr[i - 1]) * (roc.tpr[i] + roc.tpr[i - 1]) / 2
  end
  return a
end

--- Equal error rate and its threshold: where the false-accept rate meets
-- the false-reject rate (1 - tpr), interpolated between ROC points.
function eval.eer(roc)
  local fpr, tpr, thr = roc.fpr, roc.tpr, roc.thresholds
  for i = 2, #fpr do
    local fnr0, fnr1 = 1 - tpr[i - 1], 1 - tpr[i]
    if fpr[i] >= fnr1 then
      -- The crossing lies between point i-1 (fpr < fnr) and point i.
      local d0, d1 = fnr0 - fpr[i - 1], fpr[i] - fnr1
      local w = (d0 + d1) > 0 and d0 / (d0 + d1) or 0
      local rate = fpr[i - 1] + w * (fpr[i] - fpr[i - 1])
      local t0 = thr[i - 1] == -math.huge and thr[i] or thr[i - 1]
      return rate, t0 + w * (thr[i] - t0)
    end
  end
  return 1, thr[#thr]
end

--- True-accept rate at a target false-accept rate: the best tpr among ROC
-- points with fpr <= far, and the threshold that gives it.
function eval.tar_at_far(roc, far)
  local best, thr = 0, roc.thresholds[1]
  for i = 1, #roc.fpr do
    if roc.fpr[i] <= far and roc.tpr[i] >= best then best, thr = roc.tpr[i], roc.thresholds[i] end
  end
  return best, thr
end

--- Accuracy of `distance <= threshold` against the labels.
function eval.accuracy(distances, labels, threshold)
  local right = 0
  for i = 1, #distances do
    if (distances[i] <= threshold) == (labels[i] and true or false) then right = right + 1 end
  end
  return right / #distances
end

--- The threshold (a midpoint between neighbouring distances) that maximises
-- accuracy on the given pairs, with that accuracy. One sort and one sweep.
function eval.best_threshold(distances, labels)
  local n = #distances
  assert(n > 0 and n == #labels, "best_threshold: distances and labels must be non-empty lists of the same length")
  local order, neg = {}, 0
  for i = 1, n do
    order[i] = i
    if not labels[i] then neg = neg + 1 end
  end
  table.sort(order, function(a, b) return distances[a] < distances[b] end)
  -- Accepting the first i pairs is right for their genuine ones and for the
  -- impostors among the rest.
  local best_t, best_right = distances[order[1]] - 1e-6, neg
  local tp, fp = 0, 0
  for i = 1, n do
    if labels[order[i]] then tp = tp + 1 else fp = fp + 1 end
    local d, nxt = distances[order[i]], order[i + 1] and distances[order[i + 1]]
    if nxt ~= d then
      local right = tp + (neg - fp)
      if right > best_right then
        best_right = right
        best_t = nxt and (d + nxt) / 2 or d + 1e-6
      end
    end
  end
  return best_t, best_right / n
end

--- k-fold verification accuracy (the LFW protocol): folds[i] is the fold
-- (1..k) of pair i; for each fold the threshold with the best accuracy on
-- the other folds is applied to it. Returns the mean and standard deviation
-- of the per-fold accuracies, and the list of {accuracy, threshold}.
function eval.kfold_accuracy(distances, labels, folds)
  local k = 0
  for _, f in ipairs(folds) do k = math.max(k, f) end
  assert(k >= 2, "kfold_accuracy: need at least 2 folds")
  local per = {}
  for f = 1, k do
    local td, tl, vd, vl = {}, {}, {}, {}
    for i = 1, #distances do
      if folds[i] == f then
        vd[#vd + 1], vl[#vl + 1] = distances[i], labels[i]
      else
        td[#td + 1], tl[#tl + 1] = distances[i], labels[i]
      end
    end
    local t = eval.best_threshold(td, tl)
    per[f] = {accuracy = eval.accuracy(vd, vl, t), threshold = t}
  end
  local mean, sq = 0, 0
  for _, r in ipairs(per) do mean = mean + r.accuracy / k end
  for _, r in ipairs(per) do sq = sq + (r.accuracy - mean) ^ 2 end
  -- sample standard deviation over folds, as LFW results are reported
  return mean, math.sqrt(sq / (k - 1)), per
end

--- Closed-set rank-1 identification with a gallery: each row of queries
-- [n, dim] is matched to its nearest identity (threshold ignored);
-- labels[i] is the true name of probe i, or false for a person who is not
-- enrolled (skipped here; see eval.open_set). Returns the accuracy over
-- the enrolled probes (nil when there are none), and per probe the
-- predicted names and their distances (lists of n, for eval.open_set).
function eval.rank1(gallery, queries, labels)
  local n = queries:shape(1)
  if #labels ~= n then
    error(string.format("rank1: %d labels for %d queries", #labels, n), 2)
  end
  local results = gallery:identify_batch(queries, {k = 1, threshold = math.huge})
  local predicted, distances, right, total = {}, {}, 0, 0
  for i, r in ipairs(results) do
    predicted[i], distances[i] = r.name or false, r.distance
    if labels[i] and gallery:has(labels[i]) then
      total = total + 1
      if r.name == labels[i] then right = right + 1 end
    end
  end
  return total > 0 and right / total or nil, predicted, distances
end

--- Open-set identification (watch-list) at a false-alarm rate, from
-- pure data: t.distances[i] and t.predicted[i] are probe i's best
-- (rank-1) distance and identity, t.labels[i] its true identity or false
-- when the person is not enrolled (an impostor), t.far the tolerated
-- false-alarm rate. A probe is accepted when its best distance <= the
-- threshold; a false alarm is an accepted impostor; detection and
-- identification needs an enrolled probe accepted with the right name.
-- The threshold is the largest probe distance that keeps
-- false alarms / impostors <= far (so ties never push the rate over).
-- Returns DIR (detected-and-identified / enrolled probes), the threshold,
-- and {far = achieved rate, rank1 = closed-set rate, genuine = n, impostors = n}.
function eval.open_set(t)
  local d, pred, labels, far = t.distances, t.predicted, t.labels, t.far
  assert(type(d) == "table" and type(pred) == "table" and type(labels) == "table",
    "open_set: distances, predicted and labels must be lists")
  assert(#d == #pred and #d == #labels and #d > 0, "open_set: distances, predicted and labels must have one entry per probe")
  assert(type(far) == "number" and far >= 0 and far <= 1, "open_set: far must be a rate in [0, 1]")
  local impostors, genuine = {}, 0
  for i = 1, #d do
    if labels[i] then genuine = genuine + 1 else impostors[#impostors + 1] = d[i] end
  end
  table.sort(impostors)
  -- a = false alarms allowed; the threshold must stay below impostor a + 1
  local a = math.floor(far * #impostors + 1e-9)
  local cap = impostors[a + 1] or math.huge
  local threshold = -math.huge
  for i = 1, #d do
    if d[i] < cap and d[i] > threshold then threshold = d[i] end
  end
  local hits, alarms, right = 0, 0, 0
  for i = 1, #d do
    if labels[i] then
      if pred[i] == labels[i] then
        right = right + 1
        if d[i] <= threshold then hits = hits + 1 end
      end
    elseif d[i] <= threshold then
      alarms = alarms + 1
    end
  end
  return genuine > 0 and hits / genuine or nil, threshold,
    {far = #impostors > 0 and alarms / #impostors or nil, rank1 = genuine > 0 and right / genuine or nil,
     genuine = genuine, impostors = #impostors}
end

return eval
