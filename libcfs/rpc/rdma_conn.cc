#include "rpc/rdma_conn.h"

#include <fcntl.h>
#include <poll.h>

#include <chrono>
#include <cstdlib>
#include <cstring>

#include "common/logging.h"
#include "rpc/rdma_transport.h"

namespace cfs::rpc::rdma {
namespace {

constexpr uint64_t kRecvTag = uint64_t{1} << 63;

Status SetNonBlocking(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return Status::FromErrno(errno, "fcntl");
  return Status::OK();
}

}  // namespace

// ---- WrBatch ----

void WrBatch::Add(int n) {
  std::lock_guard<std::mutex> g(mu_);
  left_ += n;
}

void WrBatch::Done(const Status& st) {
  std::lock_guard<std::mutex> g(mu_);
  if (!st.ok() && st_.ok()) st_ = st;
  if (--left_ == 0) cv_.notify_all();
}

Status WrBatch::Wait() {
  std::unique_lock<std::mutex> g(mu_);
  cv_.wait(g, [&] { return left_ <= 0; });
  return st_;
}

// ---- RdmaConn ----

struct RdmaConn::Wr {
  enum Kind { kSend, kRead, kWrite } kind;
  WrBatch* batch;
  int send_idx;  // send buffer to free, or -1
  uint64_t bytes;
};

Result<std::unique_ptr<RdmaConn>> RdmaConn::Create(rdma_cm_id* id, int depth, OnMessage on_message,
                                                   OnBroken on_broken) {
  std::unique_ptr<RdmaConn> c(new RdmaConn);
  c->id_ = id;
  c->depth_ = depth;
  c->on_message_ = std::move(on_message);
  c->on_broken_ = std::move(on_broken);
  ibv_context* ctx = id->verbs;
  CFS_ASSIGN_OR_RETURN(c->pd_, PdFor(ctx));
  ibv_device_attr da;
  if (ibv_query_device(ctx, &da) != 0) return Status::FromErrno(errno, "ibv_query_device");
  c->sq_size_ = std::min(da.max_qp_wr, depth * 4 + 16);
  c->comp_ = ibv_create_comp_channel(ctx);
  if (!c->comp_) return Status::FromErrno(errno, "ibv_create_comp_channel");
  CFS_RETURN_IF_ERROR(SetNonBlocking(c->comp_->fd));
  c->cq_ = ibv_create_cq(ctx, depth + c->sq_size_, nullptr, c->comp_, 0);
  if (!c->cq_) return Status::FromErrno(errno, "ibv_create_cq");
  if (ibv_req_notify_cq(c->cq_, 0) != 0) return Status::FromErrno(errno, "ibv_req_notify_cq");
  ibv_qp_init_attr qa{};
  qa.send_cq = c->cq_;
  qa.recv_cq = c->cq_;
  qa.qp_type = IBV_QPT_RC;
  qa.sq_sig_all = 1;
  qa.cap.max_send_wr = c->sq_size_;
  qa.cap.max_recv_wr = depth;
  qa.cap.max_send_sge = 1;
  qa.cap.max_recv_sge = 1;
  if (rdma_create_qp(id, c->pd_, &qa) != 0) return Status::FromErrno(errno, "rdma_create_qp");
  const size_t bytes = 2 * static_cast<size_t>(depth) * kRdmaMaxMessage;
  c->bufs_ = static_cast<char*>(std::aligned_alloc(4096, bytes));
  if (!c->bufs_) return Status(ENOMEM, "no memory for RDMA message buffers");
  c->bufs_mr_ = ibv_reg_mr(c->pd_, c->bufs_, bytes, IBV_ACCESS_LOCAL_WRITE);
  if (!c->bufs_mr_) {
    int e = errno;
    return Status(ENOMEM, "registering " + std::to_string(bytes >> 10) + " KiB of RDMA message buffers: " +
                              std::strerror(e) + " (RLIMIT_MEMLOCK too low? try ulimit -l unlimited)");
  }
  Stats().registrations++;
  for (int i = 0; i < depth; i++) CFS_RETURN_IF_ERROR(c->PostRecv(i));
  for (int i = 0; i < depth; i++) c->free_send_.push_back(depth + i);
  c->sq_free_ = c->sq_size_;
  c->poller_ = std::thread([p = c.get()] { p->Poll(); });
  return c;
}

Status RdmaConn::WatchCmEvents(rdma_event_channel* ec) {
  CFS_RETURN_IF_ERROR(SetNonBlocking(ec->fd));
  cm_events_ = ec;
  return Status::OK();
}

RdmaConn::~RdmaConn() {
  on_broken_ = nullptr;  // the owner is going away: no callbacks into it
  if (id_ && id_->qp) Break(Status(ECONNRESET, "connection closed"));
  stop_ = true;
  if (poller_.joinable()) poller_.join();
  if (id_ && id_->qp) rdma_destroy_qp(id_);
  if (cq_) ibv_destroy_cq(cq_);
  if (comp_) ibv_destroy_comp_channel(comp_);
  if (bufs_mr_) ibv_dereg_mr(bufs_mr_);
  std::free(bufs_);
}

void RdmaConn::Break(const Status& why) {
  if (broken_.exchange(true)) return;
  rdma_disconnect(id_);  // tells the peer at once; also moves the QP to ERR
  ibv_qp_attr a{};
  a.qp_state = IBV_QPS_ERR;
  ibv_modify_qp(id_->qp, &a, IBV_QP_STATE);
  {
    std::lock_guard<std::mutex> g(mu_);
    cv_.notify_all();
  }
  if (on_broken_) on_broken_(why);
}

Status RdmaConn::PostRecv(int slot) {
  ibv_sge sge{reinterpret_cast<uint64_t>(bufs_ + static_cast<size_t>(slot) * kRdmaMaxMessage),
              static_cast<uint32_t>(kRdmaMaxMessage), bufs_mr_->lkey};
  ibv_recv_wr wr{};
  wr.wr_id = kRecvTag | static_cast<uint64_t>(slot);
  wr.sg_list = &sge;
  wr.num_sge = 1;
  ibv_recv_wr* bad = nullptr;
  if (int e = ibv_post_recv(id_->qp, &wr, &bad); e != 0) return Status(e, "ibv_post_recv failed");
  return Status::OK();
}

bool RdmaConn::TakeSlot(int* send_idx) {
  std::unique_lock<std::mutex> g(mu_);
  cv_.wait(g, [&] { return (sq_free_ > 0 && (!send_idx || !free_send_.empty())) || broken_; });
  if (broken_) return false;
  if (send_idx) {
    *send_idx = free_send_.back();
    free_send_.pop_back();
  }
  sq_free_--;
  outstanding_++;
  return true;
}

void RdmaConn::Retire(Wr* w, const Status& st) {
  {
    std::lock_guard<std::mutex> g(mu_);
    sq_free_++;
    outstanding_--;
    if (w->send_idx >= 0) free_send_.push_back(w->send_idx);
    cv_.notify_all();
  }
  if (w->batch) w->batch->Done(st);
  delete w;
}

Status RdmaConn::PostSend(ibv_send_wr* wr, Wr* w) {
  wr->wr_id = reinterpret_cast<uint64_t>(w);
  wr->send_flags = IBV_SEND_SIGNALED;
  ibv_send_wr* bad = nullptr;
  int e = ibv_post_send(id_->qp, wr, &bad);
  if (e == 0) return Status::OK();
  Status st(ECONNRESET, std::string("ibv_post_send failed: ") + std::strerror(e));
  Retire(w, st);
  Break(st);
  return st;
}

Status RdmaConn::Send(const std::function<size_t(char*)>& fill, WrBatch* batch) {
  int idx;
  if (!TakeSlot(&idx)) return Status(ECONNRESET, "RDMA connection is down");
  char* buf = bufs_ + static_cast<size_t>(idx) * kRdmaMaxMessage;
  const size_t len = fill(buf);
  ibv_sge sge{reinterpret_cast<uint64_t>(buf), static_cast<uint32_t>(len), bufs_mr_->lkey};
  ibv_send_wr wr{};
  wr.opcode = IBV_WR_SEND;
  wr.sg_list = &sge;
  wr.num_sge = 1;
  if (batch) batch->Add();
  return PostSend(&wr, new Wr{Wr::kSend, batch, idx, len});
}

Status RdmaConn::PostReads(const std::vector<Segment>& remote, char* local, uint32_t lkey,
                           WrBatch* batch) {
  size_t off = 0;
  for (const Segment& s : remote) {
    if (!TakeSlot()) return Status(ECONNRESET, "RDMA connection is down");
    ibv_sge sge{reinterpret_cast<uint64_t>(local + off), s.len, lkey};
    ibv_send_wr wr{};
    wr.opcode = IBV_WR_RDMA_READ;
    wr.sg_list = &sge;
    wr.num_sge = 1;
    wr.wr.rdma.remote_addr = s.addr;
    wr.wr.rdma.rkey = s.rkey;
    if (batch) batch->Add();
    CFS_RETURN_IF_ERROR(PostSend(&wr, new Wr{Wr::kRead, batch, -1, s.len}));
    off += s.len;
  }
  return Status::OK();
}

Status RdmaConn::PostWrite(const char* local, uint32_t lkey, size_t len, uint64_t addr,
                           uint32_t rkey, WrBatch* batch) {
  if (!TakeSlot()) return Status(ECONNRESET, "RDMA connection is down");
  ibv_sge sge{reinterpret_cast<uint64_t>(local), static_cast<uint32_t>(len), lkey};
  ibv_send_wr wr{};
  wr.opcode = IBV_WR_RDMA_WRITE;
  wr.sg_list = &sge;
  wr.num_sge = 1;
  wr.wr.rdma.remote_addr = addr;
  wr.wr.rdma.rkey = rkey;
  if (batch) batch->Add();
  return PostSend(&wr, new Wr{Wr::kWrite, batch, -1, len});
}

void RdmaConn::HandleCompletion(const ibv_wc& wc) {
  if (wc.wr_id & kRecvTag) {
    const int slot = static_cast<int>(wc.wr_id & ~kRecvTag);
    if (wc.status == IBV_WC_SUCCESS) {
      on_message_(bufs_ + static_cast<size_t>(slot) * kRdmaMaxMessage, wc.byte_len);
      if (!broken_) {
        Status st = PostRecv(slot);
        if (!st.ok()) Break(st);
      }
    } else if (wc.status != IBV_WC_WR_FLUSH_ERR) {
      Break(Status(ECONNRESET, std::string("RDMA receive failed: ") + ibv_wc_status_str(wc.status)));
    }
    return;
  }
  Wr* w = reinterpret_cast<Wr*>(wc.wr_id);
  Status st;
  if (wc.status != IBV_WC_SUCCESS) {
    static const char* kNames[] = {"SEND", "RDMA READ", "RDMA WRITE"};
    st = Status(ECONNRESET, std::string(kNames[w->kind]) + " failed: " + ibv_wc_status_str(wc.status));
    if (wc.status != IBV_WC_WR_FLUSH_ERR) Break(st);
  } else if (w->kind == Wr::kRead) {
    Stats().read_bytes += w->bytes;
  } else if (w->kind == Wr::kWrite) {
    Stats().write_bytes += w->bytes;
  } else {
    Stats().sends++;
  }
  Retire(w, st);
}

void RdmaConn::Poll() {
  using Clock = std::chrono::steady_clock;
  Clock::time_point stop_deadline{};
  ibv_wc wcs[32];
  for (;;) {
    rdma_event_channel* cm = cm_events_.load();
    pollfd fds[2] = {{comp_->fd, POLLIN, 0}, {cm ? cm->fd : -1, POLLIN, 0}};
    const nfds_t nfds = cm ? 2 : 1;
    if (stop_) {
      std::lock_guard<std::mutex> g(mu_);
      if (outstanding_ == 0) return;
      if (stop_deadline == Clock::time_point{}) stop_deadline = Clock::now() + std::chrono::seconds(10);
      if (Clock::now() > stop_deadline) {
        LOG_WARN("RDMA connection closed with {} work requests unflushed", outstanding_);
        return;
      }
    }
    ::poll(fds, nfds, 50);
    ibv_cq* ev_cq;
    void* ev_ctx;
    while (ibv_get_cq_event(comp_, &ev_cq, &ev_ctx) == 0) {
      ibv_ack_cq_events(ev_cq, 1);
      ibv_req_notify_cq(cq_, 0);
    }
    int n;
    while ((n = ibv_poll_cq(cq_, 32, wcs)) > 0)
      for (int i = 0; i < n; i++) HandleCompletion(wcs[i]);
    if (cm) {
      rdma_cm_event* ev;
      while (rdma_get_cm_event(cm, &ev) == 0) {
        const rdma_cm_event_type t = ev->event;
        rdma_ack_cm_event(ev);
        if (t == RDMA_CM_EVENT_DISCONNECTED || t == RDMA_CM_EVENT_DEVICE_REMOVAL ||
            t == RDMA_CM_EVENT_TIMEWAIT_EXIT)
          Break(Status(ECONNRESET, std::string("peer disconnected (") + rdma_event_str(t) + ")"));
      }
    }
  }
}

}  // namespace cfs::rpc::rdma
