#include "storage_service.h"

#include <cstring>

#include "common/logging.h"
#include "common/metrics.h"
#include "rpc/frame.h"

namespace cfs::storage {
namespace {

struct Counters {
  std::atomic<uint64_t>& bytes_read = Metrics::Get().Counter(
      "cfs_storage_read_bytes_total", "", "Bytes returned by READ_UNIT");
  std::atomic<uint64_t>& bytes_written = Metrics::Get().Counter(
      "cfs_storage_written_bytes_total", "", "Bytes stored by WRITE_UNIT");
  std::atomic<uint64_t>& checksum_errors = Metrics::Get().Counter(
      "cfs_storage_checksum_errors_total", "", "Reads failed with a checksum mismatch");
  std::atomic<uint64_t>& ec_bytes_read = Metrics::Get().Counter(
      "cfs_storage_ec_read_bytes_total", "", "Bytes returned by EC_READ");
  std::atomic<uint64_t>& ec_bytes_written = Metrics::Get().Counter(
      "cfs_storage_ec_written_bytes_total", "", "Bytes received by accepted EC_WRITE");
  std::atomic<uint64_t>& ec_refused = Metrics::Get().Counter(
      "cfs_storage_ec_refused_total", "", "EC_WRITE not accepted (base is not the unit's current version)");
  std::atomic<uint64_t>& ec_repairs = Metrics::Get().Counter(
      "cfs_storage_ec_repairs_total", "", "EC_WRITE repairs in place (version == base)");
  std::atomic<uint64_t>& ec_damaged = Metrics::Get().Counter(
      "cfs_storage_ec_damaged_units_total", "", "EC_VERSIONS answers reporting a damaged version record");
  std::atomic<uint64_t>& Ops(pb::Method m) {
    return Metrics::Get().Counter("cfs_storage_ops_total", "method=\"" + pb::Method_Name(m) + "\"",
                                  "S-worker requests served");
  }
  std::atomic<uint64_t>& Errors(pb::Method m) {
    return Metrics::Get().Counter("cfs_storage_errors_total", "method=\"" + pb::Method_Name(m) + "\"",
                                  "S-worker requests that failed");
  }
};

Counters& C() {
  static Counters c;
  return c;
}

void Count(pb::Method m, const Status& st) {
  C().Ops(m)++;
  if (!st.ok()) {
    C().Errors(m)++;
    if (st.err() == EBADMSG) C().checksum_errors++;
  }
}

Status CheckIo(const pb::UnitIo& io) {
  if (io.length() > kMaxIoBytes)
    return Status::Invalid("I/O of " + std::to_string(io.length()) + " bytes exceeds the limit of " +
                           std::to_string(kMaxIoBytes));
  if (io.offset() > (uint64_t{1} << 62) - kMaxIoBytes)
    return Status::Invalid("offset " + std::to_string(io.offset()) + " out of range");
  return Status::OK();
}

UnitVer FromPb(const pb::UnitVersion& v) { return UnitVer{v.seq(), v.tag()}; }
void ToPb(UnitVer v, pb::UnitVersion* out) {
  out->set_seq(v.seq);
  out->set_tag(v.tag);
}

}  // namespace

StorageService::StorageService(std::vector<std::unique_ptr<Target>> targets)
    : targets_(std::move(targets)) {
  for (auto& t : targets_)
    if (t->id() != 0) by_id_[t->id()] = t.get();
  C();  // register the metric families up front so a scrape shows them at 0
}

StorageService::~StorageService() { Stop(); }

Status StorageService::SetTargetId(size_t i, uint32_t id) {
  Target* t = targets_.at(i).get();
  {
    std::unique_lock<std::shared_mutex> g(ids_mu_);
    if (t->id() != 0 && t->id() != id) by_id_.erase(t->id());
    by_id_[id] = t;
  }
  return t->SetId(id);
}

Target* StorageService::Find(uint32_t id, Status* st) {
  std::shared_lock<std::shared_mutex> g(ids_mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) {
    *st = Status::NotFound("unknown target " + std::to_string(id));
    return nullptr;
  }
  return it->second;
}

void StorageService::HandleWrite(rpc::ServerCall& call) {
  pb::UnitIo io;
  Status st = rpc::DecodeBody(call.body(), &io);
  if (st.ok()) st = CheckIo(io);
  if (st.ok() && call.bulk().size() != io.length())
    st = Status::Invalid("WRITE_UNIT bulk is " + std::to_string(call.bulk().size()) +
                         " bytes but length says " + std::to_string(io.length()));
  Target* t = st.ok() ? Find(io.target_id(), &st) : nullptr;
  if (t) st = t->store().Write(io.ino(), io.offset(), call.bulk());
  if (st.ok()) C().bytes_written += io.length();
  else LOG_WARN("WRITE_UNIT failed ino={} target={} offset={} length={} peer={}: {}", io.ino(),
                io.target_id(), io.offset(), io.length(), call.peer(), st.ToString());
  Count(pb::WRITE_UNIT, st);
  pb::Empty empty;
  call.Reply(st, &empty);
}

void StorageService::HandleRead(rpc::ServerCall& call) {
  pb::UnitIo io;
  Status st = rpc::DecodeBody(call.body(), &io);
  if (st.ok()) st = CheckIo(io);
  Target* t = st.ok() ? Find(io.target_id(), &st) : nullptr;
  char* buf = nullptr;  // the transport's: sent without a staging copy
  if (t && io.length() > 0) {
    buf = call.ReplyBuffer(io.length());
    if (!buf) st = Status(ENOMEM, "no memory for a read of " + std::to_string(io.length()) + " bytes");
    else st = t->store().Read(io.ino(), io.offset(), io.length(), buf);
  }
  if (st.ok()) C().bytes_read += io.length();
  else LOG_WARN("READ_UNIT failed ino={} target={} offset={} length={} peer={}: {}", io.ino(),
                io.target_id(), io.offset(), io.length(), call.peer(), st.ToString());
  Count(pb::READ_UNIT, st);
  pb::Empty empty;
  if (st.ok() && io.length() > 0) {
    call.Reply(st, &empty, {rpc::ConstBuf{buf, io.length()}});
  } else {
    call.Reply(st, &empty);
  }
}

Status StorageService::HandleObject(pb::Method m, const pb::ObjectRequest& req) {
  Status st;
  Target* t = Find(req.target_id(), &st);
  if (t) {
    // FSYNC and DELETE always cover the versioned files too (absent ones cost
    // a failed open): a caller that forgets `unit` still loses nothing.
    switch (m) {
      case pb::FSYNC_OBJECT: st = t->units().Fsync(req.ino()); break;
      case pb::TRUNCATE_OBJECT:
        st = req.unit() != 0 ? t->units().Truncate(req.ino(), req.unit(), req.size())
                             : t->store().Truncate(req.ino(), req.size());
        break;
      case pb::DELETE_OBJECT: st = t->units().Delete(req.ino()); break;
      default: st = Status::NotSupported("method " + pb::Method_Name(m)); break;
    }
  }
  if (!st.ok())
    LOG_WARN("{} failed ino={} target={}: {}", pb::Method_Name(m), req.ino(), req.target_id(),
             st.ToString());
  Count(m, st);
  return st;
}

void StorageService::HandleEcWrite(rpc::ServerCall& call) {
  pb::EcWriteRequest req;
  Status st = rpc::DecodeBody(call.body(), &req);
  if (st.ok() && call.bulk().size() != req.length())
    st = Status::Invalid("EC_WRITE bulk is " + std::to_string(call.bulk().size()) +
                         " bytes but length says " + std::to_string(req.length()));
  EcWrite w;
  if (st.ok()) {
    switch (req.mode()) {
      case pb::EC_FULL: w.mode = EcMode::kFull; break;
      case pb::EC_RANGE: w.mode = EcMode::kRange; break;
      case pb::EC_XOR: w.mode = EcMode::kXor; break;
      case pb::EC_BUMP: w.mode = EcMode::kBump; break;
      default: st = Status::Invalid("unknown EC_WRITE mode " + std::to_string(req.mode())); break;
    }
  }
  Target* t = st.ok() ? Find(req.ref().target_id(), &st) : nullptr;
  pb::EcWriteResponse resp;
  if (t) {
    w.ino = req.ref().ino();
    w.index = req.ref().local_index();
    w.unit = req.ref().unit();
    w.base = FromPb(req.base());
    w.version = FromPb(req.version());
    w.offset = req.offset();
    w.data = call.bulk();
    auto r = t->units().Write(w);
    if (r.ok()) {
      resp.set_accepted(r->accepted);
      ToPb(r->cur, resp.mutable_cur());
      if (!r->accepted) C().ec_refused++;
      else if (w.version == w.base) C().ec_repairs++;
      if (r->accepted) C().ec_bytes_written += req.length();
    } else {
      st = r.status();
    }
  }
  if (!st.ok())
    LOG_WARN("EC_WRITE failed ino={} target={} unit_index={} mode={} offset={} length={} peer={}: {}",
             req.ref().ino(), req.ref().target_id(), req.ref().local_index(),
             static_cast<int>(req.mode()), req.offset(), req.length(), call.peer(), st.ToString());
  Count(pb::EC_WRITE, st);
  call.Reply(st, &resp);
}

void StorageService::HandleEcRead(rpc::ServerCall& call) {
  pb::EcReadRequest req;
  Status st = rpc::DecodeBody(call.body(), &req);
  if (st.ok()) st = CheckEcUnit(req.ref().unit());
  if (st.ok() && uint64_t{req.offset()} + req.length() > req.ref().unit())
    st = Status::Invalid("EC_READ range [" + std::to_string(req.offset()) + ", +" +
                         std::to_string(req.length()) + ") exceeds the unit (" +
                         std::to_string(req.ref().unit()) + ")");
  Target* t = st.ok() ? Find(req.ref().target_id(), &st) : nullptr;
  char* buf = nullptr;  // the transport's: sent without a staging copy
  pb::EcReadResponse resp;
  if (t) {
    if (req.length() > 0) {
      buf = call.ReplyBuffer(req.length());
      if (!buf) st = Status(ENOMEM, "no memory for a read of " + std::to_string(req.length()) + " bytes");
    }
    if (st.ok()) {
      auto r = t->units().Read(req.ref().ino(), req.ref().local_index(), req.ref().unit(),
                               FromPb(req.want()), req.offset(), req.length(), buf);
      if (r.ok()) ToPb(*r, resp.mutable_version());
      else st = r.status();
    }
  }
  if (st.ok()) {
    C().ec_bytes_read += req.length();
  } else if (st.err() != ESTALE) {  // ESTALE is an ordinary answer for readers probing versions
    LOG_WARN("EC_READ failed ino={} target={} unit_index={} offset={} length={} peer={}: {}",
             req.ref().ino(), req.ref().target_id(), req.ref().local_index(), req.offset(),
             req.length(), call.peer(), st.ToString());
  }
  Count(pb::EC_READ, st);
  if (st.ok() && req.length() > 0) {
    call.Reply(st, &resp, {rpc::ConstBuf{buf, req.length()}});
  } else {
    call.Reply(st, &resp);
  }
}

Status StorageService::HandleEcVersions(const pb::EcVersionsRequest& req,
                                        pb::EcVersionsResponse* resp) {
  Status st;
  if (req.unit() != 0) st = CheckEcUnit(req.unit());
  Target* t = st.ok() ? Find(req.target_id(), &st) : nullptr;
  if (t) {
    std::vector<UnitState> states;
    st = t->units().Versions(req.ino(), req.first(), req.count(), &states);
    if (st.ok()) {
      for (const UnitState& u : states) {
        pb::EcUnitState* o = resp->add_units();
        ToPb(u.cur, o->mutable_cur());
        ToPb(u.prev, o->mutable_prev());
        o->set_damaged(u.damaged);
        if (u.damaged) C().ec_damaged++;
      }
      if (req.count() == 0) {  // only the Repairer asks; reads must not pay a stat
        auto n = t->units().RecordedUnits(req.ino());
        if (n.ok()) resp->set_recorded_units(*n);
      }
    }
  }
  if (!st.ok())
    LOG_WARN("EC_VERSIONS failed ino={} target={} first={} count={}: {}", req.ino(),
             req.target_id(), req.first(), req.count(), st.ToString());
  Count(pb::EC_VERSIONS, st);
  return st;
}

Status StorageService::HandleEcRollback(const pb::EcRollbackRequest& req) {
  Status st;
  Target* t = Find(req.ref().target_id(), &st);
  if (t)
    st = req.to_empty()
             ? t->units().ResetToEmpty(req.ref().ino(), req.ref().local_index(), req.ref().unit(),
                                       FromPb(req.version()))
             : t->units().Rollback(req.ref().ino(), req.ref().local_index(), req.ref().unit(),
                                   FromPb(req.version()));
  if (!st.ok())
    LOG_WARN("EC_ROLLBACK failed ino={} target={} unit_index={}: {}", req.ref().ino(),
             req.ref().target_id(), req.ref().local_index(), st.ToString());
  Count(pb::EC_ROLLBACK, st);
  return st;
}

Status StorageService::HandleStats(pb::TargetStatsResponse* resp) {
  for (auto& t : targets_) {
    auto s = t->Stats();
    if (!s.ok()) return s.status();
    pb::TargetInfo* ti = resp->add_targets();
    ti->set_id(t->id());
    ti->set_uuid(t->uuid());
    ti->set_path(t->path());
    ti->set_capacity(s->capacity);
    ti->set_free(s->free);
    ti->set_up(true);
  }
  Count(pb::TARGET_STATS, Status::OK());
  return Status::OK();
}

Status StorageService::Start(rpc::Transport& transport, const std::string& host, uint16_t port,
                             int threads) {
  server_ = transport.NewServer(threads);
  server_->Register(pb::WRITE_UNIT, [this](rpc::ServerCall& c) { HandleWrite(c); });
  server_->Register(pb::READ_UNIT, [this](rpc::ServerCall& c) { HandleRead(c); });
  for (pb::Method m : {pb::FSYNC_OBJECT, pb::TRUNCATE_OBJECT, pb::DELETE_OBJECT}) {
    server_->Register(m, rpc::Typed<pb::ObjectRequest, pb::Empty>(
                             [this, m](const pb::ObjectRequest& req, pb::Empty*) {
                               return HandleObject(m, req);
                             }));
  }
  server_->Register(pb::EC_WRITE, [this](rpc::ServerCall& c) { HandleEcWrite(c); });
  server_->Register(pb::EC_READ, [this](rpc::ServerCall& c) { HandleEcRead(c); });
  server_->Register(pb::EC_VERSIONS,
                    rpc::Typed<pb::EcVersionsRequest, pb::EcVersionsResponse>(
                        [this](const pb::EcVersionsRequest& req, pb::EcVersionsResponse* r) {
                          return HandleEcVersions(req, r);
                        }));
  server_->Register(pb::EC_ROLLBACK, rpc::Typed<pb::EcRollbackRequest, pb::Empty>(
                                         [this](const pb::EcRollbackRequest& req, pb::Empty*) {
                                           return HandleEcRollback(req);
                                         }));
  server_->Register(pb::TARGET_STATS, rpc::Typed<pb::Empty, pb::TargetStatsResponse>(
                                          [this](const pb::Empty&, pb::TargetStatsResponse* r) {
                                            return HandleStats(r);
                                          }));
  Status st = server_->Start(host, port);
  if (!st.ok()) return Status(st.err(), "listening on " + host + ":" + std::to_string(port) + ": " + st.message());
  return Status::OK();
}

uint16_t StorageService::port() const { return server_ ? server_->port() : 0; }

void StorageService::Stop() {
  if (server_) server_->Stop();
}

}  // namespace cfs::storage
