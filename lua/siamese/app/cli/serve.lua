--- siamese serve: the web demo (verify, enroll, identify from a browser).
local args = require "siamese.app.cli.args"
local photo_options = require "siamese.app.cli.photo_options"

local serve = {
  summary = "web demo: verify, enroll and identify faces from a browser",
  usage = [=[
usage: siamese serve --gallery FILE [--port N] [--host ADDR]
                     [--threshold T] [--max-upload BYTES] [--max-pixels N]
                     [--max-connections N] [--idle-timeout S]
                     [--request-timeout S] [--workers N]
                     [--allowed-host NAMES] [--tls-cert FILE --tls-key FILE]
                     [--insecure-http] [--threads N]
                     [--pipeline mobilefacenet|faceapi] [--min-face N]
                     [--detector tiny|ssd] [--quiet] [--json]]=],
  description = [[
Serves the demo page and its JSON API (POST /api/verify, /api/enroll,
/api/identify, /api/remove, /api/rename, GET /api/people; see
lua/siamese/app/web/README.md) on http://ADDR:N/ (default 127.0.0.1:8080;
--port 0 picks a free port, printed on the first line).

Who may do what: once FILE.tokens holds a token (siamese token add), every
API call needs one ("Authorization: Bearer TOKEN"; the page asks for it):
admin tokens enrol, remove, rename and list the people, door tokens verify
and identify. Without tokens the API is open, which is allowed on a
loopback address only: on any other ADDR the server refuses to start
without tokens, and without TLS (--tls-cert/--tls-key, or a TLS proxy in
front that connects over 127.0.0.1, see examples/nginx) unless
--insecure-http. Requests must name this server in Host (loopback names,
ADDR, or --allowed-host names) and come from its own page or from a
non-browser client (cross-site requests: 403). Every API call made with a
valid token (and every open-API call) is recorded in the append-only audit
log FILE.audit (siamese audit).
 FILE is the gallery enrollments are saved to (created
on the first enrollment). The face pipeline is the gallery's (one that
--pipeline names otherwise is refused); a new gallery takes --pipeline's
(default mobilefacenet) and its metric (cosine for mobilefacenet,
euclidean for faceapi). --threshold sets the gallery's acceptance distance
(default for a new gallery: the pipeline's, cosine 0.549 for mobilefacenet,
euclidean 0.6 for faceapi). Uploads over --max-upload bytes (default
10485760) and images over --max-pixels pixels (default 24000000) are
refused with 413.
Malformed or oversized requests get a JSON 4xx (README "Web demo"); a
request must arrive with no pause over --idle-timeout seconds (default 10;
also the limit for the request line and headers, and the keep-alive wait)
and whole within --request-timeout seconds (default 60), else 408; beyond
--max-connections simultaneous connections (default 64) a client gets 503.
The face routes (verify, enroll, identify) are computed side by side in
--workers worker processes (default: one per core, 2..16), forked at
start-up; this process reads the requests, answers the page and GET
/api/people itself (never waiting for a face computation), refuses images
over --max-pixels with 413 before they reach a worker, and queues face
requests while every worker is busy (beyond 64 waiting: 503). A worker
that dies is replaced. --threads sets each worker's threads for the face
networks (default: cores / workers, at least 1). Each request is logged on
stderr unless --quiet. Stop with Ctrl-C (or SIGTERM): the workers stop too.]],
}

serve.DEFAULT_MAX_PIXELS = 24000000

