// `cfs scrub [--wait] [--rate R]` and `cfs scrub status [--json]`: verify every
// block checksum and the parity of every stripe, repairing what is wrong.
#include <unistd.h>

#include <iostream>
#include <thread>

#include "cli_common.h"
#include "common/layout.h"
#include "meta_rpc.h"
#include "table.h"

namespace cfs::tools {

namespace {

struct ScrubFlags {
  ClusterFlags cluster;
  bool wait = false;
  std::string rate;
};

nlohmann::json ScrubJson(const pb::ScrubStatusResponse& r) {
  return {{"state", r.state()},
          {"files_total", r.files_total()},
          {"files_done", r.files_done()},
          {"bytes_checked", r.bytes_checked()},
          {"stripes_checked", r.stripes_checked()},
          {"checksum_errors", r.checksum_errors()},
          {"parity_mismatches", r.parity_mismatches()},
          {"units_repaired", r.units_repaired()},
          {"unrepairable", r.unrepairable()},
          {"started_unix", r.started_unix()},
          {"finished_unix", r.finished_unix()},
          {"rate_bytes_per_s", r.rate_bytes_per_s()},
          {"passes", r.passes()},
          {"errors", r.errors()},
          {"last_error", r.last_error()}};
}

void PrintScrub(const pb::ScrubStatusResponse& r) {
  KeyValueList kv;
  kv.Add("state", r.state());
  kv.Add("passes finished", std::to_string(r.passes()));
  kv.Add("files", ProgressBar(r.files_done(), r.files_total()) + "  " + std::to_string(r.files_done()) + " of " +
                      std::to_string(r.files_total()));
  kv.Add("checked", FormatSize(r.bytes_checked()) + " in " + std::to_string(r.stripes_checked()) + " stripes, " +
                        FormatSize(uint64_t(r.rate_bytes_per_s())) + "/s");
  kv.Add("found", std::to_string(r.checksum_errors()) + " checksum error(s), " +
                      std::to_string(r.parity_mismatches()) + " parity mismatch(es)");
  kv.Add("repaired", std::to_string(r.units_repaired()) + " unit(s)");
  kv.Add("unrepairable", std::to_string(r.unrepairable()) + " stripe(s)");
  if (r.errors() || !r.last_error().empty())
    kv.Add("errors", std::to_string(r.errors()) + (r.last_error().empty() ? "" : " (last: " + r.last_error() + ")"));
  std::cout << kv.ToString();
}

Result<pb::ScrubStatusResponse> QueryScrub(client::MetaClient* mc) {
  pb::ScrubStatusResponse r;
  CFS_RETURN_IF_ERROR(mc->Call(pb::SCRUB_STATUS, pb::Empty(), &r));
  return r;
}

int RunScrub(const ScrubFlags& f) {
  uint64_t rate = 0;
  if (!f.rate.empty()) {
    auto r = ParseSize(f.rate);
    if (!r.ok()) return UsageError("--rate: " + r.status().message());
    rate = *r;
  }
  int rc = kExitOk;
  auto mc = MetaClientOrReport(f.cluster, &rc);
  if (!mc) return rc;
  auto before = QueryScrub(mc.get());
  if (!before.ok()) return Fail("scrub status", before.status());
  pb::ScrubStartRequest req;
  req.set_rate_bytes_per_s(rate);
  pb::Empty e;
  if (Status s = mc->Call(pb::SCRUB_START, req, &e); !s.ok()) return Fail("scrub", s);
  if (!f.wait) {
    if (f.cluster.json) PrintJson({{"started", true}});
    else std::cout << "scrub started; follow it with `cfs scrub status`\n";
    return kExitOk;
  }
  // A pass that was running when we asked may be the one that finishes
  // first; wait for a pass that started after the request.
  uint64_t want = before->passes() + (before->state() == "running" ? 2 : 1);
  pb::ScrubStatusResponse st;
  for (;;) {
    auto s = QueryScrub(mc.get());
    if (!s.ok()) return Fail("scrub status", s.status());
    st = *s;
    if (st.passes() >= want && st.state() == "idle") break;
    if (!f.cluster.json && isatty(STDOUT_FILENO))
      std::cout << "\r\033[K" << ProgressBar(st.files_done(), st.files_total()) << "  "
                << FormatSize(st.bytes_checked()) << " checked" << std::flush;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  if (!f.cluster.json && isatty(STDOUT_FILENO)) std::cout << "\n";
  if (f.cluster.json) PrintJson(ScrubJson(st));
  else PrintScrub(st);
  return st.unrepairable() || st.errors() ? kExitFailure : kExitOk;
}

int RunScrubStatus(const ClusterFlags& f) {
  int rc = kExitOk;
  auto mc = MetaClientOrReport(f, &rc);
  if (!mc) return rc;
  auto st = QueryScrub(mc.get());
  if (!st.ok()) return Fail("scrub status", st.status());
  if (f.json) PrintJson(ScrubJson(*st));
  else PrintScrub(*st);
  return kExitOk;
}

}  // namespace

void AddScrubCommand(CLI::App& app, Action* action) {
  auto f = std::make_shared<ScrubFlags>();
  auto* cmd = app.add_subcommand(
      "scrub", "verify every block checksum and the parity of every stripe, repair from redundancy; "
               "`cfs scrub status` shows what it found and fixed");
  cmd->add_flag("--wait", f->wait, "wait for the pass to finish and print what it found (exit 1 if "
                                   "something could not be repaired)");
  cmd->add_option("--rate", f->rate, "throttle for this pass, bytes/s (default: cfs-meta --scrub-rate)")
      ->type_name("SIZE");
  AddClusterFlags(cmd, &f->cluster);
  auto sf = std::make_shared<ClusterFlags>();
  auto* st = cmd->add_subcommand("status", "the running or last scrub pass: progress, errors found, units repaired");
  AddClusterFlags(st, sf.get());
  st->callback([sf, action] { *action = [sf] { return RunScrubStatus(*sf); }; });
  cmd->callback([f, st, action] {
    if (st->parsed()) return;
    *action = [f] { return RunScrub(*f); };
  });
}

}  // namespace cfs::tools
