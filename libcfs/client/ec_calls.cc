#include "client/ec_calls.h"

#include "common/logging.h"

namespace cfs::client {

bool VersionLess(const pb::UnitVersion& a, const pb::UnitVersion& b) {
  return a.seq() != b.seq() ? a.seq() < b.seq() : a.tag() < b.tag();
}
bool VersionEq(const pb::UnitVersion& a, const pb::UnitVersion& b) {
  return a.seq() == b.seq() && a.tag() == b.tag();
}
std::string VersionString(const pb::UnitVersion& v) {
  return std::to_string(v.seq()) + "." + std::to_string(v.tag() & 0xffff);
}

std::unique_ptr<EcCall> EcCalls::Make(pb::Method method, uint32_t target_id,
                                      std::unique_ptr<google::protobuf::Message> req,
                                      std::unique_ptr<google::protobuf::Message> resp,
                                      uint64_t bytes) {
  auto c = std::make_unique<EcCall>();
  c->target_id = target_id;
  c->req = std::move(req);
  c->resp = std::move(resp);
  c->spec.method = method;
  c->spec.request = c->req.get();
  c->spec.response = c->resp.get();
  // Failure detection: a healthy S-worker answers small calls at once; bulk
  // gets time at a pessimistic 32 MiB/s on top.
  c->spec.timeout = failure_timeout_ + std::chrono::milliseconds(bytes / (32 << 10));
  return c;
}

std::unique_ptr<EcCall> EcCalls::Versions(uint64_t ino, uint32_t target_id, uint64_t first,
                                          uint32_t count, uint32_t unit) {
  auto r = std::make_unique<pb::EcVersionsRequest>();
  r->set_ino(ino);
  r->set_target_id(target_id);
  r->set_first(first);
  r->set_count(count);
  r->set_unit(unit);
  return Make(pb::EC_VERSIONS, target_id, std::move(r), std::make_unique<pb::EcVersionsResponse>(), 0);
}

std::unique_ptr<EcCall> EcCalls::Read(uint64_t ino, uint32_t target_id, uint64_t local_index,
                                      uint32_t unit, uint32_t offset, uint32_t length,
                                      const pb::UnitVersion& want, char* out) {
  auto r = std::make_unique<pb::EcReadRequest>();
  r->mutable_ref()->set_ino(ino);
  r->mutable_ref()->set_target_id(target_id);
  r->mutable_ref()->set_local_index(local_index);
  r->mutable_ref()->set_unit(unit);
  r->set_offset(offset);
  r->set_length(length);
  *r->mutable_want() = want;
  auto c = Make(pb::EC_READ, target_id, std::move(r), std::make_unique<pb::EcReadResponse>(), length);
  c->spec.bulk_in = out;
  c->spec.bulk_in_cap = length;
  return c;
}

std::unique_ptr<EcCall> EcCalls::Write(uint64_t ino, uint32_t target_id, uint64_t local_index,
                                       uint32_t unit, const pb::UnitVersion& base,
                                       const pb::UnitVersion& version, pb::EcWriteMode mode,
                                       uint32_t offset, uint32_t length, const char* data) {
  auto r = std::make_unique<pb::EcWriteRequest>();
  r->mutable_ref()->set_ino(ino);
  r->mutable_ref()->set_target_id(target_id);
  r->mutable_ref()->set_local_index(local_index);
  r->mutable_ref()->set_unit(unit);
  *r->mutable_base() = base;
  *r->mutable_version() = version;
  r->set_mode(mode);
  r->set_offset(offset);
  r->set_length(length);
  auto c = Make(pb::EC_WRITE, target_id, std::move(r), std::make_unique<pb::EcWriteResponse>(), length);
  if (length > 0) c->spec.bulk_out.push_back({data, length});
  return c;
}

std::unique_ptr<EcCall> EcCalls::Rollback(uint64_t ino, uint32_t target_id, uint64_t local_index,
                                          uint32_t unit, const pb::UnitVersion& version, bool to_empty) {
  auto r = std::make_unique<pb::EcRollbackRequest>();
  r->mutable_ref()->set_ino(ino);
  r->mutable_ref()->set_target_id(target_id);
  r->mutable_ref()->set_local_index(local_index);
  r->mutable_ref()->set_unit(unit);
  *r->mutable_version() = version;
  r->set_to_empty(to_empty);
  return Make(pb::EC_ROLLBACK, target_id, std::move(r), std::make_unique<pb::Empty>(), 0);
}

std::unique_ptr<EcCall> EcCalls::Object(pb::Method method, uint64_t ino, uint32_t target_id,
                                        uint64_t size, uint32_t unit) {
  auto r = std::make_unique<pb::ObjectRequest>();
  r->set_ino(ino);
  r->set_target_id(target_id);
  r->set_size(size);
  r->set_unit(unit);
  auto c = Make(method, target_id, std::move(r), std::make_unique<pb::Empty>(), 0);
  if (method == pb::FSYNC_OBJECT) c->spec.timeout += std::chrono::seconds(30);  // a big flush
  return c;
}

std::unique_ptr<EcCall> EcCalls::Again(const EcCall& c) {
  std::unique_ptr<google::protobuf::Message> req(c.req->New());
  req->CopyFrom(*c.req);
  std::unique_ptr<google::protobuf::Message> resp(c.resp->New());
  auto a = Make(c.spec.method, c.target_id, std::move(req), std::move(resp), 0);
  a->spec.bulk_out = c.spec.bulk_out;
  a->spec.bulk_in = c.spec.bulk_in;
  a->spec.bulk_in_cap = c.spec.bulk_in_cap;
  a->spec.timeout = c.spec.timeout;
  return a;
}

void EcCalls::Start(EcCall& c) {
  if (!map_->IsUp(c.target_id)) {
    c.st = Status(EHOSTDOWN, "target " + std::to_string(c.target_id) + " is down in the cluster map");
    c.transport_failure = true;
    return;
  }
  auto ep = map_->EndpointOf(c.target_id);
  if (!ep.ok()) {
    c.st = Status(EHOSTUNREACH, ep.status().message());
    c.transport_failure = true;
    return;
  }
  c.ep = *ep;
  c.pending = pool_->Start(c.ep, c.spec);
}

void EcCalls::Wait(EcCall& c) {
  if (!c.pending) return;  // failed at Start
  auto started = std::chrono::steady_clock::now();
  c.st = c.pending->Wait();
  if (c.st.IsRetryable() || c.st.err() == ETIMEDOUT) {
    c.transport_failure = true;
    pool_->Forget(c.ep);
    Status rs = map_->Refresh(started);
    if (!rs.ok()) LOG_DEBUG("cluster map refresh failed: {}", rs.ToString());
  }
}

void EcCalls::Run(const std::vector<EcCall*>& calls) {
  for (auto* c : calls) Start(*c);
  for (auto* c : calls) Wait(*c);
}

}  // namespace cfs::client
