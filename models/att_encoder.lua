-- The AT&T face encoder (models/att_encoder.safetensors): the network that
-- examples/train_att_unseen.lua trains, for siamese.encoder.load("att").
--
-- Input [N,1,56,46]: a gray face resized to 46x56 (area filter), pixels
-- scaled to [0,1] then normalised (x - 0.5) / 0.5. Output [N,dim]: unit
-- vectors (L2-normalised), compared with euclidean distance.
--
--   3 x [conv 3x3 (padding 1) - batch-norm - ReLU - max-pool 2x2]
--       1 -> w -> 2w -> 4w channels, 56x46 -> 28x23 -> 14x11 -> 7x5
--   flatten (4w*7*5) - dropout - linear -> dim - L2-normalise
--
-- opts: width w (default 16), dim (default 64), dropout (default 0.2),
-- normalise (default true; false leaves the embeddings unnormalised, for
-- the BCE head of examples/att_common.lua).
-- With the defaults: 166,944 parameters, ~6.4 M multiply-adds per face.
local nn = require("siamese").nn

return function(opts)
  opts = opts or {}
  local w, dim = opts.width or 16, opts.dim or 64
  local function stage(cin, cout)
    return nn.Conv2d(cin, cout, 3, {padding = 1}), nn.BatchNorm2d(cout), nn.ReLU(true), nn.MaxPool2d(2)
  end
  local layers = {}
  for _, s in ipairs{{1, w}, {w, 2 * w}, {2 * w, 4 * w}} do
    for _, m in ipairs{stage(s[1], s[2])} do layers[#layers + 1] = m end
  end
  for _, m in ipairs{nn.Flatten(), nn.Dropout(opts.dropout or 0.2), nn.Linear(4 * w * 7 * 5, dim)} do
    layers[#layers + 1] = m
  end
  if opts.normalise ~= false then layers[#layers + 1] = nn.L2Normalize() end
  return nn.Sequential(layers)
end
