// DataPath: how a File moves bytes to and from the S-workers. StripedIo
// (striped_io.h) is the real one; keeping it behind this small interface lets
// the write-aggregation and read-ahead logic in FileImpl be tested alone.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "cfs.pb.h"
#include "common/layout.h"
#include "common/status.h"

namespace cfs::client {

// Data calls in flight. Wait() may be called many times; buffers passed to
// Start* must stay valid until it returned once.
class IoOp {
 public:
  virtual ~IoOp() = default;
  virtual Status Wait() = 0;
};

// An op that finished before it started (an error found up front, nothing to move).
class DoneOp : public IoOp {
 public:
  explicit DoneOp(Status st = Status::OK()) : st_(std::move(st)) {}
  Status Wait() override { return st_; }

 private:
  Status st_;
};

class DataPath {
 public:
  virtual ~DataPath() = default;
  // Writes file bytes [off, off+len) from buf: every unit goes to its target, in parallel.
  virtual std::unique_ptr<IoOp> StartWrite(uint64_t ino, const Layout& l, const char* buf,
                                           uint64_t off, uint64_t len) = 0;
  // Reads file bytes [off, off+len) straight into buf (holes read as zeros).
  virtual std::unique_ptr<IoOp> StartRead(uint64_t ino, const Layout& l, char* buf, uint64_t off,
                                          uint64_t len) = 0;
  // Sends an ObjectRequest (FSYNC_OBJECT, TRUNCATE_OBJECT, DELETE_OBJECT) to every
  // target of the layout in parallel; size_of(target_index) fills `size`.
  virtual Status AllTargets(pb::Method method, uint64_t ino, const Layout& l,
                            const std::function<uint64_t(uint32_t)>& size_of) = 0;
  // Cuts the file's data to `size` bytes on every target.
  virtual Status TruncateObjects(uint64_t ino, const Layout& l, uint64_t size) {
    return AllTargets(pb::TRUNCATE_OBJECT, ino, l,
                      [&](uint32_t t) { return LocalObjectSize(l, t, size); });
  }
};

}  // namespace cfs::client
