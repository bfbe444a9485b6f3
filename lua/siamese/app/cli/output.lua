--- siamese.app.cli.output: how the commands report: counts ("2 identities"),
-- numbers, boxes and decisions rounded as siamese.door reports them (one
-- vocabulary for the commands and the web API), progress lines on stderr
-- and saved face chips.
local output = {}

--- "1 identity", "2 identities".
function output.plural(n, one, many)
  return string.format("%d %s", n, n == 1 and one or many)
end

-- Numbers, boxes and decisions are printed as siamese.door reports them
-- (one vocabulary and one rounding for the commands and the web API).
local door_json = setmetatable({}, {__index = function(_, k) return require("siamese.door")[k] end})

--- A box with rounded numbers for output (nil when none).
function output.box(b)
  if not b then return nil end
  return door_json.json_box(b)
end

--- A number for JSON output rounded to 4 decimals, or json.null.
function output.number(v) return door_json.json_number(v) end

--- The quality verdict of a face for JSON.
function output.quality_json(q) return door_json.json_quality(q) end

--- A door decision for JSON (siamese.door.json).
function output.decision_json(r, extra) return door_json.json(r, extra) end

--- A progress printer for long jobs: call p(i, n) after each item; it
-- writes "label: i/n items, rate/s, ETA" to stderr at most every 2 s.
function output.progress(label, what)
  local siamese = require "siamese"
  local start, last = siamese.clock(), -math.huge
  return function(i, n)
    local now = siamese.clock()
    if now - last < 2 and i < n then return end
    last = now
    require("siamese.app.cli").line_open = i < n -- Ctrl-C then ends the line first
    local rate = i / math.max(now - start, 1e-9)
    io.stderr:write(string.format("\r%s: %d/%d %s, %.1f %s/s, ETA %ds   ", label, i, n, what, rate, what,
      math.floor((n - i) / rate + 0.5)))
    if i == n then io.stderr:write("\n") end
  end
end

--- Saves a face's chip (or crop) as PNG under dir; returns the path or nil.
function output.save_chip(dir, stem, f)
  if not (dir and f.chip) then return nil end
  if not require("siamese.fs").mkdir_p(dir) then return nil end
  local path = string.format("%s/%s.png", dir, stem)
  if f.chip:save(path) then return path end
  return nil
end

return output
