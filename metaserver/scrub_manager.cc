#include "scrub_manager.h"

#include <ctime>

#include "common/layout.h"
#include "common/logging.h"
#include "repair_util.h"

namespace cfs::meta {

ScrubManager::ScrubManager(NamespaceStore* store, RepairerFactory factory, const ScrubOptions& opts)
    : store_(store), factory_(std::move(factory)), opts_(opts) {
  status_.set_state("idle");
}

ScrubManager::~ScrubManager() { Stop(); }

void ScrubManager::Start(const std::string& meta_addr) {
  meta_addr_ = meta_addr;
  if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
}

void ScrubManager::Stop() {
  {
    std::lock_guard l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status ScrubManager::StartPass(uint64_t rate) {
  {
    std::lock_guard l(mu_);
    // While a pass runs, one more is queued: it sees everything written up to now.
    requested_ = true;
    requested_rate_ = rate;
    // Visible at once, so that a caller polling for "idle" waits for this pass.
    status_.set_state("running");
  }
  cv_.notify_all();
  return Status::OK();
}

pb::ScrubStatusResponse ScrubManager::GetStatus() {
  std::lock_guard l(mu_);
  pb::ScrubStatusResponse r = status_;
  if (running_) {
    double secs = std::chrono::duration<double>(Clock::now() - pass_start_).count();
    if (secs > 0.5) r.set_rate_bytes_per_s(double(r.bytes_checked()) / secs);
  }
  return r;
}

void ScrubManager::Run() {
  auto next_background = Clock::now() + opts_.interval;
  std::unique_lock l(mu_);
  while (!stop_) {
    auto wake = opts_.interval.count() > 0 ? next_background : Clock::now() + std::chrono::hours(24);
    cv_.wait_until(l, wake, [this] { return stop_ || requested_; });
    if (stop_) break;
    bool background = !requested_;
    if (background && (opts_.interval.count() == 0 || Clock::now() < next_background)) continue;
    uint64_t rate = requested_ && requested_rate_ ? requested_rate_ : opts_.rate_bytes_per_s;
    requested_ = false;
    running_ = true;
    l.unlock();
    LOG_INFO("scrub pass starting ({}), rate {}", background ? "background" : "requested",
             rate ? FormatSize(rate) + "/s" : std::string("unthrottled"));
    Pass(rate);
    l.lock();
    running_ = false;
    status_.set_state(requested_ ? "running" : "idle");
    next_background = Clock::now() + opts_.interval;
  }
}

bool ScrubManager::Pace(uint64_t bytes, uint64_t rate) {
  std::unique_lock l(mu_);
  status_.set_bytes_checked(status_.bytes_checked() + bytes);
  if (stop_) return false;
  if (rate == 0) return true;
  cv_.wait_until(l, pacer_.Admit(bytes, rate), [this] { return stop_; });
  return !stop_;
}

void ScrubManager::Pass(uint64_t rate) {
  uint64_t passes;
  {
    std::lock_guard l(mu_);
    passes = status_.passes();
    status_.Clear();
    status_.set_state("running");
    status_.set_passes(passes);
    status_.set_started_unix(time(nullptr));
    pass_start_ = Clock::now();
  }
  // Count the work first, for the progress shown.
  uint64_t total = 0, after = 0;
  for (;;) {
    auto files = store_->ScanFiles(after, 4096);
    if (!files.ok() || files->empty()) break;
    after = files->back().ino();
    for (const auto& a : *files)
      if (a.layout().m() > 0) total++;
  }
  {
    std::lock_guard l(mu_);
    status_.set_files_total(total);
  }
  Status failed;
  if (total > 0 && !repairer_) {
    auto r = factory_ ? factory_(meta_addr_) : Result<std::unique_ptr<client::Repairer>>(
                                                   Status::NotSupported("no Repairer factory configured"));
    if (r.ok()) repairer_ = std::move(r).value();
    else failed = r.status();
  }
  client::RepairStats sum;
  uint64_t done = 0, file_errors = 0;
  after = 0;
  while (failed.ok()) {
    auto files = store_->ScanFiles(after, 512);
    if (!files.ok()) {
      failed = files.status();
      break;
    }
    if (files->empty()) break;
    after = files->back().ino();
    for (const auto& a : *files) {
      if (a.layout().m() == 0) continue;
      {
        std::lock_guard l(mu_);
        if (stop_) return;
      }
      client::RepairStats st;
      Status s = repairer_->Scrub(a.ino(), FromProto(a.layout()), a.size(), &st,
                                  [this, rate](uint64_t b) { return Pace(b, rate); });
      if (s.err() == ECANCELED) return;
      if (!s.ok() && s.err() != ESTALE && s.err() != ENOENT) {
        file_errors++;
        LOG_ERROR("scrub inode {}: {}", a.ino(), s.ToString());
        std::lock_guard l(mu_);
        status_.set_errors(file_errors);
        status_.set_last_error("inode " + std::to_string(a.ino()) + ": " + s.ToString());
      }
      if (st.checksum_errors || st.parity_mismatches || st.units_repaired || st.unrepairable)
        LOG_WARN("scrub inode {}: {} checksum error(s), {} parity mismatch(es), {} unit(s) repaired, "
                 "{} unrepairable stripe(s)",
                 a.ino(), st.checksum_errors, st.parity_mismatches, st.units_repaired, st.unrepairable);
      sum.stripes_checked += st.stripes_checked;
      sum.checksum_errors += st.checksum_errors;
      sum.parity_mismatches += st.parity_mismatches;
      sum.units_repaired += st.units_repaired;
      sum.unrepairable += st.unrepairable;
      done++;
      std::lock_guard l(mu_);
      status_.set_files_done(done);
      status_.set_stripes_checked(sum.stripes_checked);
      status_.set_checksum_errors(sum.checksum_errors);
      status_.set_parity_mismatches(sum.parity_mismatches);
      status_.set_units_repaired(sum.units_repaired);
      status_.set_unrepairable(sum.unrepairable);
    }
  }
  std::lock_guard l(mu_);
  status_.set_finished_unix(time(nullptr));
  status_.set_passes(passes + 1);
  double secs = std::chrono::duration<double>(Clock::now() - pass_start_).count();
  if (secs > 0) status_.set_rate_bytes_per_s(double(status_.bytes_checked()) / secs);
  if (!failed.ok()) {
    LOG_ERROR("scrub pass failed: {}", failed.ToString());
    status_.set_errors(status_.errors() + 1);
    status_.set_last_error(failed.ToString());
  }
  LOG_INFO("scrub pass done in {:.1f} s: {} file(s), {} stripe(s), {} checked; found {} checksum "
           "error(s), {} parity mismatch(es); repaired {} unit(s); {} unrepairable stripe(s); {} "
           "file(s) failed",
           secs, done, sum.stripes_checked, FormatSize(status_.bytes_checked()), sum.checksum_errors,
           sum.parity_mismatches, sum.units_repaired, sum.unrepairable, file_errors);
}

}  // namespace cfs::meta
