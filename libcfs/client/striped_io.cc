#include "client/striped_io.h"

#include <cstring>
#include <map>

#include "common/logging.h"
#include "common/metrics.h"

namespace cfs::client {
namespace {

// Largest bulk of one merged WRITE_UNIT call (consecutive units of one target).
constexpr uint64_t kMaxMergedWrite = 16ull << 20;

struct Piece {
  std::unique_ptr<google::protobuf::Message> req;
  rpc::CallSpec spec;
  uint32_t target_id = 0;
  uint64_t expect_in = 0;  // READ_UNIT: bytes the reply must carry
  rpc::Endpoint ep;
  std::shared_ptr<rpc::PendingCall> call;
};

class StripedOp : public IoOp {
 public:
  StripedOp(rpc::ChannelPool* pool, ClusterMapCache* map, uint64_t ino)
      : pool_(pool), map_(map), ino_(ino) {}

  // Pieces are complete before Start: CallSpecs point into them.
  std::vector<Piece> pieces;

  void StartAll() {
    for (auto& p : pieces) StartOne(p);
  }

  Status Wait() override {
    if (waited_) return result_;
    waited_ = true;
    std::vector<Piece*> retry;
    std::chrono::steady_clock::time_point failed_at{};
    for (auto& p : pieces) {
      Status st = p.call->Wait();
      if (st.ok()) st = CheckIn(p);
      if (st.IsRetryable()) {
        if (retry.empty()) failed_at = std::chrono::steady_clock::now();
        retry.push_back(&p);
        last_ = st;
      } else if (!st.ok() && result_.ok()) {
        result_ = Translate(p, st);
      }
    }
    if (!retry.empty()) {
      // The S-worker may have restarted or moved: a fresh map and fresh channels.
      for (auto* p : retry) pool_->Forget(p->ep);
      Status rs = map_->Refresh(failed_at);
      if (!rs.ok()) LOG_WARN("cluster map refresh failed: {}", rs.ToString());
      for (auto* p : retry) StartOne(*p);
      for (auto* p : retry) {
        Status st = p->call->Wait();
        if (st.ok()) st = CheckIn(*p);
        if (!st.ok() && result_.ok()) result_ = Translate(*p, st);
      }
    }
    return result_;
  }

 private:
  void StartOne(Piece& p) {
    auto ep = map_->EndpointOf(p.target_id);
    if (!ep.ok()) {
      p.call = rpc::FailedCall(Status(EHOSTUNREACH, ep.status().message()));
      return;
    }
    p.ep = *ep;
    p.call = pool_->Start(p.ep, p.spec);
  }

  Status CheckIn(Piece& p) {
    if (p.spec.method != pb::READ_UNIT) return Status::OK();
    uint64_t got = p.call->bulk_in_len();
    // READ_UNIT returns exactly `length` bytes; be lenient with a short reply.
    if (got < p.expect_in) std::memset(static_cast<char*>(p.spec.bulk_in) + got, 0, p.expect_in - got);
    return Status::OK();
  }

  Status Translate(const Piece& p, const Status& st) {
    std::string where = "ino " + std::to_string(ino_) + " target " + std::to_string(p.target_id) +
                        " at " + p.ep.ToString();
    if (st.err() == EBADMSG) {
      LOG_ERROR("checksum mismatch reported by S-worker: {}: {}", where, st.message());
      return Status::IOError("data corrupted on " + where + ": " + st.message());
    }
    return Status(st.err(), pb::Method_Name(p.spec.method) + " " + where + ": " + st.message());
  }

  rpc::ChannelPool* pool_;
  ClusterMapCache* map_;
  uint64_t ino_;
  bool waited_ = false;
  Status result_, last_;
};

class TaskOp : public IoOp {
 public:
  explicit TaskOp(std::future<Status> f) : f_(std::move(f)) {}
  Status Wait() override {
    if (f_.valid()) st_ = f_.get();
    return st_;
  }

