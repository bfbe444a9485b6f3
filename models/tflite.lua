-- A reader of TensorFlow Lite flatbuffers (.tflite), for the model
-- converters in this folder. Float32 graphs only.
--
--   local tflite = dofile("models/tflite.lua")
--   local model, err = tflite.load(path)          -- or tflite.decode(bytes)
--   model.version, model.description
--   model.buffers[i]            {offset = , size = } of buffer i - 1 in the file (0-based)
--   model.subgraphs[1]          {name, inputs, outputs, tensors, operators}
--     .tensors[i]               {index = i - 1, name, shape = {...}, type = "FLOAT32",
--                                buffer = buffer index (0 = none), data = {offset, size} or nil}
--     .operators[i]             {op = "CONV_2D", code = 3, version, inputs, outputs, options = {...}}
--   model.bytes                 the file
--   tflite.tensor(model, t)     the constant data of tensor t as a float32 siamese tensor
--                               of t.shape (INT32 data: a list of integers), or nil, message
--                               if it has none
--
-- Tensor and operator indices (inputs, outputs) stay 0-based as in the
-- file; -1 marks an omitted optional input. Builtin options are decoded
-- for the operators listed in OPTIONS below (enums as names: padding
-- "SAME" / "VALID", activation "NONE" / "RELU" / ...).
--
-- The flatbuffer layout (little-endian): the file starts with a uint32
-- offset to the root table (Model), then the identifier "TFL3". A table
-- at t begins with an int32 s: its vtable is at t - s and holds uint16
-- vtable size, uint16 table size, then one uint16 offset per field from
-- t (0: field absent, default value). Offsets to tables, vectors and
-- strings are uint32 relative to where they are stored; a vector or a
-- string is a uint32 count followed by its elements.
--
-- Every offset, count and length is checked against the file before it is
-- followed: a truncated or corrupt file gives nil, message, never a crash
-- or an unbounded loop (the number of objects decoded is capped by the
-- file size). Tensors of any type but FLOAT32 are refused, except INT32
-- constants that are the shape / axis / padding operand of an operator
-- (RESHAPE's new shape, MEAN's axes, ...); quantised tensors are refused.
local tflite = {}

local OPERATORS = {
  [0] = "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEPTH_TO_SPACE",
  "DEQUANTIZE", "EMBEDDING_LOOKUP", "FLOOR", "FULLY_CONNECTED", "HASHTABLE_LOOKUP", "L2_NORMALIZATION",
  "L2_POOL_2D", "LOCAL_RESPONSE_NORMALIZATION", "LOGISTIC", "LSH_PROJECTION", "LSTM", "MAX_POOL_2D",
  "MUL", "RELU", "RELU_N1_TO_1", "RELU6", "RESHAPE", "RESIZE_BILINEAR", "RNN", "SOFTMAX",
  "SPACE_TO_DEPTH", "SVDF", "TANH", "CONCAT_EMBEDDINGS", "SKIP_GRAM", "CALL", "CUSTOM",
  "EMBEDDING_LOOKUP_SPARSE", "PAD", "UNIDIRECTIONAL_SEQUENCE_RNN", "GATHER", "BATCH_TO_SPACE_ND",
  "SPACE_TO_BATCH_ND", "TRANSPOSE", "MEAN", "SUB", "DIV", "SQUEEZE", "UNIDIRECTIONAL_SEQUENCE_LSTM",
  "STRIDED_SLICE", "BIDIRECTIONAL_SEQUENCE_RNN", "EXP", "TOPK_V2", "SPLIT", "LOG_SOFTMAX", "DELEGATE",
  "BIDIRECTIONAL_SEQUENCE_LSTM", "CAST", "PRELU", "MAXIMUM", "ARG_MAX", "MINIMUM", "LESS", "NEG",
  "PADV2", "GREATER", "GREATER_EQUAL", "LESS_EQUAL", "SELECT", "SLICE", "SIN", "TRANSPOSE_CONV",
  "SPARSE_TO_DENSE", "TILE", "EXPAND_DIMS", "EQUAL", "NOT_EQUAL", "LOG", "SUM", "SQRT", "RSQRT",
  "SHAPE", "POW", "ARG_MIN", "FAKE_QUANT", "REDUCE_PROD", "REDUCE_MAX", "PACK", "LOGICAL_OR",
  "ONE_HOT", "LOGICAL_AND", "LOGICAL_NOT", "UNPACK", "REDUCE_MIN", "FLOOR_DIV", "REDUCE_ANY",
  "SQUARE", "ZEROS_LIKE", "FILL", "FLOOR_MOD", "RANGE", "RESIZE_NEAREST_NEIGHBOR", "LEAKY_RELU",
  "SQUARED_DIFFERENCE", "MIRROR_PAD", "ABS", "SPLIT_V",
}
tflite.OPERATORS = OPERATORS

