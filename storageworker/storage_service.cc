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
  std::unique_ptr<char[]> buf;
  if (t && io.length() > 0) {
    buf.reset(new (std::nothrow) char[io.length()]);
    if (!buf) st = Status(ENOMEM, "no memory for a read of " + std::to_string(io.length()) + " bytes");
    else st = t->store().Read(io.ino(), io.offset(), io.length(), buf.get());
  }
  if (st.ok()) C().bytes_read += io.length();
  else LOG_WARN("READ_UNIT failed ino={} target={} offset={} length={} peer={}: {}", io.ino(),
                io.target_id(), io.offset(), io.length(), call.peer(), st.ToString());
  Count(pb::READ_UNIT, st);
  pb::Empty empty;
  if (st.ok() && io.length() > 0) {
    call.Reply(st, &empty, {rpc::ConstBuf{buf.get(), io.length()}});
  } else {
    call.Reply(st, &empty);
  }
}

Status StorageService::HandleObject(pb::Method m, const pb::ObjectRequest& req) {
  Status st;
  Target* t = Find(req.target_id(), &st);
  if (t) {
    switch (m) {
      case pb::FSYNC_OBJECT: st = t->store().Fsync(req.ino()); break;
      case pb::TRUNCATE_OBJECT: st = t->store().Truncate(req.ino(), req.size()); break;
      case pb::DELETE_OBJECT: st = t->store().Delete(req.ino()); break;
      default: st = Status::NotSupported("method " + pb::Method_Name(m)); break;
    }
  }
  if (!st.ok())
    LOG_WARN("{} failed ino={} target={}: {}", pb::Method_Name(m), req.ino(), req.target_id(),
             st.ToString());
  Count(m, st);
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
