-- Error bounds of float32 computations for the specs (on top of
-- spec/support.lua's U, gamma, dot_bound and within). Load with
-- `local bounds = dofile("spec/bounds.lua")`.
--
-- The idea throughout: a float32 sum of n terms, in any order, is within
-- gamma(n) * sum |terms| of the exact sum (Higham 3.1), and a chain of such
-- steps is within gamma(total roundings per term) times the same chain
-- computed on absolute values (|weights|, |inputs|): the "magnitude".
-- Magnitudes here are computed in double (Lua) or by the library's plain
-- im2col convolution on |x| and |w| (all terms >= 0, so its own relative
-- error is below gamma(K+1) and is folded in by mag_exact).
local support = dofile("spec/support.lua")
local siamese = require "siamese"
local T = siamese.tensor
local core = require "siamese.core"
local workspace = require "siamese.nn.workspace"

local bounds = {}
local gamma = support.gamma
bounds.gamma = gamma
bounds.U = support.U

--- x rounded to float32 (round to nearest even).
function bounds.f32(x)
  return (string.unpack("<f", string.pack("<f", x)))
end

--- The elements of a tensor (any view), or of a nested table, as a flat list.
function bounds.flat(t)
  if T.is_tensor(t) then return t:contiguous():view(-1):totable() end
  if type(t) == "number" then return {t} end
  local out = {}
  local function walk(v)
    if type(v) == "table" then for _, e in ipairs(v) do walk(e) end else out[#out + 1] = v end
  end
  walk(t)
  return out
end

--- A tensor of the absolute values of t.
function bounds.abs(t)
  local l = bounds.flat(t)
  for i = 1, #l do l[i] = math.abs(l[i]) end
  if #l == 0 then return T.zeros(t:shape()) end
  return T.new(l):view(t:shape())
end

--- The largest |a - b| over the elements.
function bounds.max_diff(a, b)
  local x, y = bounds.flat(a), bounds.flat(b)
  assert(#x == #y, "max_diff: sizes differ")
  local d = 0
  for i = 1, #x do d = math.max(d, math.abs(x[i] - y[i])) end
  return d
end

--- Checks every |got_i - want_i| <= bound_i. got, want: tensors, nested
-- tables or lists; bound: a number, a list, a tensor or a function(i, want_i).
function bounds.check(got, want, bound, what)
  local g, w = bounds.flat(got), bounds.flat(want)
  assert(#g == #w, string.format("%s: %d elements, expected %d", what or "tensor", #g, #w))
  local b = bound
  if T.is_tensor(b) or type(b) == "table" then b = bounds.flat(b) end
  for i = 1, #w do
    local bi
    if type(b) == "number" then bi = b elseif type(b) == "function" then bi = b(i, w[i]) else bi = b[i] end
    if not (g[i] == w[i] or math.abs(g[i] - w[i]) <= bi) then
      error(string.format("%s element %d: got %.9g, expected %.9g (error bound %.3g, error %.3g)",
        what or "tensor", i, g[i], w[i], bi, math.abs(g[i] - w[i])), 2)
    end
  end
end

--- Checks got and want are equal element by element (NaN matches NaN).
function bounds.exact(got, want, what)
  local g, w = bounds.flat(got), bounds.flat(want)
  assert(#g == #w, (what or "tensor") .. ": sizes differ")
  for i = 1, #w do
    assert(g[i] == w[i] or (g[i] ~= g[i] and w[i] ~= w[i]),
      string.format("%s element %d: got %.9g, expected exactly %.9g", what or "tensor", i, g[i], w[i]))
  end
end

--- A list scaled: c * l[i] (+ add[i] when given).
function bounds.scale(l, c, add)
  local out = {}
  for i = 1, #l do out[i] = c * l[i] + (add and add[i] or 0) end
  return out
end

--- A computed magnitude (a float32 sum of K nonnegative terms) raised to
-- an upper bound of the exact one.
function bounds.mag_exact(l, K)
  return bounds.scale(l, 1 / (1 - gamma(K)))
end

--- The magnitude sum |w| |x| + |b| of every output of conv (an nn.Conv2d)
-- for input x, as a flat list, and K = terms per output (Cin/groups*kh*kw,
-- +1 for the bias).
function bounds.conv_mag(conv, x, weight, nobias)
  local C = core.conv
  local s = x:shape()
  local p = conv:params(s[3], s[4])
  local ho = C.out_size(s[3], p[1], p[3], p[5], p[7], p[9])
  local wo = C.out_size(s[4], p[2], p[4], p[6], p[8], p[10])
  local out = T.zeros{s[1], conv.nout, ho, wo}
  local ax, aw = bounds.abs(x), bounds.abs(weight or conv.weight)
  local ab = (conv.bias and not nobias) and bounds.abs(conv.bias) or nil
  local algo = C.plan("forward", ax:shape(), conv.nout, p, {})
  local ws = workspace.get(C.forward_workspace(algo, out, ax, aw, ab, p))
  C.forward(algo, out, ax, aw, ab, p, nil, false, ws)
  local terms = (conv.nin // conv.groups) * conv.kh * conv.kw + (ab and 1 or 0)
  return bounds.mag_exact(bounds.flat(out), terms), terms
end

--- The bound of a float32 convolution (any summation order, FMA or not)
-- against the exact one: gamma(K) * (|w| * |x| + |b|).
function bounds.conv_bound(conv, x, weight)
  local mag, K = bounds.conv_mag(conv, x, weight)
  return bounds.scale(mag, gamma(K)), mag
end

-- |B^T|, |A^T| and |G| of F(2x2,3x3) and F(4x4,3x3) (src/conv/winograd.c).
local WT = {
  [2] = {BT = {{1, 0, 1, 0}, {0, 1, 1, 0}, {0, 1, 1, 0}, {0, 1, 0, 1}},
         AT = {{1, 1, 1, 0}, {0, 1, 1, 1}},
         G = {{1, 0, 0}, {.5, .5, .5}, {.5, .5, .5}, {0, 0, 1}}},
  [4] = {BT = {{4, 0, 5, 0, 1, 0}, {0, 4, 4, 1, 1, 0}, {0, 4, 4, 1, 1, 0}, {0, 2, 1, 2, 1, 0}, {0, 2, 1, 2, 1, 0},
               {0, 4, 0, 5, 0, 1}},
         AT = {{1, 1, 1, 1, 1, 0}, {0, 1, 1, 2, 2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, 1, 8, 8, 1}},
         G = {{1 / 4, 0, 0}, {1 / 6, 1 / 6, 1 / 6}, {1 / 6, 1 / 6, 1 / 6}, {1 / 24, 1 / 12, 1 / 6},
              {1 / 24, 1 / 12, 1 / 6}, {0, 0, 1}}},
}

-- L R^T for small dense matrices (lists of rows); M is p x q.
local function lmr(L, M, R)
  local out = {}
  for i = 1, #L do
    local row = {}
    for j = 1, #R do
      local s = 0
      for p = 1, #M do
        local lp = L[i][p]
        if lp ~= 0 then
          local mp = M[p]
          for q = 1, #mp do s = s + lp * mp[q] * R[j][q] end
        end
      end
      row[j] = s
    end
    out[i] = row
  end
  return out
end

-- V[xi][c][t] = (|B^T| |d| |B|)[xi] of every a x a patch d (tile t) of
-- every channel of x: a depthwise correlation with the 36 (or 16) kernels
-- |B^T|[xi1][p] |B^T|[xi2][q], stride m, by the library (terms >= 0).
-- Returns [a*a, C, N*tiles], the tile counts nty, ntx.
local function patches(x, Bm, k, m, pt, pl, nty, ntx)
  local nn = require "siamese.nn"
  local s = x:shape()
  local N, C, H, W = s[1], s[2], s[3], s[4]
  local nx = #Bm
  assert(#Bm[1] == k)
  local pb = math.max(0, (nty - 1) * m + k - pt - H)
  local pr = math.max(0, (ntx - 1) * m + k - pl - W)
  local aa = nx * nx
  local conv = nn.Conv2d(C, aa * C, k, {stride = m, groups = C, bias = false,
    padding = {top = pt, left = pl, bottom = pb, right = pr}}):evaluate()
  local kk = {}
  for _ = 1, C do
    for x1 = 1, nx do for x2 = 1, nx do
      for p = 1, k do for q = 1, k do kk[#kk + 1] = Bm[x1][p] * Bm[x2][q] end end
    end end
  end
  conv.weight:copy(T.new(kk))
  local v = conv:forward(bounds.abs(x))
  assert(v:shape(3) >= nty and v:shape(4) >= ntx)
  v = v:narrow(3, 1, nty):narrow(4, 1, ntx):contiguous()
  return v:view(N, C, aa, nty * ntx):transpose(1, 3):contiguous():view(aa, C, N * nty * ntx)
end

--- The bound of a Winograd F(m x m, 3x3) stride-1 correlation (src/conv/winograd.c)
-- against the exact one, per output (flat NCHW list). x: [N,Cin,H,W];
-- w(o, c, r, s): the 3x3 filter taps (0-based r, s); cout; bias: list or
-- nil; pt, pl: top/left zero padding; ho, wo: output size; m: 2 or 4.
-- Each term passes 2 x 3 roundings in the input transform, 1 in the
-- (double) filter transform, Cin in the sgemm, 2 x 3 in the output
-- transform and 1 for the bias: gamma(Cin + 14) times the same chain on
-- absolute values, |A^T| [sum_c (|G||g||G^T|) .* (|B^T||d||B|)] |A| + |b|
-- (computed here by the library on nonnegative terms, a relative error
-- below gamma(Cin + 2 a^2), folded in).
function bounds.winograd_bound(x, w, cout, bias, pt, pl, ho, wo, m)
  local s = x:shape()
  local N, C = s[1], s[2]
  local M = WT[m]
  local a = m + 2
  local aa = a * a
  local nty, ntx = (ho + m - 1) // m, (wo + m - 1) // m
  local nt = nty * ntx
  local V = patches(x, M.BT, a, m, pt, pl, nty, ntx)
  local G = M.G
  local X = T.zeros{aa, cout * N * nt}
  for x1 = 1, a do for x2 = 1, a do
    local xi = (x1 - 1) * a + x2
    local u = {}
    for o = 1, cout do
      local row = {}
      for c = 1, C do
        local acc = 0
        for r = 0, 2 do for q = 0, 2 do acc = acc + G[x1][r + 1] * G[x2][q + 1] * math.abs(w(o, c, r, q)) end end
        row[c] = acc
      end
      u[o] = row
    end
    X:select(1, xi):copy(T.matmul(T.new(u), V:select(1, xi)))
  end end
  local AA = {}
  for i = 1, m do for j = 1, m do
    local row = {}
    for x1 = 1, a do for x2 = 1, a do row[#row + 1] = M.AT[i][x1] * M.AT[j][x2] end end
    AA[#AA + 1] = row
  end end
  local Q = bounds.flat(T.matmul(T.new(AA), X)) -- [m*m, cout, N, nt]
  local per = cout * N * nt
  local out = {}
  local gam = gamma(C + 14) / (1 - gamma(C + 2 * aa + 2))
  for n = 1, N do for o = 1, cout do
    local b = bias and math.abs(bias[o]) or 0
    for y = 0, ho - 1 do for xx = 0, wo - 1 do
      local t = (y // m) * ntx + xx // m
      local ij = (y % m) * m + xx % m
      out[#out + 1] = gam * (Q[ij * per + ((o - 1) * N + n - 1) * nt + t + 1] + b)
    end end
  end end
  return out
end

--- The bound of the Winograd weight gradient (src/conv/winograd.c,
-- sm_winograd_backward_weight) against the exact sum over positions of
-- g * x, per weight (flat [Cout,Cin,3,3] list, before any scale): per term
-- 2 x 3 roundings in the transform of g (A dY A^T), 2 x 3 in that of x,
-- the sgemm over all T tiles, and the double G^T dU G rounded once:
-- gamma(T + 14) |G^T| [sum_t (|A||dY||A^T|) .* (|B^T||d||B|)] |G|.
function bounds.winograd_weight_bound(go, x, pt, pl, m)
  local N, Cin = x:shape(1), x:shape(2)
  local cout, ho, wo = go:shape(2), go:shape(3), go:shape(4)
  local M = WT[m]
  local a = m + 2
  local aa = a * a
  local nty, ntx = (ho + m - 1) // m, (wo + m - 1) // m
  local nt = nty * ntx
  local V = patches(x, M.BT, a, m, pt, pl, nty, ntx)        -- [aa, Cin, N*nt]
  -- |A| dY |A^T| per tile: kernels |A^T|[i][x1] |A^T|[j][x2] over the m x m tile
  local AT = {}
  for x1 = 1, a do AT[x1] = {} for i = 1, m do AT[x1][i] = M.AT[i][x1] end end
  local D = patches(go, AT, m, m, 0, 0, nty, ntx)            -- [aa, Cout, N*nt]
  local dU = T.zeros{aa, cout * Cin}
  for xi = 1, aa do
    dU:select(1, xi):copy(T.matmul(D:select(1, xi), V:select(1, xi):t()):view(-1))
  end
  local GG = {}
  for r = 1, 3 do for q = 1, 3 do
    local row = {}
    for x1 = 1, a do for x2 = 1, a do row[#row + 1] = M.G[x1][r] * M.G[x2][q] end end
    GG[#GG + 1] = row
  end end
  local R = bounds.flat(T.matmul(T.new(GG), dU)) -- [9, cout*Cin]
  local gam = gamma(N * nt + 14) / (1 - gamma(N * nt + 2 * aa + 2))
  local out = {}
  for oc = 1, cout * Cin do
    for k = 1, 9 do out[#out + 1] = gam * R[(k - 1) * cout * Cin + oc] end
  end
  return out
end

--- winograd_bound for the forward of an nn.Conv2d (3x3, stride 1) on x.
function bounds.conv_winograd_bound(conv, x, m)
  local s = x:shape()
  local p = conv:params(s[3], s[4])
  local C = core.conv
  local ho = C.out_size(s[3], p[1], p[3], p[5], p[7], p[9])
  local wo = C.out_size(s[4], p[2], p[4], p[6], p[8], p[10])
  local wt = conv.weight
  local wl = bounds.flat(wt)
  local cin = conv.nin
  local function w(o, c, r, q) return wl[(((o - 1) * cin + c - 1) * 3 + r) * 3 + q + 1] end
  return bounds.winograd_bound(x, w, conv.nout, conv.bias and bounds.flat(conv.bias), p[7], p[8], ho, wo, m)
end

--- |w| * e (no bias) for a nonnegative tensor e of input errors: how an
-- input error bound propagates through conv (rounded up for the
-- float32 computation of the product).
function bounds.conv_prop(conv, e)
  return (bounds.conv_mag(conv, e, nil, true))
end

--- The bound of conv's forward on x by any of its paths (im2col, packed,
-- blocked: gamma(K) (|w| * |x| + |b|); Winograd for 3x3 stride-1 layers:
-- the larger of the tile-2 and tile-4 bounds), as a flat list.
function bounds.conv_any_bound(conv, x)
  local b = bounds.conv_bound(conv, x)
  local p = conv:params(x:shape(3), x:shape(4))
  if conv.kh == 3 and conv.kw == 3 and p[3] == 1 and p[4] == 1 and p[5] == 1 and p[6] == 1
      and conv.groups == 1 then
    for _, m in ipairs{2, 4} do
      local wb = bounds.conv_winograd_bound(conv, x, m)
      for i = 1, #b do b[i] = math.max(b[i], wb[i]) end
    end
  end
  return b
end

--- A tensor of x's shape from a flat list.
function bounds.like(x, l)
  return T.new(l):view(x:shape())
end

--- The elementwise sum of lists.
function bounds.add(...)
  local ls = {...}
  local out = {}
  for i = 1, #ls[1] do
    local s = 0
    for _, l in ipairs(ls) do s = s + l[i] end
    out[i] = s
  end
  return out
end

return bounds
