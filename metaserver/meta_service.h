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
};

class MetaService {
 public:
  MetaService(NamespaceStore* store, const MetaOptions& opts);
  ~MetaService();
  Status Start(const std::string& host, uint16_t port);
  uint16_t port() const;
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
  std::chrono::steady_clock::time_point started_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread maintenance_;
};

}  // namespace cfs::meta
