#include "object_gc.h"

#include "common/logging.h"
#include "common/metrics.h"

namespace cfs::meta {

ObjectGc::ObjectGc(NamespaceStore* store, WorkerRegistry* registry,
                   std::shared_ptr<rpc::Transport> transport, std::chrono::milliseconds interval)
    : store_(store), registry_(registry), pool_(std::move(transport), 1, std::chrono::milliseconds(2000)),
      interval_(interval) {}

ObjectGc::~ObjectGc() { Stop(); }

void ObjectGc::Start() {
  std::lock_guard l(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void ObjectGc::Stop() {
  {
    std::lock_guard l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ObjectGc::Kick() {
  {
    std::lock_guard l(mu_);
    kicked_ = true;
  }
  cv_.notify_all();
}

void ObjectGc::Loop() {
  std::unique_lock l(mu_);
  while (!stop_) {
    cv_.wait_for(l, interval_, [this] { return stop_ || kicked_; });
    if (stop_) break;
    kicked_ = false;
    l.unlock();
    size_t n;
    do {
      n = RunOnce();  // keep going while whole batches succeed
    } while (n >= 256 && !stop_);
    l.lock();
  }
}

size_t ObjectGc::RunOnce() {
  auto items = store_->ListGc(256);
  if (!items.ok()) {
    LOG_ERROR("gc: list: {}", items.status().ToString());
    return 0;
  }
  struct Pending {
    uint64_t ino;
    uint32_t target;
    rpc::Endpoint ep;
    pb::ObjectRequest req;
    std::shared_ptr<rpc::PendingCall> call;
  };
  std::vector<std::unique_ptr<Pending>> calls;
  std::vector<std::pair<uint64_t, uint32_t>> done;
  for (const auto& item : *items) {
    for (uint32_t t : item.targets) {
      bool known = false;
      auto ep = registry_->TargetEndpoint(t, &known);
      if (!known) {  // never registered: nobody holds the object
        LOG_WARN("gc: dropping unknown target {} of inode {}", t, item.ino);
        done.emplace_back(item.ino, t);
        continue;
      }
      if (!ep) continue;  // worker down: later
      auto p = std::make_unique<Pending>();
      p->ino = item.ino;
      p->target = t;
      p->ep = *ep;
      p->req.set_ino(item.ino);
      p->req.set_target_id(t);
      rpc::CallSpec spec;
      spec.method = pb::DELETE_OBJECT;
      spec.request = &p->req;
      spec.timeout = std::chrono::milliseconds(10000);
      p->call = pool_.Start(p->ep, spec);
      calls.push_back(std::move(p));
    }
  }
  static auto& deleted = Metrics::Get().Counter("cfs_meta_gc_objects_deleted_total", "",
                                                "objects deleted on S-workers");
  static auto& failed = Metrics::Get().Counter("cfs_meta_gc_delete_failures_total", "",
                                               "DELETE_OBJECT calls that failed (retried)");
  for (auto& p : calls) {
    Status s = p->call->Wait();
    if (s.ok()) {
      done.emplace_back(p->ino, p->target);
      deleted++;
    } else {
      failed++;
      LOG_DEBUG("gc: delete ino={} target={} at {}: {}", p->ino, p->target, p->ep.ToString(),
                s.ToString());
      if (s.IsRetryable()) pool_.Forget(p->ep);
    }
  }
  Status s = store_->GcDone(done);
  if (!s.ok()) LOG_ERROR("gc: record progress: {}", s.ToString());
  return done.size();
}

}  // namespace cfs::meta
