// Block checksums: xxHash3 (64-bit) over each checksum block of a unit.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cfs {

// xxh3-64 of [data, data+len). Never returns 0: 0 marks "no checksum" on disk.
uint64_t BlockChecksum(const void* data, size_t len);

}  // namespace cfs
