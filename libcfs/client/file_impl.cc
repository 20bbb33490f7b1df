#include "client/file_impl.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "common/logging.h"

namespace cfs::client {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool Overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) {
  return a < b + blen && b < a + alen;
}

}  // namespace

// One whole stripe fetched ahead of a sequential reader.
struct FileImpl::RaStripe {
  uint64_t off = 0, len = 0;
  uint64_t gen = 0;  // write_gen_ when fetched
  std::unique_ptr<char[]> buf;
  std::unique_ptr<IoOp> op;
  std::mutex mu;
  bool done = false;
  Status st;
  Status Wait() {
    std::lock_guard<std::mutex> g(mu);
    if (!done) {
      st = op->Wait();
      done = true;
    }
    return st;
  }
  ~RaStripe() {
    if (op) Wait();  // the calls write into buf
  }
};

FileImpl::FileImpl(uint64_t ino, Layout layout, uint64_t size, DataPath* data, MetaClient* meta,
                   FileTuning tuning)
    : ino_(ino),
      layout_(std::move(layout)),
      stripe_bytes_(layout_.stripe_bytes()),
      data_(data),
      meta_(meta),
      tuning_(tuning),
      size_(size) {}

FileImpl::~FileImpl() {
  std::lock_guard<std::mutex> g(mu_);
  StartFlushLocked();
  Status st = WaitAllLocked();
  if (!st.ok()) LOG_WARN("ino {}: writes lost at teardown: {}", ino_, st.ToString());
}

uint64_t FileImpl::size() const {
  std::lock_guard<std::mutex> g(mu_);
  return size_;
}

void FileImpl::NoteSize(uint64_t size) {
  std::lock_guard<std::mutex> g(mu_);
  size_ = std::max(size_, size);
}

bool FileImpl::dirty(int64_t* mtime_ns) const {
  std::lock_guard<std::mutex> g(mu_);
  if (mtime_ns) *mtime_ns = mtime_ns_;
  return dirty_;
}

void FileImpl::MarkReported() {
  std::lock_guard<std::mutex> g(mu_);
  dirty_ = false;
}

uint64_t FileImpl::write_ops() const {
  std::lock_guard<std::mutex> g(mu_);
  return write_ops_;
}

std::unique_ptr<char[]> FileImpl::TakeBuffer() {
  if (!spare_.empty()) {
    auto b = std::move(spare_.back());
    spare_.pop_back();
    return b;
  }
  return std::make_unique_for_overwrite<char[]>(stripe_bytes_);
}

Status FileImpl::TakeDeferredLocked() {
  Status st = std::move(deferred_);
  deferred_ = Status::OK();
  return st;
}

Status FileImpl::WaitOverlappingLocked(uint64_t off, uint64_t len) {
  Status first;
  for (auto it = inflight_.begin(); it != inflight_.end();) {
    if (!Overlaps(it->off, it->len, off, len)) {
      ++it;
      continue;
    }
    Status st = it->op->Wait();
    if (!st.ok() && first.ok()) first = st;
    if (it->buf) spare_.push_back(std::move(it->buf));
    it = inflight_.erase(it);
  }
  return first;
}

Status FileImpl::WaitAllLocked() {
  Status first;
  while (!inflight_.empty()) {
    Status st = inflight_.front().op->Wait();
    if (!st.ok() && first.ok()) first = st;
    if (inflight_.front().buf) spare_.push_back(std::move(inflight_.front().buf));
    inflight_.pop_front();
  }
  if (first.ok()) first = TakeDeferredLocked();
  return first;
}

