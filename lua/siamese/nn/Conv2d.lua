--- nn.Conv2d(in, out, kernel, {stride, padding, dilation, groups, bias, relu})
-- Input [N,in,H,W] → [N,out,Ho,Wo]; weight [out, in/groups, kh, kw].
-- relu = true makes the layer a convolution followed by max(., 0) (one
-- module, the ReLU fused into the Winograd, packed and blocked forwards).
-- padding: a number or {ph, pw} (symmetric), "valid" (none) or "same"
-- (TensorFlow's rule: out = ceil(in / stride), the odd pixel at the
-- bottom/right), or {top = , bottom = , left = , right = }.
-- groups = in gives a depthwise convolution.
--
-- The kernels are the convolution wing of the C core, core.conv
-- (src/l_conv.c over src/conv/conv.h). Which algorithm computes a pass is
-- decided in one place, src/conv/plan.c, from the input's shape, the
-- layer's parameters, what it holds (prepare, pack, training mode) and the
-- CPU; this module only asks (Conv2d:algorithm tells, by name), keeps the
-- plans per input shape, and keeps the weights in the form the chosen
-- algorithm reads (src/conv/<algorithm>.c).
local class = require "siamese.class"
local Module = require "siamese.nn.Module"
local T = require "siamese.tensor"
local core = require "siamese.core"
local util = require "siamese.nn.util"
local init = require "siamese.nn.weight_init"
local workspace = require "siamese.nn.workspace"
local C = core.conv

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
    pt, pb = C.same_padding(H, self.kh, self.sh, self.dh)
    pl, pr = C.same_padding(W, self.kw, self.sw, self.dw)
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

-- What the layer holds besides its plain weights, for the plan.
function Conv2d:held()
  local pk, prep = self.packed, self.prepared
  return {training = self.train, train_winograd = self.train_winograd and true or false, winograd = prep ~= nil,
    tile = prep and prep.tile, weight_grad_tile = Conv2d.weight_grad_tile, packed = pk ~= nil,
    q8 = pk ~= nil and pk.wq ~= nil}
end

-- The algorithm of pass for input shape s (params p), planned once per
-- input size and state (prepare, pack and training() forget the plans).
function Conv2d:plan(pass, s, p)
  local key = string.format("%s %d %d %d %s %s %s", pass, s[1], s[3], s[4], tostring(self.train),
    tostring(self.train_winograd), tostring(Conv2d.weight_grad_tile))
  local plans = self.plans
  if not plans then
    plans = {}
    self.plans = plans
  end
  local algo = plans[key]
  if not algo then
    algo = C.plan(pass, s, self.nout, p, self:held())
    plans[key] = algo
  end
  return algo
end

--- The algorithm that computes pass ("forward" when nil,
-- "backward_input" or "backward_weight") for an input of shape
-- {N, in, H, W}, by name: one of core.conv.algorithms ("im2col",
-- "direct_small", "blocked", "winograd_f4", ...; src/conv/plan.c).
function Conv2d:algorithm(shape, pass)
  return self:plan(pass or "forward", shape, self:params(shape[3], shape[4]))
end

-- The weights algo reads in pass for input shape s (params p), and for
-- blocked8 the grid of its 8-bit levels: the plain weight, or a form of it
-- made for algo — once per snapshot (prepare, pack) in inference, at every
-- call where the weights change at every step (training, gradients).
function Conv2d:weights_for(algo, pass, s, p)
  if algo == "blocked8" then return self.packed.wq, self.packed.grid end
  local shape = C.weights_shape(algo, pass, s, self.nout, p)
  if not shape then return self.weight end
  local fresh = self.train or pass ~= "forward"
  local cache
  if fresh then
    cache = self.fresh_weights or {}
    self.fresh_weights = cache
  else
    cache = (algo:find("^winograd") and self.prepared or self.packed).weights
  end
  local key = pass .. " " .. algo
  local w = cache[key]
  if w and not fresh then return w end
  if not w then
    w = T.zeros(shape)
    cache[key] = w
  end
  C.make_weights(algo, pass, w, self.weight, p)
  return w
end

-- The output size for input shape s (params p), or nil when the kernel
-- does not fit.
local function out_size(s, p)
  local ho = C.out_size(s[3], p[1], p[3], p[5], p[7], p[9])
  local wo = C.out_size(s[4], p[2], p[4], p[6], p[8], p[10])
  if ho <= 0 or wo <= 0 then return nil end
  return ho, wo
end

function Conv2d:updateOutput(input)
  local s = self:check_input(input)
  local x = util.contiguous(input)
  local p = self:params(s[3], s[4])
  local ho, wo = out_size(s, p)
  if not ho then
    self:fail("input %s is smaller than the %dx%d kernel", util.shape_str(input), self.kh, self.kw)
  end
  self.output = Module.buffer(self.output, {s[1], self.nout, ho, wo})
  local algo = self:plan("forward", s, p)
  local w, grid = self:weights_for(algo, "forward", s, p)
  local ws = workspace.get(C.forward_workspace(algo, self.output, x, w, self.bias, p, grid))
  C.forward(algo, self.output, x, w, self.bias, p, grid, self.relu, ws)
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
  local ho, wo = out_size(s, p)
  if not ho then return nil end
  local algo = self:plan("forward", s, p)
  local shape = {s[1], self.nout, ho, wo}
  if (algo ~= "blocked" and algo ~= "blocked8") or not T.is_tensor(residual)
      or util.shape_str(residual) ~= "[" .. table.concat(shape, ",") .. "]" then
    return nil
  end
  local x, r = util.contiguous(input), util.contiguous(residual)
  local w, grid = self:weights_for(algo, "forward", s, p)
  buffer = Module.buffer(buffer, shape)
  local ws = workspace.get(C.forward_workspace(algo, buffer, x, w, self.bias, p, grid))
  C.forward(algo, buffer, x, w, self.bias, p, grid, relu == true, ws, r)
  return buffer
