#include "rebuild_manager.h"

#include <sys/stat.h>

#include <algorithm>

#include "common/layout.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "repair_util.h"

namespace cfs::meta {

namespace {
constexpr size_t kBatch = 512;
}  // namespace

RebuildManager::RebuildManager(NamespaceStore* store, WorkerRegistry* registry, RepairerFactory factory,
                               const RebuildOptions& opts)
    : store_(store), registry_(registry), factory_(std::move(factory)), opts_(opts) {}

RebuildManager::~RebuildManager() { Stop(); }

void RebuildManager::Start(const std::string& meta_addr) {
  meta_addr_ = meta_addr;
  if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
}

void RebuildManager::Stop() {
  {
    std::lock_guard l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RebuildManager::Kick() {
  {
    std::lock_guard l(mu_);
    kicked_ = true;
  }
  cv_.notify_all();
}

Status RebuildManager::Request(uint32_t target_id) {
  if (target_id != 0) {
    bool found = false;
    for (const auto& h : registry_->Health()) {
      if (h.id != target_id) continue;
      found = true;
      if (h.retired) return Status::OK();  // already done
      if (h.up)
        return Status(EBUSY, "target " + std::to_string(target_id) +
                                 " is up: only a down target is rebuilt elsewhere (stop its S-worker first)");
    }
    if (!found) return Status::NotFound("no target " + std::to_string(target_id));
  }
  {
    std::lock_guard l(mu_);
    if (target_id == 0) request_all_ = true;
    else requested_.insert(target_id);
    retire_retry_at_.clear();
    backoff_.clear();
    kicked_ = true;
  }
  LOG_INFO("rebuild requested for {}", target_id ? "target " + std::to_string(target_id) : "all down targets");
  cv_.notify_all();
  return Status::OK();
}

void RebuildManager::SetDetail(const std::string& d) {
  std::lock_guard l(mu_);
  detail_ = d;
}

void RebuildManager::Run() {
  std::unique_lock l(mu_);
  while (!stop_) {
    cv_.wait_for(l, opts_.poll, [this] { return stop_ || kicked_; });
    if (stop_) break;
    kicked_ = false;
    l.unlock();
    RetireDue();
    DrainOnce();
    l.lock();
  }
}

// ---------------------------------------------------------------- retirement

void RebuildManager::RetireDue() {
  auto now = Clock::now();
  std::vector<uint32_t> due;
  {
    std::lock_guard l(mu_);
    for (const auto& h : registry_->Health()) {
      if (h.up || h.retired) {
        requested_.erase(h.id);
        no_spare_.erase(h.id);
        continue;
      }
      bool asked = request_all_ || requested_.count(h.id);
      bool timed = opts_.rebuild_after.count() > 0 && h.down_for >= opts_.rebuild_after;
      if (!asked && !timed) continue;
      auto r = retire_retry_at_.find(h.id);
      if (!asked && r != retire_retry_at_.end() && now < r->second) continue;
      due.push_back(h.id);
    }
    request_all_ = false;
    requested_.clear();
  }
  for (uint32_t t : due) {
    uint64_t no_spare = 0;
    Status s = RetireTarget(t, &no_spare);
    std::lock_guard l(mu_);
    if (!s.ok()) {
      if (s.err() != EAGAIN) {
        errors_++;
        last_error_ = "retire target " + std::to_string(t) + ": " + s.ToString();
        LOG_ERROR("{}", last_error_);
      }
      retire_retry_at_[t] = Clock::now() + opts_.no_spare_retry;
      continue;
    }
    if (no_spare) {
      no_spare_[t] = no_spare;
      retire_retry_at_[t] = Clock::now() + opts_.no_spare_retry;
    } else {
      no_spare_.erase(t);
      retire_retry_at_.erase(t);
    }
  }
}

Status RebuildManager::RetireTarget(uint32_t target, uint64_t* no_spare) {
  *no_spare = 0;
  LOG_WARN("retiring target {}: moving its place in every layout to a spare target", target);
  SetDetail("retiring target " + std::to_string(target) + ": choosing spares");
  std::map<uint32_t, uint64_t> assigned;  // spare -> files given to it in this pass
  uint64_t swapped = 0, after = 0, no_parity = 0;
  bool changed = false;
  Status result;
  for (;;) {
    {
      std::lock_guard l(mu_);
      if (stop_) {
        result = Status(ECANCELED, "stopping");
        break;
      }
    }
    auto files = store_->ScanFiles(after, kBatch);
    if (!files.ok()) {
      result = files.status();
      break;
    }
    if (files->empty()) break;
    after = files->back().ino();
    // Fresh view of the cluster per batch.
    std::map<uint32_t, WorkerRegistry::TargetHealth> health;
    for (const auto& h : registry_->Health()) health[h.id] = h;
    auto self = health.find(target);
    if (self != health.end() && self->second.up) {
      result = Status(EAGAIN, "target " + std::to_string(target) + " is up again");
      break;
    }
    auto up = registry_->UpTargets();
    for (const auto& a : *files) {
      const auto& l = a.layout();
      int idx = -1;
      for (int i = 0; i < l.targets_size(); i++)
        if (l.targets(i) == target) idx = i;
      if (idx < 0) continue;
      if (l.m() == 0) {
        // No redundancy to rebuild from: a fresh spare would read as zeros.
        // The file keeps the target, and its reads there fail loudly.
        no_parity++;
        continue;
      }
      std::set<uint32_t> in_layout(l.targets().begin(), l.targets().end());
      std::set<uint32_t> workers_used;
      for (uint32_t t : l.targets()) {
        if (t == target) continue;
        auto h = health.find(t);
        if (h != health.end()) workers_used.insert(h->second.worker_id);
      }
      const pb::TargetInfo* best = nullptr;
      auto better = [&](const pb::TargetInfo& c) {
        if (!best) return true;
        bool cw = !workers_used.count(c.worker_id()), bw = !workers_used.count(best->worker_id());
        if (cw != bw) return cw;  // a worker the layout does not use yet
        uint64_t ca = assigned[c.id()], ba = assigned[best->id()];
        if (ca != ba) return ca < ba;  // spread this pass's files
        return c.free() > best->free();
      };
      for (const auto& c : up)
        if (!in_layout.count(c.id()) && better(c)) best = &c;
      if (!best) {
        (*no_spare)++;
        continue;
      }
      Status s = store_->ReplaceTarget(a.ino(), uint32_t(idx), target, best->id());
      if (s.err() == EAGAIN || s.err() == ESTALE) continue;  // changed or gone meanwhile
      if (!s.ok()) {
        result = s;
        break;
      }
      changed = true;
      swapped++;
      assigned[best->id()]++;
      LOG_INFO("inode {}: target {} replaced by {} at index {} (to be resynced)", a.ino(), target,
               best->id(), idx);
    }
    if (!result.ok()) break;
    SetDetail("retiring target " + std::to_string(target) + ": " + std::to_string(swapped) +
              " file(s) moved to spares");
  }
  if (changed) {
    std::lock_guard l(scan_mu_);
    refs_valid_ = false;
  }
  if (!result.ok()) return result;
  if (*no_spare) {
    LOG_ERROR("target {}: no spare target for {} file(s) (every up target is already in their "
              "layout); {} moved; the target stays in those layouts",
              target, *no_spare, swapped);
    return Status::OK();
  }
  if (no_parity) {
    LOG_ERROR("target {}: {} file(s) without parity (m = 0) had units on it; those units are lost "
              "and the files keep naming the retired target",
              target, no_parity);
    std::lock_guard l(mu_);
    lost_[target] = no_parity;
  }
  CFS_RETURN_IF_ERROR(registry_->Retire(target));
  LOG_WARN("target {} retired: {} file(s) now name a spare and wait for their resync", target, swapped);
  Kick();
  return Status::OK();
}

// ---------------------------------------------------------------- resync

Status RebuildManager::EnsureRepairer() {
  if (repairer_) return Status::OK();
  if (!factory_) return Status::NotSupported("no Repairer factory configured");
  CFS_ASSIGN_OR_RETURN(repairer_, factory_(meta_addr_));
  return Status::OK();
}

bool RebuildManager::Pace(uint64_t bytes) {
  bytes_done_ += bytes;
  std::unique_lock l(mu_);
  if (stop_) return false;
  if (opts_.rate_bytes_per_s == 0) return true;
  cv_.wait_until(l, pacer_.Admit(bytes, opts_.rate_bytes_per_s), [this] { return stop_; });
  return !stop_;
}

void RebuildManager::DrainOnce() {
  // Gather the work: every record, with the file it names.
  struct Work {
    DegradedItem item;
    pb::Attr attr;
    int index = -1;
  };
  std::map<uint32_t, WorkerRegistry::TargetHealth> health;
  for (const auto& h : registry_->Health()) health[h.id] = h;
  std::vector<Work> ready;
  std::set<uint32_t> waiting_on;
  uint64_t estimate = 0;
  DegradedItem last;
  bool have_last = false;
  auto now = Clock::now();
  for (;;) {
    auto items = store_->ListDegraded(have_last ? &last : nullptr, kBatch);
    if (!items.ok()) {
      std::lock_guard l(mu_);
      errors_++;
      last_error_ = "list degraded records: " + items.status().ToString();
      return;
    }
    if (items->empty()) break;
    last = items->back();
    have_last = true;
    for (const auto& d : *items) {
      auto attr = store_->GetAttr(d.ino);
      int idx = -1;
      if (attr.ok())
        for (int i = 0; i < attr->layout().targets_size(); i++)
          if (attr->layout().targets(i) == d.target) idx = i;
      if (!attr.ok() || idx < 0 || attr->layout().m() == 0 || !S_ISREG(attr->mode())) {
        // Gone, moved off this target, or nothing to rebuild from: done.
        if (attr.ok() || attr.status().err() == ESTALE || attr.status().err() == ENOENT)
          (void)store_->DegradedDone(d);
        continue;
      }
      auto h = health.find(d.target);
      if (h == health.end() || !h->second.up || h->second.retired) {
        waiting_on.insert(d.target);
        continue;
      }
      {
        std::lock_guard l(mu_);
        auto b = backoff_.find({d.target, d.ino});
        if (b != backoff_.end() && now < b->second.first) continue;
      }
      Work w{d, *attr, idx};
      estimate += EstimateTargetBytes(FromProto(attr->layout()), uint32_t(idx), attr->size());
      ready.push_back(std::move(w));
    }
  }
  {
    std::lock_guard l(mu_);
    if (!ready.empty()) {
      if (!pass_active_) {
        pass_active_ = true;
        pass_start_ = Clock::now();
        files_done_ = 0;
        bytes_done_ = 0;
        files_total_ = ready.size();
        bytes_total_ = estimate;
        LOG_INFO("rebuild pass: {} (file, target) pair(s) to resync, about {}", ready.size(),
                 FormatSize(estimate));
      } else {
        files_total_ = files_done_ + ready.size();
        bytes_total_ = bytes_done_ + estimate;
      }
    } else if (!waiting_on.empty()) {
      std::string ids;
      for (uint32_t t : waiting_on) ids += (ids.empty() ? "" : ",") + std::to_string(t);
      detail_ = "waiting for target(s) " + ids + " to return or be retired";
    }
  }
  if (!ready.empty()) {
    Status s = EnsureRepairer();
    if (!s.ok()) {
      std::lock_guard l(mu_);
      errors_++;
      last_error_ = "cannot create a Repairer: " + s.ToString();
      detail_ = last_error_;
      LOG_ERROR("rebuild: {}", last_error_);
      for (const auto& w : ready) backoff_[{w.item.target, w.item.ino}] = {Clock::now() + std::chrono::seconds(5), 1};
      return;
    }
  }
  for (const auto& w : ready) {
    {
      std::lock_guard l(mu_);
      if (stop_) return;
      detail_ = "resyncing inode " + std::to_string(w.item.ino) + " on target " + std::to_string(w.item.target) +
                " (" + std::to_string(files_done_ + 1) + " of " + std::to_string(files_total_) + ")";
    }
    client::RepairStats stats;
    Layout l = FromProto(w.attr.layout());
    Status s = repairer_->ResyncTarget(w.item.ino, l, uint32_t(w.index), w.attr.size(), &stats,
                                       [this](uint64_t b) { return Pace(b); });
    // Under mu_: a status that sees the record gone also sees it counted done.
    std::lock_guard l2(mu_);
    if (s.ok()) s = store_->DegradedDone(w.item);
    if (s.ok()) {
      files_done_++;
      backoff_.erase({w.item.target, w.item.ino});
      if (stats.units_repaired)
        LOG_INFO("resynced inode {} on target {}: {} unit(s) rewritten, {} read", w.item.ino, w.item.target,
                 stats.units_repaired, FormatSize(stats.bytes_read));
      continue;
    }
    if (s.err() == ECANCELED && stop_) return;
    std::string what = "resync inode " + std::to_string(w.item.ino) + " on target " +
                       std::to_string(w.item.target) + ": " + s.ToString();
    if (s.IsRetryable()) {
      // The target (or a source) stopped answering before the heartbeat
      // timeout marked it down: it waits like any down target, not an error.
      detail_ = "waiting: " + what;
      LOG_INFO("rebuild: {} (will retry)", what);
    } else {
      errors_++;
      last_error_ = what;
      LOG_ERROR("rebuild: {}", last_error_);
    }
    auto& b = backoff_[{w.item.target, w.item.ino}];
    b.second = std::min(b.second + 1, 6);
    b.first = Clock::now() + std::chrono::seconds(2 << b.second);
  }
  std::lock_guard l(mu_);
  if (store_->Counters().degraded == 0 && pass_active_) {
    pass_active_ = false;
    pass_end_ = Clock::now();
    detail_.clear();
    bytes_total_ = std::max(bytes_total_, bytes_done_.load());  // the estimate was low
    auto secs = std::chrono::duration<double>(Clock::now() - pass_start_).count();
    LOG_INFO("rebuild pass done: {} file(s), {} in {:.1f} s", files_done_, FormatSize(bytes_done_.load()), secs);
  }
}

// ---------------------------------------------------------------- status

std::map<uint32_t, uint64_t> RebuildManager::ReferencedDown(const std::vector<uint32_t>& down) {
  std::lock_guard l(scan_mu_);
  if (refs_valid_ && refs_down_ == down) return refs_;
  std::map<uint32_t, uint64_t> refs;
  std::set<uint32_t> want(down.begin(), down.end());
  uint64_t after = 0;
  while (!want.empty()) {
    auto files = store_->ScanFiles(after, 4096);
    if (!files.ok()) {
      LOG_ERROR("scan layouts: {}", files.status().ToString());
      return refs;  // not cached: tried again next time
    }
    if (files->empty()) break;
    after = files->back().ino();
    for (const auto& a : *files)
      for (uint32_t t : a.layout().targets())
        if (want.count(t)) refs[t]++;
  }
  refs_valid_ = true;
  refs_down_ = down;
  refs_ = refs;
  return refs;
}

pb::RebuildStatusResponse RebuildManager::GetStatus() {
  pb::RebuildStatusResponse r;
  std::vector<uint32_t> down;
  for (const auto& h : registry_->Health())
    if (!h.up && !h.retired) down.push_back(h.id);
  auto refs = ReferencedDown(down);
  uint64_t on_down = 0;
  for (auto& [t, n] : refs) on_down += n;
  uint64_t pending = store_->Counters().degraded;
  bool running = pending > 0 || on_down > 0;
  std::lock_guard l(mu_);
  r.set_state(running ? "running" : "idle");
  for (uint32_t t : down) r.add_down_targets(t);
  r.set_pending_items(pending);
  r.set_errors(errors_);
  r.set_last_error(last_error_);
  r.set_files_total(files_total_);
  r.set_files_done(files_done_);
  r.set_bytes_total(bytes_total_);
  uint64_t done = bytes_done_.load();
  r.set_bytes_done(done);
  double rate = 0;
  if (pass_start_ != Clock::time_point{}) {
    // The running pass's average so far, or the last pass's.
    double secs = std::chrono::duration<double>((pass_active_ ? Clock::now() : pass_end_) - pass_start_).count();
    if (secs > 0.5 || (!pass_active_ && secs > 0)) rate = double(done) / secs;
  }
  r.set_rate_bytes_per_s(rate);
  r.set_eta_s(!pass_active_ ? 0
              : rate > 0 && bytes_total_ >= done ? int64_t(double(bytes_total_ - done) / rate)
                                                 : -1);
  std::string detail;
  if (!running) {
    detail = "every stripe has full redundancy";
    for (auto& [t, n] : lost_)
      detail += "; " + std::to_string(n) + " file(s) without parity lost their units on retired target " +
                std::to_string(t);
  } else {
    detail = detail_;
    for (auto& [t, n] : refs) {
      std::string s = "target " + std::to_string(t) + " is down and holds units of " + std::to_string(n) +
                      " file(s)";
      if (opts_.rebuild_after.count() > 0)
        s += " (retired automatically after " + std::to_string(opts_.rebuild_after.count()) + " s down, or `cfs rebuild`)";
      else
        s += " (automatic rebuild is off: `cfs rebuild` retires it)";
      detail += (detail.empty() ? "" : "; ") + s;
    }
    for (auto& [t, n] : no_spare_)
      detail += (detail.empty() ? "" : "; ") + ("no spare target for " + std::to_string(n) +
                                                " file(s) of target " + std::to_string(t));
  }
  r.set_detail(detail);
  return r;
}

}  // namespace cfs::meta
