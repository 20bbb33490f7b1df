// FileChunkStore: a ChunkStore on a local directory. Each object is one plain
// file (BeeGFS-style chunk file) plus a sidecar of per-block checksum records;
// see docs/on-disk-storage.md for the format and the crash behaviour.
#pragma once

#include <atomic>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "chunk_store.h"

namespace cfs::storage {

struct FileChunkStoreOptions {
  size_t max_open_objects = 1024;  // fd cache bound (two fds per object)
};

// One checksum record per block: the checksum of the block's current content
// and of what it held before the last write (0 = block never written).
struct ChecksumRecord {
  uint64_t cur = 0;
  uint64_t prev = 0;
};
constexpr size_t kChecksumRecordSize = 16;

class FileChunkStore : public ChunkStore {
 public:
  // root must exist; root/objects is created if missing.
  static Result<std::unique_ptr<FileChunkStore>> Open(const std::string& root,
                                                      FileChunkStoreOptions opts = {});
  ~FileChunkStore() override;

  Status Write(uint64_t ino, uint64_t offset, std::string_view data) override;
  Status Read(uint64_t ino, uint64_t offset, uint64_t len, char* out) override;
  Status Fsync(uint64_t ino) override;
  Status Truncate(uint64_t ino, uint64_t size) override;
  Status Delete(uint64_t ino) override;
  Result<ChunkStoreStats> Stats() override;

  // root/objects/<2 hex digits of a hash of ino>/<ino as 16 hex digits>
  std::string ObjectPath(uint64_t ino) const;
  std::string ChecksumPath(uint64_t ino) const;  // ObjectPath + ".csum"
  size_t open_objects() const;
  // Counts checksum mismatches found by reads (for metrics).
  uint64_t checksum_errors() const { return checksum_errors_.load(); }

 private:
  struct Object;
  struct CacheEntry {
    std::shared_ptr<Object> obj;
    std::list<uint64_t>::iterator lru;
  };

  FileChunkStore(std::string root, FileChunkStoreOptions opts);
  // The cached object for ino, opening it on a miss. With create=false a
  // missing object is ENOENT.
  Result<std::shared_ptr<Object>> Get(uint64_t ino, bool create);
  void Forget(uint64_t ino, const Object* obj);
  void EvictLocked();
  std::string ShardDir(uint64_t ino) const;
  // Reads block b fully (zero-padded past EOF) into buf and says which record
  // checksum it matches (0 = neither).
  Result<uint64_t> ReadBlockAndMatch(Object& obj, uint64_t b, const ChecksumRecord& rec, char* buf);
  Status ChecksumMismatch(const Object& obj, uint64_t b);

  const std::string root_;
  const std::string objects_dir_;
  const FileChunkStoreOptions opts_;
  mutable std::mutex mu_;  // guards cache_ and lru_
  std::unordered_map<uint64_t, CacheEntry> cache_;
  std::list<uint64_t> lru_;  // front = most recently used
  std::mutex open_mu_;       // serializes cache misses (open vs delete races)
  std::atomic<uint64_t> checksum_errors_{0};
};

}  // namespace cfs::storage
