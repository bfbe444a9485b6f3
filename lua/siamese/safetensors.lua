--- siamese.safetensors: model weights in the safetensors format, the one
-- PyTorch users can export to (huggingface safetensors).
--
-- The format, byte by byte:
--
--   [0, 8)        N: unsigned 64-bit little-endian, the header length
--   [8, 8+N)      the header: a UTF-8 JSON object, padded with trailing
--                 spaces (this writer pads N to a multiple of 8; load
--                 refuses N above 100 MB)
--                   {"__metadata__": {"key": "value", ...},     (optional)
--                    "name": {"dtype": "F32", "shape": [d1, d2, ...],
--                             "data_offsets": [begin, end]}, ...}
--   [8+N, EOF)    the data section: each tensor's elements in row-major
--                 order, little-endian, at [begin, end) counted from the
--                 start of the data section
--
-- Rules a file must follow (load refuses anything else with nil, message,
-- before creating any tensor): end - begin = numel * dtype size; the
-- regions, sorted, tile the data section exactly (no gap, no overlap, no
-- trailing bytes); shapes are non-negative integers; metadata values are
-- strings. Readable dtypes: F32 F16 BF16 F64 I64 I32 I16 I8 U8 BOOL, all
-- converted to float32 tensors on load. This writer writes tensors as F32
-- and raw entries (safetensors.raw: bytes already in a given dtype, e.g.
-- quantised U8 weights) as they are, laid out in sorted-name order.
local core = require "siamese.core"
local json = require "siamese.json"

local safetensors = {}

local MAX_HEADER_BYTES = 100 * 1024 * 1024
local MAX_DIMS = 8
local DTYPE_SIZE = {
  F32 = 4, F16 = 2, BF16 = 2, F64 = 8, I64 = 8, I32 = 4, I16 = 2, I8 = 1, U8 = 1, BOOL = 1,
}

-- ------------------------------------------------------------------ saving

-- Raises a misuse error; level counts from arg_error's caller, as in error().
local function arg_error(level, n, fname, msg)
  require("siamese.argcheck").raise(level + 1, "safetensors." .. fname, n, msg)
end

-- Marks raw entries made by safetensors.raw.
local RAW = {}

