#include "worker_registry.h"

#include "common/logging.h"
#include "meta_keys.h"

namespace cfs::meta {

namespace {
const char kWorkerPrefix[] = "worker/";
const char kTargetPrefix[] = "target/";
const char kEpochKey[] = "epoch";
}  // namespace

WorkerRegistry::WorkerRegistry(NamespaceStore* store, std::chrono::milliseconds heartbeat_timeout)
    : store_(store), timeout_(heartbeat_timeout) {}

Status WorkerRegistry::Load() {
  std::lock_guard l(mu_);
  CFS_ASSIGN_OR_RETURN(auto ws, store_->ScanState(kWorkerPrefix));
  for (auto& [k, v] : ws) {
    Worker w;
    w.down_since = Clock::now();
    if (!w.info.ParseFromString(v)) return Status::Corruption("bad worker record " + k);
    worker_by_uuid_[w.info.uuid()] = w.info.id();
    next_worker_id_ = std::max(next_worker_id_, w.info.id() + 1);
    workers_[w.info.id()] = std::move(w);
  }
  CFS_ASSIGN_OR_RETURN(auto ts, store_->ScanState(kTargetPrefix));
  for (auto& [k, v] : ts) {
    pb::TargetInfo t;
    if (!t.ParseFromString(v)) return Status::Corruption("bad target record " + k);
    t.set_up(false);
    target_by_uuid_[t.uuid()] = t.id();
    next_target_id_ = std::max(next_target_id_, t.id() + 1);
    targets_[t.id()] = std::move(t);
  }
  CFS_ASSIGN_OR_RETURN(auto e, store_->GetState(kEpochKey));
  if (e && e->size() == 8) epoch_ = GetBE64(*e);
  // A restart is a map change: clients must not trust maps from before it.
  epoch_++;
  return PersistEpochLocked();
}

Status WorkerRegistry::PersistEpochLocked() { return store_->PutState({{kEpochKey, InoKey(epoch_)}}); }

Result<pb::RegisterWorkerResponse> WorkerRegistry::Register(const pb::RegisterWorkerRequest& req) {
  if (req.worker_uuid().empty()) return Status::Invalid("register: empty worker uuid");
  if (req.port() == 0 || req.port() > 65535) return Status::Invalid("register: bad port");
  std::lock_guard l(mu_);
  std::vector<std::pair<std::string, std::string>> kvs;
  uint32_t wid;
  auto wit = worker_by_uuid_.find(req.worker_uuid());
  if (wit == worker_by_uuid_.end()) {
    wid = next_worker_id_++;
  } else {
    wid = wit->second;
  }
  pb::RegisterWorkerResponse resp;
  pb::WorkerInfo info;
  info.set_id(wid);
  info.set_uuid(req.worker_uuid());
  info.set_host(req.host());
  info.set_port(req.port());
  info.set_transport(req.transport().empty() ? "tcp" : req.transport());
  std::map<std::string, uint32_t> new_targets;
  std::map<uint32_t, pb::TargetInfo> new_target_infos;
  uint32_t next_tid = next_target_id_;
  for (const auto& t : req.targets()) {
    if (t.uuid().empty()) return Status::Invalid("register: target without uuid");
    uint32_t tid;
    auto it = target_by_uuid_.find(t.uuid());
    if (it != target_by_uuid_.end()) tid = it->second;
    else if (new_targets.count(t.uuid())) return Status::Invalid("register: target listed twice");
    else tid = next_tid++;
    new_targets[t.uuid()] = tid;
    pb::TargetInfo ti = t;
    ti.set_id(tid);
    // Retirement is the M-worker's decision and outlives the target's return.
    auto known = targets_.find(tid);
    ti.set_retired(known != targets_.end() && known->second.retired());
    ti.set_worker_id(wid);
    ti.set_up(true);
    new_target_infos[tid] = ti;
    info.add_target_ids(tid);
    *resp.add_targets() = ti;
    pb::TargetInfo persisted = ti;
    persisted.set_up(false);
    persisted.set_free(0);
    kvs.emplace_back(kTargetPrefix + t.uuid(), persisted.SerializeAsString());
  }
  kvs.emplace_back(kWorkerPrefix + req.worker_uuid(), info.SerializeAsString());
  uint64_t epoch = epoch_ + 1;
  kvs.emplace_back(kEpochKey, InoKey(epoch));
  CFS_RETURN_IF_ERROR(store_->PutState(kvs));
  // Durable: apply in memory.
  next_target_id_ = next_tid;
  epoch_ = epoch;
  worker_by_uuid_[req.worker_uuid()] = wid;
  Worker& w = workers_[wid];
  // Targets the worker no longer announces go down with it.
  for (uint32_t old : w.info.target_ids()) {
    if (!new_target_infos.count(old) && targets_.count(old)) targets_[old].set_up(false);
  }
  w.info = info;
  w.up = true;
  w.last_heartbeat = Clock::now();
  for (auto& [uuid, tid] : new_targets) target_by_uuid_[uuid] = tid;
  for (auto& [tid, ti] : new_target_infos) targets_[tid] = ti;
  resp.set_worker_id(wid);
  resp.set_epoch(epoch_);
  LOG_INFO("worker registered id={} uuid={} addr={}:{} targets={} epoch={}", wid,
           req.worker_uuid(), req.host(), req.port(), req.targets_size(), epoch_);
  return resp;
}

pb::HeartbeatResponse WorkerRegistry::Heartbeat(const pb::HeartbeatRequest& req) {
  std::lock_guard l(mu_);
  pb::HeartbeatResponse resp;
  auto it = workers_.find(req.worker_id());
  if (it == workers_.end() || !it->second.up) {
    // Unknown, or down (possibly restarted with a new address): register again.
    resp.set_reregister(true);
    resp.set_epoch(epoch_);
    return resp;
  }
  it->second.last_heartbeat = Clock::now();
  for (const auto& t : req.targets()) {
    auto ti = targets_.find(t.id());
    if (ti == targets_.end() || ti->second.worker_id() != req.worker_id()) continue;
    ti->second.set_capacity(t.capacity());
    ti->second.set_free(t.free());
  }
  resp.set_epoch(epoch_);
  return resp;
}

int WorkerRegistry::ExpireSilent() {
  std::lock_guard l(mu_);
  auto now = Clock::now();
  int down = 0;
  for (auto& [id, w] : workers_) {
    if (!w.up || now - w.last_heartbeat <= timeout_) continue;
    w.up = false;
    w.down_since = now;
    for (uint32_t t : w.info.target_ids())
      if (targets_.count(t)) targets_[t].set_up(false);
    down++;
    LOG_WARN("worker down id={} addr={}:{} (no heartbeat for {} ms)", id, w.info.host(),
             w.info.port(), timeout_.count());
  }
  if (down) {
    epoch_++;
    Status s = PersistEpochLocked();
    if (!s.ok()) LOG_ERROR("persist epoch: {}", s.ToString());
  }
  return down;
}

pb::ClusterMap WorkerRegistry::Map() {
  std::lock_guard l(mu_);
  pb::ClusterMap m;
  m.set_epoch(epoch_);
  auto now = Clock::now();
  for (auto& [id, w] : workers_) {
    pb::WorkerInfo wi = w.info;
    wi.set_up(w.up);
    wi.set_last_heartbeat_ms_ago(
        w.last_heartbeat == Clock::time_point{}
            ? -1
            : std::chrono::duration_cast<std::chrono::milliseconds>(now - w.last_heartbeat).count());
    *m.add_workers() = wi;
  }
  for (auto& [id, t] : targets_) *m.add_targets() = t;
  return m;
}

std::vector<pb::TargetInfo> WorkerRegistry::UpTargets() {
  std::lock_guard l(mu_);
  std::vector<pb::TargetInfo> out;
  for (auto& [id, t] : targets_)
    if (t.up() && !t.retired()) out.push_back(t);
  return out;
}

std::vector<pb::TargetInfo> WorkerRegistry::DownTargets() {
  std::lock_guard l(mu_);
  std::vector<pb::TargetInfo> out;
  for (auto& [id, t] : targets_)
    if (!t.up() && !t.retired()) out.push_back(t);
  return out;
}

std::vector<WorkerRegistry::TargetHealth> WorkerRegistry::Health() {
  std::lock_guard l(mu_);
  auto now = Clock::now();
  std::vector<TargetHealth> out;
  for (auto& [id, t] : targets_) {
    TargetHealth h;
    h.id = id;
    h.worker_id = t.worker_id();
    h.up = t.up();
    h.retired = t.retired();
    auto w = workers_.find(t.worker_id());
    if (!h.up) {
      Clock::time_point since = w != workers_.end() ? w->second.down_since : Clock::time_point{};
      // A target its (up) worker no longer announces: down since we know of it.
      if (w != workers_.end() && w->second.up) since = w->second.last_heartbeat;
      h.down_for = since == Clock::time_point{}
                       ? std::chrono::milliseconds(0)
                       : std::chrono::duration_cast<std::chrono::milliseconds>(now - since);
    }
    out.push_back(h);
  }
  return out;
}

Status WorkerRegistry::Retire(uint32_t target_id) {
  std::lock_guard l(mu_);
  auto it = targets_.find(target_id);
  if (it == targets_.end()) return Status::NotFound("no target " + std::to_string(target_id));
  if (it->second.retired()) return Status::OK();
  pb::TargetInfo persisted = it->second;
  persisted.set_retired(true);
  persisted.set_up(false);
  persisted.set_free(0);
  uint64_t epoch = epoch_ + 1;
  CFS_RETURN_IF_ERROR(store_->PutState({{kTargetPrefix + persisted.uuid(), persisted.SerializeAsString()},
                                        {kEpochKey, InoKey(epoch)}}));
  epoch_ = epoch;
  it->second.set_retired(true);
  LOG_WARN("target {} retired (epoch {}): it is never placed again", target_id, epoch_);
  return Status::OK();
}

std::optional<rpc::Endpoint> WorkerRegistry::TargetEndpoint(uint32_t target_id, bool* known) {
  std::lock_guard l(mu_);
  auto t = targets_.find(target_id);
  *known = t != targets_.end();
  if (!*known || !t->second.up()) return std::nullopt;
  auto w = workers_.find(t->second.worker_id());
  if (w == workers_.end() || !w->second.up) return std::nullopt;
  rpc::Endpoint ep;
  ep.host = w->second.info.host();
  ep.port = static_cast<uint16_t>(w->second.info.port());
  return ep;
}

void WorkerRegistry::Statfs(uint64_t* capacity, uint64_t* free) {
  std::lock_guard l(mu_);
  *capacity = *free = 0;
  for (auto& [id, t] : targets_) {
    if (!t.up() || t.retired()) continue;
    *capacity += t.capacity();
    *free += t.free();
  }
}

uint64_t WorkerRegistry::epoch() {
  std::lock_guard l(mu_);
  return epoch_;
}

}  // namespace cfs::meta
