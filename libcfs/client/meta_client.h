// MetaClient: typed calls to the M-worker. Tries the configured addresses in
// order; a call is retried on another address (or after a reconnect) only when
// it cannot have reached the M-worker (connect failure) or when it is safe to
// repeat (idempotent methods).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "rpc/channel_pool.h"
#include "rpc/transport.h"

namespace cfs::client {

class MetaClient {
 public:
  MetaClient(std::shared_ptr<rpc::Transport> transport, std::vector<rpc::Endpoint> addrs,
             std::chrono::milliseconds timeout, std::chrono::milliseconds retry_for);

  // One RPC; resp may be null. Errors keep the M-worker's errno.
  Status Call(pb::Method method, const google::protobuf::Message& req,
              google::protobuf::Message* resp);

  // Whether a method may be sent twice without changing the outcome.
  static bool Idempotent(pb::Method m);
  // How long connect failures are retried (set before sharing the client).
  void set_retry_for(std::chrono::milliseconds d) { retry_for_ = d; }
  // Calls that cannot reach the M-worker, those in progress included, stop
  // retrying `window` from now (for a process that is stopping). Only an atomic
  // store: safe from a signal handler.
  void LimitRetries(std::chrono::milliseconds window);

 private:
  std::shared_ptr<rpc::Transport> transport_;
  rpc::ChannelPool pool_;
  std::vector<rpc::Endpoint> addrs_;
  std::atomic<size_t> current_{0};  // index of the address that answered last
  std::chrono::milliseconds timeout_;
  std::chrono::milliseconds retry_for_;
  // steady_clock time (ns since its epoch) after which no call retries; max = none.
  std::atomic<int64_t> give_up_at_ns_{INT64_MAX};
};

}  // namespace cfs::client
