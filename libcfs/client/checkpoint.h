// Checkpoint sets (docs/checkpoints.md): a directory of files written by many
// processes that becomes visible as complete all at once. One implementation
// on top of Client, used by the C API (cfs_ckpt_*) and by `cfs ckpt`.
//
// On the namespace, for set "JOB/NAME":
//   JOB/.pending/NAME/          the set while it is written (begin)
//   JOB/NAME/                   the set once committed, with its manifest
//   JOB/NAME/.cfs-ckpt          JSON manifest: seq, commit time, files, sizes
//   JOB/.pending/.trash-*       sets being removed (never listed)
//   xattr user.cfs.ckpt.keep    on JOB: the retention (keep the newest N)
// The commit point is the rename of JOB/.pending/NAME to JOB/NAME: one
// RocksDB write on the M-worker, synced before it answers.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "client/client.h"
#include "common/status.h"

namespace cfs::client {

// The C API's CFS_ECOMMITTED and CFS_ECKPTBUSY (cfs.h), carried in Status::err().
constexpr int kErrCkptCommitted = 4096 + 2;
constexpr int kErrCkptBusy = 4096 + 4;

constexpr char kCkptPendingDir[] = ".pending";
constexpr char kCkptManifest[] = ".cfs-ckpt";
constexpr char kCkptKeepXattr[] = "user.cfs.ckpt.keep";
constexpr uint32_t kCkptFormatVersion = 1;

// "JOB/NAME" split and checked: job is absolute and normalized ("/a/b").
struct CkptSetName {
  std::string job;
  std::string name;
};
// EINVAL for an empty job, "." or ".." components, or a bad NAME (empty, a
// leading '.', longer than 255 bytes).
Result<CkptSetName> ParseCkptSet(const std::string& set);
Result<std::string> ParseCkptJob(const std::string& job);

struct CkptFile {
  std::string path;  // relative to the set directory ("rank0", "sub/part1")
  uint64_t size = 0;
  bool operator==(const CkptFile&) const = default;
};

// The manifest written into a set at commit.
struct CkptManifest {
  std::string name;
  uint64_t seq = 0;
  int64_t commit_ns = 0;
  std::string commit_id;  // random per commit call: recognises our own rename after a lost reply
  std::vector<CkptFile> files;
  uint64_t bytes = 0;
};
std::string ManifestToJson(const CkptManifest& m);
// Invalid (EBADMSG) unless it is a complete manifest of a set called `name`.
Result<CkptManifest> ParseManifest(const std::string& text, const std::string& name);

struct CkptSetInfo {
  std::string name;
  bool committed = false;
  uint64_t seq = 0;        // 0 while pending
  int64_t commit_ns = 0;   // 0 while pending
  uint64_t files = 0;
  uint64_t bytes = 0;
};

struct CkptCommitResult {
  CkptSetInfo set;
  uint32_t keep = 0;                 // the job's retention when it was applied
  std::vector<std::string> retired;  // older sets the retention removed
  Status retention;                  // why the retention stopped (the commit itself stands)
};

class Checkpoints {
 public:
  // uid/gid own the directories and manifests created.
  Checkpoints(Client* c, uint32_t uid, uint32_t gid) : c_(c), uid_(uid), gid_(gid) {}

  // Creates (or joins) the pending set; returns its CFS directory
  // JOB/.pending/NAME. kErrCkptCommitted if NAME is committed.
  Result<std::string> Begin(const std::string& set);

  // writing(ino): whether the caller has that file open for writing; such a
  // file makes the commit fail with kErrCkptBusy before anything changes.
  using WritingFn = std::function<bool(uint64_t ino)>;
  Result<CkptCommitResult> Commit(const std::string& set, const WritingFn& writing = nullptr);

  // The committed set with the highest (seq, commit time, name); ENOENT if none.
  Result<CkptSetInfo> Latest(const std::string& job);
  // "JOB/NAME" of a committed set; ENOENT otherwise (pending sets included).
  Result<std::string> Path(const std::string& set);
  // Committed sets by seq, then pending ones by name.
  Result<std::vector<CkptSetInfo>> List(const std::string& job);
  // Removes the committed and/or pending set NAME with its files; ENOENT if neither exists.
  Status Remove(const std::string& set);

  Status SetRetention(const std::string& job, uint32_t keep);
  Result<uint32_t> GetRetention(const std::string& job);

 private:
  struct Entry {
    std::string name;
    uint64_t ino = 0;
    uint32_t type = 0;  // st_mode >> 12
    uint64_t size = 0;
  };
  struct Committed {
    CkptManifest manifest;
    uint64_t ino = 0;
  };

  Result<std::vector<Entry>> ListDir(uint64_t ino);
  // nullopt-like: *found false when there is no such entry.
  Result<pb::Attr> LookupOpt(uint64_t parent, const std::string& name, bool* found);
  Result<uint64_t> EnsureDir(uint64_t parent, const std::string& name);
  Result<uint64_t> MkdirP(const std::string& path);
  Result<uint64_t> JobDir(const std::string& job);
  Result<std::string> ReadWhole(uint64_t ino);
  // The manifest of directory `dir` if it is a committed set called name;
  // *valid false when it is not one (no or bad manifest).
  Result<CkptManifest> ReadManifest(uint64_t dir, const std::string& name, bool* valid);
  Result<std::vector<Committed>> CommittedSets(uint64_t job_ino);
  Status Walk(uint64_t dir, const std::string& prefix, bool top, std::vector<Entry>* files);
  // Installs *m as the set's manifest. A manifest of the same files and seq
  // put there first by a concurrent committer is kept and copied into *m.
  Status WriteManifest(uint64_t set_ino, CkptManifest* m);
  // Makes every file durable on the S-workers and fills sizes.
  Status SyncFiles(const std::vector<Entry>& files, std::vector<CkptFile>* out);
  Status RemoveTree(uint64_t dir);
  // Moves parent/name into JOB/.pending/.trash-* (out of every listing at
  // once), then deletes it.
  Status Retire(uint64_t job_ino, uint64_t parent, const std::string& name);
  // Deletes what crashed removals left in JOB/.pending.
  void CollectTrash(uint64_t pending_ino);
  Status ApplyRetention(uint64_t job_ino, std::vector<Committed> sets, CkptCommitResult* r);

  Client* c_;
  uint32_t uid_, gid_;
};

}  // namespace cfs::client
