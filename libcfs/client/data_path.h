// DataPath: how a File moves bytes to and from the S-workers. StripedIo
// (striped_io.h) is the real one; keeping it behind this small interface lets
// the write-aggregation and read-ahead logic in FileImpl be tested alone.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

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

// The bytes of a write: one buffer, or pieces that follow each other in the
// file but not in memory (requests an I/O queue merged). Whoever builds one
// with several pieces breaks them only at stripe-unit boundaries of the file,
// so each unit's part of the write lies in one piece (EcIo copies otherwise).
class WriteSource {
 public:
  struct Piece {
    uint64_t off;  // file offset
    const char* buf;
    uint64_t len;
  };
  WriteSource(const char* buf, uint64_t off, uint64_t len) : pieces_{{off, buf, len}} {}
  explicit WriteSource(std::vector<Piece> pieces) : pieces_(std::move(pieces)) {}
  const std::vector<Piece>& pieces() const { return pieces_; }
  // The byte at file offset pos, which must lie inside the write.
  const char* At(uint64_t pos) const { return Find(pos).buf + (pos - Find(pos).off); }
  // Bytes from pos that are contiguous in memory (to the end of its piece).
  uint64_t ContiguousFrom(uint64_t pos) const {
    const Piece& p = Find(pos);
    return p.off + p.len - pos;
  }

 private:
  const Piece& Find(uint64_t pos) const {
    if (pieces_.size() == 1) return pieces_[0];
    size_t lo = 0, hi = pieces_.size();
    while (hi - lo > 1) {  // last piece with off <= pos
      size_t mid = (lo + hi) / 2;
      if (pieces_[mid].off <= pos) lo = mid; else hi = mid;
    }
    return pieces_[lo];
  }
  std::vector<Piece> pieces_;
};

// Waits for several ops; the first failure is the result.
class AllOps : public IoOp {
 public:
  std::vector<std::unique_ptr<IoOp>> ops;
  Status Wait() override {
    Status first;
    for (auto& o : ops) {
      Status st = o->Wait();
      if (first.ok() && !st.ok()) first = st;
    }
    return first;
  }
};

class DataPath {
 public:
  virtual ~DataPath() = default;
  // Writes file bytes [off, off+len) from buf: every unit goes to its target, in parallel.
  virtual std::unique_ptr<IoOp> StartWrite(uint64_t ino, const Layout& l, const char* buf,
                                           uint64_t off, uint64_t len) = 0;
  // The same from a gathered source. This default writes piece by piece; the
  // real data path sends whole stripes gathered.
  virtual std::unique_ptr<IoOp> StartWriteV(uint64_t ino, const Layout& l, const WriteSource& src,
                                            uint64_t off, uint64_t len) {
    auto all = std::make_unique<AllOps>();
    for (const auto& p : src.pieces()) all->ops.push_back(StartWrite(ino, l, p.buf, p.off, p.len));
    return all;
  }
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
