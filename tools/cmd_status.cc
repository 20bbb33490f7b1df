// `cfs status`: one screen about the whole cluster.
#include <iostream>
#include <map>

#include "cli_common.h"
#include "cluster_json.h"
#include "common/layout.h"
#include "data_paths.h"
#include "meta_rpc.h"
#include "table.h"

namespace cfs::tools {

static int RunStatus(const ClusterFlags& f) {
  int rc = kExitOk;
  auto c = ConnectOrReport(f, "", nullptr, &rc);
  if (!c) return rc;
  auto st = c->ClusterStatus();
  if (!st.ok()) return Fail("status", st.status());
  const pb::ClusterMap& map = st->map();
  int wup = 0, wdown = 0, tup = 0, tdown = 0, tretired = 0;
  uint64_t cap = 0, free = 0;
  for (const auto& w : map.workers()) (w.up() ? wup : wdown)++;
  for (const auto& t : map.targets()) {
    if (t.retired()) {
      tretired++;
      continue;
    }
    (t.up() ? tup : tdown)++;
    if (t.up()) {
      cap += t.capacity();
      free += t.free();
    }
  }
  uint64_t used = cap > free ? cap - free : 0;
  // Redundancy: from REBUILD_STATUS (an M-worker without it leaves these out).
  pb::RebuildStatusResponse rb;
  bool have_rb = false;
  if (auto mc = MetaClientOrReport(f, &rc); mc) have_rb = mc->Call(pb::REBUILD_STATUS, pb::Empty(), &rb).ok();
  rc = kExitOk;
  // Per S-worker: what it serves and what this client reaches it over.
  auto paths = ProbeDataPaths(*c, map);
  const std::string transport = DataTransport(f);
  auto ids = [&](bool want_retired) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& t : map.targets())
      if (want_retired ? t.retired() : (!t.up() && !t.retired())) a.push_back(t.id());
    return a;
  };
  if (f.json) {
    nlohmann::json j{{"epoch", map.epoch()},
                     {"version", st->version()},
                     {"uptime_s", st->uptime_s()},
                     {"workers", {{"total", map.workers_size()}, {"up", wup}, {"down", wdown}}},
                     {"targets", {{"total", map.targets_size()}, {"up", tup}, {"down", tdown}, {"retired", tretired},
                                  {"down_ids", ids(false)}, {"retired_ids", ids(true)}}},
                     {"capacity", cap},
                     {"used", used},
                     {"free", free},
                     {"inodes", st->inodes()},
                     {"files", st->files()},
                     {"directories", st->directories()},
                     {"pending_deletes", st->pending_deletes()},
                     {"default_layout", LayoutJson(st->default_layout())}};
    j["transport"] = transport;
    j["data_paths"] = nlohmann::json::array();
    for (const auto& w : map.workers()) {
      const DataPath& p = paths[w.id()];
      j["data_paths"].push_back({{"id", w.id()},
                                 {"address", w.host() + ":" + std::to_string(w.port())},
                                 {"up", w.up()},
                                 {"serves", p.serves},
                                 {"reached_over", p.reached},
                                 {"error", p.error}});
    }
    if (have_rb)
      j["rebuild"] = {{"state", rb.state()}, {"detail", rb.detail()}, {"pending_items", rb.pending_items()},
                      {"errors", rb.errors()}};
    PrintJson(j);
    return kExitOk;
  }
  KeyValueList kv;
  kv.Add("cluster epoch", std::to_string(map.epoch()));
  kv.Add("M-worker", "version " + (st->version().empty() ? std::string("?") : st->version()) +
                         ", up " + FormatDuration(st->uptime_s()));
  kv.Add("S-workers", std::to_string(wup) + " up, " + std::to_string(wdown) + " down");
  auto list = [](const nlohmann::json& a) {
    std::string s;
    for (const auto& x : a) s += (s.empty() ? "" : ",") + std::to_string(x.get<uint32_t>());
    return s;
  };
  kv.Add("targets", std::to_string(tup) + " up, " + std::to_string(tdown) + " down" +
                        (tdown ? " (" + list(ids(false)) + ")" : "") + ", " + std::to_string(tretired) +
                        " retired" + (tretired ? " (" + list(ids(true)) + ")" : ""));
  if (have_rb)
    kv.Add("redundancy", rb.state() == "running" ? "rebuild running: " + rb.detail() +
                                                       " (`cfs rebuild status`)"
                                                 : rb.detail());
  kv.Add("capacity", FormatSize(cap) + " total, " + FormatSize(used) + " used, " +
                         FormatSize(free) + " free (" + FormatPercent(used, cap) + " used)");
  kv.Add("inodes", std::to_string(st->inodes()) + " (" + std::to_string(st->files()) + " files, " +
                       std::to_string(st->directories()) + " directories)");
  kv.Add("pending deletes", std::to_string(st->pending_deletes()));
  kv.Add("default layout", LayoutShape(st->default_layout()));
  std::map<std::string, int> reached;
  for (const auto& [id, p] : paths) reached[p.reached.empty() ? "not reached" : "over " + p.reached]++;
  std::string summary;
  for (const auto& [how, n] : reached) summary += (summary.empty() ? "" : ", ") + std::to_string(n) + " " + how;
  kv.Add("data transport", transport + " (this client); S-workers: " + (summary.empty() ? "none" : summary));
  std::cout << kv.ToString();
  if (map.workers_size() > 0) {
    Table t({"S-WORKER", "ADDRESS", "STATE", "DATA PATH"});
    t.AlignRight(0);
    for (const auto& w : map.workers())
      t.AddRow({std::to_string(w.id()), w.host() + ":" + std::to_string(w.port()), w.up() ? "up" : "DOWN",
                paths[w.id()].Describe()});
    std::cout << "\n" << t.ToString();
  }
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
