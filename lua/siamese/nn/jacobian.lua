--- siamese.nn.jacobian: finite-difference checks of backward passes
-- (Torch's nn.Jacobian, for modules and criteria with tensor or list inputs).
--
-- For a module, the scalar probe is L = sum(output * R) with a fixed random
-- R, so dL/doutput = R; the analytic gradients come from backward(input, R)
-- and are compared with central differences (L(x + h) - L(x - h)) / 2h at a
-- sample of positions. The RNG is reseeded before every forward so layers
-- such as Dropout see the same mask each time.
local siamese_core = require "siamese.core"
local T = require "siamese.tensor"

local jacobian = {}

local function as_list(x)
  if T.is_tensor(x) then return {x}, true end
  return x, false
end

-- Sum over all outputs of output * probe (tensors or lists of tensors).
local function probe_sum(out, probe)
  local outs, single = as_list(out)
  local probes = single and {probe} or probe
  local s = 0
  for i, o in ipairs(outs) do s = s + o:contiguous():mul(probes[i]):sum() end
  return s
end

local function positions(t, max, rng)
  local n = t:numel()
  local list = {}
  if n <= max then
    for i = 1, n do list[i] = i end
  else
    for i = 1, max do list[i] = rng(n) end
  end
  return list
end

-- Element k (1-based, row-major) of a contiguous tensor as a flat view.
local function flat(t)
  assert(t:is_contiguous(), "jacobian: tensors must be contiguous")
  return t:view(-1)
end

--- Compares analytic and numerical gradients of f(tensor) at the sampled
-- positions of x; returns the worst error and a description of it.
local function compare(x, analytic, f, opts, rng)
  local fx, fa = flat(x), flat(analytic)
  local worst, where = 0, nil
  for _, k in ipairs(positions(x, opts.max_checks, rng)) do
    local v = fx:get(k)
    fx:set(k, v + opts.h)
    local up = f()
    fx:set(k, v - opts.h)
    local down = f()
    fx:set(k, v)
    local num = (up - down) / (2 * opts.h)
    local ana = fa:get(k)
    local err = math.abs(num - ana) / (opts.atol + opts.rtol * math.abs(num))
    if err > worst then
      worst = err
      where = string.format("element %d: numerical %.6g, analytic %.6g", k, num, ana)
    end
  end
  return worst, where
end

local function defaults(opts)
  opts = opts or {}
  return {
    h = opts.h or 1e-2, atol = opts.atol or 2e-3, rtol = opts.rtol or 2e-2,
    max_checks = opts.max_checks or 60, seed = opts.seed or 1, params = opts.params ~= false,
  }
end

local function make_rng(seed)
  local state = seed
  return function(n)
    state = (state * 1103515245 + 12345) % 2147483648
    return state % n + 1
  end
end

--- Checks a module. Returns ok, report (a list of failure strings).
-- Errors are scaled: ok means |num - ana| <= atol + rtol |num| everywhere.
function jacobian.check_module(m, input, opts)
  opts = defaults(opts)
  local rng = make_rng(opts.seed)
  local function forward()
    siamese_core.manual_seed(opts.seed)
    return m:forward(input)
  end
  local out = forward()
  local outs, single = as_list(out)
  siamese_core.manual_seed(opts.seed + 1)
  local probes = {}
  for i, o in ipairs(outs) do probes[i] = T.randn(o:shape()) end
  local probe = single and probes[1] or probes
  local function L() return probe_sum(forward(), probe) end

  m:zeroGradParameters()
  forward()
  local g = m:backward(input, probe)
  local grads = as_list(g)
  -- backward may reuse buffers: keep copies
  local gin = {}
  for i, t in ipairs(grads) do gin[i] = t:contiguous():clone() end
  local failures = {}
  local inputs = as_list(input)
  for i, x in ipairs(inputs) do
    local worst, where = compare(x, gin[i], L, opts, rng)
    if worst > 1 then failures[#failures + 1] = string.format("input %d, %s", i, where) end
  end
  if opts.params then
    local params, pgrads = m:parameters()
    local copies = {}
    for i, pg in ipairs(pgrads) do copies[i] = pg:clone() end
    for i, p in ipairs(params) do
      local worst, where = compare(p, copies[i], L, opts, rng)
      if worst > 1 then failures[#failures + 1] = string.format("parameter %d, %s", i, where) end
    end
  end
  return #failures == 0, failures
end

--- Checks a criterion's gradient with respect to its input.
function jacobian.check_criterion(c, input, target, opts)
  opts = defaults(opts)
  local rng = make_rng(opts.seed)
  local g = c:backward(input, target)
  local grads = as_list(g)
  local gin = {}
  for i, t in ipairs(grads) do gin[i] = t:contiguous():clone() end
  local failures = {}
  for i, x in ipairs(as_list(input)) do
    local worst, where = compare(x, gin[i], function() return c:forward(input, target) end, opts, rng)
    if worst > 1 then failures[#failures + 1] = string.format("input %d, %s", i, where) end
  end
  return #failures == 0, failures
end

return jacobian
