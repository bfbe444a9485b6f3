-- Time of the face pipeline's stages, to compare two checkouts run one
-- after the other (make bench gives the figures with references measured
-- in the same run). SIAMESE_THREADS (default 2) sets the thread count;
-- CLOCK=cpu measures processor time instead of wall-clock time (use it with
-- SIAMESE_THREADS=1 when other jobs share the machine: wall-clock time then
-- mostly measures waiting). One JSON object per line, the best of three
-- runs of >= 0.3 s each:
--   make && LUA_PATH_5_4="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH_5_4="./build/?.so;;" \
--     lua5.4 spec/bench/face_stages.lua
local siamese = require "siamese"
local json = require "siamese.json"

local threads = tonumber(os.getenv("SIAMESE_THREADS") or "") or 2
local cpu = os.getenv("CLOCK") == "cpu"
local clock = cpu and os.clock or siamese.clock
siamese.set_num_threads(threads)
local fr = assert(siamese.face.load{model = "faceapi"})
local ssd = assert(require("siamese.face.ssd").load())
local photo = assert(siamese.image.load("spec/fixtures/faceapi/sample1.jpg"))
local faces = fr:detect(photo)
local chip = fr:align(photo, faces[1])
local chips = {}
for i = 1, 16 do chips[i] = chip end

-- milliseconds per call of fn
local function ms(fn)
  fn()
  local best = math.huge
  for _ = 1, 3 do
    local n, t0 = 0, clock()
    repeat
      fn()
      n = n + 1
    until clock() - t0 >= 0.3
    best = math.min(best, (clock() - t0) / n)
  end
  return best * 1000
end

local rows = {
  {"face_embed_b1", "ms/face", function() fr:embed(chip) end, 1},
  {"face_embed_b16", "ms/face", function() fr:embed_batch(chips) end, 16},
  {"face_detect_1920x1280", "ms/photo", function() fr.detector:detect(photo) end, 1},
  {"face_detect_ssd_1920x1280", "ms/photo", function() ssd:detect(photo) end, 1},
  {"face_pipeline_1920x1280_3_faces", "ms/photo", function() fr:embed_all(photo) end, 1},
}
for _, r in ipairs(rows) do
  io.write(json.encode{name = r[1], value = ms(r[3]) / r[4], unit = r[2], threads = threads,
                       clock = cpu and "processor" or "wall"}, "\n")
  io.flush()
end
