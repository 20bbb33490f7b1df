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
#include <unordered_set>

#include "chunk_store.h"

namespace cfs::storage {

struct FileChunkStoreOptions {
  size_t max_open_objects = 1024;  // fd cache bound (two fds per object, three once written directly)
  // Writes of whole, page-aligned checksum blocks from page-aligned memory go
  // to disk with O_DIRECT: on the VMs we measured, the page-cache copy cost
  // 15x the CPU per GiB and bounded a 4+2 cluster's write rate
  // (docs/on-disk-storage.md, "Direct writes"). Falls back to buffered writes
  // where the file system refuses O_DIRECT (tmpfs, some overlays).
  bool direct_io = true;
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

  Status Write(uint64_t ino, uint64_t offset, std::string_view data) override {
    return WriteSlot(ino, 0, offset, data);
  }
  Status Read(uint64_t ino, uint64_t offset, uint64_t len, char* out) override {
    return ReadSlot(ino, 0, offset, len, out);
  }
  Status Fsync(uint64_t ino) override { return FsyncSlot(ino, 0); }
  Status Truncate(uint64_t ino, uint64_t size) override { return TruncateSlot(ino, 0, size); }
  Status Delete(uint64_t ino) override { return DeleteSlot(ino, 0); }
  Result<ChunkStoreStats> Stats() override;

  // Slot s of an object is a separate file with its own checksum sidecar:
  // slot 0 is the object itself, slot 1 the second copy-on-write slot of
  // versioned (erasure-coded) units (file_unit_store.h). Same semantics as above.
  Status WriteSlot(uint64_t ino, uint32_t slot, uint64_t offset, std::string_view data);
  Status ReadSlot(uint64_t ino, uint32_t slot, uint64_t offset, uint64_t len, char* out);
  Status FsyncSlot(uint64_t ino, uint32_t slot);
  Status TruncateSlot(uint64_t ino, uint32_t slot, uint64_t size);
  Status DeleteSlot(uint64_t ino, uint32_t slot);

  // root/objects/<2 hex digits of a hash of ino>/<ino as 16 hex digits>[.<slot> for slot > 0]
  std::string ObjectPath(uint64_t ino, uint32_t slot = 0) const;
  std::string ChecksumPath(uint64_t ino, uint32_t slot = 0) const;  // ObjectPath + ".csum"
  // The directory holding ino's files (objects/<hh>).
  std::string ShardDir(uint64_t ino) const;
  // fsync of the shard directory and of objects/ (after creating files in it).
  Status SyncDirs(uint64_t ino) const;
  size_t open_objects() const;
  // Objects created whose directory entries are not yet synced (tests).
  size_t unsynced_dirs() const;
  // Bytes written with O_DIRECT (metrics, tests).
  uint64_t direct_bytes() const { return direct_bytes_.load(); }
  // False once the file system refused O_DIRECT (or it was turned off).
  bool direct_enabled() const { return direct_ok_.load(); }
  // Counts checksum mismatches found by reads (for metrics).
  uint64_t checksum_errors() const { return checksum_errors_.load(); }

 private:
  struct Object;
  struct Key {
    uint64_t ino;
    uint32_t slot;
    bool operator==(const Key& o) const { return ino == o.ino && slot == o.slot; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const { return std::hash<uint64_t>()(k.ino * 31 + k.slot); }
  };
  struct CacheEntry {
    std::shared_ptr<Object> obj;
    std::list<Key>::iterator lru;
  };

  FileChunkStore(std::string root, FileChunkStoreOptions opts);
  // The cached object for ino, opening it on a miss. With create=false a
  // missing object is ENOENT.
  Result<std::shared_ptr<Object>> Get(Key key, bool create);
  void Forget(Key key, const Object* obj);
  void EvictLocked();
  // Reads block b fully (zero-padded past EOF) into buf and says which record
  // checksum it matches (0 = neither).
  Result<uint64_t> ReadBlockAndMatch(Object& obj, uint64_t b, const ChecksumRecord& rec, char* buf);
  Status ChecksumMismatch(const Object& obj, uint64_t b);
  // Whether a write of data at offset may bypass the page cache.
  bool CanWriteDirect(uint64_t offset, std::string_view data) const;
  // The object's O_DIRECT fd, opened on first use; -1 (and direct writes off
  // for the store) when the file system refuses it.
  int DirectFd(Object& obj);

  const std::string root_;
  const std::string objects_dir_;
  const FileChunkStoreOptions opts_;
  mutable std::mutex mu_;  // guards cache_ and lru_
  std::unordered_map<Key, CacheEntry, KeyHash> cache_;
  std::list<Key> lru_;  // front = most recently used
  // Objects evicted while created-but-directory-not-synced (guarded by mu_).
  std::unordered_set<Key, KeyHash> unsynced_dirs_;
  std::mutex open_mu_;       // serializes cache misses (open vs delete races)
  std::atomic<uint64_t> checksum_errors_{0};
  std::atomic<bool> direct_ok_;
  std::atomic<uint64_t> direct_bytes_{0};
};

}  // namespace cfs::storage
