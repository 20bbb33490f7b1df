// `cfs rebuild [--target ID]` and `cfs rebuild status [--json] [--watch]`:
// bring redundancy back after S-worker loss (docs/erasure-coding.md,
// "Redundancy management"), and watch it happen.
#include <unistd.h>

#include <iostream>
#include <thread>

#include "cli_common.h"
#include "common/layout.h"
#include "meta_rpc.h"
#include "table.h"

namespace cfs::tools {

namespace {

struct RebuildFlags {
  ClusterFlags cluster;
  uint32_t target = 0;
  bool watch = false;
};

nlohmann::json RebuildJson(const pb::RebuildStatusResponse& r) {
  nlohmann::json down = nlohmann::json::array();
  for (uint32_t t : r.down_targets()) down.push_back(t);
  return {{"state", r.state()},
          {"detail", r.detail()},
          {"files_total", r.files_total()},
          {"files_done", r.files_done()},
          {"bytes_total", r.bytes_total()},
          {"bytes_done", r.bytes_done()},
          {"rate_bytes_per_s", r.rate_bytes_per_s()},
          {"eta_s", r.eta_s()},
          {"down_targets", down},
          {"pending_items", r.pending_items()},
          {"errors", r.errors()},
          {"last_error", r.last_error()}};
}

// "[#######.....] 58%  3.2 GiB/5.5 GiB  210 MiB/s  ETA 0:11"
std::string RebuildLine(const pb::RebuildStatusResponse& r) {
  // Idle with nothing moved in this pass: full redundancy, a full bar.
  if (r.state() == "idle" && r.bytes_total() == 0) return ProgressBar(1, 1) + "  full redundancy";
  return ProgressBar(r.bytes_done(), r.bytes_total()) + "  " + FormatSize(r.bytes_done()) + "/" +
         FormatSize(r.bytes_total()) + "  " + FormatSize(uint64_t(r.rate_bytes_per_s())) + "/s  ETA " +
         FormatEta(r.eta_s());
}

void PrintRebuild(const pb::RebuildStatusResponse& r) {
  KeyValueList kv;
  kv.Add("state", r.state());
  kv.Add("detail", r.detail().empty() ? "-" : r.detail());
  std::string down;
  for (uint32_t t : r.down_targets()) down += (down.empty() ? "" : ", ") + std::to_string(t);
  kv.Add("down targets", down.empty() ? "none" : down);
  kv.Add("files", std::to_string(r.files_done()) + " of " + std::to_string(r.files_total()) +
                      " resynced in this pass; " + std::to_string(r.pending_items()) + " (file, target) pending");
  kv.Add("errors", std::to_string(r.errors()) + (r.last_error().empty() ? "" : " (last: " + r.last_error() + ")"));
  std::cout << RebuildLine(r) << "\n" << kv.ToString();
}

Result<pb::RebuildStatusResponse> QueryRebuild(client::MetaClient* mc) {
  pb::RebuildStatusResponse r;
  CFS_RETURN_IF_ERROR(mc->Call(pb::REBUILD_STATUS, pb::Empty(), &r));
  return r;
}

int RunRebuildStart(const RebuildFlags& f) {
  int rc = kExitOk;
  auto mc = MetaClientOrReport(f.cluster, &rc);
  if (!mc) return rc;
  pb::RebuildStartRequest req;
  req.set_target_id(f.target);
  pb::Empty e;
  if (Status s = mc->Call(pb::REBUILD_START, req, &e); !s.ok()) return Fail("rebuild", s);
  auto st = QueryRebuild(mc.get());
  if (f.cluster.json) {
    PrintJson(st.ok() ? RebuildJson(*st) : nlohmann::json{{"started", true}});
    return kExitOk;
  }
  std::cout << "rebuild started for "
            << (f.target ? "target " + std::to_string(f.target) : std::string("every down target"))
            << "; follow it with `cfs rebuild status --watch`\n";
  if (st.ok()) std::cout << "state: " << st->state() << " - " << st->detail() << "\n";
  return kExitOk;
}

int RunRebuildStatus(const RebuildFlags& f) {
  int rc = kExitOk;
  auto mc = MetaClientOrReport(f.cluster, &rc);
  if (!mc) return rc;
  if (!f.watch) {
    auto st = QueryRebuild(mc.get());
    if (!st.ok()) return Fail("rebuild status", st.status());
    if (f.cluster.json) PrintJson(RebuildJson(*st));
    else PrintRebuild(*st);
    return kExitOk;
  }
  // --watch: one line per second (rewritten in place on a terminal) until idle.
  const bool tty = isatty(STDOUT_FILENO);
  for (;;) {
    auto st = QueryRebuild(mc.get());
    if (!st.ok()) return Fail("rebuild status", st.status());
    if (f.cluster.json) {
      std::cout << RebuildJson(*st).dump() << std::endl;
    } else {
      std::string line = RebuildLine(*st) + "  " + st->state() + "  pending " + std::to_string(st->pending_items());
      if (tty) std::cout << "\r\033[K" << line << std::flush;
      else std::cout << line << std::endl;
    }
    if (st->state() != "running") {
      if (!f.cluster.json) {
        if (tty) std::cout << "\n";
        std::cout << st->detail() << "\n";
      }
      return kExitOk;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace

void AddRebuildCommand(CLI::App& app, Action* action) {
  auto f = std::make_shared<RebuildFlags>();
  auto* cmd = app.add_subcommand(
      "rebuild",
      "retire down S-worker targets and rebuild their units on spares (and resync returning ones); "
      "`cfs rebuild status` shows progress");
  cmd->add_option("--target", f->target, "only this (down) target id; default: every down target")
      ->type_name("ID")
      ->check(CLI::Range(1u, 0xffffffffu));
  AddClusterFlags(cmd, &f->cluster);
  auto sf = std::make_shared<RebuildFlags>();
  auto* st = cmd->add_subcommand("status", "rebuild progress: a bar, rate, ETA, state (running|idle), down targets");
  st->add_flag("--watch", sf->watch, "refresh every second until the state is idle");
  AddClusterFlags(st, &sf->cluster);
  st->callback([sf, action] { *action = [sf] { return RunRebuildStatus(*sf); }; });
  cmd->callback([f, st, action] {
    if (st->parsed()) return;
    *action = [f] { return RunRebuildStart(*f); };
  });
}

}  // namespace cfs::tools
