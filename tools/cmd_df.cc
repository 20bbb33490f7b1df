// `cfs df`: capacity, used and free space per target and in total.
#include <iostream>
#include <map>

#include "cli_common.h"
#include "cluster_json.h"
#include "common/layout.h"
#include "table.h"

namespace cfs::tools {

static int RunDf(const ClusterFlags& f) {
  int rc = kExitOk;
  auto c = ConnectOrReport(f, "", nullptr, &rc);
  if (!c) return rc;
  auto map = c->GetClusterMap(true);
  if (!map.ok()) return Fail("df", map.status());
  std::map<uint32_t, std::string> addr;
  for (const auto& w : map->workers()) addr[w.id()] = w.host() + ":" + std::to_string(w.port());
  uint64_t cap = 0, free = 0;
  for (const auto& t : map->targets()) {
    if (!t.up()) continue;
    cap += t.capacity();
    free += t.free();
  }
  uint64_t used = cap > free ? cap - free : 0;
  if (f.json) {
    nlohmann::json j;
    j["targets"] = nlohmann::json::array();
    for (const auto& t : map->targets()) j["targets"].push_back(TargetJson(t));
    j["total"] = {{"capacity", cap}, {"used", used}, {"free", free}};
    PrintJson(j);
    return kExitOk;
  }
  Table tab({"TARGET", "WORKER", "ADDRESS", "SIZE", "USED", "AVAIL", "USE%", "STATE", "PATH"});
  for (size_t col : {0, 1, 3, 4, 5, 6}) tab.AlignRight(col);
  for (const auto& t : map->targets()) {
    uint64_t u = t.capacity() > t.free() ? t.capacity() - t.free() : 0;
    tab.AddRow({std::to_string(t.id()), std::to_string(t.worker_id()), addr[t.worker_id()],
                FormatSize(t.capacity()), FormatSize(u), FormatSize(t.free()),
                FormatPercent(u, t.capacity()), t.up() ? "up" : "DOWN", t.path()});
  }
  tab.AddRule();
  tab.AddRow({"total", "", "", FormatSize(cap), FormatSize(used), FormatSize(free),
              FormatPercent(used, cap), "", "(targets up)"});
  std::cout << tab.ToString();
  return kExitOk;
}

void AddDfCommand(CLI::App& app, Action* action) {
  auto f = std::make_shared<ClusterFlags>();
  auto* cmd = app.add_subcommand("df", "capacity, used and free space per target and in total");
  AddClusterFlags(cmd, f.get());
  cmd->callback([f, action] { *action = [f] { return RunDf(*f); }; });
}

}  // namespace cfs::tools
