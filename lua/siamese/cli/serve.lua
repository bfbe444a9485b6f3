--- siamese serve: the web demo (verify, enroll, identify from a browser).
local args = require "siamese.cli.args"

local serve = {
  summary = "web demo: verify, enroll and identify faces from a browser",
  usage = [[
usage: siamese serve --gallery FILE [--port N] [--host ADDR]
                     [--threshold T] [--max-upload BYTES] [--max-pixels N]
                     [--threads N] [--quiet]

Serves the demo page and its JSON API (POST /api/verify, /api/enroll,
/api/identify, GET /api/people; see README "Web demo") on
http://ADDR:N/ (default 127.0.0.1:8080; --port 0 picks a free port, printed
on the first line). FILE is the gallery enrollments are saved to (created
on the first enrollment). --threshold sets the gallery's acceptance distance
(default 0.6 for a new gallery). Uploads over --max-upload bytes (default
10485760) and images over --max-pixels pixels are refused with 413.
--threads sets the threads of the face networks (default: all cores;
requests are computed one at a time). Each request is logged on stderr
unless --quiet. Stop with Ctrl-C.]],
}

local SPEC = {
  gallery = {kind = "string"},
  port = {kind = "number", default = 8080},
  host = {kind = "string", default = "127.0.0.1"},
  threshold = {kind = "number"},
  max_upload = {kind = "number"},
  max_pixels = {kind = "number"},
  threads = {kind = "number"},
  quiet = {kind = "flag", default = false},
}

function serve.run(argv)
  local cli = require "siamese.cli"
  local opts, rest = args.parse(argv, SPEC)
  if not opts then return cli.fail(rest, serve.usage) end
  if #rest > 0 then return cli.fail("unexpected argument '" .. rest[1] .. "'", serve.usage) end
  if not opts.gallery then return cli.fail("--gallery FILE is required", serve.usage) end
  if opts.port ~= math.floor(opts.port) or opts.port < 0 or opts.port > 65535 then
    return cli.fail("--port must be an integer 0..65535, got " .. tostring(opts.port))
  end
  for _, k in ipairs{"max_upload", "max_pixels", "threads"} do
    local v = opts[k]
    if v and (v ~= math.floor(v) or v < 1) then
      return cli.fail("--" .. k:gsub("_", "-") .. " must be a positive integer, got " .. tostring(v))
    end
  end
  if opts.threshold and (opts.threshold <= 0 or opts.threshold ~= opts.threshold) then
    return cli.fail("--threshold must be positive, got " .. tostring(opts.threshold))
  end
  if opts.threads then require("siamese").set_num_threads(math.tointeger(opts.threads)) end
  local deps = require "siamese.web.deps"
  local ok, err = deps.setup()
  if not ok then return cli.fail(err) end
  local server = require "siamese.web.server"
  local listener = require "siamese.web.listener"
  local app, aerr = server.new{gallery = opts.gallery, threshold = opts.threshold,
                               max_upload = opts.max_upload and math.tointeger(opts.max_upload),
                               max_pixels = opts.max_pixels and math.tointeger(opts.max_pixels)}
  if not app then return cli.fail(aerr) end
  local log = opts.quiet and function() end or function(line)
    io.stderr:write(os.date("!%H:%M:%S "), line, "\n")
  end
  local l, lerr = listener.start(app, {host = opts.host, port = math.tointeger(opts.port), log = log})
  if not l then return cli.fail(lerr) end
  local host = l.host:find(":", 1, true) and ("[" .. l.host .. "]") or l.host
  io.stdout:write(("siamese serve: listening on http://%s:%d/ (gallery %s, %d people, threshold %g)\n")
    :format(host, l.port, opts.gallery, app.g:count(), app.g:threshold()))
  io.stdout:flush()
  local lok, loop_err = l.loop()
  if not lok then return cli.fail("server stopped: " .. tostring(loop_err)) end
  return 0
end

return serve
