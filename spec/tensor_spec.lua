-- Specs of siamese.tensor: constructors, views, elements, arithmetic,
-- reductions, matmul, pairwise distances and misuse messages.
local siamese = require "siamese"
local T = siamese.tensor
local support = dofile("spec/support.lua")
local gamma = support.gamma

-- |a - b| <= bound (a bound derived where it is used; 0: exact).
local function near(a, b, bound)
  support.within(a, b, bound or 0, "value")
end

-- Element by element; tol: a number or function(path_index_list) -> bound.
-- Without tol the comparison is exact (small integers and their sums,
-- products and quotients are exact in float32).
local function same(t, expected, tol)
  local got = t:totable()
  local function walk(g, e, path)
    if type(e) == "table" then
      assert.are.equal(#e, #g, "length at " .. path)
      for i = 1, #e do walk(g[i], e[i], path .. "[" .. i .. "]") end
    else
      near(g, e, type(tol) == "function" and tol(path, e) or tol or 0)
    end
  end
  walk(got, expected, "")
end

describe("siamese.tensor constructors", function()
  it("zeros, ones and full take a shape table or sizes", function()
    assert.are.same({2, 3}, T.zeros{2, 3}:shape())
    assert.are.same({4}, T.zeros(4):shape())
    same(T.ones{2, 2}, {{1, 1}, {1, 1}})
    same(T.full({3}, 2.5), {2.5, 2.5, 2.5})
    assert.are.equal(0, T.zeros{3, 0}:numel())
  end)

  it("supports up to 8 dimensions", function()
    local t = T.zeros{1, 2, 1, 2, 1, 2, 1, 2}
    assert.are.equal(8, t:dim())
    assert.are.equal(16, t:numel())
    assert.has_error(function() T.zeros{1, 1, 1, 1, 1, 1, 1, 1, 1} end)
  end)

  it("new builds from nested tables and checks they are rectangular", function()
    local t = T.new{{1, 2, 3}, {4, 5, 6}}
    assert.are.same({2, 3}, t:shape())
    assert.are.equal(6, t:get(2, 3))
    assert.are.equal(0, T.new(7):dim())
    assert.are.equal(7, T.new(7):get())
    assert.has_error(function() T.new{{1, 2}, {3}} end, nil)
    local ok, err = pcall(T.new, {{1, 2}, {3, "x"}})
    assert.is_false(ok)
    assert.matches("element %[2%]%[2%] is a string", err)
  end)

  it("rand and randn are reproducible for a seed", function()
    siamese.manual_seed(42)
    local a, b = T.rand{50}, T.randn{3, 4}
    siamese.manual_seed(42)
    same(T.rand{50}, a:totable(), 0)
    same(T.randn{3, 4}, b:totable(), 0)
    siamese.manual_seed(43)
    assert.are_not.equal(a:get(1), T.rand{50}:get(1))
  end)

  it("rand is uniform in [0, 1) and randn has mean 0, std 1", function()
    siamese.manual_seed(7)
    local u = T.rand{20000}
    assert.is_true(u:min() >= 0 and u:max() < 1)
    -- statistical, not rounding, bounds: 6 standard deviations of the
    -- estimate (means in double): 1/sqrt(12 n), 1/sqrt(n), ~1/sqrt(2 n)
    near(u:mean(), 0.5, 6 / math.sqrt(12 * 20000))
    local n = T.randn{20000}
    near(n:mean(), 0, 6 / math.sqrt(20000))
    local c = n:sub(n:mean())
    near(math.sqrt(c:mul(c):mean()), 1, 6 / math.sqrt(2 * 20000) + gamma(3)) -- + float32 c and c^2
  end)

  it("uniform_ and normal_ fill in place with the given parameters", function()
    siamese.manual_seed(3)
    local t = T.zeros{10000}:uniform_(-2, 4)
    assert.is_true(t:min() >= -2 and t:max() < 4)
    near(t:mean(), 1, 6 * 6 / math.sqrt(12 * 10000)) -- 6 sigma, sigma = (hi - lo) / sqrt(12 n)
    local n = T.zeros{10000}:normal_(5, 0.5)
    near(n:mean(), 5, 6 * 0.5 / math.sqrt(10000))
    assert.has_error(function() t:uniform_(1, 0) end)
    assert.has_error(function() t:normal_(0, -1) end)
  end)

  it("is_tensor tells tensors from other values", function()
    assert.is_true(T.is_tensor(T.zeros{1}))
    assert.is_false(T.is_tensor({}))
    assert.is_false(T.is_tensor(nil))
  end)
end)

describe("siamese.tensor elements", function()
  it("get and set use 1-based indices and set returns the tensor", function()
    local t = T.zeros{2, 3}
    assert.are.equal(t, t:set(2, 3, 9))
    assert.are.equal(9, t:get(2, 3))
    assert.are.equal(0, t:get(1, 1))
  end)

  it("rejects out-of-range, non-integer and missing indices with the shape", function()
    local t = T.zeros{2, 3}
    local ok, err = pcall(t.get, t, 3, 1)
    assert.is_false(ok)
    assert.matches("get", err)
    assert.matches("index 3 out of range for dimension 1 of shape %[2,3%]", err)
    ok, err = pcall(t.get, t, 1.5, 1)
    assert.matches("integer", err)
    ok, err = pcall(t.get, t, 1)
    assert.matches("needs 2 indices, got 1", err)
    ok, err = pcall(t.set, t, 1, 0, 4)
    assert.matches("index 0 out of range for dimension 2", err)
    ok, err = pcall(t.get, "x", 1)
    assert.is_false(ok)
    assert.matches("siamese.Tensor expected", err)
  end)

  it("fill, zero, copy, clone and totable", function()
    local t = T.zeros{2, 2}:fill(3)
    same(t, {{3, 3}, {3, 3}})
    local c = t:clone()
    t:zero()
    same(c, {{3, 3}, {3, 3}})
    same(t, {{0, 0}, {0, 0}})
    t:copy(T.new{1, 2, 3, 4}) -- same element count, another shape
    same(t, {{1, 2}, {3, 4}})
    t:copy(T.new{{5, 6}, {7, 8}}:t())
    same(t, {{5, 7}, {6, 8}})
    assert.has_error(function() t:copy(T.zeros{3}) end)
  end)

  it("tostring shows the shape and abbreviated values", function()
    local s = tostring(T.new{{1, 2}, {3, 4}})
    assert.matches("^siamese.Tensor%[2,2%]", s)
    assert.matches("4", s)
    local long = tostring(T.zeros{100, 100})
    assert.matches("%.%.%.", long)
    assert.is_true(#long < 1000)
    assert.matches("%.%.%.", tostring(T.zeros{4, 4, 4}))
    assert.matches("%[0%]", tostring(T.zeros{0}))
  end)
end)

describe("siamese.tensor views", function()
  it("narrow, select and transpose share storage", function()
    local t = T.new{{1, 2, 3}, {4, 5, 6}}
    local n = t:narrow(2, 2, 2)
    same(n, {{2, 3}, {5, 6}})
    n:set(1, 1, 20)
    assert.are.equal(20, t:get(1, 2))
    local row = t:select(1, 2)
    same(row, {4, 5, 6})
    row:fill(0)
    same(t, {{1, 20, 3}, {0, 0, 0}})
    local tt = t:transpose(1, 2)
    assert.are.same({3, 2}, tt:shape())
    tt:set(3, 1, 30)
    assert.are.equal(30, t:get(1, 3))
    assert.is_false(tt:is_contiguous())
    assert.is_true(tt:contiguous():is_contiguous())
    assert.are.same({3, 1}, t:stride())
    assert.are.same({1, 3}, tt:stride())
  end)

  it("view needs a contiguous tensor and infers -1; reshape copies when needed", function()
    local t = T.new{{1, 2, 3}, {4, 5, 6}}
    same(t:view(3, 2), {{1, 2}, {3, 4}, {5, 6}})
    same(t:view{-1}, {1, 2, 3, 4, 5, 6})
    assert.are.same({6, 1}, t:view(-1, 1):shape())
    local ok, err = pcall(t.view, t, 4, 2)
    assert.matches("shape %[4,2%] has 8 elements, the tensor has 6", err)
    ok, err = pcall(t.view, t:t(), 6)
    assert.matches("contiguous", err)
    same(t:t():reshape(6), {1, 4, 2, 5, 3, 6})
  end)

  it("unsqueeze and squeeze add and remove size-1 dimensions", function()
    local t = T.zeros{2, 3}
    assert.are.same({1, 2, 3}, t:unsqueeze(1):shape())
    assert.are.same({2, 3, 1}, t:unsqueeze(3):shape())
    assert.are.same({2, 3}, t:unsqueeze(2):squeeze():shape())
    assert.are.same({2, 1, 3}, T.zeros{1, 2, 1, 3}:squeeze(1):shape())
    assert.has_error(function() t:unsqueeze(4) end)
  end)

  it("views keep their storage alive after the base is collected", function()
    local v = T.ones{100000}:narrow(1, 5, 10)
    collectgarbage()
    collectgarbage()
    assert.are.equal(10, v:sum())
  end)

  it("the collector sees the real size of a tensor", function()
    collectgarbage()
    local before = collectgarbage("count")
    local big = T.zeros{1000, 1000} -- 4 MB
    local after = collectgarbage("count")
    assert.is_true(after - before > 3900, "GC saw only " .. (after - before) .. " KB")
    assert.are.equal(1000000, big:numel())
  end)

  it("narrow and select name the bad range", function()
    local t = T.zeros{2, 3}
    local ok, err = pcall(t.narrow, t, 2, 3, 2)
    assert.matches("range 3..4 out of bounds for dimension 2 of shape %[2,3%]", err)
    ok, err = pcall(t.select, t, 3, 1)
    assert.matches("dimension 3 out of range for tensor of shape %[2,3%]", err)
  end)
end)

describe("siamese.tensor arithmetic", function()
  local a = T.new{{1, 2}, {3, 4}}
  local b = T.new{{10, 20}, {30, 40}}

  it("add, sub, mul, div with tensors and numbers, new and in place", function()
    same(a:add(b), {{11, 22}, {33, 44}})
    same(b:sub(a), {{9, 18}, {27, 36}})
    same(a:mul(b), {{10, 40}, {90, 160}})
    same(b:div(a), {{10, 10}, {10, 10}})
    same(a:add(1), {{2, 3}, {4, 5}})
    same(a:scale(2), {{2, 4}, {6, 8}})
    local c = a:clone()
    assert.are.equal(c, c:add_(b))
    same(c, {{11, 22}, {33, 44}})
    c:sub_(b):mul_(2):div_(2):scale_(3)
    same(c, {{3, 6}, {9, 12}})
    same(a, {{1, 2}, {3, 4}}) -- untouched
  end)

  it("operators work both ways round", function()
    same(a + b, {{11, 22}, {33, 44}})
    same(a - 1, {{0, 1}, {2, 3}})
    same(1 - a, {{0, -1}, {-2, -3}})
    same(2 * a, {{2, 4}, {6, 8}})
    same(12 / a, {{12, 6}, {4, 3}})
    same(-a, {{-1, -2}, {-3, -4}})
  end)

  it("works on strided views", function()
    local t = T.new{{1, 2, 3}, {4, 5, 6}}
    same(t:t():add(t:t()), {{2, 8}, {4, 10}, {6, 12}})
    local n = t:narrow(2, 1, 2)
    n:add_(100)
    same(t, {{101, 102, 3}, {104, 105, 6}})
  end)

  it("refuses different shapes and wrong types, naming the shapes", function()
    local ok, err = pcall(a.add, a, T.zeros{3, 2})
    assert.matches("shapes %[2,2%] and %[3,2%] differ", err)
    ok, err = pcall(a.mul, a, "x")
    assert.matches("expects a tensor or a number, got string", err)
    assert.has_error(function() return a + {} end)
  end)
end)

describe("siamese.tensor reductions", function()
  local t = T.new{{1, 5, 3}, {4, 2, 6}}

  it("sum and mean of everything and along a dimension", function()
    assert.are.equal(21, t:sum())
    assert.are.equal(3.5, t:mean())
    same(t:sum(1), {5, 7, 9})
    same(t:sum(2), {9, 12})
    same(t:mean(2), {3, 4})
    assert.are.same({2, 1}, t:sum(2, true):shape())
    same(t:t():sum(1), {9, 12})
  end)

  it("max, min, argmax and argmin return 1-based positions", function()
    local v, i = t:max()
    assert.are.equal(6, v)
    assert.are.equal(6, i)
    v, i = t:min()
    assert.are.equal(1, v)
    assert.are.equal(1, i)
    local vals, idx = t:max(2)
    same(vals, {5, 6})
    same(idx, {2, 3})
    vals, idx = t:min(1)
    same(vals, {1, 2, 3})
    same(idx, {1, 2, 1})
    assert.are.equal(6, t:argmax())
    same(t:argmax(1), {2, 1, 2})
    same(t:argmin(2), {1, 2})
    assert.has_error(function() T.zeros{0}:max() end)
  end)

  it("norms of order 1, 2 and infinity", function()
    local v = T.new{3, -4}
    near(v:norm(), 5)                  -- sums in double of exact squares: exact
    near(v:norm(1), 7)
    near(v:norm(math.huge), 4)
    same(T.new{{3, 4}, {6, 8}}:norm(2, 2), {5, 10})
    same(T.new{{3, -4}, {6, 8}}:norm(1, 1), {9, 12})
    assert.has_error(function() v:norm(3) end)
  end)

  it("reductions name a bad dimension", function()
    local ok, err = pcall(t.sum, t, 3)
    assert.matches("dimension 3 out of range for tensor of shape %[2,3%]", err)
  end)
end)

describe("siamese.tensor.matmul", function()
  it("multiplies matrices, including transposed views", function()
    local a = T.new{{1, 2, 3}, {4, 5, 6}}
    local b = T.new{{7, 8}, {9, 10}, {11, 12}}
    same(T.matmul(a, b), {{58, 64}, {139, 154}})
    same(a:matmul(a:t()), {{14, 32}, {32, 77}})
    same(a:t():matmul(a), {{17, 22, 27}, {22, 29, 36}, {27, 36, 45}})
    -- a narrowed (non-BLAS) view is copied first
    local n = T.new{{1, 0, 2}, {0, 1, 3}, {5, 5, 5}}:narrow(2, 1, 2):t():narrow(2, 1, 2)
    same(n:matmul(T.new{{1}, {1}}), {{1}, {1}})
  end)

  it("agrees with a naive product on random sizes", function()
    siamese.manual_seed(11)
    for _ = 1, 5 do
      local m, k, n = math.random(1, 20), math.random(1, 20), math.random(1, 20)
      local a, b = T.randn{m, k}, T.randn{k, n}
      local c = T.matmul(a, b)
      for i = 1, m do
        for j = 1, n do
          local s = 0
          for p = 1, k do s = s + a:get(i, p) * b:get(p, j) end
          -- k products in float32 against the double sum of the same floats
          local mag = 0
          for p = 1, k do mag = mag + math.abs(a:get(i, p) * b:get(p, j)) end
          near(c:get(i, j), s, gamma(k) * mag)
        end
      end
    end
  end)

  it("writes into a given output tensor", function()
    local out = T.zeros{2, 2}
    local a = T.new{{1, 2}, {3, 4}}
    assert.are.equal(out, T.matmul(a, a, out))
    same(out, {{7, 10}, {15, 22}})
    assert.has_error(function() T.matmul(a, a, T.zeros{3, 2}) end)
  end)

  it("handles empty inner sizes and refuses mismatched shapes", function()
    same(T.matmul(T.zeros{2, 0}, T.zeros{0, 3}), {{0, 0, 0}, {0, 0, 0}})
    local ok, err = pcall(T.matmul, T.zeros{2, 3}, T.zeros{2, 3})
    assert.matches("inner sizes differ: %[2,3%] x %[2,3%]", err)
    ok, err = pcall(T.matmul, T.zeros{2}, T.zeros{2, 3})
    assert.matches("2%-D", err)
  end)
end)

describe("siamese.tensor.cdist", function()
  local a = T.new{{0, 0}, {3, 4}}
  local b = T.new{{0, 0}, {1, 0}, {0, 2}}

  it("computes euclidean, squared euclidean and cosine distance matrices", function()
    -- small integers: |a|^2 + |b|^2 - 2 a.b exact, then one sqrtf (u |d|)
    local function sqrt_rounding(_, e) return support.U * e end
    same(T.cdist(a, b), {{0, 1, 2}, {5, math.sqrt(20), math.sqrt(13)}}, sqrt_rounding)
    same(T.cdist(a, b, "sqeuclidean"), {{0, 1, 4}, {25, 20, 13}})
    local c = T.cdist(T.new{{1, 0}, {1, 1}}, T.new{{2, 0}, {0, 3}, {-1, 0}}, "cosine")
    -- a.b exact; |a| |b|: 2 sqrtf and a product, a division, 1 - x:
    -- gamma(5) on the cosine plus u on the result
    same(c, {{0, 1, 2}, {1 - 1 / math.sqrt(2), 1 - 1 / math.sqrt(2), 1 + 1 / math.sqrt(2)}},
      function(_, e) return gamma(5) * math.abs(1 - e) + support.U * e end)
    same(T.cdist(a, b, "cosine"):select(1, 1), {1, 1, 1}) -- a zero row has cosine 0
  end)

  it("matches a direct computation on random data, also for views", function()
    siamese.manual_seed(5)
    local x, y = T.randn{7, 16}, T.randn{16, 5}:t()
    local d = T.cdist(x, y)
    for i = 1, 7 do
      for j = 1, 5 do
        -- reference in double from the same floats; cdist computes
        -- s = |x|^2 + |y|^2 - 2 x.y with an error E <= gamma(16 + 3)
        -- (|x|^2 + |y|^2 + 2 sum|x_k y_k|), so |sqrt(s') - d| <= E / d, + u d
        local s, xx, yy, xy = 0, 0, 0, 0
        for k = 1, 16 do
          local p, q = x:get(i, k), y:get(j, k)
          s, xx, yy, xy = s + (p - q) ^ 2, xx + p * p, yy + q * q, xy + math.abs(p * q)
        end
        local want = math.sqrt(s)
        local E = gamma(19) * (xx + yy + 2 * xy)
        near(d:get(i, j), want, math.min(E / want, math.sqrt(E)) + support.U * (want + math.sqrt(E)))
      end
    end
  end)

  it("refuses mismatched widths and unknown metrics", function()
    local ok, err = pcall(T.cdist, T.zeros{2, 3}, T.zeros{2, 4})
    assert.matches("%[2,3%] and %[2,4%]", err)
    assert.has_error(function() T.cdist(a, b, "manhattan") end)
  end)
end)

describe("siamese threads", function()
  it("sets and reports the thread count", function()
    local n = siamese.get_num_threads()
    siamese.set_num_threads(1)
    assert.are.equal(1, siamese.get_num_threads())
    siamese.set_num_threads(n)
    assert.are.equal(n, siamese.get_num_threads())
    assert.has_error(function() siamese.set_num_threads(0) end)
  end)
end)
