// The C++ client: everything cfs-fuse, the cfs CLI and the C API use to reach a
// cluster. Metadata goes to the M-worker (with a list of addresses to retry);
// data goes straight to the S-workers named by the file's layout and the
// cluster map, in parallel, over pooled pipelined channels.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cfs.pb.h"
#include "client/data_path.h"
#include "common/layout.h"
#include "common/status.h"

namespace cfs::client {

struct ClientOptions {
  std::vector<std::string> meta_addrs;  // "host:port", tried in order
  // Data path to the S-workers: tcp, rdma or auto (rpc::MakeTransport). The
  // M-worker is always reached over TCP: its messages are small, no bulk.
  std::string transport = "tcp";
  std::string rdma_device;              // "" = the device rdma_cm picks for the address
  int channels_per_worker = 2;
  int readahead_stripes = 2;            // whole stripes fetched ahead on sequential reads
  int write_behind_stripes = 2;         // full stripes in flight per file before a write waits
  std::chrono::milliseconds timeout{30000};
  // Parity layouts: an S-worker silent this long counts as failed and its
  // units are decoded from the others (and writes continue without it).
  std::chrono::milliseconds failure_timeout{5000};
  // Parses "host:port[,host:port]" and "key=value,..." (see cfs.h).
  static Result<ClientOptions> Parse(const std::string& cluster, const std::string& options);
};

// Layout hint for new files: zero fields inherit.
struct LayoutHint {
  uint32_t unit = 0, k = 0, m = 0;
};

Layout FromProto(const pb::Layout& l);
pb::Layout ToProto(const Layout& l);

class Client;

// An open file. All handles of one inode within a Client share one File, so
// they see each other's buffered writes. Thread-safe.
class File {
 public:
  virtual ~File() = default;
  virtual uint64_t ino() const = 0;
  virtual const Layout& layout() const = 0;
  // Reads up to len bytes at off; short only at end of file.
  virtual Result<size_t> Read(void* buf, size_t len, uint64_t off) = 0;
  // Writes are aggregated into whole stripes before going out.
  virtual Result<size_t> Write(const void* buf, size_t len, uint64_t off) = 0;
  // Pushes buffered writes to the S-workers and reports the size.
  virtual Status Flush() = 0;
  // Flush, then make the data durable on the S-workers.
  virtual Status Fsync() = 0;
  // Size as this client knows it (M-worker size at open plus local writes).
  virtual uint64_t size() const = 0;
  // Truncates (or extends with zeros) the file, data and metadata.
  virtual Status Truncate(uint64_t size) = 0;

  // Direct asynchronous I/O (the C API's I/O queues): straight between the
  // caller's memory and the S-workers, without aggregation or read-ahead.
  // Buffered writes that overlap the range go out first, so earlier writes
  // stay ordered before it. The memory must stay valid until the op's Wait()
  // returned; then call FinishDirectWrite with its status.
  virtual Result<std::unique_ptr<IoOp>> StartDirectWrite(const WriteSource& src, uint64_t len,
                                                         uint64_t off) = 0;
  virtual void FinishDirectWrite(uint64_t off, uint64_t len, const Status& st) = 0;
  // Reads clip to the size this client knows; *n is the count the op fills.
  virtual Result<std::unique_ptr<IoOp>> StartDirectRead(char* buf, uint64_t len, uint64_t off,
                                                        uint64_t* n) = 0;
  // O_APPEND: reserves len bytes at the end of the file and returns their offset.
  virtual uint64_t ReserveAppend(uint64_t len) = 0;
};

class Client {
 public:
  virtual ~Client() = default;
  static Result<std::unique_ptr<Client>> Connect(const ClientOptions& opts);

  virtual uint64_t client_id() const = 0;
  // Metadata calls that cannot reach the M-worker, those in progress included,
  // stop retrying `window` from now: for a process that is stopping (a signal
  // must not wait out the retries of requests in flight). Async-signal-safe.
  virtual void LimitRetries(std::chrono::milliseconds window) = 0;

  // ---- namespace, by inode (FUSE style); root is inode 1 ----
  virtual Result<pb::Attr> Lookup(uint64_t parent, const std::string& name) = 0;
  // Attributes, with the size of a file this client has open merged in.
  virtual Result<pb::Attr> GetAttr(uint64_t ino) = 0;
  // req.valid says which fields apply; a size change truncates the data.
  virtual Result<pb::Attr> SetAttr(const pb::SetattrRequest& req) = 0;
  virtual Result<pb::Attr> Mkdir(uint64_t parent, const std::string& name, uint32_t mode,
                                 uint32_t uid, uint32_t gid) = 0;
  virtual Result<pb::Attr> Mknod(uint64_t parent, const std::string& name, uint32_t mode,
                                 uint64_t rdev, uint32_t uid, uint32_t gid) = 0;
  virtual Status Unlink(uint64_t parent, const std::string& name) = 0;
  virtual Status Rmdir(uint64_t parent, const std::string& name) = 0;
  // flags: 0, RENAME_NOREPLACE (1) or RENAME_EXCHANGE (2).
  virtual Status Rename(uint64_t parent, const std::string& name, uint64_t new_parent,
                        const std::string& new_name, uint32_t flags) = 0;
  virtual Result<pb::Attr> Link(uint64_t ino, uint64_t new_parent, const std::string& new_name) = 0;
  virtual Result<pb::Attr> Symlink(uint64_t parent, const std::string& name,
                                   const std::string& target, uint32_t uid, uint32_t gid) = 0;
  virtual Result<std::string> Readlink(uint64_t ino) = 0;
  virtual Result<pb::ReaddirResponse> Readdir(uint64_t ino, uint64_t cookie, uint32_t max,
                                              bool plus) = 0;
  virtual Result<pb::StatfsResponse> Statfs() = 0;
  virtual Status SetXattr(uint64_t ino, const std::string& name, const std::string& value,
                          uint32_t flags) = 0;
  virtual Result<std::string> GetXattr(uint64_t ino, const std::string& name) = 0;
  virtual Result<std::vector<std::string>> ListXattr(uint64_t ino) = 0;
  virtual Status RemoveXattr(uint64_t ino, const std::string& name) = 0;
  virtual Status SetDirLayout(uint64_t ino, const LayoutHint& hint) = 0;

  // ---- files ----
  // Creates (or with !exclusive opens an existing) regular file and opens it.
  virtual Result<std::shared_ptr<File>> Create(uint64_t parent, const std::string& name,
                                               uint32_t mode, uint32_t uid, uint32_t gid,
                                               bool exclusive, const LayoutHint& hint,
                                               pb::Attr* attr) = 0;
  virtual Result<std::shared_ptr<File>> Open(uint64_t ino, uint32_t flags, pb::Attr* attr) = 0;
  // Releases one handle: the last release of an inode flushes it and tells the M-worker.
  virtual Status Release(const std::shared_ptr<File>& f) = 0;

  // ---- paths (C API and CLI) ----
  virtual Result<pb::Attr> Resolve(const std::string& path) = 0;
  // Splits "/a/b/c" into the inode of "/a/b" and "c".
  virtual Result<std::pair<uint64_t, std::string>> ResolveParent(const std::string& path) = 0;

  // ---- cluster ----
  virtual Result<pb::StatusResponse> ClusterStatus() = 0;
  virtual Result<pb::ClusterMap> GetClusterMap(bool refresh) = 0;
  // What the data path reaches the S-worker at host:port over, "tcp" or
  // "rdma" (Channel::kind()), connecting a data channel if none is open yet.
  virtual Result<std::string> DataPathTo(const std::string& host, uint16_t port) = 0;
};

}  // namespace cfs::client