local TYPES = {[0] = "FLOAT32", "FLOAT16", "INT32", "UINT8", "INT64", "STRING", "BOOL", "INT16",
               "COMPLEX64", "INT8"}
local PADDING = {[0] = "SAME", "VALID"}
local ACTIVATION = {[0] = "NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGN_BIT"}

-- Builtin options: union type -> the table's fields in schema order (field
-- id = position - 1): {name, kind, default, enum}. Kinds: i32, u8, bool,
-- f32, ivec (vector of int32).
local OPTIONS = {
  [1] = {"Conv2DOptions", {{"padding", "u8", 0, PADDING}, {"stride_w", "i32", 0}, {"stride_h", "i32", 0},
         {"activation", "u8", 0, ACTIVATION}, {"dilation_w", "i32", 1}, {"dilation_h", "i32", 1}}},
  [2] = {"DepthwiseConv2DOptions", {{"padding", "u8", 0, PADDING}, {"stride_w", "i32", 0},
         {"stride_h", "i32", 0}, {"depth_multiplier", "i32", 0}, {"activation", "u8", 0, ACTIVATION},
         {"dilation_w", "i32", 1}, {"dilation_h", "i32", 1}}},
  [5] = {"Pool2DOptions", {{"padding", "u8", 0, PADDING}, {"stride_w", "i32", 0}, {"stride_h", "i32", 0},
         {"filter_w", "i32", 0}, {"filter_h", "i32", 0}, {"activation", "u8", 0, ACTIVATION}}},
  [8] = {"FullyConnectedOptions", {{"activation", "u8", 0, ACTIVATION}, {"weights_format", "u8", 0},
         {"keep_num_dims", "bool", false}}},
  [9] = {"SoftmaxOptions", {{"beta", "f32", 0}}},
  [10] = {"ConcatenationOptions", {{"axis", "i32", 0}, {"activation", "u8", 0, ACTIVATION}}},
  [11] = {"AddOptions", {{"activation", "u8", 0, ACTIVATION}}},
  [12] = {"L2NormOptions", {{"activation", "u8", 0, ACTIVATION}}},
  [17] = {"ReshapeOptions", {{"new_shape", "ivec"}}},
  [21] = {"MulOptions", {{"activation", "u8", 0, ACTIVATION}}},
  [22] = {"PadOptions", {}},
  [26] = {"TransposeOptions", {}},
  [27] = {"ReducerOptions", {{"keep_dims", "bool", false}}},
  [28] = {"SubOptions", {{"activation", "u8", 0, ACTIVATION}}},
  [29] = {"DivOptions", {{"activation", "u8", 0, ACTIVATION}}},
  [30] = {"SqueezeOptions", {{"squeeze_dims", "ivec"}}},
  [39] = {"MaximumMinimumOptions", {}},
  [75] = {"LeakyReluOptions", {{"alpha", "f32", 0}}},
  [78] = {"AbsOptions", {}},
}

-- Inputs (1-based positions) of an operator that may be INT32 constants.
local INT_OPERANDS = {
  RESHAPE = {[2] = true}, MEAN = {[2] = true}, SUM = {[2] = true}, REDUCE_MAX = {[2] = true},
  PAD = {[2] = true}, PADV2 = {[2] = true}, TRANSPOSE = {[2] = true}, SQUEEZE = {},
  STRIDED_SLICE = {[2] = true, [3] = true, [4] = true}, CONCATENATION = {},
}

-- ------------------------------------------------------------ the decoder

local FAIL = {}   -- error object of the decoder: {FAIL, message}

local function fail(fmt, ...)
  error({FAIL, string.format(fmt, ...)}, 0)
end

