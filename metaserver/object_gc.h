// ObjectGc: deletes the objects of removed files on the S-workers. The queue
// lives in the store (gc column family), so deletion survives M-worker
// restarts; a target is removed from an entry only once its S-worker confirmed
// DELETE_OBJECT, and targets whose worker is down are retried later.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "namespace_store.h"
#include "rpc/channel_pool.h"
#include "worker_registry.h"

namespace cfs::meta {

class ObjectGc {
 public:
  ObjectGc(NamespaceStore* store, WorkerRegistry* registry, std::shared_ptr<rpc::Transport> transport,
           std::chrono::milliseconds interval = std::chrono::milliseconds(1000));
  ~ObjectGc();
  void Start();
  void Stop();
  // Runs one pass now (also used by tests); returns how many objects were confirmed.
  size_t RunOnce();
  void Kick();

 private:
  void Loop();
  NamespaceStore* store_;
  WorkerRegistry* registry_;
  rpc::ChannelPool pool_;
  std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, kicked_ = false;
  std::thread thread_;
};

}  // namespace cfs::meta
