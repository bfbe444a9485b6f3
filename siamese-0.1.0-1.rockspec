rockspec_format = "3.0"
package = "siamese"
version = "0.1.0-1"
source = {
  url = "git+file:///dev/null", -- built from a checkout: luarocks --lua-version 5.4 make
}
description = {
  summary = "One-shot face verification and recognition with Siamese networks",
  detailed = [[
    A Lua 5.4 module with a C core over OpenBLAS, libjpeg-turbo and libpng:
    tensors, image codecs and transforms, neural-network layers, Siamese
    training, face detection/alignment/embedding, galleries and calibrated
    thresholds.
  ]],
  license = "MIT",
}
-- The Lua libraries (lua-argparse, lua-filesystem, lua-http, lua-sql-sqlite3)
-- come from Debian's packages (make deps), which LuaRocks does not list as
-- rocks: naming them here would send LuaRocks to the network for them.
dependencies = {
  "lua >= 5.4, < 5.5",
}
external_dependencies = {
  JPEG = { header = "jpeglib.h", library = "jpeg" },
  PNG = { header = "png.h", library = "png16" },
  ZLIB = { header = "zlib.h", library = "z" },
  OPENBLAS = { library = "openblas" },
  PQ = { header = "postgresql/libpq-fe.h", library = "pq" }, -- Debian: /usr/include/postgresql
}
build = {
  type = "make",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LIBFLAG = "$(LIBFLAG)",
    LUA_INCDIR = "$(LUA_INCDIR)",
  },
  install_variables = {
    INST_LIBDIR = "$(LIBDIR)",
    INST_LUADIR = "$(LUADIR)",
    INST_BINDIR = "$(BINDIR)",
  },
}
