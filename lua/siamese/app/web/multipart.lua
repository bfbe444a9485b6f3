--- siamese.app.web.multipart: multipart/form-data bodies (RFC 7578), as sent by
-- a browser's FormData and by `curl -F`. lua-http parses HTTP itself; it
-- leaves the body format to the application, and this is that part.
--
--   local b = multipart.boundary(headers:get("content-type"))
--   local fields = multipart.parse(body, b)   -- or nil, message
--   fields.image.data, fields.image.filename, fields.image.content_type
--   fields.name.data                            -- a text field
--
-- multipart.encode(fields) builds a body (for clients and tests).
local multipart = {}

--- The boundary of a multipart/form-data content type, or nil and a message.
function multipart.boundary(content_type)
  if type(content_type) ~= "string" then return nil, "no content-type" end
  local kind = content_type:match("^%s*([^;%s]+)")
  if not kind or kind:lower() ~= "multipart/form-data" then
    return nil, "content-type is '" .. content_type .. "', expected multipart/form-data"
  end
  local b = content_type:match(';%s*[Bb][Oo][Uu][Nn][Dd][Aa][Rr][Yy]="([^"]+)"')
    or content_type:match(";%s*[Bb][Oo][Uu][Nn][Dd][Aa][Rr][Yy]=([^;%s]+)")
  if not b or #b > 70 then return nil, "multipart/form-data without a valid boundary" end
  return b
end

local function parse_headers(block)
  local h = {}
  for line in (block .. "\r\n"):gmatch("(.-)\r\n") do
    local k, v = line:match("^([^:]+):%s*(.-)%s*$")
    if k then h[k:lower()] = v end
  end
  return h
end

--- Parses a body into {field = {data, filename, content_type}}; the first
-- part of a given name wins. Returns nil, message on malformed input.
function multipart.parse(body, boundary)
  local delim = "--" .. boundary
  local s, e = body:find(delim, 1, true)
  if not s or (s > 1 and body:sub(s - 2, s - 1) ~= "\r\n") then
    return nil, "multipart body has no opening boundary"
  end
  local fields, pos = {}, e + 1
  while true do
    local after = body:sub(pos, pos + 1)
    if after == "--" then return fields end
    if after ~= "\r\n" then return nil, "malformed multipart boundary line" end
    local hs = pos + 2
    local he
    if body:sub(hs, hs + 1) == "\r\n" then
      he = hs - 2 -- a part without headers
    else
      he = body:find("\r\n\r\n", hs, true)
      if not he then return nil, "truncated multipart part headers" end
    end
    local h = parse_headers(body:sub(hs, he - 1))
    local ds = he + 4
    local ns = body:find("\r\n" .. delim, ds, true)
    if not ns then return nil, "truncated multipart body (no closing boundary)" end
    local disp = h["content-disposition"] or ""
    local name = ("; " .. disp):match(';%s*name="([^"]*)"') or ("; " .. disp):match(";%s*name=([^;%s]+)")
    if not name then return nil, "multipart part without a field name" end
    if not fields[name] then
      fields[name] = {
        data = body:sub(ds, ns - 1),
        filename = ("; " .. disp):match(';%s*filename="([^"]*)"'),
        content_type = h["content-type"],
      }
    end
    pos = ns + 2 + #delim
  end
end

--- Builds a multipart/form-data body from {name = "text" or {data =
-- bytes, filename = ..., content_type = ...}} (fields in sorted order).
-- Returns the body and its content-type header value.
function multipart.encode(fields, boundary)
  boundary = boundary or ("siamese" .. string.format("%08x%08x", math.random(0, 0x7fffffff), math.random(0, 0x7fffffff)))
  local names = {}
  for k in pairs(fields) do names[#names + 1] = k end
  table.sort(names)
  local out = {}
  for _, k in ipairs(names) do
    local v = fields[k]
    if type(v) == "string" then v = {data = v} end
    local disp = 'form-data; name="' .. k .. '"'
    if v.filename then disp = disp .. '; filename="' .. v.filename .. '"' end
    out[#out + 1] = "--" .. boundary .. "\r\nContent-Disposition: " .. disp .. "\r\n"
    if v.content_type or v.filename then
      out[#out + 1] = "Content-Type: " .. (v.content_type or "application/octet-stream") .. "\r\n"
    end
    out[#out + 1] = "\r\n" .. v.data .. "\r\n"
  end
  out[#out + 1] = "--" .. boundary .. "--\r\n"
  return table.concat(out), "multipart/form-data; boundary=" .. boundary
end

return multipart