 private:
  std::future<Status> f_;
  Status st_;
};

std::unique_ptr<IoOp> CheckLayout(const Layout& l) {
  Status st = l.Validate();
  if (!st.ok()) return std::make_unique<DoneOp>(Status::IOError("bad file layout: " + st.message()));
  return nullptr;
}

std::atomic<uint64_t>& BytesCounter(const char* dir) {
  return Metrics::Get().Counter("cfs_client_data_bytes_total", std::string("dir=\"") + dir + "\"",
                                "Bytes moved between this client and the S-workers");
}

// A call on the unit extent e (no bulk attached yet).
Piece UnitPiece(pb::Method method, uint64_t ino, const Layout& l, const UnitExtent& e,
                std::chrono::milliseconds timeout) {
  Piece p;
  auto u = std::make_unique<pb::UnitIo>();
  u->set_ino(ino);
  u->set_target_id(l.targets[e.target_index]);
  u->set_offset(e.local_offset);
  u->set_length(e.length);
  p.target_id = u->target_id();
  p.spec.method = method;
  p.spec.request = u.get();
  p.spec.timeout = timeout;
  p.req = std::move(u);
  return p;
}

}  // namespace

StripedIo::StripedIo(rpc::ChannelPool* pool, ClusterMapCache* map, std::chrono::milliseconds timeout,
                     MetaClient* meta, std::chrono::milliseconds failure_timeout)
    : pool_(pool), map_(map), timeout_(timeout),
      ec_(std::make_unique<EcIo>(pool, map, meta, failure_timeout)) {}

StripedIo::~StripedIo() = default;

TaskPool& StripedIo::Tasks() {
  std::call_once(tasks_once_, [this] { tasks_ = std::make_unique<TaskPool>(16); });
  return *tasks_;
}

std::unique_ptr<IoOp> StripedIo::StartWrite(uint64_t ino, const Layout& l, const char* buf,
                                            uint64_t off, uint64_t len) {
  return StartWriteV(ino, l, WriteSource(buf, off, len), off, len);
}

std::unique_ptr<IoOp> StripedIo::StartWriteV(uint64_t ino, const Layout& l, const WriteSource& src,
                                             uint64_t off, uint64_t len) {
  if (auto bad = CheckLayout(l)) return bad;
  if (l.m > 0) {
    BytesCounter("write") += len;
    return std::make_unique<TaskOp>(
        Tasks().Submit([this, ino, l, src, off, len] { return ec_->Write(ino, l, src, off, len); }));
  }
  // The extent's bytes, gathered from as many pieces as they span.
  auto gather = [&src](std::vector<rpc::ConstBuf>* out, uint64_t pos, uint64_t n) {
    while (n > 0) {
      uint64_t run = std::min(n, src.ContiguousFrom(pos));
      out->push_back({src.At(pos), run});
      pos += run;
      n -= run;
    }
  };
  auto op = std::make_unique<StripedOp>(pool_, map_, ino);
  auto extents = MapRange(l, off, len);
  // Consecutive units of one target are adjacent in its object when the
  // stripes are consecutive: one call with a gathered bulk carries them.
  std::map<uint32_t, size_t> last_of_target;
  op->pieces.reserve(extents.size());
  for (const auto& e : extents) {
    auto it = last_of_target.find(e.target_index);
    if (it != last_of_target.end()) {
      Piece& p = op->pieces[it->second];
      auto* u = static_cast<pb::UnitIo*>(p.req.get());
      if (u->offset() + u->length() == e.local_offset && u->length() + e.length <= kMaxMergedWrite) {
        u->set_length(u->length() + e.length);
        gather(&p.spec.bulk_out, e.file_offset, e.length);
        continue;
      }
    }
    Piece p = UnitPiece(pb::WRITE_UNIT, ino, l, e, timeout_);
    gather(&p.spec.bulk_out, e.file_offset, e.length);
    last_of_target[e.target_index] = op->pieces.size();
    op->pieces.push_back(std::move(p));
  }
  BytesCounter("write") += len;
  op->StartAll();
  return op;
}

std::unique_ptr<IoOp> StripedIo::StartRead(uint64_t ino, const Layout& l, char* buf, uint64_t off,
                                           uint64_t len) {
  if (auto bad = CheckLayout(l)) return bad;
  if (l.m > 0) {
    BytesCounter("read") += len;
    return std::make_unique<TaskOp>(
        Tasks().Submit([this, ino, l, buf, off, len] { return ec_->Read(ino, l, buf, off, len); }));
  }
  auto op = std::make_unique<StripedOp>(pool_, map_, ino);
  auto extents = MapRange(l, off, len);
  op->pieces.reserve(extents.size());
  for (const auto& e : extents) {
    Piece p = UnitPiece(pb::READ_UNIT, ino, l, e, timeout_);
    p.spec.bulk_in = buf + (e.file_offset - off);
    p.spec.bulk_in_cap = e.length;
    p.expect_in = e.length;
    op->pieces.push_back(std::move(p));
  }
  BytesCounter("read") += len;
  op->StartAll();
  return op;
}

Status StripedIo::AllTargets(pb::Method method, uint64_t ino, const Layout& l,
                             const std::function<uint64_t(uint32_t)>& size_of) {
  if (auto bad = CheckLayout(l)) return bad->Wait();
  if (l.m > 0) {
    if (method == pb::TRUNCATE_OBJECT)
      return Status::Invalid("truncating a parity layout needs the file size: use TruncateObjects");
    return ec_->AllTargets(method, ino, l);
  }
  StripedOp op(pool_, map_, ino);
  op.pieces.reserve(l.n());
  for (uint32_t t = 0; t < l.n(); t++) {
    Piece p;
    auto r = std::make_unique<pb::ObjectRequest>();
    r->set_ino(ino);
    r->set_target_id(l.targets[t]);
    r->set_size(size_of ? size_of(t) : 0);
    p.target_id = l.targets[t];
    p.spec.method = method;
    p.spec.request = r.get();
    p.spec.timeout = timeout_;
    p.req = std::move(r);
    op.pieces.push_back(std::move(p));
  }
  op.StartAll();
  return op.Wait();
}

Status StripedIo::TruncateObjects(uint64_t ino, const Layout& l, uint64_t size) {
  if (l.m > 0) {
    if (auto bad = CheckLayout(l)) return bad->Wait();
    return ec_->Truncate(ino, l, size);
  }
  return DataPath::TruncateObjects(ino, l, size);
}

}  // namespace cfs::client
