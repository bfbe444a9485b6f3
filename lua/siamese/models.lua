--- siamese.models: where the bundled networks are. The converted weights
-- (`*.safetensors`) and the encoder definitions (`*_encoder.lua`) of
-- `models/` are found here by the face pipeline and by siamese.encoder.
local models = {}

--- The folder of the bundled models: $SIAMESE_MODELS, else the models/ of
-- the checkout this file is in, else the installed copy (make install and
-- LuaRocks put it in siamese/face/models beside this file).
function models.dir()
  local env = os.getenv("SIAMESE_MODELS")
  if env then return env end
  local source = debug.getinfo(1, "S").source
  local candidates = {}
  local checkout = source:match("^@(.*)lua/siamese/models%.lua$")
  if checkout then candidates[#candidates + 1] = checkout .. "models" end
  local here = source:match("^@(.*)/models%.lua$")
  if here then candidates[#candidates + 1] = here .. "/face/models" end
  for _, dir in ipairs(candidates) do
    local f = io.open(dir .. "/faceapi_recognition.safetensors", "rb")
    if f then
      f:close()
      return dir
    end
  end
  return candidates[1] or "models"
end

return models
