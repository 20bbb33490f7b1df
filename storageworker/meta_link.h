// MetaLink: the S-worker's tie to the M-worker. Registers (worker uuid, the
// address clients use, targets), learns the target ids, heartbeats every
// second and registers again when the M-worker forgot us or was unreachable.
// Runs in its own thread; an M-worker that is down is retried forever.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "rpc/channel_pool.h"
#include "storage_service.h"

namespace cfs::storage {

struct MetaLinkOptions {
  std::vector<rpc::Endpoint> meta;  // M-worker addresses, tried in order
  std::string worker_uuid;
  std::string host;  // advertised to clients
  uint16_t port = 0; // the port the service actually listens on
  // What clients may reach us over, shown by `cfs workers`/`cfs status`:
  // "tcp" or "tcp+rdma" (an RDMA server keeps TCP on the same port number).
  std::string transport = "tcp";
  std::chrono::milliseconds interval{1000};
};

class MetaLink {
 public:
  // transport reaches the M-worker: TCP, whatever the service serves.
  MetaLink(MetaLinkOptions opts, StorageService* service, std::shared_ptr<rpc::Transport> transport);
  ~MetaLink();  // Stop()

  void Start();
  void Stop();
  bool registered() const;
  uint32_t worker_id() const;
  // Blocks until registered or the timeout passes; true when registered.
  bool WaitRegistered(std::chrono::milliseconds timeout);

  // Parses "HOST:PORT[,HOST:PORT...]".
  static Result<std::vector<rpc::Endpoint>> ParseAddresses(const std::string& s);

 private:
  void Run();
  Status Register();
  Status Heartbeat(bool* reregister);
  void FillTargets(google::protobuf::RepeatedPtrField<pb::TargetInfo>* out, bool with_ids);
  template <class Req, class Resp>
  Status CallMeta(pb::Method m, const Req& req, Resp* resp);

  const MetaLinkOptions opts_;
  StorageService* service_;
  rpc::ChannelPool pool_;
  size_t current_ = 0;  // index into opts_.meta of the M-worker we talk to

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool registered_ = false;
  uint32_t worker_id_ = 0;
  std::thread thread_;
};

}  // namespace cfs::storage
