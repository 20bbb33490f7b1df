// `cfs workers`: the S-workers the M-worker knows, up or down.
#include <iostream>

#include "cli_common.h"
#include "cluster_json.h"
#include "data_paths.h"
#include "table.h"

namespace cfs::tools {

static std::string Ago(int64_t ms) {
  if (ms < 0) return "never";
  if (ms < 10000) return std::to_string(ms) + "ms ago";
  return FormatDuration(ms / 1000) + " ago";
}

static int RunWorkers(const ClusterFlags& f) {
  int rc = kExitOk;
  auto c = ConnectOrReport(f, "", nullptr, &rc);
  if (!c) return rc;
  auto map = c->GetClusterMap(true);
  if (!map.ok()) return Fail("workers", map.status());
  auto paths = ProbeDataPaths(*c, *map);
  if (f.json) {
    nlohmann::json j{{"epoch", map->epoch()}, {"transport", DataTransport(f)}};
    j["workers"] = nlohmann::json::array();
    for (const auto& w : map->workers()) {
      nlohmann::json wj = WorkerJson(w);
      wj["reached_over"] = paths[w.id()].reached;
      j["workers"].push_back(wj);
    }
    PrintJson(j);
    return kExitOk;
  }
  Table tab({"ID", "ADDRESS", "STATE", "LAST HEARTBEAT", "TARGETS", "SERVES", "REACHED OVER"});
  tab.AlignRight(0);
  int up = 0;
  for (const auto& w : map->workers()) {
    std::string targets;
    for (uint32_t t : w.target_ids()) targets += (targets.empty() ? "" : ",") + std::to_string(t);
    tab.AddRow({std::to_string(w.id()), w.host() + ":" + std::to_string(w.port()),
                w.up() ? "up" : "DOWN", Ago(w.last_heartbeat_ms_ago()), targets,
                paths[w.id()].serves,
                !paths[w.id()].reached.empty() ? paths[w.id()].reached
                                               : (paths[w.id()].error.empty() ? "-" : "unreachable")});
    up += w.up();
  }
  std::cout << tab.ToString() << map->workers_size() << " workers, " << up << " up, "
            << map->workers_size() - up << " down (map epoch " << map->epoch() << ")\n";
  return kExitOk;
}

void AddWorkersCommand(CLI::App& app, Action* action) {
  auto f = std::make_shared<ClusterFlags>();
  auto* cmd = app.add_subcommand("workers", "list S-workers: id, address, up/down, last heartbeat, targets");
  AddClusterFlags(cmd, f.get());
  cmd->callback([f, action] { *action = [f] { return RunWorkers(*f); }; });
}

}  // namespace cfs::tools
