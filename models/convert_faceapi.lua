-- Converts face-api's pretrained networks into safetensors files in models/.
--
--   lua5.4 models/convert_faceapi.lua [OUT_DIR]      (or: make models)
--
-- Source: the npm package @vladmandic/face-api@1.7.15 (MIT), fetched with
-- `npm pack` and checked against the pinned sha256 below. For each network
-- the tfjs weight manifest lists the tensors (name, shape, dtype,
-- optional uint8 quantisation with scale and min) in the order they are
-- concatenated in the .bin file. The output keeps every tensor as stored:
-- quantised ones as their U8 codes, float32 ones as F32, so the models stay
-- small (the recognition net is 6.4 MB instead of 22.5 MB); the metadata
-- records each code's scale and min, and siamese.face.weights dequantises
-- on load exactly as tfjs does, (float)(q * scale + min) in double.
-- Rerunning the converter reproduces the files byte for byte.
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./build/?.so;" .. package.cpath
local json = require "siamese.json"
local safetensors = require "siamese.safetensors"

local PACKAGE = "@vladmandic/face-api@1.7.15"
local TARBALL = "vladmandic-face-api-1.7.15.tgz"
local SHA256 = "0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031"
local NETWORKS = {
  {manifest = "face_recognition_model", out = "faceapi_recognition.safetensors",
   description = "face-api FaceRecognitionNet: ResNet-34-style, 150x150 RGB input, 128-D descriptor"},
  {manifest = "tiny_face_detector_model", out = "faceapi_tiny_detector.safetensors",
   description = "face-api TinyFaceDetector: Tiny-YOLOv2 with separable convolutions, 5 anchors"},
  {manifest = "face_landmark_68_tiny_model", out = "faceapi_landmarks68_tiny.safetensors",
   description = "face-api FaceLandmark68TinyNet: 112x112 RGB input, 68 points"},
  {manifest = "face_landmark_68_model", out = "faceapi_landmarks68.safetensors",
   description = "face-api FaceLandmark68Net: 112x112 RGB input, 68 points (4 dense blocks of 4 convolutions)"},
  {manifest = "ssd_mobilenetv1_model", out = "faceapi_ssd_mobilenetv1.safetensors",
   description = "face-api SsdMobilenetv1: SSD with a MobileNet v1 backbone, 512x512 RGB input, 5118 anchors"},
}
-- Stored element types: tfjs manifest dtype -> safetensors dtype and size.
local STORED = {uint8 = {"U8", 1}, float16 = {"F16", 2}, float32 = {"F32", 4}, int32 = {"I32", 4}}

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  if not ok then error(string.format("command failed (%s): %s\n%s", tostring(code), cmd, out), 0) end
  return out
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function fetch(dir)
  io.stderr:write("convert_faceapi: npm pack ", PACKAGE, "\n")
  run(string.format("cd '%s' && npm pack --silent '%s'", dir, PACKAGE))
  local sum = run(string.format("sha256sum '%s/%s'", dir, TARBALL)):match("^(%x+)")
  if sum ~= SHA256 then
    error(string.format("%s: sha256 %s, expected %s (refusing an unexpected package)", TARBALL, sum, SHA256), 0)
  end
  run(string.format("cd '%s' && tar xzf '%s' package/model package/demo", dir, TARBALL))
  return dir .. "/package"
end

local function convert(pkg, net, out_dir)
  local groups = assert(json.decode(read(string.format("%s/model/%s-weights_manifest.json", pkg, net.manifest))))
  local entries, quantization, order = {}, {}, {}
  for _, group in ipairs(groups) do
    local blob = {}
    for _, p in ipairs(group.paths) do blob[#blob + 1] = read(pkg .. "/model/" .. p) end
    blob = table.concat(blob)
    local offset = 0
    for _, w in ipairs(group.weights) do
      local n = 1
      for _, d in ipairs(w.shape) do n = n * d end
      local q = w.quantization
      local stored = STORED[q and q.dtype or w.dtype]
      if not stored then error(net.manifest .. ": unsupported dtype for " .. w.name, 0) end
      local size = n * stored[2]
      if offset + size > #blob then error(net.manifest .. ": .bin too short at " .. w.name, 0) end
      entries[w.name] = safetensors.raw(stored[1], w.shape, blob:sub(offset + 1, offset + size))
      if q then
        -- tfjs Math.rounds dequantised int32 tensors (only in the SSD net:
        -- graph constants); the flag is absent for float32 ones, so the
        -- other files stay byte-identical.
        quantization[w.name] = {scale = q.scale, min = q.min, dtype = q.dtype,
                                original_dtype = w.dtype ~= "float32" and w.dtype or nil}
      end
      order[#order + 1] = w.name
      offset = offset + size
    end
    if offset ~= #blob then error(net.manifest .. ": .bin has trailing bytes", 0) end
  end
  local path = out_dir .. "/" .. net.out
  assert(safetensors.save(path, entries, {
    format = "faceapi-tfjs",
    source = PACKAGE .. " model/" .. net.manifest,
    source_sha256 = SHA256,
    license = "MIT (face-api, Vladimir Mandic; models trained by Vincent Muehler / dlib)",
    description = net.description,
    quantization = quantization,
    order = json.array(order),
  }))
  io.stderr:write(string.format("convert_faceapi: wrote %s (%d tensors)\n", path, #order))
end

local out_dir = arg[1] or "models"
local tmp = run("mktemp -d"):gsub("%s+$", "")
local ok, err = pcall(function()
  local pkg = fetch(tmp)
  for _, net in ipairs(NETWORKS) do convert(pkg, net, out_dir) end
end)
run(string.format("rm -rf '%s'", tmp))
if not ok then
  io.stderr:write("convert_faceapi: ", tostring(err), "\n")
  os.exit(1)
end
