// FileImpl: one open file of a Client, shared by all its handles.
//
// Writes: contiguous writes are gathered in a buffer that ends at a stripe
// boundary (k*unit bytes when aligned); a full buffer is sent at once (all
// units in parallel) and left in flight while the next one fills, up to
// `write_behind` buffers. A non-contiguous write, a read of buffered bytes,
// Flush, Fsync, Truncate and the last close push the buffer out. A write of
// at least a whole stripe with nothing buffered goes out straight from the
// caller's buffer. Writes to a range still in flight wait for it first, so
// S-workers always see overlapping writes in order.
//
// Reads: a read that continues the previous one (within a stripe) is
// sequential; sequential reads are served from whole stripes fetched in the
// background, `readahead` stripes ahead of the reader. Other reads go straight
// into the caller's buffer. Reads clip to the file size.
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <mutex>

#include "client/client.h"
#include "client/data_path.h"
#include "client/meta_client.h"

namespace cfs::client {

struct FileTuning {
  int readahead_stripes = 2;
  int write_behind_stripes = 2;
};

class FileImpl : public File {
 public:
  // meta may be null (tests): then size reports and SETATTR are skipped.
  FileImpl(uint64_t ino, Layout layout, uint64_t size, DataPath* data, MetaClient* meta,
           FileTuning tuning);
  ~FileImpl() override;

  uint64_t ino() const override { return ino_; }
  const Layout& layout() const override { return layout_; }
  Result<size_t> Read(void* buf, size_t len, uint64_t off) override;
  Result<size_t> Write(const void* buf, size_t len, uint64_t off) override;
  Status Flush() override;
  Status Fsync() override;
  uint64_t size() const override;
  Status Truncate(uint64_t size) override;
  Result<std::unique_ptr<IoOp>> StartDirectWrite(const WriteSource& src, uint64_t len,
                                                 uint64_t off) override;
  void FinishDirectWrite(uint64_t off, uint64_t len, const Status& st) override;
  Result<std::unique_ptr<IoOp>> StartDirectRead(char* buf, uint64_t len, uint64_t off,
                                                uint64_t* n) override;
  uint64_t ReserveAppend(uint64_t len) override;

  // Client-internal.
  // Pushes out buffered writes and waits for them (no size report).
  Status FlushData();
  // Everything of a truncate but the M-worker's SETATTR (the caller sends it).
  Status TruncateData(uint64_t size);
  // Raises the known size (a fresh attr from the M-worker).
  void NoteSize(uint64_t size);
  // Whether this client wrote since the last size report, and the mtime then.
  bool dirty(int64_t* mtime_ns) const;
  void MarkReported();

  // Counters for tests: data calls started by the write path.
  uint64_t write_ops() const;
  uint64_t readahead_fetches() const;

 private:
  struct InFlight {
    uint64_t off, len;
    std::unique_ptr<char[]> buf;  // null for a write straight from the caller's buffer
    std::unique_ptr<IoOp> op;
  };
  struct RaStripe;

  void StartFlushLocked();
  Status WaitOverlappingLocked(uint64_t off, uint64_t len);
  Status WaitAllLocked();
  Status TakeDeferredLocked();
  void InvalidateReadahead(uint64_t off, uint64_t len);
  Result<size_t> ReadCached(char* buf, size_t len, uint64_t off, uint64_t size, uint64_t gen);
  Status SettleWritesLocked();
  Status ReportSize();
  std::unique_ptr<char[]> TakeBuffer();

  const uint64_t ino_;
  const Layout layout_;
  const uint64_t stripe_bytes_;
  DataPath* data_;
  MetaClient* meta_;
  const FileTuning tuning_;

  mutable std::mutex mu_;  // write state and size
  uint64_t size_;
  bool dirty_ = false;
  int64_t mtime_ns_ = 0;
  std::unique_ptr<char[]> wbuf_;
  uint64_t wbuf_off_ = 0;
  uint64_t wbuf_len_ = 0;
  uint64_t wbuf_limit_ = 0;  // buffer ends at file offset wbuf_off_ + wbuf_limit_
  std::deque<InFlight> inflight_;
  std::vector<std::unique_ptr<char[]>> spare_;
  Status deferred_;  // failure of a write-behind flush, reported by the next call
  uint64_t write_ops_ = 0;
  std::atomic<uint64_t> write_gen_{0};  // bumped by every write (read-ahead validity)

  mutable std::mutex ra_mu_;  // read-ahead state; taken after mu_, never before
  uint64_t ra_fetches_ = 0;
  uint64_t ra_next_ = 0;
  int ra_seq_ = 0;
  std::map<uint64_t, std::shared_ptr<RaStripe>> ra_;
};

}  // namespace cfs::client
