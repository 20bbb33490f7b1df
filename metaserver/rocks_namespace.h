// RocksNamespace: the NamespaceStore on RocksDB (docs/on-disk-meta.md).
// Mutations are serialized by one mutex and each is one WriteBatch written
// without sync; the caller is acknowledged only after a group-committed
// SyncWAL covers the batch's sequence number (wal_sync = kGroup).
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <rocksdb/db.h>

#include "namespace_store.h"

namespace cfs::meta {

enum class WalSync {
  kGroup,  // acknowledge after an fsync of the WAL (coalesced across writers)
  kNone,   // acknowledge after the write reached the OS (survives kill -9, not power loss)
};
Result<WalSync> ParseWalSync(const std::string& s);

struct RocksOptions {
  WalSync wal_sync = WalSync::kGroup;
  bool create_if_missing = true;
};

class RocksNamespace : public NamespaceStore {
 public:
  static Result<std::unique_ptr<RocksNamespace>> Open(const std::string& dir,
                                                      const RocksOptions& opts);
  ~RocksNamespace() override;

  Result<pb::Attr> Lookup(uint64_t parent, const std::string& name) override;
  Result<pb::Attr> GetAttr(uint64_t ino) override;
  Result<pb::Attr> SetAttr(const pb::SetattrRequest& req) override;
  Result<CreateResult> Create(const pb::CreateRequest& req, const LayoutChooser& choose) override;
  Result<pb::Attr> Mkdir(const pb::MkdirRequest& req) override;
  Status Unlink(uint64_t parent, const std::string& name) override;
  Status Rmdir(uint64_t parent, const std::string& name) override;
  Status Rename(const pb::RenameRequest& req) override;
  Result<pb::Attr> Link(uint64_t ino, uint64_t new_parent, const std::string& name) override;
  Result<pb::Attr> Symlink(const pb::SymlinkRequest& req) override;
  Result<std::string> Readlink(uint64_t ino) override;
  Status Readdir(const pb::ReaddirRequest& req, pb::ReaddirResponse* resp) override;
  Status SetDirLayout(uint64_t ino, const pb::Layout& layout) override;

  Result<pb::Attr> Open(uint64_t ino, uint64_t client_id) override;
  Result<pb::Attr> Close(const pb::CloseRequest& req) override;
  Result<pb::Attr> ReportSize(uint64_t ino, uint64_t size, int64_t mtime_ns) override;
  Status PurgeClosedOrphans(uint64_t* purged) override;

  Status SetXattr(uint64_t ino, const std::string& name, const std::string& value,
                  uint32_t flags) override;
  Result<std::string> GetXattr(uint64_t ino, const std::string& name) override;
  Result<std::vector<std::string>> ListXattr(uint64_t ino) override;
  Status RemoveXattr(uint64_t ino, const std::string& name) override;

  Result<std::vector<GcItem>> ListGc(size_t max) override;
  Status GcDone(const std::vector<std::pair<uint64_t, uint32_t>>& done) override;

  Status AddDegraded(uint64_t ino, const std::vector<uint32_t>& targets) override;
  Result<std::vector<DegradedItem>> ListDegraded(const DegradedItem* after, size_t max) override;
  Status DegradedDone(const DegradedItem& item) override;
  Result<std::vector<pb::Attr>> ScanFiles(uint64_t after_ino, size_t max) override;
  Status ReplaceTarget(uint64_t ino, uint32_t index, uint32_t old_target, uint32_t new_target) override;

  Result<std::optional<std::string>> GetState(const std::string& key) override;
  Status PutState(const std::vector<std::pair<std::string, std::string>>& kvs) override;
  Result<std::vector<std::pair<std::string, std::string>>> ScanState(
      const std::string& prefix) override;

  NamespaceCounters Counters() override;
  Status CheckConsistency(std::string* report) override;

  // Writes the memtables to SST files (tests: exercise reads from SSTs).
  Status FlushMemtables();

  // The dentry hash of a name: 63 bits, >= 3 (0..2 are ".", ".." and "start").
  static uint64_t NameHash(const std::string& name);

 private:
  friend class Txn;
  RocksNamespace() = default;
  Status Init(const std::string& dir, const RocksOptions& opts);
  // Writes the batch (caller holds mu_) and returns its last sequence number.
  Result<uint64_t> WriteLocked(rocksdb::WriteBatch* batch);
  // Blocks until the WAL is synced up to seq (group commit).
  Status WaitDurable(uint64_t seq);
  Result<pb::InodeRecord> LoadInode(uint64_t ino);
  Status LoadCounters();

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* inodes_ = nullptr;
  rocksdb::ColumnFamilyHandle* dentries_ = nullptr;
  rocksdb::ColumnFamilyHandle* xattrs_ = nullptr;
  rocksdb::ColumnFamilyHandle* orphans_ = nullptr;
  rocksdb::ColumnFamilyHandle* gc_ = nullptr;
  rocksdb::ColumnFamilyHandle* state_ = nullptr;
  rocksdb::ColumnFamilyHandle* degraded_ = nullptr;
  WalSync wal_sync_ = WalSync::kGroup;

  std::mutex mu_;  // serializes mutations; guards everything below
  uint64_t next_ino_ = 2;
  std::map<uint64_t, uint32_t> opens_;  // ino -> open count (in memory only)
  NamespaceCounters counters_;
  uint64_t next_token_ = 1;  // degraded record tokens (seeded from the clock at open)

  std::mutex sync_mu_;  // group commit
  std::condition_variable sync_cv_;
  bool syncing_ = false;
  uint64_t synced_seq_ = 0;
};

}  // namespace cfs::meta
