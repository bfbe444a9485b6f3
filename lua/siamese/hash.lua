--- siamese.hash: checksums written from their specifications (src/hash.c).
--   hash.crc32(s)          -> integer, 8-digit hex (CRC-32/IEEE, as zlib)
--   hash.sha256(s)         -> 64-digit lowercase hex (FIPS 180-4)
--   hash.file_sha256(path) -> hex, or nil, message
local core = require "siamese.core"

return {
  crc32 = core.hash.crc32,
  sha256 = core.hash.sha256,
  file_sha256 = core.hash.file_sha256,
}
