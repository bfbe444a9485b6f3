-- Processor time of the face pipeline's stages, one thread: the measure
-- that stays meaningful when other jobs share the machine (wall-clock time
-- then mostly measures waiting). Prints one JSON object per line, the best
-- of three runs of >= 0.3 s each. Run it in two checkouts to compare them:
--   make && LUA_PATH_5_4="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH_5_4="./build/?.so;;" \
--     lua5.4 spec/bench/face_cpu.lua
local siamese = require "siamese"
local json = require "siamese.json"

siamese.set_num_threads(1)
local fr = assert(siamese.face.load())
local photo = assert(siamese.image.load("spec/fixtures/faceapi/sample1.jpg"))
local faces = fr:detect(photo)
local chip = fr:align(photo, faces[1])
local chips = {}
for i = 1, 16 do chips[i] = chip end

-- processor milliseconds per call of fn
local function cpu_ms(fn)
  fn()
  local best = math.huge
  for _ = 1, 3 do
    local n, t0 = 0, os.clock()
    repeat
      fn()
      n = n + 1
    until os.clock() - t0 >= 0.3
    best = math.min(best, (os.clock() - t0) / n)
  end
  return best * 1000
end

local rows = {
  {"face_embed_b1_cpu", "ms/face", function() fr:embed(chip) end, 1},
  {"face_embed_b16_cpu", "ms/face", function() fr:embed_batch(chips) end, 16},
  {"face_detect_1920x1280_cpu", "ms/photo", function() fr.detector:detect(photo) end, 1},
  {"face_pipeline_1920x1280_3_faces_cpu", "ms/photo", function() fr:embed_all(photo) end, 1},
}
for _, r in ipairs(rows) do
  io.write(json.encode{name = r[1], value = cpu_ms(r[3]) / r[4], unit = r[2], threads = 1}, "\n")
  io.flush()
end