local SPEC = {
  gallery = {kind = "string", arg = "FILE", help = "the gallery (created on the first enrollment)"},
  port = {kind = "number", default = 8080, arg = "N", help = "0..65535 (default 8080; 0: a free port)"},
  host = {kind = "string", default = "127.0.0.1",
          arg = "ADDR", help = "the address to listen on (default 127.0.0.1)"},
  threshold = {kind = "number", arg = "T", help = "the acceptance distance (in (0, 2))"},
  max_upload = {kind = "number", arg = "BYTES", help = "the largest upload (default 10485760)"},
  max_connections = {kind = "number", arg = "N", help = "simultaneous connections (default 64; more: 503)"},
  idle_timeout = {kind = "number",
                  arg = "S", help = "seconds of silence allowed while a request is read, and for its head "
                    .. "as a whole (default 10; else 408)"},
  request_timeout = {kind = "number",
                     arg = "S", help = "seconds for a whole request, body included (default 60)"},
  workers = {kind = "number",
             arg = "N", help = "worker processes for the face routes (1..16; default the number of cores, "
               .. "at least 2)"},
  allowed_host = {kind = "string",
                  arg = "NAMES", help = "more names the server answers to in the Host header "
                    .. "(comma-separated NAME or NAME:PORT; e.g. the name a reverse proxy forwards)"},
  tls_cert = {kind = "string", arg = "FILE", help = "serve HTTPS: the certificate chain (PEM)"},
  tls_key = {kind = "string", arg = "FILE", help = "its private key (PEM, mode 0600)"},
  insecure_http = {kind = "flag", default = false, help = "allow plain HTTP on a non-loopback address"},
  quiet = {kind = "flag", default = false, help = "no request log"},
  json = {kind = "flag", default = false,
          help = 'the first line as JSON: {"url", "gallery", "identities", "threshold", "workers": [pids], '
            .. '"auth": "tokens"|"open", "audit"} (errors: {"error"})'},
}
photo_options.merge(SPEC)
serve.spec = SPEC