end

-- The gradient with respect to the convolution's own output: gradOutput,
-- or with relu, gradOutput where the output is positive and 0 elsewhere.
function Conv2d:conv_grad(gradOutput)
  local go = util.contiguous(gradOutput)
  if not self.relu then return go end
  self.relu_grad = Module.buffer(self.relu_grad, self.output:shape())
  core.nn.activation_grad(self.relu_grad, go:view(self.output:shape()), self.output, self.output, "relu")
  return self.relu_grad
end

--- Opts in to Winograd F(m x m, 3x3) for evaluation-mode forwards
-- (src/conv/winograd.c) of a 3x3 kernel with stride 1, dilation 1 and one
-- group, on a transformed copy of the weights made at the first such
-- forward. opts.tile = 2 or 4 forces m; by default the plan picks m from
-- the output size and batch, or another algorithm where the transforms
-- would cost more than they save (src/conv/plan.c). Returns true when the
-- layer qualifies. The copy is a snapshot of the weights: call prepare()
-- again after changing them; training() and prepare(false) drop it.
function Conv2d:prepare(opts)
  self.prepared = nil
  self.plans = nil
  if opts == false then return false end
  opts = opts or {}
  if opts.tile ~= nil and opts.tile ~= 2 and opts.tile ~= 4 then
    error(string.format("bad argument #1 to 'prepare' (tile must be 2 or 4, got %s)", tostring(opts.tile)), 2)
  end
  if self.kh ~= 3 or self.kw ~= 3 or self.sh ~= 1 or self.sw ~= 1 or self.dh ~= 1 or self.dw ~= 1
      or self.groups ~= 1 then
    return false
  end
  self.prepared = {tile = opts.tile, weights = {}}
  return true
end

--- Opts in to the packed inference forwards, on copies of the weights
-- packed once (no packing or BLAS start-up at each call): the direct
-- convolution of src/conv/blocked.c (kernels larger than 1x1, a multiple
-- of 16 output channels) and im2col with the product of
-- src/conv/gemm_packed.c (src/conv/packed.c: at least 8 input channels),
-- where src/conv/plan.c finds them faster than the rest (Winograd, when
-- prepared, keeps the maps it serves better).
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
  self.plans = nil
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
  self.packed = {weights = {}}
  if grid == nil then return true end
  if not blocked then return true, false end
  local wq = T.zeros{self.nout * self.nin * self.kh * self.kw // 4}
  grid = grid:contiguous():clone()
  if not C.blocked_pack8(wq, grid, self.weight) then return true, false end
  self.packed.wq, self.packed.grid = wq, grid
  return true, true
end

-- Training takes Winograd too (forward, input and weight gradients) for
-- 3x3 stride-1 layers of at least 8 input channels (src/conv/plan.c), on
-- weights transformed again at every call (they change at every step).
-- Values differ from the im2col path by rounding only (~1e-6 relative).
-- Set Conv2d.train_winograd = false (on the class or a layer) for the
-- other paths; Conv2d.weight_grad_tile (2 or 4) forces the weight
-- gradient's tile.
Conv2d.train_winograd = true

function Conv2d:training()
  self.prepared = nil
  self.packed = nil
  self.plans = nil
  return Module.training(self)
end

function Conv2d:updateGradInput(input, gradOutput)
  local s = self:check_input(input)
  local p = self:params(s[3], s[4])
  local go = self:conv_grad(gradOutput)
  self.gradInput = Module.buffer(self.gradInput, s)
  local algo = self:plan("backward_input", s, p)
  local w = self:weights_for(algo, "backward_input", s, p)
  local ws = workspace.get(C.backward_input_workspace(algo, self.gradInput, go, w, p))
  C.backward_input(algo, self.gradInput, go, w, p, ws)
  return self.gradInput
end

function Conv2d:accGradParameters(input, gradOutput, scale)
  local s = self:check_input(input)
  local p = self:params(s[3], s[4])
  local x, go = util.contiguous(input), self:conv_grad(gradOutput)
  local algo = self:plan("backward_weight", s, p)
  local ws = workspace.get(C.backward_weight_workspace(algo, self.gradWeight, self.gradBias, go, x, p))
  C.backward_weight(algo, self.gradWeight, self.gradBias, go, x, p, scale or 1, ws)
end

function Conv2d:__tostring()
  local pad = type(self.padding) == "string" and self.padding or table.concat(self.padding, ",")
  return string.format("Conv2d(%d -> %d, %dx%d, stride %d,%d, pad %s%s%s%s)", self.nin, self.nout, self.kh, self.kw,
    self.sh, self.sw, pad, self.groups > 1 and (", groups " .. self.groups) or "", self.bias and "" or ", no bias",
    self.relu and ", relu" or "")
end

return Conv2d
