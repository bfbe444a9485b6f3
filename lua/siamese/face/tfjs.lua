--- siamese.face.tfjs: what face-api's networks share, as TensorFlow.js
-- does it: JavaScript's rounding, the padded-square preprocessing
-- (toBatchTensor), the HWIO filter layouts and the depthwise-separable
-- block. Used by the ports of the tiny detector (siamese.face.detector),
-- the 68-point landmarks (siamese.face.landmarks) and the SSD detector
-- (siamese.face.ssd).
local nn = require "siamese.nn"
local shape_str = require("siamese.argcheck").shape

local tfjs = {}

--- JavaScript's Math.round: halves round up, also for negative numbers.
function tfjs.js_round(v)
  return math.floor(v + 0.5)
end

--- The image with 3 channels (gray replicated, alpha dropped).
local function as_rgb(img)
  if img.channels == 3 then return img end
  return img:to_rgb()
end

--- Where face-api's padToSquare puts a w x h image in its square: the
-- side and the left/top offsets. The shorter side is padded with zeros,
-- all at the bottom/right when not centred, else split with
-- after = Math.round(diff / 2) and before = diff - after.
function tfjs.square_placement(w, h, centred)
  local side, diff = math.max(w, h), math.abs(w - h)
  local before = centred and (diff - tfjs.js_round(diff / 2)) or 0
  if w < h then return side, before, 0 end
  return side, 0, before
end

--- face-api toBatchTensor(size, centred) followed by normalize(x, mean)/255:
-- a [1,3,size,size] float tensor, computed in one pass from the 8-bit
-- image (img:to_square_tensor: the padded square is never materialised).
function tfjs.to_batch_tensor(img, size, centred, mean)
  return as_rgb(img):to_square_tensor(size, {centred = centred, scale = 1, mean = mean, std = {255, 255, 255}})
    :view(1, 3, size, size)
end

--- Checks that tensors[name] exists with the given shape; returns it, or
-- nil and a message.
function tfjs.tensor_of(tensors, name, shape, path)
  local t = tensors[name]
  local want = "[" .. table.concat(shape, ",") .. "]"
  if not t then
    return nil, string.format("%s: missing tensor '%s' %s", path, name, want)
  end
  if shape_str(t) ~= want then
    return nil, string.format("%s: tensor '%s' has shape %s, expected %s", path, name, shape_str(t), want)
  end
  return t
end

--- Copies a face-api HWIO filter [kh,kw,in,out] (regular or pointwise)
-- into a Conv2d weight [out,in,kh,kw].
function tfjs.copy_hwio(conv, hwio)
  -- (h,w,i,o) -> (o,w,i,h) -> (o,i,w,h) -> (o,i,h,w)
  conv.weight:copy(hwio:transpose(1, 4):transpose(2, 3):transpose(3, 4))
end

--- Copies a face-api depthwise filter [kh,kw,c,1] into a depthwise Conv2d
-- weight [c,1,kh,kw].
function tfjs.copy_depthwise(conv, filter)
  -- (h,w,c,1) -> (c,w,h,1) -> (c,1,h,w)
  conv.weight:copy(filter:transpose(1, 3):transpose(2, 4))
end

--- A depthwise-separable convolution as two Conv2d: depthwise 3x3 (no
-- bias) with the given stride and padding, then pointwise 1x1 with the bias.
function tfjs.separable(cin, cout, stride, padding)
  return nn.Sequential{
    nn.Conv2d(cin, cin, 3, {stride = stride, padding = padding, groups = cin, bias = false}),
    nn.Conv2d(cin, cout, 1),
  }
end

--- Fills a regular Conv2d from prefix/filters and prefix/bias.
-- Returns true, or nil and a message.
function tfjs.load_conv(conv, tensors, prefix, path)
  local f, err = tfjs.tensor_of(tensors, prefix .. "/filters", {conv.kh, conv.kw, conv.nin, conv.nout}, path)
  if not f then return nil, err end
  local b, berr = tfjs.tensor_of(tensors, prefix .. "/bias", {conv.nout}, path)
  if not b then return nil, berr end
  tfjs.copy_hwio(conv, f)
  conv.bias:copy(b)
  return true
end

--- Fills a separable block (see tfjs.separable) from
-- prefix/depthwise_filter, prefix/pointwise_filter and prefix/bias.
-- Returns true, or nil and a message.
function tfjs.load_separable(block, tensors, prefix, path)
  local dw, pw = block.modules[1], block.modules[2]
  local d, derr = tfjs.tensor_of(tensors, prefix .. "/depthwise_filter", {3, 3, dw.nin, 1}, path)
  if not d then return nil, derr end
  local p, perr = tfjs.tensor_of(tensors, prefix .. "/pointwise_filter", {1, 1, pw.nin, pw.nout}, path)
  if not p then return nil, perr end
  local b, berr = tfjs.tensor_of(tensors, prefix .. "/bias", {pw.nout}, path)
  if not b then return nil, berr end
  tfjs.copy_depthwise(dw, d)
  tfjs.copy_hwio(pw, p)
  pw.bias:copy(b)
  return true
end

return tfjs
