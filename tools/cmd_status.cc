// `cfs status`: one screen about the whole cluster.
#include <iostream>

#include "cli_common.h"
#include "cluster_json.h"
#include "common/layout.h"
#include "table.h"

namespace cfs::tools {

static int RunStatus(const ClusterFlags& f) {
  int rc = kExitOk;
  auto c = ConnectOrReport(f, "", nullptr, &rc);
  if (!c) return rc;
  auto st = c->ClusterStatus();
  if (!st.ok()) return Fail("status", st.status());
  const pb::ClusterMap& map = st->map();
  int wup = 0, wdown = 0, tup = 0, tdown = 0;
  uint64_t cap = 0, free = 0;
  for (const auto& w : map.workers()) (w.up() ? wup : wdown)++;
  for (const auto& t : map.targets()) {
    (t.up() ? tup : tdown)++;
    if (t.up()) {
      cap += t.capacity();
      free += t.free();
    }
  }
  uint64_t used = cap > free ? cap - free : 0;
  if (f.json) {
    nlohmann::json j{{"epoch", map.epoch()},
                     {"version", st->version()},
                     {"uptime_s", st->uptime_s()},
                     {"workers", {{"total", map.workers_size()}, {"up", wup}, {"down", wdown}}},
                     {"targets", {{"total", map.targets_size()}, {"up", tup}, {"down", tdown}}},
                     {"capacity", cap},
                     {"used", used},
                     {"free", free},
                     {"inodes", st->inodes()},
                     {"files", st->files()},
                     {"directories", st->directories()},
                     {"pending_deletes", st->pending_deletes()},
                     {"default_layout", LayoutJson(st->default_layout())}};
    PrintJson(j);
    return kExitOk;
  }
  KeyValueList kv;
  kv.Add("cluster epoch", std::to_string(map.epoch()));
  kv.Add("M-worker", "version " + (st->version().empty() ? std::string("?") : st->version()) +
                         ", up " + FormatDuration(st->uptime_s()));
  kv.Add("S-workers", std::to_string(wup) + " up, " + std::to_string(wdown) + " down");
  kv.Add("targets", std::to_string(tup) + " up, " + std::to_string(tdown) + " down");
  kv.Add("capacity", FormatSize(cap) + " total, " + FormatSize(used) + " used, " +
                         FormatSize(free) + " free (" + FormatPercent(used, cap) + " used)");
  kv.Add("inodes", std::to_string(st->inodes()) + " (" + std::to_string(st->files()) + " files, " +
                       std::to_string(st->directories()) + " directories)");
  kv.Add("pending deletes", std::to_string(st->pending_deletes()));
  kv.Add("default layout", LayoutShape(st->default_layout()));
  std::cout << kv.ToString();
  if (wdown > 0) {
    std::cout << "\nworkers down:";
    for (const auto& w : map.workers())
      if (!w.up()) std::cout << " " << w.id() << " (" << w.host() << ":" << w.port() << ")";
    std::cout << "\n";
  }
  return kExitOk;
}

void AddStatusCommand(CLI::App& app, Action* action) {
  auto f = std::make_shared<ClusterFlags>();
  auto* cmd = app.add_subcommand("status", "cluster epoch, M-worker, S-workers, capacity, inodes");
  AddClusterFlags(cmd, f.get());
  cmd->callback([f, action] { *action = [f] { return RunStatus(*f); }; });
}

}  // namespace cfs::tools
