// MetaService: the M-worker's RPC surface (docs/wire-protocol.md, M-worker
// methods) over a NamespaceStore, the worker registry, placement and the
// object GC; plus the maintenance thread (heartbeat expiry, orphan purge).
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "namespace_store.h"
#include "object_gc.h"
#include "placement.h"
#include "rebuild_manager.h"
#include "scrub_manager.h"
#include "rpc/transport.h"
#include "worker_registry.h"

namespace cfs::meta {

struct MetaOptions {
  uint32_t default_unit = 1 << 20;
  uint32_t default_k = 0;  // 0: all up targets, at most 16
  uint32_t default_m = 0;
  std::chrono::milliseconds heartbeat_timeout{5000};
  std::chrono::milliseconds orphan_grace{60000};
  int threads = 8;
  std::string transport = "tcp";
  RebuildOptions rebuild;
  ScrubOptions scrub;
  // Makes the Repairer the rebuild and scrub threads use (cfs-meta:
  // client::NewRepairer; tests inject theirs). Null: rebuild and scrub report
  // that they cannot move data.
  RepairerFactory repairer_factory;
};

class MetaService {
 public:
  MetaService(NamespaceStore* store, const MetaOptions& opts);
  ~MetaService();
  Status Start(const std::string& host, uint16_t port);
  uint16_t port() const;
  // For tests: the managers (valid between Start and Stop).
  RebuildManager* rebuild() { return rebuild_.get(); }
  ScrubManager* scrub() { return scrub_.get(); }
  void Stop();

 private:
  void RegisterHandlers();
  void Maintenance();
  template <class Req, class Resp, class Fn>
  void Add(pb::Method m, Fn fn);

  NamespaceStore* store_;
  MetaOptions opts_;
  WorkerRegistry registry_;
  Placement placement_;
  std::shared_ptr<rpc::Transport> transport_;
  std::unique_ptr<rpc::Server> server_;
  std::unique_ptr<ObjectGc> gc_;
  std::unique_ptr<RebuildManager> rebuild_;
  std::unique_ptr<ScrubManager> scrub_;
  std::chrono::steady_clock::time_point started_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread maintenance_;
};

}  // namespace cfs::meta
