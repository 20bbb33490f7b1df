#include "rpc/channel_pool.h"

namespace cfs::rpc {
namespace {

class DoneCall : public PendingCall {
 public:
  explicit DoneCall(Status st) : st_(std::move(st)) {}
  Status Wait() override { return st_; }
  uint64_t bulk_in_len() const override { return 0; }

 private:
  Status st_;
};

}  // namespace

std::shared_ptr<PendingCall> FailedCall(Status st) { return std::make_shared<DoneCall>(std::move(st)); }

ChannelPool::ChannelPool(std::shared_ptr<Transport> transport, int per_endpoint,
                         std::chrono::milliseconds connect_timeout)
    : transport_(std::move(transport)),
      per_endpoint_(per_endpoint < 1 ? 1 : per_endpoint),
      connect_timeout_(connect_timeout) {}

Result<std::shared_ptr<Channel>> ChannelPool::Get(const Endpoint& ep) {
  const std::string key = ep.ToString();
  size_t idx;
  {
    std::lock_guard<std::mutex> g(mu_);
    Slot& slot = slots_[key];
    if (slot.channels.size() < static_cast<size_t>(per_endpoint_))
      slot.channels.resize(per_endpoint_);
    idx = slot.next++ % slot.channels.size();
    auto& ch = slot.channels[idx];
    if (ch && ch->healthy()) return ch;
  }
  // Connect outside the lock: a dead peer must not stall calls to live ones.
  auto fresh = transport_->Connect(ep, connect_timeout_);
  if (!fresh.ok()) return fresh.status();
  std::lock_guard<std::mutex> g(mu_);
  auto& ch = slots_[key].channels[idx];
  if (!ch || !ch->healthy()) ch = *fresh;
  return ch;
}

std::shared_ptr<PendingCall> ChannelPool::Start(const Endpoint& ep, const CallSpec& spec) {
  auto ch = Get(ep);
  if (!ch.ok()) return FailedCall(ch.status());
  return (*ch)->Start(spec);
}

void ChannelPool::Forget(const Endpoint& ep) {
  std::lock_guard<std::mutex> g(mu_);
  slots_.erase(ep.ToString());
}

}  // namespace cfs::rpc