void FileImpl::StartFlushLocked() {
  if (wbuf_len_ == 0) return;
  Status st = WaitOverlappingLocked(wbuf_off_, wbuf_len_);
  if (!st.ok() && deferred_.ok()) deferred_ = st;
  InFlight f;
  f.off = wbuf_off_;
  f.len = wbuf_len_;
  f.op = data_->StartWrite(ino_, layout_, wbuf_.get(), wbuf_off_, wbuf_len_);
  f.buf = std::move(wbuf_);
  write_ops_++;
  inflight_.push_back(std::move(f));
  wbuf_len_ = 0;
  // Bound the memory and the work in flight: wait for the oldest.
  while (inflight_.size() > static_cast<size_t>(tuning_.write_behind_stripes)) {
    Status ws = inflight_.front().op->Wait();
    if (!ws.ok() && deferred_.ok()) deferred_ = ws;
    if (inflight_.front().buf) spare_.push_back(std::move(inflight_.front().buf));
    inflight_.pop_front();
  }
}

Result<size_t> FileImpl::Write(const void* vbuf, size_t len, uint64_t off) {
  if (len == 0) return size_t{0};
  if (off + len < off) return Status::Invalid("write range overflows");
  std::lock_guard<std::mutex> g(mu_);
  CFS_RETURN_IF_ERROR(TakeDeferredLocked());
  write_gen_++;
  InvalidateReadahead(off, len);
  if (wbuf_len_ > 0 && off != wbuf_off_ + wbuf_len_) StartFlushLocked();
  const char* p = static_cast<const char*>(vbuf);
  uint64_t pos = off, left = len;
  while (left > 0) {
    if (wbuf_len_ == 0 && left >= stripe_bytes_) {
      // At least a whole stripe: straight from the caller's buffer, up to the
      // last stripe boundary; it must be on the S-workers before we return.
      uint64_t n = (pos + left) / stripe_bytes_ * stripe_bytes_ - pos;
      CFS_RETURN_IF_ERROR(WaitOverlappingLocked(pos, n));
      auto op = data_->StartWrite(ino_, layout_, p, pos, n);
      write_ops_++;
      CFS_RETURN_IF_ERROR(op->Wait());
      pos += n;
      p += n;
      left -= n;
      continue;
    }
    if (wbuf_len_ == 0) {
      wbuf_ = TakeBuffer();
      wbuf_off_ = pos;
      wbuf_limit_ = (pos / stripe_bytes_ + 1) * stripe_bytes_ - pos;  // up to the stripe end
    }
    uint64_t n = std::min(left, wbuf_limit_ - wbuf_len_);
    std::memcpy(wbuf_.get() + wbuf_len_, p, n);
    wbuf_len_ += n;
    pos += n;
    p += n;
    left -= n;
    if (wbuf_len_ == wbuf_limit_) StartFlushLocked();
  }
  size_ = std::max(size_, off + len);
  dirty_ = true;
  mtime_ns_ = NowNs();
  return len;
}

Result<std::unique_ptr<IoOp>> FileImpl::StartDirectWrite(const WriteSource& src, uint64_t len,
                                                         uint64_t off) {
  if (off + len < off) return Status::Invalid("write range overflows");
  std::lock_guard<std::mutex> g(mu_);
  CFS_RETURN_IF_ERROR(TakeDeferredLocked());
  write_gen_++;
  InvalidateReadahead(off, len);
  if (wbuf_len_ > 0 && Overlaps(wbuf_off_, wbuf_len_, off, len)) StartFlushLocked();
  CFS_RETURN_IF_ERROR(WaitOverlappingLocked(off, len));
  write_ops_++;
  return data_->StartWriteV(ino_, layout_, src, off, len);
}

void FileImpl::FinishDirectWrite(uint64_t off, uint64_t len, const Status& st) {
  std::lock_guard<std::mutex> g(mu_);
  // Read-ahead fetched while the write was in flight may hold old bytes.
  write_gen_++;
  InvalidateReadahead(off, len);
  if (!st.ok()) return;
  size_ = std::max(size_, off + len);
  dirty_ = true;
  mtime_ns_ = NowNs();
}

