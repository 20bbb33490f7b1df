// RdmaConn: one RC queue pair with its completion queue, message buffers and
// poller thread; the piece the RDMA channel (client) and server connections
// share. Messages are SENDs of at most kRdmaMaxMessage bytes into receive
// buffers posted in advance; RDMA READ/WRITE move bulk. Every work request is
// signaled, so the poller knows when buffers and send-queue slots free up.
#pragma once

#include <rdma/rdma_cma.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "rpc/rdma_verbs.h"

namespace cfs::rpc::rdma {

// Waits for a set of work requests; the first failure wins.
class WrBatch {
 public:
  void Add(int n = 1);
  void Done(const Status& st);
  Status Wait();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int left_ = 0;
  Status st_;
};

struct Segment {
  uint64_t addr;
  uint32_t rkey;
  uint32_t len;
};

class RdmaConn {
 public:
  using OnMessage = std::function<void(const char* msg, size_t len)>;
  using OnBroken = std::function<void(const Status& why)>;

  // Makes the CQ and QP on id (whose device is known), posts `depth` receive
  // buffers and starts the poller. on_message runs on the poller thread; the
  // buffer is reposted when it returns.
  static Result<std::unique_ptr<RdmaConn>> Create(rdma_cm_id* id, int depth, OnMessage on_message,
                                                  OnBroken on_broken);
  ~RdmaConn();  // breaks the QP, waits for its work requests to flush, frees

  ibv_pd* pd() const { return pd_; }
  rdma_cm_id* id() const { return id_; }
  bool broken() const { return broken_.load(); }
  // Once connected (client side): the poller watches this rdma_cm event
  // channel for the peer's DISCONNECTED. Servers get those on their listener.
  Status WatchCmEvents(rdma_event_channel* ec);
  // Moves the QP to the error state: posted work flushes with errors, later
  // posts fail. on_broken runs once (on the calling thread).
  void Break(const Status& why);

  // SENDs the message that fill writes (returns its length, at most
  // kRdmaMaxMessage). With batch, the SEND's completion is reported there.
  Status Send(const std::function<size_t(char*)>& fill, WrBatch* batch);
  // RDMA READ of remote segments into local memory (consecutive), reported to batch.
  Status PostReads(const std::vector<Segment>& remote, char* local, uint32_t lkey, WrBatch* batch);
  // RDMA WRITE of local [local, local+len) to remote (addr, rkey), reported to batch.
  Status PostWrite(const char* local, uint32_t lkey, size_t len, uint64_t addr, uint32_t rkey,
                   WrBatch* batch);

 private:
  struct Wr;
  RdmaConn() = default;
  Status PostRecv(int slot);
  // Takes a send-queue slot, and with send_idx a send buffer too (waits while
  // none is free); false once broken.
  bool TakeSlot(int* send_idx = nullptr);
  // Gives back what a finished (or unposted) work request held, then reports it.
  void Retire(Wr* w, const Status& st);
  Status PostSend(ibv_send_wr* wr, Wr* w);
  void Poll();
  void HandleCompletion(const ibv_wc& wc);

  rdma_cm_id* id_ = nullptr;
  ibv_pd* pd_ = nullptr;
  ibv_comp_channel* comp_ = nullptr;
  ibv_cq* cq_ = nullptr;
  std::atomic<rdma_event_channel*> cm_events_{nullptr};
  int depth_ = 0;
  int sq_size_ = 0;
  char* bufs_ = nullptr;  // depth_ receive buffers, then depth_ send buffers
  ibv_mr* bufs_mr_ = nullptr;
  OnMessage on_message_;
  OnBroken on_broken_;

  std::mutex mu_;
  std::condition_variable cv_;
  int sq_free_ = 0;                // send-queue slots
  std::vector<int> free_send_;     // send buffer indexes
  int outstanding_ = 0;            // posted send-side WRs not yet completed
  std::atomic<bool> broken_{false};
  std::atomic<bool> stop_{false};
  std::thread poller_;
};

}  // namespace cfs::rpc::rdma
