-- Specs of siamese.encoder: loading a shipped encoder (definition + weights
-- + metadata), its model id, preprocessing and embeddings; refusals.
local siamese = require "siamese"
local support = dofile("spec/support.lua")
local encoder, T, image = siamese.encoder, siamese.tensor, siamese.image

local DEFINITION = [[
local nn = require("siamese").nn
return function(opts)
  return nn.Sequential{nn.Flatten(), nn.Linear(3 * 4, opts.dim or 5), nn.L2Normalize()}
end
]]

local PREP = {channels = 1, width = 4, height = 3, scale = 1 / 255, mean = {0.5}, std = {0.25}}

-- Writes NAME_encoder.lua and .safetensors into dir; returns the net.
local function write_encoder(dir, name, dim, meta)
  support.write_file(dir .. "/" .. name .. "_encoder.lua", DEFINITION)
  siamese.manual_seed(dim)
  local net = load(DEFINITION)()({dim = dim})
  local m = {preprocessing = PREP, embedding_size = dim, definition_opts = {dim = dim}}
  for k, v in pairs(meta or {}) do m[k] = v end
  assert(net:save(dir .. "/" .. name .. "_encoder.safetensors", m))
  return net
end

local function rgb_image(seed)
  local img = image.new(8, 6, 3)
  for y = 0, 5 do
    for x = 0, 7 do
      img:set(x, y, (x * 31 + y * 17 + seed) % 256, (x * 7 + y * 53 + seed) % 256, (x * y + seed) % 256)
    end
  end
  return img
end

