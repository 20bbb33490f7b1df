// ChunkStore: where one target keeps the stripe units of files. One object per
// file (inode) per target; offsets are byte offsets inside that object, as the
// client computes them (libcfs/common/layout.h). Every implementation checks a
// checksum per cfs::kChecksumBlock on every read and never returns wrong data.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/status.h"

namespace cfs::storage {

struct ChunkStoreStats {
  uint64_t capacity = 0;  // bytes of the file system holding the target
  uint64_t free = 0;      // bytes available to the store
};

class ChunkStore {
 public:
  virtual ~ChunkStore() = default;

  // Writes data at offset of ino's object, creating the object if needed.
  // Once this returns OK the bytes survive the process (page cache).
  // ENOSPC when the target is full; nothing written before stays unreadable.
  virtual Status Write(uint64_t ino, uint64_t offset, std::string_view data) = 0;
  // Fills out[0, len) with the object's bytes; holes and bytes past the end are
  // zeros. EBADMSG if a touched block fails its checksum (out is then undefined).
  virtual Status Read(uint64_t ino, uint64_t offset, uint64_t len, char* out) = 0;
  // Makes acknowledged writes of ino durable. A missing object is OK.
  virtual Status Fsync(uint64_t ino) = 0;
  // Sets the object's size; bytes beyond are dropped. A missing object is OK.
  virtual Status Truncate(uint64_t ino, uint64_t size) = 0;
  // Removes the object. A missing object is OK.
  virtual Status Delete(uint64_t ino) = 0;
  virtual Result<ChunkStoreStats> Stats() = 0;
};

}  // namespace cfs::storage
