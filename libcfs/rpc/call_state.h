// CallState: the outcome a transport's PendingCall waits for (status and the
// bytes of response bulk received), set once by whoever finishes the call.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "common/status.h"

namespace cfs::rpc {

class CallState {
 public:
  // Records the outcome and wakes waiters. Only the first call counts: it
  // returns true, later ones (a failure racing a response) return false.
  bool Complete(Status st, uint64_t bulk_len) {
    std::lock_guard<std::mutex> g(mu_);
    if (done_) return false;
    status_ = std::move(st);
    bulk_len_ = bulk_len;
    done_ = true;
    cv_.notify_all();
    return true;
  }
  // True once complete; false if `timeout` passed first.
  bool WaitFor(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> g(mu_);
    return cv_.wait_for(g, timeout, [&] { return done_; });
  }
  void Wait() {
    std::unique_lock<std::mutex> g(mu_);
    cv_.wait(g, [&] { return done_; });
  }
  // Valid once complete.
  const Status& status() const { return status_; }
  uint64_t bulk_len() const { return bulk_len_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  Status status_;
  uint64_t bulk_len_ = 0;
};

}  // namespace cfs::rpc
