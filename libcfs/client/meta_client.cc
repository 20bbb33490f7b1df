#include "client/meta_client.h"

#include <thread>

#include "common/logging.h"

namespace cfs::client {

MetaClient::MetaClient(std::shared_ptr<rpc::Transport> transport, std::vector<rpc::Endpoint> addrs,
                       std::chrono::milliseconds timeout, std::chrono::milliseconds retry_for)
    : transport_(transport),
      pool_(transport, 2, std::chrono::milliseconds(2000)),
      addrs_(std::move(addrs)),
      timeout_(timeout),
      retry_for_(retry_for) {}

bool MetaClient::Idempotent(pb::Method m) {
  switch (m) {
    case pb::GET_CLUSTER_MAP:
    case pb::GET_STATUS:
    case pb::LOOKUP:
    case pb::GETATTR:
    case pb::SETATTR:  // sets absolute values
    case pb::READLINK:
    case pb::READDIR:
    case pb::REPORT_SIZE:  // size = max(size, reported)
    case pb::STATFS:
    case pb::GETXATTR:
    case pb::LISTXATTR:
    case pb::SET_DIR_LAYOUT:
      return true;
    default:
      return false;
  }
}

namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void MetaClient::LimitRetries(std::chrono::milliseconds window) {
  give_up_at_ns_.store(NowNs() + std::chrono::duration_cast<std::chrono::nanoseconds>(window).count());
}

Status MetaClient::Call(pb::Method method, const google::protobuf::Message& req,
                        google::protobuf::Message* resp) {
  const int64_t deadline_ns = NowNs() + std::chrono::duration_cast<std::chrono::nanoseconds>(retry_for_).count();
  // Read anew at every step: LimitRetries may be called while this call waits.
  auto give_up = [&] { return NowNs() >= std::min(deadline_ns, give_up_at_ns_.load()); };
  const bool idempotent = Idempotent(method);
  Status last;
  for (int round = 0;; round++) {
    for (size_t i = 0; i < addrs_.size(); i++) {
      size_t idx = (current_.load() + i) % addrs_.size();
      const rpc::Endpoint& ep = addrs_[idx];
      auto ch = pool_.Get(ep);
      if (!ch.ok()) {  // nothing was sent: always safe to try the next address
        last = ch.status();
        continue;
      }
      rpc::CallSpec spec;
      spec.method = method;
      spec.request = &req;
      spec.response = resp;
      spec.timeout = timeout_;
      Status st = (*ch)->Call(spec);
      if (st.ok() || !st.IsRetryable()) {
        if (idx != current_.load()) current_ = idx;
        return st;
      }
      last = st;
      pool_.Forget(ep);
      if (!idempotent) {
        // The request may have been applied: repeating it could fail with a
        // misleading EEXIST/ENOENT, so the caller sees the transport error.
        return Status(st.err(), "M-worker " + ep.ToString() + " did not answer " +
                                    pb::Method_Name(method) + ": " + st.message());
      }
    }
    // Back off in short slices so that LimitRetries ends the wait promptly.
    const auto backoff_end =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(std::min(100 * (round + 1), 1000));
    while (!give_up() && std::chrono::steady_clock::now() < backoff_end)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (give_up()) break;
  }
  std::string addrs;
  for (const auto& a : addrs_) addrs += (addrs.empty() ? "" : ",") + a.ToString();
  return Status(EHOSTUNREACH, "no M-worker answers at " + addrs + ": " + last.message());
}

}  // namespace cfs::client
