// A target: one directory on a local disk that an S-worker serves. On first use
// it gets a TARGET file naming it (a uuid), the worker that owns it and, once
// the M-worker assigned one, its numeric id; objects live in its chunk store.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "chunk_store.h"
#include "file_chunk_store.h"
#include "file_unit_store.h"

namespace cfs::storage {

// A random RFC 4122 version 4 uuid.
std::string NewUuid();

// The worker uuid recorded in the first of dirs whose TARGET file has one, or a
// fresh uuid when none has (a new worker).
std::string ResolveWorkerUuid(const std::vector<std::string>& dirs);

class Target {
 public:
  // Checks dir (exists, is a directory, is writable), creates or reads its
  // TARGET file and records worker_uuid in it, and opens the chunk store.
  static Result<std::unique_ptr<Target>> Open(const std::string& dir, const std::string& worker_uuid,
                                              FileChunkStoreOptions opts = {});

  const std::string& path() const { return path_; }
  const std::string& uuid() const { return uuid_; }
  // 0 until the M-worker assigned an id (remembered across restarts).
  uint32_t id() const { return id_.load(); }
  // Records the id the M-worker assigned (persisted in TARGET when it changes).
  Status SetId(uint32_t id);
  ChunkStore& store() { return *store_; }
  // Versioned units of erasure-coded files, on the same object files.
  VersionedUnitStore& units() { return *units_; }
  Result<ChunkStoreStats> Stats() { return store_->Stats(); }
  // Read-side checksum mismatches seen by this target's store.
  uint64_t checksum_errors() const { return store_->checksum_errors(); }
  // Bytes this target's store wrote with O_DIRECT.
  uint64_t direct_bytes() const { return store_->direct_bytes(); }
  // Version records of versioned units found failing their checksum.
  uint64_t damaged_records() const { return units_->damaged_records(); }

 private:
  Target() = default;
  Status WriteTargetFile();

  std::string path_, uuid_, worker_uuid_;
  std::atomic<uint32_t> id_{0};
  std::mutex file_mu_;
  std::unique_ptr<FileChunkStore> store_;
  std::unique_ptr<FileUnitStore> units_;  // on *store_
};

}  // namespace cfs::storage
