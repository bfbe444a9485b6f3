-- Specs of siamese.eval: ROC, AUC, EER, accuracy and threshold choice.
local eval = require "siamese.eval"

describe("siamese.eval", function()
  local d = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6}
  local same = {true, true, false, true, false, false}

  it("roc runs from nothing accepted to everything accepted", function()
    local roc = eval.roc(d, same)
    assert.are.same({0, 0, 0, 1 / 3, 1 / 3, 2 / 3, 1}, roc.fpr)
    assert.are.same({0, 1 / 3, 2 / 3, 2 / 3, 1, 1, 1}, roc.tpr)
    assert.are.equal(-math.huge, roc.thresholds[1])
    assert.are.equal(0.6, roc.thresholds[7])
  end)

  it("roc takes tied distances together", function()
    local roc = eval.roc({1, 1, 2}, {true, false, false})
    assert.are.same({0, 0.5, 1}, roc.fpr)
    assert.are.same({0, 1, 1}, roc.tpr)
  end)

  it("auc is 1 for a perfect separation, 0.5 for a coin, and exact here", function()
    assert.are.equal(1, eval.auc(eval.roc({1, 2, 3, 4}, {true, true, false, false})))
    assert.are.equal(0, eval.auc(eval.roc({1, 2, 3, 4}, {false, false, true, true})))
    assert.are.equal(0.5, eval.auc(eval.roc({1, 1}, {true, false})))
    assert.is_true(math.abs(eval.auc(eval.roc(d, same)) - 8 / 9) <= 16 * 2 ^ -53) -- double trapezoids: ~16 roundings
  end)

  it("eer meets false accepts and false rejects", function()
    local rate, t = eval.eer(eval.roc(d, same))
    assert.is_true(math.abs(rate - 1 / 3) <= 4 * 2 ^ -53) -- double, a few roundings
    assert.is_true(t >= 0.3 and t <= 0.4)
    local r0 = eval.eer(eval.roc({1, 2, 3, 4}, {true, true, false, false}))
    assert.are.equal(0, r0)
  end)

  it("tar_at_far reads the ROC at a false-accept rate", function()
    local roc = eval.roc(d, same)
    local tar, t = eval.tar_at_far(roc, 0)
    assert.are.equal(2 / 3, tar)
    assert.are.equal(0.2, t)
    tar, t = eval.tar_at_far(roc, 0.5)
    assert.are.equal(1, tar)
    assert.are.equal(0.4, t)
  end)

  it("accuracy and best_threshold agree", function()
    assert.are.equal(5 / 6, eval.accuracy(d, same, 0.25))
    assert.are.equal(3 / 6, eval.accuracy(d, same, 0.05))
    local t, acc = eval.best_threshold(d, same)
    assert.is_true(math.abs(acc - 5 / 6) <= 2 ^ -53) -- a ratio of small integers: one rounding
    assert.are.equal(acc, eval.accuracy(d, same, t))
    assert.is_true(t > 0.2 and t < 0.3 or t > 0.4 and t < 0.5)
  end)

  it("kfold_accuracy picks each fold's threshold on the other folds", function()
    -- two folds, perfectly separable at 0.5 in both
    local dd = {0.1, 0.9, 0.2, 0.8, 0.3, 0.7, 0.4, 0.6}
    local ll = {true, false, true, false, true, false, true, false}
    local ff = {1, 1, 1, 1, 2, 2, 2, 2}
    local mean, std, per = eval.kfold_accuracy(dd, ll, ff)
    assert.are.equal(1, mean)
    assert.are.equal(0, std)
    assert.is_true(per[1].threshold > 0.3 and per[1].threshold < 0.7)
    -- a fold whose pairs sit on the other side of the others' threshold
    local m2, s2 = eval.kfold_accuracy({0.1, 0.9, 0.9, 0.1}, {true, false, true, false}, {1, 1, 2, 2})
    assert.are.equal(0.25, m2)
    assert.is_true(math.abs(s2 - math.sqrt(2 * 0.25 ^ 2)) <= 8 * 2 ^ -53) -- double: mean, squares, root
  end)

  it("refuses empty or one-sided input", function()
    assert.has_error(function() eval.roc({}, {}) end)
    assert.has_error(function() eval.roc({1, 2}, {true, true}) end)
    assert.has_error(function() eval.best_threshold({1}, {}) end)
  end)
end)
