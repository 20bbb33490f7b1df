// ClusterMapCache: which S-worker endpoint serves each target id. Fetched from
// the M-worker, refreshed when a data call fails or the copy is older than
// `max_age`, and when a layout names a target the copy does not know.
#pragma once

#include <chrono>
#include <mutex>
#include <unordered_map>

#include "client/meta_client.h"

namespace cfs::client {

class ClusterMapCache {
 public:
  ClusterMapCache(MetaClient* meta, std::chrono::milliseconds max_age)
      : meta_(meta), max_age_(max_age) {}

  // Endpoint of target id's S-worker.
  Result<rpc::Endpoint> EndpointOf(uint32_t target_id);
  // Fetches a fresh map, unless one was fetched after `failed_at` (many units
  // failing at once then cost one fetch).
  Status Refresh(std::chrono::steady_clock::time_point failed_at = std::chrono::steady_clock::now());
  Result<pb::ClusterMap> Get(bool refresh);
  // False when the (cached, max_age-fresh) map says target id is down or retired.
  // Unknown targets count as up: the call itself then finds out.
  bool IsUp(uint32_t target_id);

 private:
  Status FetchLocked();
  MetaClient* meta_;
  std::chrono::milliseconds max_age_;
  std::mutex mu_;
  pb::ClusterMap map_;
  std::unordered_map<uint32_t, rpc::Endpoint> endpoints_;
  std::unordered_map<uint32_t, bool> up_;
  std::chrono::steady_clock::time_point fetched_{};
  bool have_ = false;
};

}  // namespace cfs::client
