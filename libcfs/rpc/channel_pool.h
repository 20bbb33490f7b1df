// ChannelPool: a few pipelined channels per server endpoint, connected lazily
// and replaced when they break. Calls spread round-robin over them.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "rpc/transport.h"

namespace cfs::rpc {

class ChannelPool {
 public:
  ChannelPool(std::shared_ptr<Transport> transport, int per_endpoint,
              std::chrono::milliseconds connect_timeout = std::chrono::milliseconds(3000));

  // A healthy channel to ep, connecting if needed.
  Result<std::shared_ptr<Channel>> Get(const Endpoint& ep);
  // Starts a call on a channel to ep; a connect failure completes the call with it.
  std::shared_ptr<PendingCall> Start(const Endpoint& ep, const CallSpec& spec);
  // Start + Wait.
  Status Call(const Endpoint& ep, const CallSpec& spec) { return Start(ep, spec)->Wait(); }
  // Drops all channels to ep (after a peer restart or a map change).
  void Forget(const Endpoint& ep);
  Transport& transport() { return *transport_; }

 private:
  struct Slot {
    std::vector<std::shared_ptr<Channel>> channels;
    size_t next = 0;
  };
  std::shared_ptr<Transport> transport_;
  int per_endpoint_;
  std::chrono::milliseconds connect_timeout_;
  std::mutex mu_;
  std::map<std::string, Slot> slots_;
};

// A PendingCall that already failed (used when there is no channel).
std::shared_ptr<PendingCall> FailedCall(Status st);

}  // namespace cfs::rpc
