--- siamese.app.web.tokens_pg: the web server's token store kept in the
-- gallery's PostgreSQL database (siamese.app.web.tokens.open sends
-- postgresql:// URLs here), so that every server of an organisation knows
-- the same tokens and a revocation reaches all of them at their next
-- request.
--
-- Schema component "tokens" (siamese.pg.migrate), version 1: the table
-- siamese_token (id, role, label, created, sha256: the fields of the file
-- store, with its rules as constraints) and siamese_token_state, one row
-- holding a generation that every change increments. Changes run in one
-- transaction holding that row's lock (concurrent token commands all
-- land); a server compares the generation before each check (one small
-- query) and reloads the tokens when it moved. As in the file, only the
-- SHA-256 of each secret is stored.
local pg = require "siamese.pg"

local tokens_pg = {}

local SCHEMA = {
  { -- version 1
    "create table siamese_token (id text primary key check (id ~ '^[0-9a-f]{8}$'),"
      .. " role text not null check (role in ('admin', 'door')),"
      .. " label text check (label is null or (label <> '' and octet_length(label) <= 100"
      .. " and label !~ '[[:cntrl:]]')),"
      .. " created text not null check (created ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$'),"
      .. " sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$'))",
    "create table siamese_token_state (id int primary key default 1 check (id = 1),"
      .. " generation int8 not null check (generation >= 0))",
    "insert into siamese_token_state (generation) values (0)",
  },
}

local Backend = {}
Backend.__index = Backend

--- The backend of a token store in the database at url, or nil, message.
function tokens_pg.open(url)
  local conn, err = pg.open(url, "tokens", SCHEMA)
  if not conn then return nil, err end
  return setmetatable({conn = conn, url = url, where = pg.redact(url)}, Backend)
end

function Backend:_exec(sql, ...) return pg.exec(self.conn, self.where, sql, ...) end

--- The store's generation ("pg:N"), or nil, message.
function Backend:generation()
  local r, err = self:_exec("select generation from siamese_token_state where id = 1")
  if not r then return nil, err end
  return "pg:" .. r.rows[1][1]
end

local function entries_of(rows, null)
  local out = {}
  for i, row in ipairs(rows) do
    out[i] = {id = row[1], role = row[2], label = row[3] ~= null and row[3] or nil, created = row[4], sha256 = row[5]}
  end
  return out
end

--- The entries and the generation read with them, or nil, message.
function Backend:load()
  local r, err = self:_exec("select t.id, t.role, t.label, t.created, t.sha256, s.generation"
    .. " from siamese_token_state s left join siamese_token t on true where s.id = 1 order by t.created, t.id")
  if not r then return nil, err end
  local null = require("siamese.pq").null
  local rows = {}
  for _, row in ipairs(r.rows) do
    if row[1] ~= null then rows[#rows + 1] = row end
  end
  return entries_of(rows, null), "pg:" .. r.rows[1][6]
end

--- Read-modify-write in one transaction: fn(entries) returns true, ... to
-- write the entries back (and move the generation), or nil, message.
-- Returns fn's results, or nil, message.
function Backend:update(fn)
  local conn, null = self.conn, require("siamese.pq").null
  if not conn:ok() then conn:reset() end
  local res
  local ok, err = pg.transaction(conn, function(c)
    local s, serr = c:exec("select generation from siamese_token_state where id = 1 for update")
    if not s then
      res = table.pack(nil, self.where .. ": " .. serr)
      return false
    end
    local r, rerr = c:exec("select id, role, label, created, sha256 from siamese_token order by created, id")
    if not r then
      res = table.pack(nil, self.where .. ": " .. rerr)
      return false
    end
    local entries = entries_of(r.rows, null)
    res = table.pack(fn(entries))
    if not res[1] then return false end
    local steps = {{"delete from siamese_token"}}
    for _, e in ipairs(entries) do
      steps[#steps + 1] = {"insert into siamese_token (id, role, label, created, sha256) values ($1, $2, $3, $4, $5)",
                           e.id, e.role, e.label == nil and null or e.label, e.created, e.sha256}
    end
    steps[#steps + 1] = {"update siamese_token_state set generation = generation + 1 where id = 1"}
    for _, st in ipairs(steps) do
      local w, werr = c:exec(table.unpack(st))
      if not w then
        res = table.pack(nil, self.where .. ": cannot save the tokens: " .. werr)
        return false
      end
    end
    return true
  end)
  if ok == nil then return nil, self.where .. ": " .. tostring(err) end -- BEGIN or COMMIT failed
  return table.unpack(res, 1, res.n)
end

function Backend:close()
  if self.conn then self.conn:close() end
  self.conn = nil
end

return tokens_pg
