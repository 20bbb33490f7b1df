// TaskPool: a fixed set of threads running queued tasks that return a Status.
// The erasure-coded data path runs each stripe operation as one task, so a
// File can keep several in flight (write-behind, read-ahead) while each task
// runs its version/read/write rounds in order.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "common/status.h"

namespace cfs::client {

class TaskPool {
 public:
  explicit TaskPool(int threads);
  ~TaskPool();
  TaskPool(const TaskPool&) = delete;
  TaskPool& operator=(const TaskPool&) = delete;

  std::future<Status> Submit(std::function<Status()> fn);

 private:
  void Loop();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::packaged_task<Status()>> queue_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace cfs::client
