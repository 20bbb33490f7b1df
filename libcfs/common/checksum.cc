#include "common/checksum.h"

#include <xxhash.h>

namespace cfs {

uint64_t BlockChecksum(const void* data, size_t len) {
  uint64_t h = XXH3_64bits(data, len);
  return h == 0 ? 1 : h;
}

}  // namespace cfs