-- A view of the file: bytes, size, and the object budget.
local function reader(bytes)
  local r = {bytes = bytes, size = #bytes, budget = #bytes + 16}

  -- Checks [pos, pos + n) (0-based) lies in the file.
  function r.need(pos, n, what)
    if math.type(pos) ~= "integer" or pos < 0 or n < 0 or pos > r.size - n then
      fail("%s at byte %s (%d bytes) runs past the end of the %d-byte file", what, tostring(pos), n, r.size)
    end
  end
  function r.u8(pos, what) r.need(pos, 1, what) return (string.unpack("<I1", bytes, pos + 1)) end
  function r.u16(pos, what) r.need(pos, 2, what) return (string.unpack("<I2", bytes, pos + 1)) end
  function r.i32(pos, what) r.need(pos, 4, what) return (string.unpack("<i4", bytes, pos + 1)) end
  function r.u32(pos, what) r.need(pos, 4, what) return (string.unpack("<I4", bytes, pos + 1)) end
  function r.f32(pos, what) r.need(pos, 4, what) return (string.unpack("<f", bytes, pos + 1)) end
  function r.spend(n, what)
    r.budget = r.budget - n
    if r.budget < 0 then fail("%s: more objects than the file can hold (shared or looping offsets)", what) end
  end

  -- The table at pos: a function field(id) -> absolute position or nil.
  function r.table(pos, what)
    r.spend(1, what)
    local soff = r.i32(pos, what .. " (table)")
    local vt = pos - soff
    local vsize = r.u16(vt, what .. " (vtable)")
    if vsize < 4 or vsize % 2 ~= 0 then fail("%s: vtable size %d is invalid", what, vsize) end
    r.need(vt, vsize, what .. " (vtable)")
    local tsize = r.u16(vt + 2, what .. " (vtable)")
    if tsize < 4 then fail("%s: table size %d is invalid", what, tsize) end
    r.need(pos, tsize, what .. " (table)")
    local nfields = (vsize - 4) // 2
    return function(id, width, name)
      if id >= nfields then return nil end
      local off = r.u16(vt + 4 + 2 * id, what)
      if off == 0 then return nil end
      if off + width > tsize then
        fail("%s: field %s at %d (%d bytes) lies outside its %d-byte table", what, name, off, width, tsize)
      end
      return pos + off
    end
  end

  -- Follows the uoffset stored at pos.
  function r.deref(pos, what)
    local off = r.u32(pos, what)
    local target = pos + off
    r.need(target, 4, what)
    return target
  end

  -- A vector at pos: count, position of element 0; elements of width bytes.
  function r.vector(pos, width, what)
    local n = r.u32(pos, what .. " (vector length)")
    r.need(pos + 4, n * width, what .. " (vector of " .. n .. ")")
    r.spend(n // 4, what)
    return n, pos + 4
  end

  function r.string(pos, what)
    local n, first = r.vector(pos, 1, what)
    return bytes:sub(first + 1, first + n)
  end
  return r
end

-- Field helpers over a table accessor f.
local function scalar(r, f, id, kind, default, name)
  local width = ({u8 = 1, bool = 1, i32 = 4, u32 = 4, f32 = 4, u16 = 2})[kind]
  local pos = f(id, width, name)
  if not pos then return default end
  if kind == "u8" then return r.u8(pos, name)
  elseif kind == "bool" then return r.u8(pos, name) ~= 0
  elseif kind == "i32" then return r.i32(pos, name)
  elseif kind == "u32" then return r.u32(pos, name)
  elseif kind == "u16" then return r.u16(pos, name)
  else return r.f32(pos, name) end
end

local function ref(r, f, id, name)
  local pos = f(id, 4, name)
  if not pos then return nil end
  return r.deref(pos, name)
end

local function int_vector(r, f, id, name)
  local pos = ref(r, f, id, name)
  if not pos then return {} end
  local n, first = r.vector(pos, 4, name)
  local out = {}
  for i = 1, n do out[i] = r.i32(first + 4 * (i - 1), name) end
  return out
end

local function string_field(r, f, id, name)
  local pos = ref(r, f, id, name)
  if not pos then return nil end
  return r.string(pos, name)
end

-- Calls fn(position of table i, i) for each table of the vector field id.
local function table_vector(r, f, id, name, fn)
  local pos = ref(r, f, id, name)
  if not pos then return {} end
  local n, first = r.vector(pos, 4, name)
  local out = {}
  for i = 1, n do
    local what = string.format("%s[%d]", name, i - 1)
    out[i] = fn(r.deref(first + 4 * (i - 1), what), what, i)
  end
  return out
end

local function decode_options(r, otype, pos, what)
  local spec = OPTIONS[otype]
  if not spec then return nil end
  local f = r.table(pos, what .. " " .. spec[1])
  local out = {}
  for id, field in ipairs(spec[2]) do
    local name, kind, default, enum = field[1], field[2], field[3], field[4]
    if kind == "ivec" then
      out[name] = int_vector(r, f, id - 1, what .. "." .. name)
    else
      local v = scalar(r, f, id - 1, kind, default, what .. "." .. name)
      if enum then
        if enum[v] == nil then fail("%s: %s %d is not a known value", what, name, v) end
        v = enum[v]
      end
      out[name] = v
    end
  end
  return out, spec[1]
end

local function decode_model(bytes)
  local r = reader(bytes)
  if r.size < 8 then fail("file is %d bytes, too short for a TFLite model", r.size) end
  local ident = bytes:sub(5, 8)
  if ident ~= "TFL3" then fail("file identifier is %q, expected \"TFL3\" (not a TFLite model)", ident) end
  local root = r.deref(0, "root table offset")
  local m = r.table(root, "Model")
  local model = {version = scalar(r, m, 0, "u32", 0, "Model.version")}
  model.operator_codes = table_vector(r, m, 1, "operator_codes", function(pos, what)
    local f = r.table(pos, what)
    local code = scalar(r, f, 0, "u8", 0, what .. ".builtin_code")
    local ext = scalar(r, f, 3, "i32", 0, what .. ".builtin_code (int32)")
    if ext > code then code = ext end
    return {code = code, name = OPERATORS[code], custom = string_field(r, f, 1, what .. ".custom_code"),
            version = scalar(r, f, 2, "i32", 1, what .. ".version")}
  end)
  model.description = string_field(r, m, 3, "Model.description")
  model.buffers = table_vector(r, m, 4, "buffers", function(pos, what)
    local f = r.table(pos, what)
    local dpos = ref(r, f, 0, what .. ".data")
    if not dpos then return {offset = 0, size = 0} end
    local n, first = r.vector(dpos, 1, what .. ".data")
    return {offset = first, size = n}
  end)
  model.subgraphs = table_vector(r, m, 2, "subgraphs", function(pos, what)
    local f = r.table(pos, what)
    local g = {name = string_field(r, f, 4, what .. ".name")}
    g.tensors = table_vector(r, f, 0, what .. ".tensors", function(tpos, twhat, i)
      local t = r.table(tpos, twhat)
      local tensor = {index = i - 1, shape = int_vector(r, t, 0, twhat .. ".shape"),
                      type_code = scalar(r, t, 1, "u8", 0, twhat .. ".type"),
                      buffer = scalar(r, t, 2, "u32", 0, twhat .. ".buffer"),
                      name = string_field(r, t, 3, twhat .. ".name") or ""}
      tensor.type = TYPES[tensor.type_code] or ("type " .. tensor.type_code)
      local qpos = ref(r, t, 4, twhat .. ".quantization")
      if qpos then
        local q = r.table(qpos, twhat .. ".quantization")
        local spos = ref(r, q, 2, twhat .. ".quantization.scale")
        if spos and r.vector(spos, 4, twhat .. ".quantization.scale") > 0 then
          fail("tensor %d '%s' is quantised: only float32 graphs are supported", i - 1, tensor.name)
        end
      end
      local n = 1
      for k, d in ipairs(tensor.shape) do
        if d < 0 then fail("tensor %d '%s': shape entry %d is %d", i - 1, tensor.name, k, d) end
        if d > 0 and n > (1 << 40) // d then fail("tensor %d '%s': shape is too large", i - 1, tensor.name) end
        n = n * d
      end
      return tensor
    end)
    g.inputs = int_vector(r, f, 1, what .. ".inputs")
    g.outputs = int_vector(r, f, 2, what .. ".outputs")
    g.operators = table_vector(r, f, 3, what .. ".operators", function(opos, owhat)
      local o = r.table(opos, owhat)
      local op = {opcode_index = scalar(r, o, 0, "u32", 0, owhat .. ".opcode_index"),
                  inputs = int_vector(r, o, 1, owhat .. ".inputs"),
                  outputs = int_vector(r, o, 2, owhat .. ".outputs"),
                  options_type = scalar(r, o, 3, "u8", 0, owhat .. ".builtin_options_type")}
      local code = model.operator_codes[op.opcode_index + 1]
      if not code then
        fail("%s: opcode_index %d, but the model has %d operator codes", owhat, op.opcode_index,
          #model.operator_codes)
      end
      op.code, op.op, op.version = code.code, code.name or code.custom or ("builtin " .. code.code), code.version
      local bpos = ref(r, o, 4, owhat .. ".builtin_options")
      if bpos then op.options, op.options_name = decode_options(r, op.options_type, bpos, owhat) end
      op.options = op.options or {}
      return op
    end)
    return g
  end)
  return model
end

-- Checks indices, buffers and types once the whole model is read.
local function validate(model)
  if #model.subgraphs == 0 then fail("the model has no subgraph") end
  for gi, g in ipairs(model.subgraphs) do
    local nt = #g.tensors
    local function check_index(idx, what, optional)
      if idx == -1 and optional then return end
      if idx < 0 or idx >= nt then fail("subgraph %d: %s refers to tensor %d of %d", gi - 1, what, idx, nt) end
    end
    local int_ok = {}
    for oi, op in ipairs(g.operators) do
      for k, idx in ipairs(op.inputs) do
        check_index(idx, string.format("operator %d (%s) input %d", oi - 1, op.op, k), true)
        if idx >= 0 and INT_OPERANDS[op.op] and INT_OPERANDS[op.op][k] then int_ok[idx] = true end
      end
      for k, idx in ipairs(op.outputs) do
        check_index(idx, string.format("operator %d (%s) output %d", oi - 1, op.op, k))
      end
    end
    for k, idx in ipairs(g.inputs) do check_index(idx, "input " .. k) end
    for k, idx in ipairs(g.outputs) do check_index(idx, "output " .. k) end
    for _, t in ipairs(g.tensors) do
      if t.type ~= "FLOAT32" and not (t.type == "INT32" and int_ok[t.index]) then
        fail("tensor %d '%s' is %s: only float32 graphs are supported", t.index, t.name, t.type)
      end
      local b = model.buffers[t.buffer + 1]
      if not b then
        fail("tensor %d '%s': buffer %d, but the model has %d buffers", t.index, t.name, t.buffer, #model.buffers)
      end
      if b.size > 0 then
        local n = 1
        for _, d in ipairs(t.shape) do n = n * d end
        local width = 4
        if n * width ~= b.size then
          fail("tensor %d '%s': shape [%s] of %s needs %d bytes, its buffer %d has %d", t.index, t.name,
            table.concat(t.shape, ","), t.type, n * width, t.buffer, b.size)
        end
        t.data = {offset = b.offset, size = b.size}
      end
    end
  end
end

--- Decodes a TFLite model held in a string: the model table described at
-- the top, or nil, message.
function tflite.decode(bytes)
  if type(bytes) ~= "string" then
    error("bad argument #1 to 'tflite.decode' (string expected, got " .. type(bytes) .. ")", 2)
  end
  local ok, model = pcall(function()
    local m = decode_model(bytes)
    validate(m)
    return m
  end)
  if ok then
    model.bytes = bytes
    return model
  end
  if type(model) == "table" and model[1] == FAIL then return nil, "tflite: " .. model[2] end
  error(model, 0)
end

--- Reads the .tflite file at path: the model, or nil, message naming it.
function tflite.load(path)
  if type(path) ~= "string" then
    error("bad argument #1 to 'tflite.load' (string expected, got " .. type(path) .. ")", 2)
  end
  local f, err = io.open(path, "rb")
  if not f then return nil, "tflite: " .. err end
  local bytes = f:read("a")
  f:close()
  if not bytes then return nil, "tflite: " .. path .. ": read failed" end
  local model, why = tflite.decode(bytes)
  if not model then return nil, why:gsub("^tflite: ", "tflite: " .. path .. ": ") end
  return model
end

--- The constant data of tensor t (an entry of a subgraph's tensors) as a
-- float32 siamese tensor of t.shape; INT32 data as a Lua list of integers.
-- nil, message when t has no data.
function tflite.tensor(model, t)
  if not t.data then return nil, string.format("tensor %d '%s' has no constant data", t.index, t.name) end
  if t.type == "INT32" then
    local out = {}
    for i = 1, t.data.size // 4 do out[i] = string.unpack("<i4", model.bytes, t.data.offset + 4 * (i - 1) + 1) end
    return out
  end
  local core = require "siamese.core"
  local shape = #t.shape > 0 and t.shape or {1}
  if #shape > 8 then return nil, string.format("tensor %d '%s' has %d dimensions (at most 8)", t.index, t.name, #shape) end
  return core.tensor_from_bytes(model.bytes, t.data.offset, "F32", shape)
end

return tflite
