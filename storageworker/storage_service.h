// StorageService: the S-worker's RPC methods (docs/wire-protocol.md, S-worker
// methods) on a cfs::rpc::Server, dispatching to the targets by id.
#pragma once

#include <atomic>
#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "rpc/transport.h"
#include "target.h"

namespace cfs::storage {

// The largest single WRITE_UNIT / READ_UNIT (one stripe unit at most).
constexpr uint64_t kMaxIoBytes = 64ull << 20;

class StorageService {
 public:
  explicit StorageService(std::vector<std::unique_ptr<Target>> targets);
  ~StorageService();

  // Starts serving on host:port (port 0 = any free port) with `threads` handler threads.
  Status Start(rpc::Transport& transport, const std::string& host, uint16_t port, int threads);
  uint16_t port() const;
  void Stop();

  size_t num_targets() const { return targets_.size(); }
  Target& target(size_t i) { return *targets_[i]; }
  // Makes target i answer to id (as assigned by the M-worker) and persists it.
  Status SetTargetId(size_t i, uint32_t id);

 private:
  Target* Find(uint32_t id, Status* st);
  void HandleWrite(rpc::ServerCall& call);
  void HandleRead(rpc::ServerCall& call);
  Status HandleObject(pb::Method m, const pb::ObjectRequest& req);
  // Erasure-coded versioned units (docs/erasure-coding.md).
  void HandleEcWrite(rpc::ServerCall& call);
  void HandleEcRead(rpc::ServerCall& call);
  Status HandleEcVersions(const pb::EcVersionsRequest& req, pb::EcVersionsResponse* resp);
  Status HandleEcRollback(const pb::EcRollbackRequest& req);
  Status HandleStats(pb::TargetStatsResponse* resp);

  std::vector<std::unique_ptr<Target>> targets_;
  std::shared_mutex ids_mu_;
  std::unordered_map<uint32_t, Target*> by_id_;
  std::unique_ptr<rpc::Server> server_;
};

}  // namespace cfs::storage
