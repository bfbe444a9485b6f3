-- Smoke specs of the training examples, run as separate processes on tiny
-- budgets (one or two steps): they finish, print a JSON object last with
-- the promised fields, write their checkpoints, and a finished run resumed
-- from its last checkpoint evaluates to the same figures. The AT&T ones
-- need ../shared/data/att_faces and are pending without it.
local json = require "siamese.json"
local support = dofile("spec/support.lua")

local build = os.getenv("SIAMESE_BUILD") or "build"
local ENV = string.format('LUA_PATH_5_4="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH_5_4="./%s/?.so;;" ', build)
local ATT = "../shared/data/att_faces"

-- Runs an example; returns the decoded last stdout line, stderr and the exit code.
local function run(script, args)
  local err = os.tmpname()
  local p = assert(io.popen(ENV .. "lua5.4 examples/" .. script .. " " .. args .. " 2>" .. err))
  local out = p:read("a")
  local _, _, code = p:close()
  local errtext = support.read_file(err)
  os.remove(err)
  local last = out:match("([^\n]+)\n?$")
  local ok, result = pcall(json.decode, last or "")
  assert(code == 0 and ok, "examples/" .. script .. " failed (" .. tostring(code) .. "):\n" .. errtext)
  return result, errtext
end

local function have_att()
  local f = io.open(ATT .. "/s1/1.pgm", "rb")
  if f then f:close() end
  return f ~= nil
end

describe("training examples", function()
  local dir
  before_each(function() dir = support.temp_dir("examples") end)
  after_each(function()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("train_att_unseen.lua: JSON result, checkpoints, resume", function()
    if not have_att() then pending("needs " .. ATT) return end
    local args = ATT .. " --loss triplet --epochs 2 --steps 1 --threads 1 --out " .. dir
    local r, err = run("train_att_unseen.lua", args .. " --export " .. dir .. "/enc.safetensors")
    for _, key in ipairs{"accuracy", "auc", "eer", "one_shot", "pairs_per_s", "seconds", "threshold"} do
      assert.is_number(r[key], key)
    end
    assert.is_true(r.accuracy > 0.5 and r.auc > 0.5 and r.one_shot > 0.1)
    assert.matches("epoch 1/2 step 1/1 loss", err)
    assert.matches("unseen people", err)
    local names = support.list_dir(dir)
    assert.are.same({"best.safetensors", "enc.safetensors", "last.safetensors"}, names)
    local enc = assert(require("siamese").encoder.load(dir .. "/enc.safetensors"))
    assert.are.equal(64, enc.dim)
    -- the finished run, resumed: no more training, the same best epoch evaluated
    local again = run("train_att_unseen.lua", args .. " --resume 1")
    assert.are.equal(r.accuracy, again.accuracy)
    assert.are.equal(r.one_shot, again.one_shot)
    assert.are.equal(r.best_epoch, again.best_epoch)
  end)

  it("train_att.lua (classic protocol, BCE head): JSON result", function()
    if not have_att() then pending("needs " .. ATT) return end
    local r = run("train_att.lua", ATT .. " --recipe ours --loss bce --epochs 1 --steps 1 --threads 1 --out " .. dir)
    for _, key in ipairs{"accuracy", "auc", "pairs_per_s", "seconds"} do assert.is_number(r[key], key) end
    assert.are.equal("bce", r.loss)
  end)

  it("train_att.lua (the seed's recipe, the default): contrastive, classic encoder, threshold 0.5", function()
    if not have_att() then pending("needs " .. ATT) return end
    local r = run("train_att.lua", ATT .. " --epochs 1 --steps 2 --threads 1 --out " .. dir)
    for _, key in ipairs{"accuracy", "auc", "pairs_per_s", "seconds"} do assert.is_number(r[key], key) end
    assert.are.same({"seed", "contrastive", "classic", 0.5}, {r.recipe, r.loss, r.encoder, r.threshold})
  end)

  it("finetune_faces.lua on the bundled faces: before and after", function()
    local r, err = run("finetune_faces.lua", "examples/data/faces --test 2 --epochs 1 --steps 1 --threads 1")
    for _, part in ipairs{"before", "after"} do
      for _, key in ipairs{"auc", "eer", "accuracy", "one_shot"} do assert.is_number(r[part][key], part .. key) end
    end
    assert.are.equal(25, r.chips)
    assert.matches("trainable parameters: 1212928 of 5607488", err)
  end)
end)
