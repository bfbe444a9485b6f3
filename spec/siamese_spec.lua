-- Specs of the top-level module: what require "siamese" gives.
local siamese = require "siamese"

describe("require 'siamese'", function()
  it("exposes the library's parts", function()
    assert.matches("^siamese %d+%.%d+%.%d+$", siamese._VERSION)
    for _, part in ipairs{"tensor", "image", "nn", "loss", "optim", "eval", "viz", "json", "safetensors", "data"} do
      assert.is_table(siamese[part], part)
    end
  end)

  it("cpu names the code paths in use, and SIAMESE_SIMD / OPENBLAS_CORETYPE set them", function()
    local c = siamese.cpu()
    local LEVEL = {portable = 0, avx2 = 1, avx512 = 2}
    assert.is_number(LEVEL[c.simd])
    assert.is_number(LEVEL[c.cpu_simd])
    assert.is_true(LEVEL[c.simd] <= LEVEL[c.cpu_simd])
    assert.is_string(c.blas_core)
    -- in a child process with the variables set
    local code = [[package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
      package.cpath = (os.getenv("SIAMESE_BUILD") or "build") .. "/?.so;" .. package.cpath
      local c = require("siamese").cpu() io.write(c.simd, " ", c.requested or "-", " ", c.blas_core)]]
    local p = assert(io.popen("SIAMESE_SIMD=portable OPENBLAS_CORETYPE=Haswell lua5.4 -e '" .. code .. "'"))
    local out = p:read("a")
    p:close()
    assert.are.equal("portable portable Haswell", out)
  end)

  it("clock is a monotonic wall clock in seconds", function()
    local t0 = siamese.clock()
    local t1 = siamese.clock()
    assert.is_true(t1 >= t0)
    os.execute("sleep 0.05")
    assert.is_true(siamese.clock() - t1 >= 0.04)
  end)

  it("manual_seed fixes the random numbers", function()
    siamese.manual_seed(123)
    local a = siamese.tensor.rand{4}:totable()
    siamese.manual_seed(123)
    assert.are.same(a, siamese.tensor.rand{4}:totable())
    assert.has_error(function() siamese.manual_seed(1.5) end)
  end)

  it("get_rng_state / set_rng_state resume the random stream exactly", function()
    siamese.manual_seed(5)
    siamese.tensor.randn{3} -- leaves a spare normal value pending
    local s = siamese.get_rng_state()
    assert.matches("^xoshiro256%*%*:", s)
    local a = {siamese.tensor.randn{5}:totable(), siamese.tensor.rand{3}:totable(), siamese.tensor.randn{1}:totable()}
    siamese.manual_seed(99)
    siamese.tensor.rand{7}
    siamese.set_rng_state(s)
    assert.are.equal(s, siamese.get_rng_state())
    local b = {siamese.tensor.randn{5}:totable(), siamese.tensor.rand{3}:totable(), siamese.tensor.randn{1}:totable()}
    assert.are.same(a, b)
    -- the state also drives the data sampling seeds (dropout, augmentation)
    siamese.set_rng_state(s)
    local d1 = siamese.nn.Dropout(0.5):forward(siamese.tensor.ones{16}):totable()
    siamese.set_rng_state(s)
    assert.are.same(d1, siamese.nn.Dropout(0.5):forward(siamese.tensor.ones{16}):totable())
  end)

  it("set_rng_state refuses what is not a state", function()
    local s = siamese.get_rng_state()
    for _, bad in ipairs{"", "xoshiro256**:", s:sub(1, -2), s .. "0", "y" .. s:sub(2), s:sub(1, 81) .. "2" .. s:sub(83),
                         "xoshiro256**:" .. ("0"):rep(16) .. "," .. ("0"):rep(16) .. "," .. ("0"):rep(16) .. ","
                           .. ("0"):rep(16) .. ",0," .. ("0"):rep(16), s:upper()} do
      assert.has_error(function() siamese.set_rng_state(bad) end, nil, bad)
    end
    assert.has_error(function() siamese.set_rng_state(nil) end)
    assert.are.equal(s, siamese.get_rng_state()) -- untouched by the refusals
  end)
end)