function serve.run(argv)
  local cli = require "siamese.app.cli"
  local opts, rest = args.parse(argv, SPEC)
  if not opts then return cli.fail(rest, serve.usage) end
  if #rest > 0 then return cli.fail("unexpected argument '" .. rest[1] .. "'", serve.usage) end
  if not opts.gallery then return cli.fail("--gallery FILE is required", serve.usage) end
  local port = math.tointeger(opts.port)
  if not port or port < 0 or port > 65535 then
    return cli.fail("--port must be an integer from 0 to 65535, got " .. tostring(opts.port), serve.usage)
  end
  local max_upload = opts.max_upload and math.tointeger(opts.max_upload)
  if opts.max_upload and (not max_upload or max_upload < 1) then
    return cli.fail("--max-upload must be a positive integer, got " .. tostring(opts.max_upload), serve.usage)
  end
  local max_conn = opts.max_connections and math.tointeger(opts.max_connections)
  if opts.max_connections and (not max_conn or max_conn < 1) then
    return cli.fail("--max-connections must be a positive integer, got " .. tostring(opts.max_connections), serve.usage)
  end
  for _, k in ipairs{"idle_timeout", "request_timeout"} do
    local v = opts[k]
    if v and not (v > 0 and v <= 86400) then
      return cli.fail(("--%s must be a number of seconds in (0, 86400], got %s"):format((k:gsub("_", "-")), tostring(v)),
                      serve.usage)
    end
  end
  if opts.threshold then
    local tok, terr = require("siamese.door").check_threshold(opts.threshold, "euclidean", "--threshold")
    if not tok then return cli.fail(terr, serve.usage) end
  end
  local guard = require "siamese.app.web.guard"
  local allowed_hosts = {}
  if opts.allowed_host then
    for item in (opts.allowed_host .. ","):gmatch("([^,]*),") do
      item = item:match("^%s*(.-)%s*$")
      if item == "" or not guard.parse_host(item) then
        return cli.fail(("--allowed-host: '%s' is not a host name (NAME or NAME:PORT)"):format(
          guard.printable(item, 80)), serve.usage)
      end
      allowed_hosts[#allowed_hosts + 1] = item
    end
  end
  if (opts.tls_cert == nil) ~= (opts.tls_key == nil) then
    return cli.fail("--tls-cert and --tls-key go together", serve.usage)
  end
  local deps = require "siamese.app.web.deps"
  local ok, err = deps.setup()
  if not ok then return cli.fail(err) end
  local tls_ctx
  if opts.tls_cert then
    local terr
    tls_ctx, terr = require("siamese.app.web.tls").context(opts.tls_cert, opts.tls_key)
    if not tls_ctx then return cli.fail(terr) end
  end
  -- A gallery in PostgreSQL: no connection may be open when the workers
  -- are forked (a child would share its socket), so the token store is
  -- read here and opened again after the fork, and the front's app (a
  -- replica of the gallery) is made after it too.
  local in_db = require("siamese.pg").is_url(opts.gallery)
  if in_db then
    local nopw, pwerr = require("siamese.app.cli.galleries").no_password(opts.gallery)
    if not nopw then return cli.fail(pwerr) end
  end
  local tokens = require "siamese.app.web.tokens"
  local store, serr0 = tokens.open(tokens.path_for(opts.gallery))
  if not store then return cli.fail(serr0) end
  local listed, lerr0 = store:list()
  if in_db then store:close() end
  if not listed then return cli.fail(lerr0) end
  local loopback = guard.is_loopback(opts.host)
  if not loopback then
    if #listed == 0 then
      return cli.fail(("refusing to listen on %s without access tokens: anyone on the network could enrol. "
        .. "Add them first (siamese token add --gallery %s --role admin, and --role door for each door)")
        :format(opts.host, opts.gallery))
    end
    if not tls_ctx and not opts.insecure_http then
      return cli.fail(("refusing to serve plain HTTP on %s: tokens and photos would cross the network in clear. "
        .. "Give --tls-cert FILE --tls-key FILE, or listen on 127.0.0.1 behind a TLS proxy (examples/nginx), "
        .. "or accept the risk with --insecure-http"):format(opts.host))
    end
  end
  local workers = require "siamese.app.web.workers"
  local siamese = require "siamese"
  local cores = siamese.get_num_threads() -- omp_get_max_threads: starts no thread
  local n_workers = opts.workers and math.tointeger(opts.workers)
  if opts.workers and (not n_workers or n_workers < 1 or n_workers > workers.MAX_WORKERS) then
    return cli.fail(("--workers must be an integer from 1 to %d, got %s"):format(workers.MAX_WORKERS,
                    tostring(opts.workers)), serve.usage)
  end
  n_workers = n_workers or math.min(workers.MAX_WORKERS, math.max(2, cores))
  -- a photo over 24 MP (6000x4000) would keep a worker busy for seconds:
  -- refused by the front unless --max-pixels allows it
  if opts.max_pixels == nil then opts.max_pixels = serve.DEFAULT_MAX_PIXELS end
  local pok, perr = photo_options.apply(opts)
  if not pok then return cli.fail(perr, serve.usage) end
  local server = require "siamese.app.web.server"
  local listener = require "siamese.app.web.listener"
  local log = opts.quiet and function() end or function(line)
    io.stderr:write(os.date("!%H:%M:%S "), line, "\n")
  end
  -- The front's own app answers GET / and GET /api/people: it reads the
  -- gallery but never computes a face, so its recognizer is a stand-in
  -- with the model id only (the front must run no kernel: it forks).
  -- The pipeline: an existing gallery's own (a --pipeline that differs
  -- is refused), else --pipeline's (siamese.face.DEFAULT_MODEL by default).
  local encoders = require "siamese.app.cli.encoders"
  local galleries = require "siamese.app.cli.galleries"
  local exists, xerr = galleries.gallery_exists(opts.gallery)
  if exists == nil then return cli.fail(xerr) end
  if exists then
    local g0, gerr = require("siamese.gallery").load(opts.gallery)
    if not g0 then return cli.fail("cannot load gallery " .. opts.gallery .. ": " .. tostring(gerr)) end
    local id = g0:model()
    if g0.close then g0:close() end
    local gp = encoders.pipeline_of(id)
    if gp and gp ~= opts.pipeline then
      if opts.pipeline_explicit then
        return cli.fail(("%s: gallery made with the %s pipeline (model %s), not --pipeline %s: use --pipeline %s, "
          .. "or serve a new gallery"):format(opts.gallery, gp, id, opts.pipeline, gp))
      end
      opts.pipeline = gp
      local cok, cerr = photo_options.check_pipeline(opts)
      if not cok then return cli.fail(cerr .. " (" .. opts.gallery .. " was made with the " .. gp .. " pipeline)") end
    end
  end
  local front_fr, ferr = workers.front_recognizer{pipeline = opts.pipeline}
  if not front_fr then return cli.fail(ferr) end
  local app_opts = {gallery = opts.gallery, threshold = opts.threshold, recognizer = front_fr,
                    max_upload = max_upload, max_pixels = opts.max_pixels}
  local app, aerr
  if not in_db then
    app, aerr = server.new(app_opts)
    if not app then return cli.fail(aerr) end
  end
  local signal = require "cqueues.signal"
  signal.block(signal.SIGTERM, signal.SIGINT) -- handled in the loop (the workers start unblocked)
  local pool = workers.new{
    count = n_workers, threads = opts.threads or math.max(1, cores // n_workers), log = log,
    make_app = function()
      local fr, lerr
      if opts.pipeline == "mobilefacenet" then
        fr, lerr = siamese.face.load{model = "mobilefacenet", min_face = opts.min_face}
      else
        fr, lerr = siamese.face.load{model = "faceapi", detector = opts.detector}
      end
      if not fr then return nil, lerr end
      local wopts = {}
      for k, v in pairs(app_opts) do wopts[k] = v end
      wopts.recognizer = fr
      return server.new(wopts)
    end,
  }
  local sok, serr = pool:start()
  if not sok then return cli.fail(serr) end
  if in_db then -- after the fork (above)
    app, aerr = server.new(app_opts)
    if not app then pool:shutdown() return cli.fail(aerr) end
    store, serr0 = tokens.open(tokens.path_for(opts.gallery))
    if not store then pool:shutdown() return cli.fail(serr0) end
  end
  -- opened after the fork: the workers never hold the database
  local audit = require "siamese.app.web.audit"
  local audit_path = audit.path_for and audit.path_for(opts.gallery) or opts.gallery .. ".audit"
  local audit_log, aoerr = audit.open(audit_path)
  if not audit_log then pool:shutdown() return cli.fail("cannot open the audit log: " .. tostring(aoerr)) end
  local l, lerr = listener.start(app, {host = opts.host, port = port, log = log, max_connections = max_conn,
                                       pool = pool, audit = audit_log, tls = tls_ctx,
                                       auth = {tokens = store, open = loopback, allowed_hosts = allowed_hosts},
                                       limits = {idle_timeout = opts.idle_timeout,
                                                 request_timeout = opts.request_timeout}})
  if not l then pool:shutdown() return cli.fail(lerr) end
  -- SIGTERM / SIGINT: stop listening, stop and reap the workers, exit.
  l.cq:wrap(function()
    local sl = signal.listen(signal.SIGTERM, signal.SIGINT)
    local signo
    repeat signo = sl:wait(1) until signo
    log("signal " .. tostring(signo) .. ": stopping")
    l.close()
    pool:shutdown()
    io.stdout:flush()
    os.exit(0)
  end)
  local host = l.host:find(":", 1, true) and ("[" .. l.host .. "]") or l.host
  local count = app.g:count()
  local url = ("%s://%s:%d/"):format(tls_ctx and "https" or "http", host, l.port)
  local auth = #listed > 0 and "tokens" or "open"
  if opts.json then
    io.stdout:write(require("siamese.json").encode{url = url, gallery = opts.gallery, identities = count,
                                                    threshold = app.g:threshold(), auth = auth, audit = audit_path,
                                                    workers = require("siamese.json").array(pool:pids())}, "\n")
  else
    io.stdout:write(("siamese serve: listening on %s (gallery %s, %d %s, threshold %g; workers %s; %s)\n")
      :format(url, opts.gallery, count, count == 1 and "person" or "people", app.g:threshold(),
              table.concat(pool:pids(), " "),
              auth == "tokens" and "access tokens required" or "open: no access tokens"))
  end
  if auth == "open" then
    io.stderr:write(("siamese serve: no access tokens in %s: anyone who can connect to %s may enrol and list "
      .. "people. Add tokens with: siamese token add --gallery %s --role admin\n"):format(store.path, url, opts.gallery))
  end
  io.stdout:flush()
  local lok, loop_err = l.loop()
  pool:shutdown()
  if not lok then return cli.fail("server stopped: " .. tostring(loop_err)) end
  return 0
end

return serve
