-- siamese.models: where the bundled networks are found.
local models = require "siamese.models"

describe("siamese.models.dir", function()
  it("is the checkout's models folder, which holds the bundled networks", function()
    local dir = models.dir()
    assert.truthy(dir:match("models$"))
    local f = io.open(dir .. "/faceapi_recognition.safetensors", "rb")
    assert.truthy(f, dir)
    f:close()
    assert.truthy(io.open(dir .. "/att_encoder.lua", "r")):close()
  end)

  it("follows SIAMESE_MODELS when it is set", function()
    local p = assert(io.popen("SIAMESE_MODELS=/nowhere/models LUA_PATH_5_4='./lua/?.lua;;' lua5.4 -e "
                              .. "'io.write(require(\"siamese.models\").dir())'"))
    local out = p:read("a")
    p:close()
    assert.equal("/nowhere/models", out)
  end)
end)
