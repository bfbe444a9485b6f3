--- siamese: one-shot face verification and recognition with Siamese networks.
-- `local siamese = require "siamese"` gives the whole public API.
local core = require "siamese.core"

local siamese = {
  _VERSION = "siamese 0.1.0",
  tensor = require "siamese.tensor",
  image = require "siamese.image",
  nn = require "siamese.nn",
  loss = require "siamese.loss",
  optim = require "siamese.optim",
  eval = require "siamese.eval",
  data = require "siamese.data",
  viz = require "siamese.viz",
  json = require "siamese.json",
  safetensors = require "siamese.safetensors",
  gallery = require "siamese.gallery",
  hash = require "siamese.hash",
  train = require "siamese.train",
  encoder = require "siamese.encoder",
}

--- Seeds the library's one random-number generator (tensors, sampling,
-- dropout): the same seed gives the same numbers on every run.
function siamese.manual_seed(n)
  core.manual_seed(n)
end

--- The state of that generator as a string (for checkpoints), and its
-- restoration: after set_rng_state(s) the numbers continue exactly as they
-- did after get_rng_state() returned s. A string that is not such a state
-- raises.
function siamese.get_rng_state()
  return core.get_rng_state()
end

function siamese.set_rng_state(s)
  core.set_rng_state(s)
end

--- Sets how many threads the C kernels and OpenBLAS use (default: all cores).
function siamese.set_num_threads(n)
  core.set_num_threads(n)
end

--- Returns the thread count in use.
function siamese.get_num_threads()
  return core.get_num_threads()
end

--- Wall-clock seconds (monotonic) for timing work; os.clock() counts CPU
-- time of every thread instead.
function siamese.clock()
  return core.clock()
end

--- What the C kernels run on: {simd = "avx512" | "avx2" | "portable" (the
-- widest code path they take), cpu_simd (the CPU's widest), requested (the
-- environment variable SIAMESE_SIMD, which lowers simd, when set),
-- blas_core (OpenBLAS's kernel, e.g. "Haswell"; OPENBLAS_CORETYPE sets it)}.
function siamese.cpu()
  return core.cpu()
end

-- siamese.face (the pretrained face pipeline), siamese.door (decisions
-- at a door on faces that pass the quality gate) and siamese.names (the
-- checks of enrolled names) load on first use: face requires this module
-- itself.
local LAZY = {face = "siamese.face", door = "siamese.door", names = "siamese.names", video = "siamese.video"}
setmetatable(siamese, {
  __index = function(t, k)
    local name = LAZY[k]
    if name then
      local m = require(name)
      rawset(t, k, m)
      return m
    end
  end,
})

return siamese
