#include "client/io_queue.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

namespace cfs::client {
namespace {

// Merged data calls stay below the transport's bulk limit.
constexpr uint64_t kMaxMerged = 64ull << 20;

class FsyncOp : public IoOp {
 public:
  explicit FsyncOp(std::shared_ptr<File> f) : f_(std::move(f)) {}
  Status Wait() override {
    if (!done_) {
      st_ = f_->Fsync();
      done_ = true;
    }
    return st_;
  }

 private:
  std::shared_ptr<File> f_;
  bool done_ = false;
  Status st_;
};

int64_t Negative(const Status& st) { return -static_cast<int64_t>(st.err() > 0 ? st.err() : EIO); }

}  // namespace

struct IoQueue::Group {
  Op op;
  std::shared_ptr<File> file;
  uint64_t off = 0, len = 0, read_n = 0;
  std::unique_ptr<IoOp> io;
  Status start_error;  // the op could not be started
  std::vector<Request> members;
};

Result<std::unique_ptr<IoQueue>> IoQueue::Create(int depth, int batch) {
  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd < 0) return Status::FromErrno(errno, "eventfd");
  return std::unique_ptr<IoQueue>(new IoQueue(depth, batch, efd));
}

IoQueue::IoQueue(int depth, int batch, int efd) : depth_(depth), batch_(batch), efd_(efd) {
  int n = std::clamp(depth, 1, 16);
  for (int i = 0; i < n; i++) waiters_.emplace_back([this] { WaiterLoop(); });
}

IoQueue::~IoQueue() {
  {
    std::unique_lock<std::mutex> g(mu_);
    ready_cv_.wait(g, [&] { return started_.empty() && waiting_ == 0; });
    stop_ = true;
  }
  started_cv_.notify_all();
  for (auto& t : waiters_) t.join();
  close(efd_);
}

int IoQueue::pending() const {
  std::lock_guard<std::mutex> g(mu_);
  return pending_;
}

void IoQueue::Submit(std::vector<Request> reqs) {
  {
    std::lock_guard<std::mutex> g(mu_);
    pending_ += static_cast<int>(reqs.size());
  }
  size_t i = 0;
  while (i < reqs.size()) {
    // Up to batch_ requests form one window; inside it, a write absorbs the
    // writes that continue it in the file (and in memory, except at unit starts).
    size_t window_end = std::min(reqs.size(), i + static_cast<size_t>(batch_));
    while (i < window_end) {
      std::vector<Request> members;
      members.push_back(std::move(reqs[i++]));
      if (members.front().op == Op::kWrite) {
        // (Copies: members grows, so no reference into it.)
        const std::shared_ptr<File> file = members.front().file;
        const uint64_t off = members.front().off;
        const char* mem_end = members.front().buf + members.front().len;
        // Groups end at stripe boundaries: each becomes whole stripes written
        // in parallel with the next group, not one long serial call.
        const Layout& l = file->layout();
        const uint64_t stripe = static_cast<uint64_t>(l.unit) * l.k;
        uint64_t len = members.front().len;
        // Memory may jump only where a stripe unit starts: every unit's bytes
        // then lie in one piece (fio's io_u buffers are not adjacent).
        while (i < window_end && (stripe == 0 || (off + len) % stripe != 0) &&
               reqs[i].op == Op::kWrite && reqs[i].file == file && reqs[i].off == off + len &&
               (reqs[i].buf == mem_end || (l.unit > 0 && (off + len) % l.unit == 0)) &&
               len + reqs[i].len <= kMaxMerged) {
          mem_end = reqs[i].buf + reqs[i].len;
          len += reqs[i].len;
          members.push_back(std::move(reqs[i++]));
        }
      }
      StartGroup(std::move(members));
    }
  }
}

void IoQueue::StartGroup(std::vector<Request> members) {
  auto g = std::make_unique<Group>();
  const Request& first = members.front();
  g->op = first.op;
  g->file = first.file;
  g->off = first.off;
  for (const auto& m : members) g->len += m.len;
  Result<std::unique_ptr<IoOp>> io = Status::OK();
  switch (g->op) {
    case Op::kWrite: {
      // The members' memory, adjacent requests joined into one piece.
      std::vector<WriteSource::Piece> pieces;
      for (const auto& m : members) {
        if (!pieces.empty() && pieces.back().buf + pieces.back().len == m.buf)
          pieces.back().len += m.len;
        else
          pieces.push_back({m.off, m.buf, m.len});
      }
      io = g->file->StartDirectWrite(WriteSource(std::move(pieces)), g->len, g->off);
      break;
    }
    case Op::kRead:
      io = g->file->StartDirectRead(first.buf, g->len, g->off, &g->read_n);
      break;
    case Op::kFsync:
      io = std::unique_ptr<IoOp>(std::make_unique<FsyncOp>(g->file));
      break;
  }
  if (io.ok()) {
    g->io = std::move(*io);
  } else {
    g->start_error = io.status();
  }
  g->members = std::move(members);
  {
    std::lock_guard<std::mutex> lk(mu_);
    started_.push_back(std::move(g));
  }
  started_cv_.notify_one();
}

void IoQueue::WaiterLoop() {
  for (;;) {
    std::unique_ptr<Group> g;
    {
      std::unique_lock<std::mutex> lk(mu_);
      started_cv_.wait(lk, [&] { return stop_ || !started_.empty(); });
      if (started_.empty()) return;  // stop_
      g = std::move(started_.front());
      started_.pop_front();
      waiting_++;
    }
    Status st = g->start_error.ok() ? g->io->Wait() : g->start_error;
    if (g->op == Op::kWrite && g->start_error.ok()) g->file->FinishDirectWrite(g->off, g->len, st);
    Complete(*g, st);
  }
}

void IoQueue::Complete(Group& g, const Status& st) {
  std::vector<Completion> out;
  out.reserve(g.members.size());
  for (auto& m : g.members) {
    int64_t res;
    if (!st.ok()) {
      res = Negative(st);
    } else if (g.op == Op::kRead) {
      res = static_cast<int64_t>(g.read_n);
    } else if (g.op == Op::kFsync) {
      res = 0;
    } else {
      res = static_cast<int64_t>(m.len);
    }
    out.push_back({m.user_data, res});
    if (m.done) m.done();
  }
  g.members.clear();
  g.file.reset();
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& c : out) ready_.push_back(c);
    waiting_--;
    uint64_t one = out.size();
    ssize_t w = write(efd_, &one, sizeof one);  // makes the fd readable
    (void)w;
  }
  ready_cv_.notify_all();
}

int IoQueue::Reap(Completion* out, int min, int max, int timeout_ms) {
  std::unique_lock<std::mutex> lk(mu_);
  min = std::min(min, max);
  auto enough = [&] { return static_cast<int>(ready_.size()) >= min || ready_.size() >= static_cast<size_t>(pending_); };
  if (timeout_ms < 0) {
    ready_cv_.wait(lk, enough);
  } else if (timeout_ms > 0) {
    ready_cv_.wait_for(lk, std::chrono::milliseconds(timeout_ms), enough);
  }
  int n = 0;
  while (n < max && !ready_.empty()) {
    out[n++] = ready_.front();
    ready_.pop_front();
  }
  pending_ -= n;
  if (ready_.empty()) {
    uint64_t v;
    ssize_t r = read(efd_, &v, sizeof v);  // drained: not readable until the next completion
    (void)r;
  }
  return n;
}

}  // namespace cfs::client