--- An entry to save as given: bytes (little-endian, row-major) of a tensor
-- of `shape` in `dtype`, e.g. quantised weights kept as U8. Raises when the
-- byte count does not match.
function safetensors.raw(dtype, shape, bytes)
  local size = DTYPE_SIZE[dtype]
  if not size then arg_error(2, 1, "raw", "unknown dtype " .. tostring(dtype)) end
  if type(shape) ~= "table" then arg_error(2, 2, "raw", "shape table expected") end
  local n = 1
  for _, d in ipairs(shape) do
    if math.type(d) ~= "integer" or d < 0 then arg_error(2, 2, "raw", "shape entries must be non-negative integers") end
    n = n * d
  end
  if type(bytes) ~= "string" or #bytes ~= n * size then
    arg_error(2, 3, "raw", string.format("%d bytes expected for %s [%s], got %s", n * size, dtype,
      table.concat(shape, ","), type(bytes) == "string" and #bytes or type(bytes)))
  end
  return setmetatable({dtype = dtype, shape = shape, data = bytes}, RAW)
end

-- The validators run inside build_parts inside save/encode: the user's
-- call is 4 levels above them.
local USER_LEVEL = 4

local function check_tensors(tensors, fname)
  if type(tensors) ~= "table" then
    arg_error(USER_LEVEL, 2, fname, "table of name -> tensor expected, got " .. type(tensors))
  end
  local names = {}
  for name, t in pairs(tensors) do
    if type(name) ~= "string" then
      arg_error(USER_LEVEL, 2, fname, "tensor names must be strings, got a " .. type(name) .. " key")
    end
    if name == "__metadata__" then
      arg_error(USER_LEVEL, 2, fname, "'__metadata__' is reserved and cannot name a tensor")
    end
    if not core.tensor.is_tensor(t) and getmetatable(t) ~= RAW then
      arg_error(USER_LEVEL, 2, fname, string.format("value of '%s' is a %s, expected a siamese.Tensor", name, type(t)))
    end
    names[#names + 1] = name
  end
  table.sort(names)
  return names
end

-- Copies metadata into a string -> string table (non-strings JSON-encoded).
local function check_metadata(metadata, fname)
  if metadata == nil then return nil end
  if type(metadata) ~= "table" then
    arg_error(USER_LEVEL, 3, fname, "metadata must be a table of string -> value, got " .. type(metadata))
  end
  local out = {}
  for k, v in pairs(metadata) do
    if type(k) ~= "string" then
      arg_error(USER_LEVEL, 3, fname, "metadata keys must be strings, got a " .. type(k) .. " key")
    end
    out[k] = type(v) == "string" and v or json.encode(v)
  end
  if next(out) == nil then return nil end
  return out
end

-- Returns the file as a list of strings: length, header, each tensor's data.
local function build_parts(tensors, metadata, fname)
  local names = check_tensors(tensors, fname)
  local header = { __metadata__ = check_metadata(metadata, fname) }
  local parts, offset = { "", "" }, 0
  for _, name in ipairs(names) do
    local t = tensors[name]
    local raw = getmetatable(t) == RAW
    local bytes = raw and t.data or core.tensor_to_bytes(t)
    header[name] = {
      dtype = raw and t.dtype or "F32",
      shape = json.array(raw and t.shape or t:shape()),
      data_offsets = json.array { offset, offset + #bytes },
    }
    offset = offset + #bytes
    parts[#parts + 1] = bytes
  end
  local text = json.encode(header)
  text = text .. string.rep(" ", (-#text) % 8)
  parts[1], parts[2] = string.pack("<I8", #text), text
  return parts
end

--- Writes tensors (a table name -> siamese.Tensor) and metadata (optional,
-- a table string -> string; values that are not strings are stored as
-- their json.encode text, since safetensors metadata holds only strings)
-- to path as float32 safetensors. The file is replaced atomically: on
-- failure the old file, if any, is left intact. Returns true, or nil and a
-- message when the file cannot be written. Raises on misuse (a value that
-- is not a tensor, a non-string name, the reserved name '__metadata__').
function safetensors.save(path, tensors, metadata)
  if type(path) ~= "string" then arg_error(2, 1, "save", "string expected, got " .. type(path)) end
  local parts = build_parts(tensors, metadata, "save")
  local ok, err = core.write_atomic(path, table.unpack(parts))
  if not ok then return nil, "safetensors: " .. err end
  return true
end

--- The bytes save would write, as one string.
function safetensors.encode(tensors, metadata)
  return table.concat(build_parts(tensors, metadata, "encode"))
end

-- ----------------------------------------------------------------- loading

local function is_object(v)
  return type(v) == "table" and not json.is_array(v) and v ~= json.null
end

local function describe(v)
  if v == nil then return "missing" end
  if v == json.null then return "null" end
  if json.is_array(v) then return "an array" end
  if type(v) == "table" then return "an object" end
  if math.type(v) == "float" then return "the number " .. tostring(v) end
  return "a " .. type(v)
end

local function is_nonneg_integer(v)
  return math.type(v) == "integer" and v >= 0
end

local function shape_text(shape)
  local items = {}
  for i = 1, #shape do items[i] = tostring(shape[i]) end
  return "[" .. table.concat(items, ",") .. "]"
end

local function check_metadata_entry(meta)
  if meta == nil or meta == json.null then return {} end
  if not is_object(meta) then return nil, "__metadata__ is " .. describe(meta) .. ", expected an object" end
  for k, v in pairs(meta) do
    if type(v) ~= "string" then
      return nil, string.format("__metadata__ value of '%s' is %s, expected a string", k, describe(v))
    end
  end
  return meta
end

-- Byte size numel * dtype size of a shape, or nil, reason.
local function shape_bytes(name, shape, elem_size)
  if not json.is_array(shape) then
    return nil, string.format("tensor '%s': shape is %s, expected an array", name, describe(shape))
  end
  if #shape > MAX_DIMS then
    return nil, string.format("tensor '%s': shape has %d dimensions, at most %d are supported",
                              name, #shape, MAX_DIMS)
  end
  local has_zero = false
  for i = 1, #shape do
    if not is_nonneg_integer(shape[i]) then
      return nil, string.format("tensor '%s': shape entry %d is %s, expected a non-negative integer",
                                name, i, describe(shape[i]))
    end
    if shape[i] == 0 then has_zero = true end
  end
  if has_zero then return 0 end
  local bytes = elem_size
  for i = 1, #shape do
    if bytes > (1 << 53) // shape[i] then
      return nil, string.format("tensor '%s': shape %s is too large", name, shape_text(shape))
    end
    bytes = bytes * shape[i]
  end
  return bytes
end

local function check_offsets(name, offsets)
  if not json.is_array(offsets) or #offsets ~= 2
      or not is_nonneg_integer(offsets[1]) or not is_nonneg_integer(offsets[2]) then
    return nil, string.format("tensor '%s': data_offsets must be a pair of non-negative integers", name)
  end
  if offsets[2] < offsets[1] then
    return nil, string.format("tensor '%s': data_offsets [%d,%d] end before they begin",
                              name, offsets[1], offsets[2])
  end
  return offsets[1], offsets[2]
end

-- Validates one tensor entry; returns {name, dtype, shape, begin, end} or nil, reason.
local function check_entry(name, entry, data_len)
  if not is_object(entry) then
    return nil, string.format("tensor '%s' is described by %s, expected an object", name, describe(entry))
  end
  local dtype = entry.dtype
  if type(dtype) ~= "string" then
    return nil, string.format("tensor '%s': dtype is %s, expected a string", name, describe(dtype))
  end
  local elem_size = DTYPE_SIZE[dtype]
  if not elem_size then
    return nil, string.format("tensor '%s': unsupported dtype '%s'", name, dtype)
  end
  local need, why = shape_bytes(name, entry.shape, elem_size)
  if not need then return nil, why end
  local first, last = check_offsets(name, entry.data_offsets)
  if not first then return nil, last end
  if last - first ~= need then
    return nil, string.format("tensor '%s': data_offsets [%d,%d] hold %d bytes, but shape %s of %s needs %d",
                              name, first, last, last - first, shape_text(entry.shape), dtype, need)
  end
  if last > data_len then
    return nil, string.format("tensor '%s': data_offsets [%d,%d] run past the %d-byte data section",
                              name, first, last, data_len)
  end
  return { name = name, dtype = dtype, shape = entry.shape, first = first, last = last }
end

-- The regions, sorted by position, must tile [0, data_len) exactly.
local function check_layout(entries, data_len)
  table.sort(entries, function(a, b)
    if a.first ~= b.first then return a.first < b.first end
    if a.last ~= b.last then return a.last < b.last end
    return a.name < b.name
  end)
  local expected = 0
  for _, e in ipairs(entries) do
    if e.first < expected then
      return nil, string.format("tensor '%s' at [%d,%d] overlaps the previous tensor, which ends at %d",
                                e.name, e.first, e.last, expected)
    elseif e.first > expected then
      return nil, string.format("gap in the data section: bytes [%d,%d) belong to no tensor (next is '%s')",
                                expected, e.first, e.name)
    end
    expected = e.last
  end
  if expected ~= data_len then
    return nil, string.format("the tensors cover %d bytes, but the data section has %d", expected, data_len)
  end
  return true
end

-- Reads and checks the header; returns the header table, data start, data length.
local function read_header(bytes)
  if #bytes < 8 then
    return nil, string.format("file is %d bytes, too short for the 8-byte header length", #bytes)
  end
  local n = string.unpack("<i8", bytes)
  if n < 0 or n > MAX_HEADER_BYTES then
    local shown = n < 0 and string.format("%.0f", n + 2.0 ^ 64) or tostring(n)
    return nil, string.format("header length %s is absurd (limit %d bytes)", shown, MAX_HEADER_BYTES)
  end
  if n > #bytes - 8 then
    return nil, string.format("header length %d runs past the end of the %d-byte file", n, #bytes)
  end
  local header, why = json.decode(bytes:sub(9, 8 + n))
  if header == nil then return nil, "header is not valid JSON (" .. why .. " of the header)" end
  if not is_object(header) then return nil, "header is " .. describe(header) .. ", expected a JSON object" end
  return header, 8 + n, #bytes - 8 - n
end

local function parse(bytes)
  local header, data_start, data_len = read_header(bytes)
  if not header then return nil, data_start end
  local metadata, why = check_metadata_entry(header.__metadata__)
  if not metadata then return nil, why end
  local entries = {}
  for name, entry in pairs(header) do
    if name ~= "__metadata__" then
      local e, reason = check_entry(name, entry, data_len)
      if not e then return nil, reason end
      entries[#entries + 1] = e
    end
  end
  local ok, reason = check_layout(entries, data_len)
  if not ok then return nil, reason end
  local tensors = {}
  for _, e in ipairs(entries) do
    tensors[e.name] = core.tensor_from_bytes(bytes, data_start + e.first, e.dtype, e.shape)
  end
  return tensors, metadata
end

--- Decodes safetensors bytes held in a string. Returns tensors (name ->
-- float32 siamese.Tensor) and metadata (string -> string, empty when the
-- file has none), or nil and a message saying what is wrong with the data.
function safetensors.decode(bytes)
  if type(bytes) ~= "string" then
    error("bad argument #1 to 'safetensors.decode' (string expected, got " .. type(bytes) .. ")", 2)
  end
  local tensors, metadata = parse(bytes)
  if not tensors then return nil, "safetensors: " .. metadata end
  return tensors, metadata
end

-- The whole file as a string, or nil, message naming the path.
local function read_file(path)
  local f <close>, open_err = io.open(path, "rb")
  if not f then return nil, open_err end
  local bytes, read_err = f:read("a")
  if not bytes then return nil, path .. ": " .. tostring(read_err) end
  return bytes
end

--- Reads the safetensors file at path: tensors, metadata as for decode,
-- or nil and a message naming the path.
function safetensors.load(path)
  if type(path) ~= "string" then
    error("bad argument #1 to 'safetensors.load' (string expected, got " .. type(path) .. ")", 2)
  end
  local bytes, read_err = read_file(path)
  if not bytes then return nil, "safetensors: " .. read_err end
  local tensors, metadata = parse(bytes)
  if not tensors then return nil, string.format("safetensors: %s: %s", path, metadata) end
  return tensors, metadata
end

return safetensors