describe("siamese.encoder", function()
  local dir
  before_each(function() dir = support.temp_dir("encoder") end)
  after_each(function() support.remove_dir(dir) end)

  it("loads a definition and its weights; embeds as its metadata says", function()
    local net = write_encoder(dir, "tiny", 5)
    local enc = assert(encoder.load(dir .. "/tiny_encoder.safetensors"))
    assert.are.equal("tiny", enc.name)
    assert.are.equal(5, enc.dim)
    assert.matches("^tiny:%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x$", enc.model_id)
    local img = rgb_image(3)
    -- by hand: gray, area resize 8x6 -> 4x3, normalise, forward
    local x = img:grayscale():resize(4, 3, {method = "area"}):to_tensor{scale = 1 / 255, mean = {0.5}, std = {0.25}}
    local want = net:evaluate():forward(x:view(1, 1, 3, 4)):select(1, 1):totable()
    local e = enc:embed(img)
    assert.are.same({5}, e:shape())
    -- the same network on the same preprocessed input: bit-identical
    for i = 1, 5 do assert.are.equal(want[i], e:get(i)) end
    -- x / |x| rounded per element (gamma(3) with the root and division),
    -- its norm taken in double: within gamma(5 + 3) of 1
    assert.is_true(math.abs(e:norm() - 1) <= support.gamma(8))
    -- embed_batch: one row per image, equal to embed; enc.embed(img) works too
    local imgs = {rgb_image(1), img, rgb_image(200)}
    local E = enc:embed_batch(imgs)
    assert.are.same({3, 5}, E:shape())
    assert.are.same(e:totable(), E:select(1, 2):totable())
    assert.are.same(e:totable(), enc.embed(img):totable())
    assert.are.same({0, 5}, enc:embed_batch{}:shape())
    -- a gray image of another size is resized (bilinear when enlarging)
    assert.are.same({5}, enc:embed(image.new(3, 2, 1)):shape())
  end)

  it("flip_average embeds the normalised mean of the image and its mirror", function()
    local prep = {}
    for k, v in pairs(PREP) do prep[k] = v end
    prep.flip_average = true
    local net = write_encoder(dir, "tiny", 5, {preprocessing = prep})
    local enc = assert(encoder.load(dir .. "/tiny_encoder.safetensors"))
    local img = rgb_image(9)
    local function x_of(im)
      return im:grayscale():resize(4, 3, {method = "area"}):to_tensor{scale = 1 / 255, mean = {0.5}, std = {0.25}}
    end
    net:evaluate()
    local a = net:forward(x_of(img):view(1, 1, 3, 4)):clone()
    local b = net:forward(x_of(img:flip()):view(1, 1, 3, 4)):clone()
    local sum = a:clone():add(b):view(5)
    local want = sum:clone():scale_(1 / sum:norm())
    local e = enc:embed(img)
    -- a + b (u (|a| + |b|)), then / |a + b| (gamma(8) relative), in both
    -- orders of operations: 2 gamma(8) ((|a_i| + |b_i|) / |a + b| + |want_i|)
    local n = sum:norm()
    for i = 1, 5 do
      local mag = (math.abs(a:view(5):get(i)) + math.abs(b:view(5):get(i))) / n + math.abs(want:get(i))
      support.within(e:get(i), want:get(i), 2 * support.gamma(8) * mag, "flip-averaged element " .. i)
    end
  end)

  it("model_id is stable for one file and changes with the weights", function()
    write_encoder(dir, "tiny", 5)
    local a = assert(encoder.load(dir .. "/tiny_encoder.safetensors"))
    local b = assert(encoder.load(dir .. "/tiny_encoder.safetensors"))
    assert.are.equal(a.model_id, b.model_id)
    write_encoder(dir, "tiny", 6) -- other weights (and dimension)
    local c = assert(encoder.load(dir .. "/tiny_encoder.safetensors"))
    assert.are_not.equal(a.model_id, c.model_id)
    assert.are.equal(6, c.dim)
    local hex, algo = encoder.file_digest(dir .. "/tiny_encoder.safetensors")
    assert.are.equal(c.model_id, "tiny:" .. hex:sub(1, 16))
    assert.is_true(algo == "sha256" or algo == "fnv1a64")
  end)

  it("FNV-1a 64 digest matches the reference values", function()
    local path = dir .. "/a.bin"
    support.write_file(path, "a")
    local hex, algo = encoder.file_digest(path)
    if algo == "fnv1a64" then
      assert.are.equal("af63dc4c8601ec8c", hex) -- FNV-1a 64 of "a"
      support.write_file(path, "")
      assert.are.equal("cbf29ce484222325", (encoder.file_digest(path)))
    else
      assert.are.equal("ca978112ca1bbdca", hex:sub(1, 16)) -- sha256("a")
    end
  end)

  it("finds the definition named by the metadata in the models folder", function()
    local att = assert(encoder.load("att"))
    local copy = dir .. "/exported.safetensors"
    support.write_file(copy, support.read_file(att.path)) -- no exported.lua beside it
    local enc = assert(encoder.load(copy))
    assert.are.equal("exported", enc.name)
    assert.are.same(att:embed(image.new(46, 56, 1)):totable(), enc:embed(image.new(46, 56, 1)):totable())
  end)

  it("finds the shipped AT&T encoder by name", function()
    local enc = assert(encoder.load("att"))
    assert.are.equal("att", enc.name)
    assert.matches("^att:%x+$", enc.model_id)
    assert.are.equal(enc.dim, tonumber(enc.metadata.embedding_size))
    local a1 = assert(image.load("examples/data/att_faces/s1/1.pgm"))
    local a2 = assert(image.load("examples/data/att_faces/s1/2.pgm"))
    local b1 = assert(image.load("examples/data/att_faces/s2/1.pgm"))
    local E = enc:embed_batch{a1, a2, b1}
    assert.are.same({3, enc.dim}, E:shape())
    local d = T.cdist(E, E)
    -- same person nearer than another person
    assert.is_true(d:get(1, 2) < d:get(1, 3))
    assert.is_true(math.abs(E:select(1, 1):norm() - 1) <= support.gamma(enc.dim + 3)) -- as above
  end)

  it("returns nil, message for missing or damaged files", function()
    local ok, err = encoder.load("no_such_encoder")
    assert.is_nil(ok)
    assert.matches("no_such_encoder", err)
    ok, err = encoder.load("bad name!")
    assert.is_nil(ok)
    assert.matches("unknown encoder name", err)
    write_encoder(dir, "tiny", 5)
    local st = dir .. "/tiny_encoder.safetensors"
    local bytes = support.read_file(st)
    support.write_file(st, bytes:sub(1, #bytes - 4))
    ok, err = encoder.load(st)
    assert.is_nil(ok)
    assert.is_string(err)
    -- weights that do not fit the definition
    write_encoder(dir, "tiny", 5, {definition_opts = {dim = 7}})
    ok, err = encoder.load(st)
    assert.is_nil(ok)
    assert.matches("shape", err)
    -- metadata without preprocessing
    write_encoder(dir, "tiny", 5, {preprocessing = {channels = 2}})
    ok, err = encoder.load(st)
    assert.is_nil(ok)
    assert.matches("preprocessing", err)
    -- no definition beside the weights, none named by the metadata
    os.remove(dir .. "/tiny_encoder.lua")
    ok, err = encoder.load(st)
    assert.is_nil(ok)
    assert.matches("definition not found", err)
    -- a definition that returns no builder
    write_encoder(dir, "tiny", 5)
    support.write_file(dir .. "/tiny_encoder.lua", "return 42")
    ok, err = encoder.load(st)
    assert.is_nil(ok)
    assert.matches("must return a function", err)
  end)

  it("raises on misuse", function()
    write_encoder(dir, "tiny", 5)
    local enc = assert(encoder.load(dir .. "/tiny_encoder.safetensors"))
    assert.has_error(function() encoder.load(nil) end)
    assert.has_error(function() enc:embed("face.jpg") end)
    assert.has_error(function() enc:embed_batch{rgb_image(1), "x"} end)
    assert.has_error(function() enc:embed_batch(rgb_image(1)) end)
  end)
end)