Result<std::unique_ptr<IoOp>> FileImpl::StartDirectRead(char* buf, uint64_t len, uint64_t off,
                                                        uint64_t* n) {
  uint64_t size;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (wbuf_len_ > 0 && Overlaps(wbuf_off_, wbuf_len_, off, len)) StartFlushLocked();
    CFS_RETURN_IF_ERROR(WaitOverlappingLocked(off, len));
    size = size_;
  }
  *n = off >= size ? 0 : std::min<uint64_t>(len, size - off);
  if (*n == 0) return std::unique_ptr<IoOp>(std::make_unique<DoneOp>());
  return data_->StartRead(ino_, layout_, buf, off, *n);
}

uint64_t FileImpl::ReserveAppend(uint64_t len) {
  std::lock_guard<std::mutex> g(mu_);
  uint64_t off = size_;
  size_ += len;
  dirty_ = true;
  mtime_ns_ = NowNs();
  return off;
}

Status FileImpl::FlushData() {
  std::lock_guard<std::mutex> g(mu_);
  StartFlushLocked();
  return WaitAllLocked();
}

Status FileImpl::ReportSize() {
  if (!meta_) return Status::OK();
  pb::ReportSizeRequest req;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (!dirty_) return Status::OK();
    req.set_ino(ino_);
    req.set_size(size_);
    req.set_mtime_ns(mtime_ns_);
  }
  pb::AttrResponse resp;
  CFS_RETURN_IF_ERROR(meta_->Call(pb::REPORT_SIZE, req, &resp));
  std::lock_guard<std::mutex> g(mu_);
  if (mtime_ns_ == req.mtime_ns()) dirty_ = false;  // no write since the report
  return Status::OK();
}

Status FileImpl::Flush() {
  CFS_RETURN_IF_ERROR(FlushData());
  return ReportSize();
}

Status FileImpl::Fsync() {
  CFS_RETURN_IF_ERROR(FlushData());
  CFS_RETURN_IF_ERROR(data_->AllTargets(pb::FSYNC_OBJECT, ino_, layout_, nullptr));
  return ReportSize();
}

Status FileImpl::TruncateData(uint64_t size) {
  std::lock_guard<std::mutex> g(mu_);
  StartFlushLocked();
  CFS_RETURN_IF_ERROR(WaitAllLocked());
  write_gen_++;
  {
    std::lock_guard<std::mutex> r(ra_mu_);
    ra_.clear();
  }
  CFS_RETURN_IF_ERROR(data_->TruncateObjects(ino_, layout_, size));
  size_ = size;
  return Status::OK();
}

Status FileImpl::Truncate(uint64_t size) {
  CFS_RETURN_IF_ERROR(TruncateData(size));
  if (!meta_) return Status::OK();
  pb::SetattrRequest req;
  req.set_ino(ino_);
  req.set_valid(pb::SETATTR_SIZE);
  req.set_size(size);
  pb::AttrResponse resp;
  return meta_->Call(pb::SETATTR, req, &resp);
}

void FileImpl::InvalidateReadahead(uint64_t off, uint64_t len) {
  std::vector<std::shared_ptr<RaStripe>> dropped;  // destroyed outside the lock
  std::lock_guard<std::mutex> g(ra_mu_);
  for (auto it = ra_.begin(); it != ra_.end();) {
    if (Overlaps(it->second->off, it->second->len, off, len)) {
      dropped.push_back(std::move(it->second));
      it = ra_.erase(it);
    } else {
      ++it;
    }
  }
}

Status FileImpl::SettleWritesLocked() {
  if (wbuf_len_ == 0 && inflight_.empty()) return Status::OK();
  StartFlushLocked();
  return WaitAllLocked();
}

