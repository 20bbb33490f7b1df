// NamespaceStore: the M-worker's durable state (namespace, layouts, orphans,
// the object-deletion queue and small cluster-state records) behind one
// interface, so that other stores (a replicated one) can slot in later.
// Every mutation is atomic and durable when it returns OK (subject to the
// store's WAL sync policy).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cfs.pb.h"
#include "common/status.h"

namespace cfs::meta {

constexpr uint64_t kRootIno = 1;
constexpr size_t kNameMax = 255;
constexpr size_t kSymlinkMax = 4095;
constexpr size_t kXattrNameMax = 255;
constexpr size_t kXattrValueMax = 64 * 1024;

// RENAME flags as in renameat2(2).
constexpr uint32_t kRenameNoReplace = 1;
constexpr uint32_t kRenameExchange = 2;
// setxattr flags.
constexpr uint32_t kXattrCreate = 1;
constexpr uint32_t kXattrReplace = 2;

struct CreateResult {
  pb::Attr attr;
  bool created = false;
};

// Picks a new regular file's layout. `dir_layout` is the parent directory's
// default layout, or null when it has none. Called with the store's mutation
// lock held, so it must not call back into the store.
using LayoutChooser = std::function<Result<pb::Layout>(const pb::Layout* dir_layout)>;

// A file whose objects still have to be deleted on some targets.
struct GcItem {
  uint64_t ino = 0;
  std::vector<uint32_t> targets;  // targets not yet confirmed
};

struct NamespaceCounters {
  uint64_t inodes = 0;
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t pending_deletes = 0;  // files with objects queued for deletion
  uint64_t orphans = 0;
  uint64_t degraded = 0;  // (target, file) pairs waiting for a resync
};

// A file whose units on one target must be brought up to date (column family
// "degraded"). `token` changes whenever the pair is recorded again, so a
// resync that started before a newer report does not erase it.
struct DegradedItem {
  uint32_t target = 0;
  uint64_t ino = 0;
  uint64_t token = 0;
};

class NamespaceStore {
 public:
  virtual ~NamespaceStore() = default;

  // ---- namespace ----
  virtual Result<pb::Attr> Lookup(uint64_t parent, const std::string& name) = 0;
  virtual Result<pb::Attr> GetAttr(uint64_t ino) = 0;
  virtual Result<pb::Attr> SetAttr(const pb::SetattrRequest& req) = 0;
  // Regular files (choose is called for the layout) and, by mode, FIFOs,
  // sockets and device nodes. With client_id != 0 the file is counted open.
  virtual Result<CreateResult> Create(const pb::CreateRequest& req, const LayoutChooser& choose) = 0;
  virtual Result<pb::Attr> Mkdir(const pb::MkdirRequest& req) = 0;
  virtual Status Unlink(uint64_t parent, const std::string& name) = 0;
  virtual Status Rmdir(uint64_t parent, const std::string& name) = 0;
  virtual Status Rename(const pb::RenameRequest& req) = 0;
  virtual Result<pb::Attr> Link(uint64_t ino, uint64_t new_parent, const std::string& name) = 0;
  virtual Result<pb::Attr> Symlink(const pb::SymlinkRequest& req) = 0;
  virtual Result<std::string> Readlink(uint64_t ino) = 0;
  virtual Status Readdir(const pb::ReaddirRequest& req, pb::ReaddirResponse* resp) = 0;
  virtual Status SetDirLayout(uint64_t ino, const pb::Layout& layout) = 0;

  // ---- opens and sizes ----
  virtual Result<pb::Attr> Open(uint64_t ino, uint64_t client_id) = 0;
  // Ends one open; the last close of an orphan deletes it.
  virtual Result<pb::Attr> Close(const pb::CloseRequest& req) = 0;
  virtual Result<pb::Attr> ReportSize(uint64_t ino, uint64_t size, int64_t mtime_ns) = 0;
  // Deletes every orphan nobody has open (after the restart grace period).
  virtual Status PurgeClosedOrphans(uint64_t* purged) = 0;

  // ---- xattrs ----
  virtual Status SetXattr(uint64_t ino, const std::string& name, const std::string& value,
                          uint32_t flags) = 0;
  virtual Result<std::string> GetXattr(uint64_t ino, const std::string& name) = 0;
  virtual Result<std::vector<std::string>> ListXattr(uint64_t ino) = 0;
  virtual Status RemoveXattr(uint64_t ino, const std::string& name) = 0;

  // ---- object deletion queue ----
  virtual Result<std::vector<GcItem>> ListGc(size_t max) = 0;
  // Removes confirmed (ino, target) pairs from the queue, in one batch.
  virtual Status GcDone(const std::vector<std::pair<uint64_t, uint32_t>>& done) = 0;

  // ---- redundancy (docs/erasure-coding.md, "Redundancy management") ----
  // Records (target, ino) for each target, durably, in one batch.
  virtual Status AddDegraded(uint64_t ino, const std::vector<uint32_t>& targets) = 0;
  // Up to max records in (target, ino) order, starting after `after` (null: from the start).
  virtual Result<std::vector<DegradedItem>> ListDegraded(const DegradedItem* after, size_t max) = 0;
  // Removes the record if its token is still item.token (not reported again since).
  virtual Status DegradedDone(const DegradedItem& item) = 0;
  // Regular files with a layout, in inode order, with ino > after_ino; at most max.
  virtual Result<std::vector<pb::Attr>> ScanFiles(uint64_t after_ino, size_t max) = 0;
  // One atomic batch: targets[index] of the file's layout becomes new_target
  // (EAGAIN if it no longer is old_target, ESTALE if the file is gone) and
  // (new_target, ino) is recorded as degraded.
  virtual Status ReplaceTarget(uint64_t ino, uint32_t index, uint32_t old_target,
                               uint32_t new_target) = 0;

  // ---- small cluster-state records (worker registry, epochs) ----
  virtual Result<std::optional<std::string>> GetState(const std::string& key) = 0;
  virtual Status PutState(const std::vector<std::pair<std::string, std::string>>& kvs) = 0;
  virtual Result<std::vector<std::pair<std::string, std::string>>> ScanState(
      const std::string& prefix) = 0;

  virtual NamespaceCounters Counters() = 0;
  // fsck: OK when consistent; otherwise EUCLEAN-style error and a report of
  // every problem found.
  virtual Status CheckConsistency(std::string* report) = 0;
};

}  // namespace cfs::meta
