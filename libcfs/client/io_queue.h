// IoQueue: the engine behind the C API's asynchronous I/O queues.
//
// Submit starts requests at once (the data path sends every unit call before
// anyone waits); a few waiter threads wait on the ops in flight and turn them
// into completions, which Reap hands out and an eventfd signals. Within a
// batch of `batch` submitted requests, writes of one file that continue each
// other in the file and in memory go out as one data call, so requests
// smaller than a stripe still make full stripes (no parity read-modify-write
// and one call per S-worker).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "client/client.h"

namespace cfs::client {

class IoQueue {
 public:
  enum class Op { kRead, kWrite, kFsync };
  struct Request {
    Op op = Op::kRead;
    std::shared_ptr<File> file;
    char* buf = nullptr;
    uint64_t len = 0;
    uint64_t off = 0;
    uint64_t user_data = 0;
    // Called once when the request has finished, before its completion is
    // visible (releases the buffer and handle it pinned).
    std::function<void()> done;
  };
  struct Completion {
    uint64_t user_data;
    int64_t res;  // bytes, or a negative errno
  };

  // depth: requests submitted and not yet reaped, at most. Fails only when
  // the eventfd cannot be made.
  static Result<std::unique_ptr<IoQueue>> Create(int depth, int batch);
  ~IoQueue();  // waits for the requests in flight

  int depth() const { return depth_; }
  // Requests submitted and not yet reaped.
  int pending() const;
  // Starts the requests; the caller has checked them and that they fit
  // (pending() + reqs.size() <= depth()).
  void Submit(std::vector<Request> reqs);
  // Up to max completions, waiting for min of them at most timeout_ms (-1: no limit).
  int Reap(Completion* out, int min, int max, int timeout_ms);
  int fd() const { return efd_; }

 private:
  struct Group;
  IoQueue(int depth, int batch, int efd);
  void StartGroup(std::vector<Request> members);
  void WaiterLoop();
  void Complete(Group& g, const Status& st);

  const int depth_, batch_;
  const int efd_;
  mutable std::mutex mu_;
  std::condition_variable started_cv_, ready_cv_;
  std::deque<std::unique_ptr<Group>> started_;  // ops in flight, oldest first
  std::deque<Completion> ready_;
  int pending_ = 0;
  int waiting_ = 0;  // groups a waiter thread is waiting on
  bool stop_ = false;
  std::vector<std::thread> waiters_;
};

}  // namespace cfs::client
