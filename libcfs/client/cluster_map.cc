#include "client/cluster_map.h"

#include "common/logging.h"

namespace cfs::client {

Status ClusterMapCache::FetchLocked() {
  auto now = std::chrono::steady_clock::now();  // before the call: a map at least this fresh
  pb::Empty req;
  pb::ClusterMap m;
  CFS_RETURN_IF_ERROR(meta_->Call(pb::GET_CLUSTER_MAP, req, &m));
  std::unordered_map<uint32_t, rpc::Endpoint> workers, eps;
  std::unordered_map<uint32_t, bool> worker_up, up;
  for (const auto& w : m.workers()) {
    workers[w.id()] = rpc::Endpoint{w.host(), static_cast<uint16_t>(w.port())};
    worker_up[w.id()] = w.up();
  }
  for (const auto& t : m.targets()) {
    auto it = workers.find(t.worker_id());
    if (it != workers.end()) eps[t.id()] = it->second;
    up[t.id()] = t.up() && !t.retired() && worker_up[t.worker_id()];
  }
  if (have_ && m.epoch() != map_.epoch())
    LOG_INFO("cluster map epoch {} -> {}", map_.epoch(), m.epoch());
  map_ = std::move(m);
  endpoints_ = std::move(eps);
  up_ = std::move(up);
  fetched_ = now;
  have_ = true;
  return Status::OK();
}

Status ClusterMapCache::Refresh(std::chrono::steady_clock::time_point failed_at) {
  std::lock_guard<std::mutex> g(mu_);
  if (have_ && fetched_ > failed_at) return Status::OK();
  return FetchLocked();
}

Result<rpc::Endpoint> ClusterMapCache::EndpointOf(uint32_t target_id) {
  std::lock_guard<std::mutex> g(mu_);
  bool stale = !have_ || std::chrono::steady_clock::now() - fetched_ > max_age_;
  if (stale) {
    Status st = FetchLocked();
    if (!st.ok() && !have_) return st;  // an old map is better than none
  }
  auto it = endpoints_.find(target_id);
  if (it == endpoints_.end()) {
    CFS_RETURN_IF_ERROR(FetchLocked());
    it = endpoints_.find(target_id);
    if (it == endpoints_.end())
      return Status(EIO, "target " + std::to_string(target_id) + " is not in the cluster map");
  }
  return it->second;
}

bool ClusterMapCache::IsUp(uint32_t target_id) {
  std::lock_guard<std::mutex> g(mu_);
  if (!have_ || std::chrono::steady_clock::now() - fetched_ > max_age_) (void)FetchLocked();
  auto it = up_.find(target_id);
  return it == up_.end() || it->second;
}

Result<pb::ClusterMap> ClusterMapCache::Get(bool refresh) {
  std::lock_guard<std::mutex> g(mu_);
  if (refresh || !have_) CFS_RETURN_IF_ERROR(FetchLocked());
  return map_;
}

}  // namespace cfs::client
