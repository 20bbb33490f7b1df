// WorkerRegistry: the S-workers and their targets. Worker and target ids are
// assigned once per uuid and persisted in the store's state records, so they
// survive M-worker restarts. Liveness is in memory: a worker silent for the
// heartbeat timeout is marked down and the cluster map epoch advances.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cfs.pb.h"
#include "namespace_store.h"
#include "rpc/transport.h"

namespace cfs::meta {

class WorkerRegistry {
 public:
  WorkerRegistry(NamespaceStore* store, std::chrono::milliseconds heartbeat_timeout);
  // Loads the persisted workers and targets (all down until they speak).
  Status Load();

  Result<pb::RegisterWorkerResponse> Register(const pb::RegisterWorkerRequest& req);
  pb::HeartbeatResponse Heartbeat(const pb::HeartbeatRequest& req);
  // Marks silent workers down; returns how many went down.
  int ExpireSilent();

  pb::ClusterMap Map();
  // Up, non-retired targets, for placement.
  std::vector<pb::TargetInfo> UpTargets();
  // Down, non-retired targets (placement of parity layouts while degraded).
  std::vector<pb::TargetInfo> DownTargets();

  // What the rebuild manager needs to know of one target.
  struct TargetHealth {
    uint32_t id = 0, worker_id = 0;
    bool up = false, retired = false;
    std::chrono::milliseconds down_for{0};  // how long its worker has been down (0 if up)
  };
  std::vector<TargetHealth> Health();
  // Marks a target retired (persisted; never placed again; clients must not
  // use it) and advances the epoch. NotFound for an unknown id.
  Status Retire(uint32_t target_id);
  // The address of the worker serving target id, if it is known and up.
  std::optional<rpc::Endpoint> TargetEndpoint(uint32_t target_id, bool* known);
  void Statfs(uint64_t* capacity, uint64_t* free);
  uint64_t epoch();

 private:
  using Clock = std::chrono::steady_clock;
  struct Worker {
    pb::WorkerInfo info;  // persisted part: id, uuid, host, port, transport, target_ids
    bool up = false;
    Clock::time_point last_heartbeat{};
    Clock::time_point down_since{};  // when it was last seen going down (or the M-worker started)
  };
  Status PersistEpochLocked();

  NamespaceStore* store_;
  std::chrono::milliseconds timeout_;
  std::mutex mu_;
  std::map<uint32_t, Worker> workers_;            // by id
  std::map<uint32_t, pb::TargetInfo> targets_;    // by id
  std::map<std::string, uint32_t> worker_by_uuid_, target_by_uuid_;
  uint32_t next_worker_id_ = 1, next_target_id_ = 1;
  uint64_t epoch_ = 1;
};

}  // namespace cfs::meta