Result<size_t> FileImpl::Read(void* vbuf, size_t len, uint64_t off) {
  uint64_t size, gen;
  {
    // The S-workers must hold everything this client wrote before the read;
    // read-ahead may reach beyond the range, so settle all of it.
    std::lock_guard<std::mutex> g(mu_);
    CFS_RETURN_IF_ERROR(SettleWritesLocked());
    size = size_;
    gen = write_gen_;
  }
  if (off >= size || len == 0) return size_t{0};
  len = static_cast<size_t>(std::min<uint64_t>(len, size - off));
  char* buf = static_cast<char*>(vbuf);

  bool sequential;
  {
    std::lock_guard<std::mutex> g(ra_mu_);
    // A read that continues exactly where the last one ended is sequential.
    // Kernel read-ahead may reorder nearby reads, so within a stripe also
    // counts, but only while a sequential run is already going: a random
    // read that happens to land near the previous one must not pull in whole
    // stripes (that made random 4 KiB reads move 50x their bytes).
    uint64_t d = off > ra_next_ ? off - ra_next_ : ra_next_ - off;
    bool seq = off == ra_next_ || (d <= stripe_bytes_ && ra_seq_ > 0);
    ra_seq_ = seq ? ra_seq_ + 1 : 0;
    ra_next_ = seq ? std::max(ra_next_, off + len) : off + len;
    sequential = seq && tuning_.readahead_stripes > 0;
  }
  if (sequential) {
    auto r = ReadCached(buf, len, off, size, gen);
    if (r.ok()) return r;
    LOG_DEBUG("ino {}: read-ahead not usable ({}), reading directly", ino_, r.status().ToString());
    std::lock_guard<std::mutex> g(mu_);
    CFS_RETURN_IF_ERROR(SettleWritesLocked());
  }
  CFS_RETURN_IF_ERROR(data_->StartRead(ino_, layout_, buf, off, len)->Wait());
  return len;
}

Result<size_t> FileImpl::ReadCached(char* buf, size_t len, uint64_t off, uint64_t size,
                                    uint64_t gen) {
  const uint64_t first = off / stripe_bytes_, last = (off + len - 1) / stripe_bytes_;
  std::vector<std::shared_ptr<RaStripe>> need, dropped;
  {
    std::lock_guard<std::mutex> g(ra_mu_);
    // Keep one stripe behind the reader for slightly reordered reads.
    while (!ra_.empty() && ra_.begin()->first + 1 < first) {
      dropped.push_back(std::move(ra_.begin()->second));
      ra_.erase(ra_.begin());
    }
    for (uint64_t s = first; s <= last + tuning_.readahead_stripes; s++) {
      uint64_t soff = s * stripe_bytes_;
      if (soff >= size) break;
      auto& slot = ra_[s];
      if (slot && slot->gen != gen) slot.reset();  // fetched before a later write
      if (!slot) {
        slot = std::make_shared<RaStripe>();
        slot->off = soff;
        slot->len = std::min(stripe_bytes_, size - soff);
        slot->gen = gen;
        slot->buf = std::make_unique_for_overwrite<char[]>(slot->len);
        slot->op = data_->StartRead(ino_, layout_, slot->buf.get(), soff, slot->len);
        ra_fetches_++;
      }
      if (s <= last) need.push_back(slot);
    }
  }
  for (auto& st : need) {
    Status s = st->Wait();
    if (!s.ok()) {
      InvalidateReadahead(st->off, st->len);
      return s;
    }
    // A write since `gen` may have raced with the fetch: not usable.
    if (st->gen != write_gen_.load()) return Status(EAGAIN, "read-ahead raced with a write");
    uint64_t a = std::max(off, st->off), b = std::min(off + len, st->off + st->len);
    uint64_t want_end = std::min(off + len, st->off + stripe_bytes_);
    if (b < want_end) {
      // Fetched when the file was shorter.
      InvalidateReadahead(st->off, st->len);
      return Status(EAGAIN, "stale read-ahead");
    }
    if (b > a) std::memcpy(buf + (a - off), st->buf.get() + (a - st->off), b - a);
  }
  return len;
}

uint64_t FileImpl::readahead_fetches() const {
  std::lock_guard<std::mutex> g(ra_mu_);
  return ra_fetches_;
}

}  // namespace cfs::client
