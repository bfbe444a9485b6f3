--- nn.Conv2d(in, out, kernel, {stride, padding, dilation, groups, bias, relu})
-- Input [N,in,H,W] → [N,out,Ho,Wo]; weight [out, in/groups, kh, kw].
-- relu = true makes the layer a convolution followed by max(., 0) (one
-- module, the ReLU fused into the Winograd and packed inference forwards).
-- padding: a number or {ph, pw} (symmetric), "valid" (none) or "same"
-- (TensorFlow's rule: out = ceil(in / stride), the odd pixel at the
-- bottom/right), or {top = , bottom = , left = , right = }.
-- groups = in gives a depthwise convolution.
local class = require "siamese.class"
local Module = require "siamese.nn.Module"
local T = require "siamese.tensor"
local core = require "siamese.core"
local util = require "siamese.nn.util"
local init = require "siamese.nn.weight_init"
local workspace = require "siamese.nn.workspace"
local K = core.nn
local winograd = core.winograd

local Conv2d = class("Conv2d", Module)

function Conv2d:__init(nin, nout, kernel, opts)
  Module.__init(self)
  opts = opts or {}
  self.nin = util.check_int(nin, "Conv2d: in channels")
  self.nout = util.check_int(nout, "Conv2d: out channels")
  self.kh, self.kw = util.pair(kernel, "Conv2d: kernel")
  self.sh, self.sw = util.pair(opts.stride or 1, "Conv2d: stride")
  self.dh, self.dw = util.pair(opts.dilation or 1, "Conv2d: dilation")
  self.groups = util.check_int(opts.groups or 1, "Conv2d: groups")
  if opts.relu ~= nil and type(opts.relu) ~= "boolean" then
    error(string.format("Conv2d: relu must be a boolean, got %s", type(opts.relu)), 2)
  end
  self.relu = opts.relu or false
  for _, v in ipairs{self.kh, self.kw, self.sh, self.sw, self.dh, self.dw} do
    util.check_int(v, "Conv2d: kernel, stride and dilation")
  end
  if nin % self.groups ~= 0 or nout % self.groups ~= 0 then
    error(string.format("Conv2d: in (%d) and out (%d) channels must be divisible by groups (%d)",
      nin, nout, self.groups), 2)
  end
  local pad = opts.padding or 0
  if pad == "same" or pad == "valid" then
    self.padding = pad
  elseif type(pad) == "table" and (pad.top or pad.left or pad.bottom or pad.right) then
    self.padding = {pad.top or 0, pad.left or 0, pad.bottom or 0, pad.right or 0}
  else
    local ph, pw = util.pair(pad, "Conv2d: padding")
    self.padding = {ph, pw, ph, pw}
  end
  self.weight = T.zeros{nout, nin // self.groups, self.kh, self.kw}
  self.gradWeight = T.zeros{nout, nin // self.groups, self.kh, self.kw}
  if opts.bias ~= false then
    self.bias = T.zeros{nout}
    self.gradBias = T.zeros{nout}
  end
  init.torch_default(self.weight, self.bias)
end

--- The kernel parameter list for an input of H x W.
function Conv2d:params(H, W)
  local pt, pl, pb, pr
  if self.padding == "valid" then
    pt, pl, pb, pr = 0, 0, 0, 0
  elseif self.padding == "same" then
    pt, pb = K.same_padding(H, self.kh, self.sh, self.dh)
    pl, pr = K.same_padding(W, self.kw, self.sw, self.dw)
  else
    pt, pl, pb, pr = table.unpack(self.padding)
  end
  return {self.kh, self.kw, self.sh, self.sw, self.dh, self.dw, pt, pl, pb, pr, self.groups}
end

function Conv2d:check_input(x)
  local s = x:shape()
  if #s ~= 4 or s[2] ~= self.nin then
    self:fail("expected input [N,%d,H,W], got %s", self.nin, util.shape_str(x))
  end
  return s
end

function Conv2d:updateOutput(input)
  local s = self:check_input(input)
  local x = util.contiguous(input)
  local p = self:params(s[3], s[4])
  local ho = K.conv_out_size(s[3], p[1], p[3], p[5], p[7], p[9])
  local wo = K.conv_out_size(s[4], p[2], p[4], p[6], p[8], p[10])
  if ho <= 0 or wo <= 0 then
    self:fail("input %s is smaller than the %dx%d kernel", util.shape_str(input), self.kh, self.kw)
  end
  self.output = Module.buffer(self.output, {s[1], self.nout, ho, wo})
  local u
  if self.train then
    u = self:training_winograd(false, s[1], ho, wo, p)
  else
    local wb, grid = self:blocked_weights(s[1], s[3], s[4], ho, wo, p)
    if grid then
      local ws = workspace.get(K.conv2d_blocked_workspace(self.output, x, wb, p, grid))
      K.conv2d_blocked_forward8(self.output, x, wb, grid, self.bias, p, self.relu, ws)
      return self.output
    elseif wb then
      local ws = workspace.get(K.conv2d_blocked_workspace(self.output, x, wb, p))
      K.conv2d_blocked_forward(self.output, x, wb, self.bias, p, self.relu, ws)
      return self.output
    end
    if self.prepared then u = self:winograd_weights(s[1], ho, wo) end
  end
  if u then
    local ws = workspace.get(winograd.workspace(self.output, x, u, p))
    winograd.forward(self.output, x, u, self.bias, p, self.relu, ws)
    return self.output
  end
  local wp, q
  if not self.train then wp, q = self:packed_weights(s[3], s[4], p) end
  if wp then
    local ws = workspace.get(K.conv2d_packed_workspace(self.output, x, wp, q))
    K.conv2d_packed_forward(self.output, x, wp, self.bias, q, self.relu, ws)
    return self.output
  end
  local ws = workspace.get(K.conv2d_workspace(self.output, x, self.weight, p))
  K.conv2d_forward(self.output, x, self.weight, self.bias, p, ws)
  if self.relu then K.activation_forward(self.output, self.output, "relu") end
  return self.output
end

--- Evaluation-mode forward plus a residual, fused when the layer takes
-- the blocked forward (see pack): buffer <- conv(input) + residual, then
-- max(., 0) when relu is true — the sum nn.Add would make, in its order.
-- Returns buffer (a new tensor when nil or of another shape), or nil,
-- doing nothing, when that path does not serve this input (or in training
-- mode, for a residual of another shape, or when the layer has its own
-- ReLU, which comes before the sum).
function Conv2d:residual_forward(input, residual, buffer, relu)
  if self.train or self.relu then return nil end
  local s = self:check_input(input)
  local p = self:params(s[3], s[4])
  local ho = K.conv_out_size(s[3], p[1], p[3], p[5], p[7], p[9])
  local wo = K.conv_out_size(s[4], p[2], p[4], p[6], p[8], p[10])
  if ho <= 0 or wo <= 0 then return nil end
  local wb, grid = self:blocked_weights(s[1], s[3], s[4], ho, wo, p)
  local shape = {s[1], self.nout, ho, wo}
  if not wb or not T.is_tensor(residual) or util.shape_str(residual) ~= "[" .. table.concat(shape, ",") .. "]" then
    return nil
  end
  local x, r = util.contiguous(input), util.contiguous(residual)
  buffer = Module.buffer(buffer, shape)
  if grid then
    local ws = workspace.get(K.conv2d_blocked_workspace(buffer, x, wb, p, grid))
    K.conv2d_blocked_forward8(buffer, x, wb, grid, self.bias, p, relu == true, ws, r)
  else
    local ws = workspace.get(K.conv2d_blocked_workspace(buffer, x, wb, p))
    K.conv2d_blocked_forward(buffer, x, wb, self.bias, p, relu == true, ws, r)
  end
  return buffer
end

-- The gradient with respect to the convolution's own output: gradOutput,
-- or with relu, gradOutput where the output is positive and 0 elsewhere.
function Conv2d:conv_grad(gradOutput)
  local go = util.contiguous(gradOutput)
  if not self.relu then return go end
  self.relu_grad = Module.buffer(self.relu_grad, self.output:shape())
  K.activation_grad(self.relu_grad, go:view(self.output:shape()), self.output, self.output, "relu")
  return self.relu_grad
end

--- Opts in to a fast inference forward: for a 3x3 kernel with stride 1,
-- dilation 1 and one group, evaluation-mode forwards run Winograd F(m x m,
-- 3x3) (src/winograd.c) on a transformed copy of the weights made at the
-- first such forward. opts.tile = 2 or 4 forces m; by default m follows the
-- output size and batch (fewer than four samples: 2 from 6x6; four or
-- more: 4 from 6x6, 2 from 4x4; else the ordinary or packed path, where
-- the transforms would cost more than they save). Returns true when the layer
-- qualifies. The copy is a snapshot of the weights: call prepare() again
-- after changing them; training() and prepare(false) drop it.
function Conv2d:prepare(opts)
  self.prepared = nil
  if opts == false then return false end
  opts = opts or {}
  if opts.tile ~= nil and opts.tile ~= 2 and opts.tile ~= 4 then
    error(string.format("bad argument #1 to 'prepare' (tile must be 2 or 4, got %s)", tostring(opts.tile)), 2)
  end
  if self.kh ~= 3 or self.kw ~= 3 or self.sh ~= 1 or self.sw ~= 1 or self.dh ~= 1 or self.dw ~= 1
      or self.groups ~= 1 then
    return false
  end
  self.prepared = {tile = opts.tile, u = {}}
  return true
end

--- Opts in to the packed inference forwards, on copies of the weights
-- packed once (no packing or BLAS start-up at each call):
-- * the direct convolution of src/conv2d_blocked.c (kernels larger than
--   1x1, a multiple of 16 output channels) where it was measured faster
--   (the recognition net, 2 threads): outputs of 12x12 or more at any
--   batch, and at batches below 4 every map except those Winograd serves
--   better (3x3 stride 1 from 6x6 when the layer is prepared, unless its
--   weights are kept in 8 bits, below);
-- * else im2col with the product of src/gemm_packed.c (at least 8 input
--   channels; the deep layers of a network at batch 1). A 1x1 input whose
--   padding leaves one tap on it (a 3x3 "same" layer at the end of a
--   network) multiplies only that tap's weights.
-- Winograd (see prepare) keeps the maps the rules above leave to it.
-- opts.grid, a [2,nout] tensor of offsets and steps, says the weights are
-- 8-bit levels: weight[o] = offset[o] + step[o] * q, q in 0..255 (quantised
-- weights, e.g. face-api's); the blocked forward at batches below 4 then
-- keeps them in 8 bits (a quarter of the bytes to read) and rebuilds each
-- panel of 32 output channels in floats as it uses it (within an ulp or
-- two of the weights). Returns true when the layer qualifies for a packed
-- forward (one group), and with a grid a second result: whether every
-- weight was on it (else the grid is ignored). Like prepare, a snapshot:
-- call pack() again after changing the weights; training() and
-- pack(false) drop it.
function Conv2d:pack(opts)
  self.packed = nil
  if opts == false or self.groups ~= 1 then return false end
  if opts ~= nil and opts ~= true and type(opts) ~= "table" then
    error(string.format("bad argument #1 to 'pack' (options table or boolean expected, got %s)", type(opts)), 2)
  end
  local grid = type(opts) == "table" and opts.grid or nil
  if grid ~= nil and not (T.is_tensor(grid) and #grid:shape() == 2 and grid:shape(1) == 2
      and grid:shape(2) == self.nout) then
    error(string.format("bad argument #1 to 'pack' (grid must be a [2,%d] tensor, got %s)", self.nout,
      T.is_tensor(grid) and util.shape_str(grid) or type(grid)), 2)
  end
  local blocked = self.nout % 16 == 0 and self.kh * self.kw > 1
  if self.nin < 8 and not blocked then return false end
  self.packed = {blocked = blocked}
  if grid == nil then return true end
  if not blocked then return true, false end
  local wq = T.zeros{self.nout * self.nin * self.kh * self.kw // 4}
  grid = grid:contiguous():clone()
  if not K.conv2d_blocked_pack8(wq, grid, self.weight) then return true, false end
  self.packed.wq, self.packed.grid = wq, grid
  return true, true
end

-- The direct blocked forward's packed weights for n inputs of h x w giving
-- ho x wo (params p) — the float panels, or the 8-bit ones and their grid
-- — or nil when another path serves the layer better.
function Conv2d:blocked_weights(n, h, w, ho, wo, p)
  local pk = self.packed
  if not pk or not pk.blocked then return nil end
  local side = math.min(ho, wo)
  if side < 12 then
    if n >= 4 then return nil end
    -- Winograd F(2x2), unless the weights are in 8 bits (its transformed
    -- weights are 7x their bytes)
    if self.prepared and side >= 6 and not pk.wq then return nil end
    if h == 1 and w == 1 and self.nin >= 8 and self.kh - 1 == p[7] + p[9] and self.kw - 1 == p[8] + p[10]
        and self.sh == 1 and self.sw == 1 then
      return nil  -- one tap (packed_weights)
    end
  end
  if pk.wq and n < 4 then return pk.wq, pk.grid end
  if not pk.wb then
    pk.wb = T.zeros{self.nout, self.nin * self.kh * self.kw}
    K.conv2d_blocked_pack(pk.wb, self.weight)
  end
  return pk.wb
end

local ONE_TAP = {1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1}

-- The packed weights and conv parameters for an input of h x w (params p),
-- or nil when the layer has not opted in.
function Conv2d:packed_weights(h, w, p)
  local pk = self.packed
  if not pk or self.nin < 8 then return nil end
  if h == 1 and w == 1 and self.sh == 1 and self.sw == 1 and self.kh - 1 == p[7] + p[9]
      and self.kw - 1 == p[8] + p[10] and (self.kh > 1 or self.kw > 1) then
    -- one output, reading the input only through tap (pt, pl)
    if not pk.tap then
      local tap = self.weight:select(3, p[7] + 1):select(3, p[8] + 1):contiguous()
      pk.tap = T.zeros{self.nout, self.nin}
      K.conv2d_pack(pk.tap, tap:view(self.nout, self.nin, 1, 1))
      pk.tap_at = {p[7], p[8]}
    end
    if pk.tap_at[1] == p[7] and pk.tap_at[2] == p[8] then return pk.tap, ONE_TAP end
  end
  if not pk.w then
    pk.w = T.zeros{self.nout, self.nin * self.kh * self.kw}
    K.conv2d_pack(pk.w, self.weight)
  end
  return pk.w, p
end

-- The Winograd tile for n outputs of ho x wo, or nil for the ordinary
-- path (measured with the 3x3 convolutions of the recognition net: on
-- small maps only batches give the a*a products enough columns).
local function auto_tile(n, ho, wo)
  local side = math.min(ho, wo)
  if side >= 12 or (side >= 6 and n >= 4) then return 4 end
  if side >= 6 or (side >= 4 and n >= 4) then return 2 end
  return nil
end

-- The inference tile: as auto_tile, but fewer than four samples take
-- F(2x2) on every map from 6x6 (with the packed product of
-- src/gemm_packed.c, measured as fast as or faster than F(4x4) there for
-- one face of the recognition net, and its transforms are exact).
local function inference_tile(n, ho, wo)
  if n < 4 and math.min(ho, wo) >= 6 then return 2 end
  return auto_tile(n, ho, wo)
end

-- The transformed weights for n outputs of ho x wo, or nil.
function Conv2d:winograd_weights(n, ho, wo)
  local prep = self.prepared
  local tile = prep.tile or inference_tile(n, ho, wo)
  if not tile then return nil end
  local u = prep.u[tile]
  if not u then
    u = T.zeros{(tile + 2) * (tile + 2), self.nout, self.nin}
    winograd.prepare(u, self.weight)
    prep.u[tile] = u
  end
  return u
end

-- Training runs the same Winograd forward, and its input gradient, when
-- the layer is 3x3, stride 1, dilation 1, one group, padding <= 2 on each
-- side and has at least 8 input channels (fewer go to the direct kernels
-- of conv2d_direct.c, faster there). The input gradient is the forward
-- convolution of the output gradient, padded by 2 - p on each side, with
-- each filter rotated by 180 degrees and the channel axes swapped
-- (winograd.prepare(u, w, true)). The weights change at every optimiser
-- step, so they are transformed again at every call (a*a*Cin*Cout values,
-- little next to the products). Values differ from the im2col path by
-- rounding only (~1e-6 relative). The weight gradient takes the adjoint
-- route (winograd.backward_weight: output gradients and inputs transformed,
-- a*a products, G^T . G back to 3x3), same conditions, same automatic
-- tile unless Conv2d.weight_grad_tile (2 or 4) is set. Set
-- Conv2d.train_winograd = false (on the class or a layer) for the im2col
-- path.
Conv2d.train_winograd = true

local function train_qualifies(self, p)
  if not self.train_winograd or self.nin < 8 or self.groups ~= 1 or self.kh ~= 3 or self.kw ~= 3
      or self.sh ~= 1 or self.sw ~= 1 or self.dh ~= 1 or self.dw ~= 1 then
    return false
  end
  for i = 7, 10 do
    if p[i] > 2 then return false end
  end
  return true
end

-- The freshly transformed weights for a training forward (flipped = false,
-- n outputs of ho x wo) or input gradient (flipped = true, n input
-- gradients of ho x wo), or nil for the im2col path.
function Conv2d:training_winograd(flipped, n, ho, wo, p)
  if not train_qualifies(self, p) then return nil end
  local tile = auto_tile(n, ho, wo)
  if not tile then return nil end
  local cache = self.winograd_train
  if not cache then
    cache = {}
    self.winograd_train = cache
  end
  local key = (flipped and "b" or "f") .. tile
  local u = cache[key]
  if not u then
    local a2 = (tile + 2) * (tile + 2)
    u = flipped and T.zeros{a2, self.nin, self.nout} or T.zeros{a2, self.nout, self.nin}
    cache[key] = u
  end
  winograd.prepare(u, self.weight, flipped)
  return u
end

function Conv2d:training()
  self.prepared = nil
  self.packed = nil
  return Module.training(self)
end

function Conv2d:updateGradInput(input, gradOutput)
  local s = self:check_input(input)
  local p = self:params(s[3], s[4])
  local go = self:conv_grad(gradOutput)
  self.gradInput = Module.buffer(self.gradInput, s)
  local u = self:training_winograd(true, s[1], s[3], s[4], p)
  if u then
    -- the correlation of go, padded by 2 - p, with the flipped filters
    local q = {3, 3, 1, 1, 1, 1, 2 - p[7], 2 - p[8], 2 - p[9], 2 - p[10], 1}
    local ws = workspace.get(winograd.workspace(self.gradInput, go, u, q))
    winograd.forward(self.gradInput, go, u, nil, q, false, ws)
    return self.gradInput
  end
  self.gradInput:zero()
  local ws = workspace.get(K.conv2d_workspace(go, self.gradInput, self.weight, p))
  K.conv2d_backward_input(self.gradInput, go, self.weight, p, ws)
  return self.gradInput
end

function Conv2d:accGradParameters(input, gradOutput, scale)
  local s = self:check_input(input)
  local p = self:params(s[3], s[4])
  local x, go = util.contiguous(input), self:conv_grad(gradOutput)
  local tile = train_qualifies(self, p) and auto_tile(s[1], go:shape(3), go:shape(4))
  if tile then
    tile = Conv2d.weight_grad_tile or tile
    local ws = workspace.get(winograd.backward_weight_workspace(self.gradWeight, go, x, p, tile))
    winograd.backward_weight(self.gradWeight, self.gradBias, go, x, p, scale or 1, tile, ws)
    return
  end
  local ws = workspace.get(K.conv2d_workspace(go, x, self.weight, p))
  K.conv2d_backward_params(self.gradWeight, self.gradBias, go, x, p, scale or 1, ws)
end

function Conv2d:__tostring()
  local pad = type(self.padding) == "string" and self.padding or table.concat(self.padding, ",")
  return string.format("Conv2d(%d -> %d, %dx%d, stride %d,%d, pad %s%s%s%s)", self.nin, self.nout, self.kh, self.kw,
    self.sh, self.sw, pad, self.groups > 1 and (", groups " .. self.groups) or "", self.bias and "" or ", no bias",
    self.relu and ", relu" or "")
end

return Conv2d
