// `cfs getstripe PATH` and `cfs setstripe --count K [--parity M] [--unit SIZE] DIR`.
#include <sys/stat.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <set>

#include "cli_common.h"
#include "cluster_json.h"
#include "common/layout.h"
#include "table.h"

namespace cfs::tools {

struct GetstripeFlags {
  ClusterFlags cluster;
  std::string path;
};

static int RunGetstripe(const GetstripeFlags& f) {
  int rc = kExitOk;
  std::string cfs_path;
  auto c = ConnectOrReport(f.cluster, f.path, &cfs_path, &rc);
  if (!c) return rc;
  auto attr = c->Resolve(cfs_path);
  if (!attr.ok()) return Fail(f.path, attr.status());
  bool is_dir = S_ISDIR(attr->mode());
  if (!is_dir && !S_ISREG(attr->mode()))
    return Fail(f.path, Status::Invalid("not a regular file or directory: has no layout"));
  pb::Layout layout = attr->layout();
  bool inherited = false;
  if (is_dir && layout.unit() == 0) {
    // No default of its own: new files get the cluster default.
    auto st = c->ClusterStatus();
    if (!st.ok()) return Fail("status", st.status());
    layout = st->default_layout();
    inherited = true;
  }
  if (f.cluster.json) {
    nlohmann::json j{{"path", cfs_path},
                     {"ino", attr->ino()},
                     {"type", is_dir ? "directory" : "file"},
                     {"layout", LayoutJson(layout)}};
    if (is_dir) j["inherited"] = inherited;
    PrintJson(j);
    return kExitOk;
  }
  KeyValueList kv;
  kv.Add("path", cfs_path + (is_dir ? " (directory)" : ""));
  kv.Add("layout", std::to_string(layout.k()) + "+" + std::to_string(layout.m()) +
                       (layout.m() ? " (survives the loss of any " + std::to_string(layout.m()) + " target" +
                                         (layout.m() > 1 ? "s" : "") + ")"
                                   : " (no parity)"));
  kv.Add("stripe unit", FormatSize(layout.unit()));
  kv.Add("data units (k)", std::to_string(layout.k()));
  kv.Add("parity units (m)", std::to_string(layout.m()));
  if (is_dir) {
    kv.Add("applies to", inherited ? "new files here (cluster default, none set on this directory)"
                                   : "new files created in this directory");
    std::cout << kv.ToString();
    return kExitOk;
  }
  std::set<uint32_t> distinct(layout.targets().begin(), layout.targets().end());
  kv.Add("targets", std::to_string(layout.targets_size()) + " (" + std::to_string(distinct.size()) +
                        " distinct)");
  std::cout << kv.ToString();
  // Which S-worker holds each target, when the map is at hand.
  std::map<uint32_t, std::string> where;
  if (auto map = c->GetClusterMap(false); map.ok()) {
    std::map<uint32_t, std::string> addr;
    for (const auto& w : map->workers()) addr[w.id()] = w.host() + ":" + std::to_string(w.port());
    for (const auto& t : map->targets())
      where[t.id()] = "worker " + std::to_string(t.worker_id()) + " " + addr[t.worker_id()] +
                      (t.retired() ? " RETIRED" : t.up() ? "" : " DOWN");
  }
  Table tab({"INDEX", "TARGET", "WORKER", "UNITS"});
  tab.AlignRight(0);
  tab.AlignRight(1);
  const uint32_t width = layout.k() + layout.m();
  for (int i = 0; i < layout.targets_size(); i++) {
    // With n == k+m, the target at index i holds parity in the stripes s where (i - s) mod n >= k.
    std::string units = layout.m() == 0 ? "data"
                        : uint32_t(layout.targets_size()) == width ? "data+parity (rotating)"
                                                                   : "data+parity (rotating window)";
    tab.AddRow({std::to_string(i), std::to_string(layout.targets(i)), where[layout.targets(i)], units});
  }
  std::cout << "\n" << tab.ToString();
  return kExitOk;
}

struct SetstripeFlags {
  ClusterFlags cluster;
  std::string unit;
  uint32_t count = 0;
  uint32_t parity = 0;
  std::string dir;
};

static int RunSetstripe(const SetstripeFlags& f) {
  Layout shape;
  shape.unit = kDefaultStripeUnit;
  if (!f.unit.empty()) {
    auto unit = ParseSize(f.unit);
    if (!unit.ok()) return UsageError("--unit: " + unit.status().message());
    shape.unit = *unit > UINT32_MAX ? 0 : static_cast<uint32_t>(*unit);
  }
  shape.k = f.count;
  shape.m = f.parity;
  if (Status s = shape.ValidateShape(); !s.ok()) return UsageError(s.message());
  int rc = kExitOk;
  std::string cfs_path;
  auto c = ConnectOrReport(f.cluster, f.dir, &cfs_path, &rc);
  if (!c) return rc;
  if (f.unit.empty()) {
    // No --unit: the cluster's default unit.
    auto st = c->ClusterStatus();
    if (!st.ok()) return Fail("status", st.status());
    if (st->default_layout().unit()) shape.unit = st->default_layout().unit();
  }
  auto attr = c->Resolve(cfs_path);
  if (!attr.ok()) return Fail(f.dir, attr.status());
  if (!S_ISDIR(attr->mode()))
    return Fail(f.dir, Status(ENOTDIR, "setstripe sets the default layout of a directory; files "
                                       "keep the layout they were created with"));
  client::LayoutHint hint{shape.unit, shape.k, shape.m};
  if (Status s = c->SetDirLayout(attr->ino(), hint); !s.ok()) return Fail("setstripe " + f.dir, s);
  // Placement needs k+m up targets when a file is created: say so now.
  if (auto map = c->GetClusterMap(false); map.ok()) {
    uint32_t up = 0;
    for (const auto& t : map->targets()) up += t.up() && !t.retired();
    if (up < shape.k + shape.m)
      std::fprintf(stderr, "cfs: warning: %u+%u needs %u targets up, only %u are: creating files in %s will fail with ENOSPC\n",
                   shape.k, shape.m, shape.k + shape.m, up, cfs_path.c_str());
  }
  if (f.cluster.json) {
    pb::Layout l;
    l.set_unit(shape.unit);
    l.set_k(shape.k);
    l.set_m(shape.m);
    PrintJson({{"path", cfs_path}, {"ino", attr->ino()}, {"layout", LayoutJson(l)}});
  } else {
    std::cout << "new files in " << cfs_path << " get " << shape.k << "+" << shape.m
              << " unit=" << FormatSize(shape.unit) << "\n";
  }
  return kExitOk;
}

void AddGetstripeCommand(CLI::App& app, Action* action) {
  auto f = std::make_shared<GetstripeFlags>();
  auto* cmd = app.add_subcommand(
      "getstripe", "show the layout of a file (unit, k, m, targets) or the default of a directory");
  cmd->add_option("PATH", f->path, "a path on a cfs mount, or an absolute path inside CFS with --cluster")
      ->required();
  AddClusterFlags(cmd, &f->cluster);
  cmd->callback([f, action] { *action = [f] { return RunGetstripe(*f); }; });
}

void AddSetstripeCommand(CLI::App& app, Action* action) {
  auto f = std::make_shared<SetstripeFlags>();
  auto* cmd = app.add_subcommand("setstripe", "set the default layout for new files in a directory");
  cmd->add_option("--unit", f->unit, "stripe unit: power of two, 64K..64M (e.g. 1M); default: the cluster's")
      ->type_name("SIZE");
  cmd->add_option("--count", f->count, "data units per stripe (k), 1..16")->required()->type_name("K");
  cmd->add_option("--parity", f->parity,
                  "parity units per stripe (m), 0..4: files survive the loss of any m S-workers "
                  "(needs k+m targets up)")
      ->type_name("M")
      ->capture_default_str();
  cmd->add_option("DIR", f->dir, "a directory on a cfs mount, or an absolute path inside CFS with --cluster")
      ->required();
  AddClusterFlags(cmd, &f->cluster);
  cmd->callback([f, action] { *action = [f] { return RunSetstripe(*f); }; });
}

}  // namespace cfs::tools
