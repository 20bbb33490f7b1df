#include "meta_link.h"

#include <sstream>

#include "common/logging.h"

namespace cfs::storage {

MetaLink::MetaLink(MetaLinkOptions opts, StorageService* service,
                   std::shared_ptr<rpc::Transport> transport)
    : opts_(std::move(opts)),
      service_(service),
      pool_(std::move(transport), 1, std::chrono::milliseconds(2000)) {}

MetaLink::~MetaLink() { Stop(); }

Result<std::vector<rpc::Endpoint>> MetaLink::ParseAddresses(const std::string& s) {
  std::vector<rpc::Endpoint> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    auto ep = rpc::Endpoint::Parse(item);
    if (!ep.ok()) return Status::Invalid("bad M-worker address '" + item + "' (want HOST:PORT): " +
                                         ep.status().message());
    out.push_back(*ep);
  }
  if (out.empty()) return Status::Invalid("no M-worker address in '" + s + "'");
  return out;
}

void MetaLink::Start() { thread_ = std::thread([this] { Run(); }); }

void MetaLink::Stop() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool MetaLink::registered() const {
  std::lock_guard<std::mutex> g(mu_);
  return registered_;
}

uint32_t MetaLink::worker_id() const {
  std::lock_guard<std::mutex> g(mu_);
  return worker_id_;
}

bool MetaLink::WaitRegistered(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> g(mu_);
  return cv_.wait_for(g, timeout, [&] { return registered_ || stop_; }) && registered_;
}

template <class Req, class Resp>
Status MetaLink::CallMeta(pb::Method m, const Req& req, Resp* resp) {
  rpc::CallSpec spec;
  spec.method = m;
  spec.request = &req;
  spec.response = resp;
  spec.timeout = std::chrono::milliseconds(5000);
  const rpc::Endpoint& ep = opts_.meta[current_];
  Status st = pool_.Call(ep, spec);
  if (!st.ok() && st.IsRetryable()) {
    pool_.Forget(ep);
    current_ = (current_ + 1) % opts_.meta.size();  // try the next address next time
  }
  return st;
}

void MetaLink::FillTargets(google::protobuf::RepeatedPtrField<pb::TargetInfo>* out, bool with_ids) {
  for (size_t i = 0; i < service_->num_targets(); i++) {
    Target& t = service_->target(i);
    pb::TargetInfo* ti = out->Add();
    if (with_ids) ti->set_id(t.id());
    ti->set_uuid(t.uuid());
    ti->set_path(t.path());
    auto s = t.Stats();
    if (s.ok()) {
      ti->set_capacity(s->capacity);
      ti->set_free(s->free);
    } else {
      LOG_WARN("statvfs of target {} failed: {}", t.path(), s.status().ToString());
    }
    ti->set_up(s.ok());
  }
}

Status MetaLink::Register() {
  pb::RegisterWorkerRequest req;
  req.set_worker_uuid(opts_.worker_uuid);
  req.set_host(opts_.host);
  req.set_port(opts_.port);
  req.set_transport(opts_.transport);
  FillTargets(req.mutable_targets(), /*with_ids=*/true);
  pb::RegisterWorkerResponse resp;
  CFS_RETURN_IF_ERROR(CallMeta(pb::REGISTER_WORKER, req, &resp));
  if (resp.targets_size() != req.targets_size())
    return Status::Protocol("REGISTER_WORKER answered " + std::to_string(resp.targets_size()) +
                            " targets for " + std::to_string(req.targets_size()));
  for (int i = 0; i < resp.targets_size(); i++) {
    uint32_t id = resp.targets(i).id();
    if (id == 0) return Status::Protocol("REGISTER_WORKER gave target " + req.targets(i).path() + " id 0");
    Target& t = service_->target(i);
    if (t.id() != 0 && t.id() != id)
      LOG_WARN("target {} changes id from {} to {}", t.path(), t.id(), id);
    Status st = service_->SetTargetId(i, id);
    if (!st.ok()) LOG_ERROR("could not record id of target {}: {}", t.path(), st.ToString());
    LOG_INFO("target registered path={} uuid={} id={}", t.path(), t.uuid(), id);
  }
  {
    std::lock_guard<std::mutex> g(mu_);
    registered_ = true;
    worker_id_ = resp.worker_id();
  }
  cv_.notify_all();
  LOG_INFO("registered with M-worker {} worker_id={} epoch={} address={}:{} serving {}",
           opts_.meta[current_].ToString(), resp.worker_id(), resp.epoch(), opts_.host, opts_.port,
           opts_.transport);
  return Status::OK();
}

Status MetaLink::Heartbeat(bool* reregister) {
  pb::HeartbeatRequest req;
  req.set_worker_id(worker_id());
  FillTargets(req.mutable_targets(), /*with_ids=*/true);
  pb::HeartbeatResponse resp;
  CFS_RETURN_IF_ERROR(CallMeta(pb::HEARTBEAT, req, &resp));
  *reregister = resp.reregister();
  return Status::OK();
}

void MetaLink::Run() {
  int failures = 0;
  std::string addrs;
  for (auto& e : opts_.meta) addrs += (addrs.empty() ? "" : ",") + e.ToString();
  for (;;) {
    {
      std::unique_lock<std::mutex> g(mu_);
      if (stop_) return;
    }
    if (!registered()) {
      Status st = Register();
      if (!st.ok()) {
        // Log the first failure and then every 30th, so a long outage stays visible but quiet.
        if (failures++ % 30 == 0)
          LOG_WARN("cannot register with M-worker ({}), retrying every second: {}", addrs, st.ToString());
      } else {
        failures = 0;
      }
    } else {
      bool rereg = false;
      Status st = Heartbeat(&rereg);
      if (!st.ok() || rereg) {
        if (rereg) LOG_WARN("M-worker does not know this worker (restarted?); registering again");
        else LOG_WARN("heartbeat to M-worker failed, registering again: {}", st.ToString());
        std::lock_guard<std::mutex> g(mu_);
        registered_ = false;
      }
      // A retryable failure rotated to the next address; a fresh register follows at once.
      if (!st.ok() || rereg) continue;
    }
    std::unique_lock<std::mutex> g(mu_);
    cv_.wait_for(g, opts_.interval, [&] { return stop_; });
  }
}

}  // namespace cfs::storage
