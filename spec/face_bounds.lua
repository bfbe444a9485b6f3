-- Error bounds for the face and image specs, derived from the computation
-- (never tuned on one machine). Load with `local bounds = dofile("spec/face_bounds.lua")`.
--
-- float32: a sum/dot of n terms in any order is within gamma(n) sum|terms|
-- of the exact value (support.gamma, Higham 3.1). Lua numbers are doubles:
-- gamma64(n) is the same with u = 2^-53.
local support = dofile("spec/support.lua")

local bounds = {}
bounds.U, bounds.gamma = support.U, support.gamma
bounds.U64 = 2 ^ -53

function bounds.gamma64(n)
  local nu = n * bounds.U64
  return nu / (1 - nu)
end

--- x rounded to float32 (what a tensor stores).
function bounds.f32(x)
  return (string.unpack("<f", string.pack("<f", x)))
end

-- ---- Winograd F(m x m, 3x3) ----------------------------------------------------
-- The Winograd forward (src/conv/winograd.c, used by the recognition net's
-- prepared 3x3 layers) is within gamma(Cin + t) |A^T| (|G||g||G^T| .*
-- |B^T||d||B|) |A| of the exact convolution. For |g| <= max|g_c| and |d| <=
-- max|d| that is max|g_c| max|d| times the all-ones value below: (max_i
-- sum_k |A^T_ik| (|G|1)_k (|B^T|1)_k)^2 — 64 for m = 2, 2304 for m = 4
-- (direct: 9). Lavin & Gray's matrices (G as in src/conv/winograd.c).
local function winograd_ones(AT, G, BT)
  local worst = 0
  for i = 1, #AT do
    local s = 0
    for k = 1, #G do
      local g, b = 0, 0
      for j = 1, #G[k] do g = g + math.abs(G[k][j]) end
      for j = 1, #BT[k] do b = b + math.abs(BT[k][j]) end
      s = s + math.abs(AT[i][k]) * g * b
    end
    worst = math.max(worst, s)
  end
  return worst * worst
end

bounds.WINOGRAD = math.max(
  winograd_ones({{1, 1, 1, 0}, {0, 1, -1, -1}}, {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}},
    {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}}),
  winograd_ones({{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}},
    {{1 / 4, 0, 0}, {-1 / 6, -1 / 6, -1 / 6}, {-1 / 6, 1 / 6, -1 / 6}, {1 / 24, 1 / 12, 1 / 6},
     {1 / 24, -1 / 12, 1 / 6}, {0, 0, 1}},
    {{4, 0, -5, 0, 1, 0}, {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0}, {0, -2, -1, 2, 1, 0},
     {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}}))
-- rounding steps of the input and output transforms (2-D, nested sums of
-- at most 4 and 5 terms), the weight transform's one rounding to float, bias
bounds.WINOGRAD_STEPS = 16

-- ---- whole networks against another float32 implementation ---------------------
-- A rigorous componentwise bound through a deep net is useless (Winograd's
-- worst case alone is WINOGRAD / 9 = 256 times the direct one per layer), so
-- the bound is relative to the output's magnitude:
--   |ours - ref| <= R max|ref|,   R = 2 * L * gamma(Kmax + 16) * c
-- * L layers with weights on the path (all of them counted), Kmax their
--   largest reduction cin/groups * kh * kw;
-- * gamma(Kmax + 16): one float32 implementation's relative error per
--   layer — the dot of K terms in any order (BLAS kernels, our AVX-512/AVX2/
--   portable paths, tfjs/XNNPACK), + bias, fused ReLU, the 8-bit weight
--   rebuild (an ulp or two) and Winograd's transforms (16 rounding steps);
--   2: two implementations (ours and face-api's) each err that much;
-- * c, the norm growth: max over layers of max|a_l| / max|out| on this
--   very input (run with the library). A layer's error is relative to its
--   own activations; c carries the largest of them to the output's scale
--   (first order, the net's gain along its own signal — the stated
--   assumption). The input's resize/normalisation adds gamma(10) relative.
-- Returns R and {L, Kmax, c}.

local function is_module(m) return type(m) == "table" and type(m.updateOutput) == "function" end

-- The leaves (modules without children) under obj: a module, a container,
-- or a plain table of them (the SSD's parts).
local function leaves(obj, out, seen)
  out, seen = out or {}, seen or {}
  if type(obj) ~= "table" or seen[obj] then return out end
  seen[obj] = true
  if is_module(obj) and not obj.modules then
    out[#out + 1] = obj
    return out
  end
  if obj.modules then
    for _, m in ipairs(obj.modules) do leaves(m, out, seen) end
    return out
  end
  local keys = {}
  for k in pairs(obj) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local v = obj[k]
    if (type(v) == "table" and getmetatable(v) == nil) or is_module(v) then leaves(v, out, seen) end
  end
  return out
end

--- Runs run() (a forward of the network(s) in obj on the compared input),
-- recording every leaf's output; out_max: max|output| of the compared
-- output (the reference's magnitude; a function: called after run).
function bounds.network(obj, run, out_max)
  local layers = leaves(obj)
  local L, Kmax, amax = 0, 0, 0
  local last = {}   -- the last layer with weights: its module, input max, amax before it
  local function record(m, y, x)
    if m.weight then
      L, Kmax = L + 1, math.max(Kmax, m.weight:numel() // m.weight:shape(1))
      if x then last = {m = m, xmax = x:norm(math.huge), amax = amax, L = L - 1, Kmax = Kmax} end
    end
    amax = math.max(amax, y:norm(math.huge))
  end
  for _, m in ipairs(layers) do
    local uo, rf = m.updateOutput, m.residual_forward
    m.updateOutput = function(self, x, ...)
      local y = uo(self, x, ...)
      record(self, y, x)
      return y
    end
    if rf then
      m.residual_forward = function(self, ...)
        local y = rf(self, ...)
        if y then record(self, y) end
        return y
      end
    end
  end
  local ok, err = pcall(run)
  for _, m in ipairs(layers) do m.updateOutput, m.residual_forward = nil, nil end
  assert(ok, err)
  if type(out_max) == "function" then out_max = out_max() end
  local c = amax / out_max
  local R = 2 * L * bounds.gamma(Kmax + 16) * c + bounds.gamma(10)
  if os.getenv("FB_DEBUG") then print(string.format("R %.3g L %d Kmax %d c %.3g", R, L, Kmax, c)) end
  -- Per output channel o of the last layer (a 1x1 head): its input x is
  -- within R' max|x| (the same bound, before it), so output o is within
  -- ||W_o||_1 (R' + 2 gamma(K + 16)) max|x| + 2 gamma(K + 16) |b_o|.
  local function channel(o)
    local m = last.m
    local Rp = 2 * last.L * bounds.gamma(last.Kmax + 16) * last.amax / last.xmax + bounds.gamma(10)
    local K = m.weight:numel() // m.weight:shape(1)
    local g = 2 * bounds.gamma(K + 16)
    local w1 = m.weight:select(1, o):contiguous():norm(1)
    return w1 * (Rp + g) * last.xmax + g * (m.bias and math.abs(m.bias:get(o)) or 0)
  end
  return R, {L = L, Kmax = Kmax, c = c, channel = channel}
end

--- Pre-processing of 0..255 pixels to (x - mean) / 255 (resize: 4
-- products + sums; then subtract and divide): within gamma(10) (255 + mean)
-- / 255 of exact, by each implementation.
function bounds.preprocess(mean)
  return bounds.gamma(10) * (255 + mean) / 255
end

return bounds
