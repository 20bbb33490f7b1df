// `cfs ckpt begin|commit|latest|path|list|remove|retention`: checkpoint sets
// from the shell, for programs that only see the mount. The work is done by
// client/checkpoint.h, the code behind the C API's cfs_ckpt_* calls.
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>

#include "cli_common.h"
#include "client/checkpoint.h"
#include "cluster_locator.h"
#include "common/layout.h"
#include "table.h"

namespace cfs::tools {
namespace {

using client::Checkpoints;
using client::CkptSetInfo;

struct CkptFlags {
  ClusterFlags cluster;
  std::string arg;  // JOB/NAME or JOB
  int64_t keep = -1;  // commit --keep, retention N
};

// Where JOB/NAME arguments live: relative to the --mount directory when one
// is given (paths printed are then local paths under it), else to the CFS root.
struct Session {
  std::unique_ptr<client::Client> client;
  std::string cfs_base = "/";  // CFS path of the --mount directory
  std::string local_base;      // the --mount directory, absolute ("" without --mount)

  std::string CfsArg(const std::string& arg) const {
    return (cfs_base == "/" ? "" : cfs_base) + "/" + arg;
  }
  // A CFS path as the user should see it: under the mount when there is one.
  std::string Shown(const std::string& cfs_path) const {
    if (local_base.empty()) return cfs_path;
    std::string rest = cfs_base == "/" ? cfs_path : cfs_path.substr(cfs_base.size());
    return local_base + rest;
  }
  Checkpoints Ckpt() const { return Checkpoints(client.get(), getuid(), getgid()); }
};

// "ECOMMITTED: the checkpoint set is already committed" style name for a code.
std::string ErrName(int err) {
  if (err == client::kErrCkptCommitted) return "ECOMMITTED: the checkpoint set is already committed";
  if (err == client::kErrCkptBusy) return "ECKPTBUSY: files of the set are still open for writing";
  const char* name = strerrorname_np(err);
  const char* desc = strerrordesc_np(err);
  return std::string(name ? name : "error " + std::to_string(err)) + ": " + (desc ? desc : "unknown error");
}

int CkptFail(const std::string& cmd, const std::string& arg, const Status& st) {
  std::fprintf(stderr, "cfs: ckpt %s %s: %s (%s)\n", cmd.c_str(), arg.c_str(), st.message().c_str(),
               ErrName(st.err()).c_str());
  return kExitFailure;
}

bool Open(const CkptFlags& f, Session* s, int* rc) {
  if (!f.cluster.mount.empty()) {
    std::string rel;
    auto m = MountOfPath(f.cluster.mount, &rel);
    if (!m.ok()) {
      *rc = UsageError("--mount " + f.cluster.mount + ": " + m.status().message());
      return false;
    }
    s->cfs_base = rel;
    std::error_code ec;
    std::string abs = std::filesystem::absolute(f.cluster.mount, ec).lexically_normal().string();
    while (abs.size() > 1 && abs.back() == '/') abs.pop_back();
    s->local_base = abs;
  }
  s->client = ConnectOrReport(f.cluster, "", nullptr, rc);
  return s->client != nullptr;
}

std::string FormatTime(int64_t ns) {
  if (ns == 0) return "-";
  time_t t = static_cast<time_t>(ns / 1000000000);
  struct tm tm;
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

nlohmann::json InfoJson(const CkptSetInfo& i, const std::string& path) {
  return {{"name", i.name},   {"state", i.committed ? "committed" : "pending"},
          {"seq", i.seq},     {"commit_ns", i.commit_ns},
          {"files", i.files}, {"bytes", i.bytes},
          {"path", path}};
}

// The job's directory (CFS path) for a JOB argument, as the core normalizes it.
Result<std::string> JobPath(const Session& s, const std::string& job) {
  return client::ParseCkptJob(s.CfsArg(job));
}

int RunBegin(const CkptFlags& f) {
  Session s;
  int rc = kExitOk;
  if (!Open(f, &s, &rc)) return rc;
  auto dir = s.Ckpt().Begin(s.CfsArg(f.arg));
  if (!dir.ok()) return CkptFail("begin", f.arg, dir.status());
  if (f.cluster.json) PrintJson({{"set", f.arg}, {"dir", s.Shown(*dir)}, {"cfs_dir", *dir}});
  else std::cout << s.Shown(*dir) << "\n";
  return kExitOk;
}

int RunCommit(const CkptFlags& f) {
  Session s;
  int rc = kExitOk;
  if (!Open(f, &s, &rc)) return rc;
  Checkpoints ck = s.Ckpt();
  const std::string set = s.CfsArg(f.arg);
  if (f.keep >= 0) {
    auto parsed = client::ParseCkptSet(set);
    if (!parsed.ok()) return CkptFail("commit", f.arg, parsed.status());
    Status st = ck.SetRetention(parsed->job, static_cast<uint32_t>(f.keep));
    if (!st.ok()) return CkptFail("commit", f.arg, st);
  }
  auto t0 = std::chrono::steady_clock::now();
  auto r = ck.Commit(set);
  if (!r.ok()) return CkptFail("commit", f.arg, r.status());
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto path = ck.Path(set);
  std::string shown = path.ok() ? s.Shown(*path) : "";
  if (f.cluster.json) {
    nlohmann::json j = InfoJson(r->set, shown);
    j["keep"] = r->keep;
    j["retired"] = r->retired;
    j["seconds"] = secs;
    if (!r->retention.ok()) j["retention_error"] = r->retention.ToString();
    PrintJson(j);
  } else {
    std::printf("committed %s: seq %llu, %llu file%s, %s, in %.2f s\n", f.arg.c_str(),
                static_cast<unsigned long long>(r->set.seq), static_cast<unsigned long long>(r->set.files),
                r->set.files == 1 ? "" : "s", FormatSize(r->set.bytes).c_str(), secs);
    for (const auto& n : r->retired) std::printf("removed %s (retention: keep %u)\n", n.c_str(), r->keep);
  }
  if (!r->retention.ok())
    std::fprintf(stderr, "cfs: warning: %s is committed, but the retention did not finish: %s (the next commit retries)\n",
                 f.arg.c_str(), r->retention.ToString().c_str());
  return kExitOk;
}

int RunLatest(const CkptFlags& f) {
  Session s;
  int rc = kExitOk;
  if (!Open(f, &s, &rc)) return rc;
  auto job = JobPath(s, f.arg);
  if (!job.ok()) return CkptFail("latest", f.arg, job.status());
  auto r = s.Ckpt().Latest(*job);
  if (!r.ok()) return CkptFail("latest", f.arg, r.status());
  if (f.cluster.json) PrintJson(InfoJson(*r, s.Shown(*job + "/" + r->name)));
  else std::cout << r->name << "\n";
  return kExitOk;
}

int RunPath(const CkptFlags& f) {
  Session s;
  int rc = kExitOk;
  if (!Open(f, &s, &rc)) return rc;
  auto r = s.Ckpt().Path(s.CfsArg(f.arg));
  if (!r.ok()) return CkptFail("path", f.arg, r.status());
  if (f.cluster.json) PrintJson({{"set", f.arg}, {"path", s.Shown(*r)}, {"cfs_path", *r}});
  else std::cout << s.Shown(*r) << "\n";
  return kExitOk;
}

int RunList(const CkptFlags& f) {
  Session s;
  int rc = kExitOk;
  if (!Open(f, &s, &rc)) return rc;
  auto job = JobPath(s, f.arg);
  if (!job.ok()) return CkptFail("list", f.arg, job.status());
  auto r = s.Ckpt().List(*job);
  if (!r.ok()) return CkptFail("list", f.arg, r.status());
  auto path_of = [&](const CkptSetInfo& i) {
    return s.Shown(*job + (i.committed ? "/" : "/" + std::string(client::kCkptPendingDir) + "/") + i.name);
  };
  if (f.cluster.json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& i : *r) arr.push_back(InfoJson(i, path_of(i)));
    PrintJson(arr);
    return kExitOk;
  }
  Table t({"NAME", "STATE", "SEQ", "COMMITTED", "FILES", "BYTES"});
  t.AlignRight(2);
  t.AlignRight(4);
  t.AlignRight(5);
  for (const auto& i : *r)
    t.AddRow({i.name, i.committed ? "committed" : "pending", i.committed ? std::to_string(i.seq) : "-",
              FormatTime(i.commit_ns), std::to_string(i.files), FormatSize(i.bytes)});
  std::cout << t.ToString();
  if (r->empty()) std::cout << "(no checkpoint sets in " << f.arg << ")\n";
  return kExitOk;
}

int RunRemove(const CkptFlags& f) {
  Session s;
  int rc = kExitOk;
  if (!Open(f, &s, &rc)) return rc;
  Status st = s.Ckpt().Remove(s.CfsArg(f.arg));
  if (!st.ok()) return CkptFail("remove", f.arg, st);
  if (f.cluster.json) PrintJson({{"set", f.arg}, {"removed", true}});
  else std::cout << "removed " << f.arg << "\n";
  return kExitOk;
}

int RunRetention(const CkptFlags& f) {
  Session s;
  int rc = kExitOk;
  if (!Open(f, &s, &rc)) return rc;
  auto job = JobPath(s, f.arg);
  if (!job.ok()) return CkptFail("retention", f.arg, job.status());
  Checkpoints ck = s.Ckpt();
  if (f.keep >= 0) {
    Status st = ck.SetRetention(*job, static_cast<uint32_t>(f.keep));
    if (!st.ok()) return CkptFail("retention", f.arg, st);
  }
  auto keep = ck.GetRetention(*job);
  if (!keep.ok()) return CkptFail("retention", f.arg, keep.status());
  if (f.cluster.json) PrintJson({{"job", f.arg}, {"keep", *keep}});
  else if (*keep == 0) std::cout << f.arg << ": keep all committed sets\n";
  else std::cout << f.arg << ": keep the newest " << *keep << " committed set" << (*keep > 1 ? "s" : "") << "\n";
  return kExitOk;
}

using Runner = int (*)(const CkptFlags&);

CLI::App* AddSub(CLI::App* parent, Action* action, const std::string& name, const std::string& help,
                 const std::string& arg, const std::string& arg_help, Runner run,
                 std::shared_ptr<CkptFlags> f) {
  auto* cmd = parent->add_subcommand(name, help);
  cmd->add_option(arg, f->arg, arg_help)->required();
  AddClusterFlags(cmd, &f->cluster);
  cmd->callback([f, action, run] { *action = [f, run] { return run(*f); }; });
  return cmd;
}

constexpr char kSetHelp[] =
    "the set: JOB/NAME, JOB a directory (relative to --mount DIR, else to the CFS root; nested "
    "allowed), NAME one component not starting with '.'";
constexpr char kJobHelp[] = "the job directory (relative to --mount DIR, else to the CFS root)";

}  // namespace

void AddCkptCommand(CLI::App& app, Action* action) {
  auto* ckpt = app.add_subcommand(
      "ckpt",
      "checkpoint sets: files written by many processes that become visible as complete at once");
  ckpt->footer(
      "A set is written in JOB/.pending/NAME (printed by `begin`), then `commit` makes its files "
      "durable, writes a manifest and renames it to JOB/NAME in one atomic step: a crash never "
      "leaves a set that `latest` reports but is incomplete. See docs/checkpoints.md.\n"
      "Example:\n"
      "  dir=$(cfs ckpt begin --mount /mnt/cfs myjob/step-000100)\n"
      "  ... every rank writes its files into $dir, closes them ...\n"
      "  cfs ckpt commit --mount /mnt/cfs --keep 3 myjob/step-000100\n"
      "  cfs ckpt path --mount /mnt/cfs myjob/$(cfs ckpt latest --mount /mnt/cfs myjob)");
  ckpt->require_subcommand(1);

  AddSub(ckpt, action, "begin",
         "create the set (or join it: every rank may run it) and print the directory to write "
         "its files into (a local path with --mount, else a CFS path)",
         "JOB/NAME", kSetHelp, RunBegin, std::make_shared<CkptFlags>());

  auto cf = std::make_shared<CkptFlags>();
  cf->cluster.timeout_s = 60;  // fsync of large files: one request per file and target
  auto* commit = AddSub(ckpt, action, "commit",
                        "once every writer closed its files: make them durable, write the manifest "
                        "and publish the set atomically as JOB/NAME; then apply the retention",
                        "JOB/NAME", kSetHelp, RunCommit, cf);
  commit->add_option("--keep", cf->keep, "set the job's retention first: keep the newest N committed sets (0: all)")
      ->check(CLI::Range(int64_t{0}, int64_t{INT_MAX}))
      ->type_name("N");

  AddSub(ckpt, action, "latest",
         "print the NAME of the newest committed set of JOB (exit 1 if there is none)", "JOB",
         kJobHelp, RunLatest, std::make_shared<CkptFlags>());
  AddSub(ckpt, action, "path",
         "print the directory of a committed set (a local path with --mount); pending sets have none",
         "JOB/NAME", kSetHelp, RunPath, std::make_shared<CkptFlags>());
  AddSub(ckpt, action, "list",
         "list the sets of JOB: committed ones oldest first, then pending ones (name, state, seq, "
         "commit time, files, bytes)",
         "JOB", kJobHelp, RunList, std::make_shared<CkptFlags>());
  auto rf = std::make_shared<CkptFlags>();
  rf->cluster.timeout_s = 60;
  AddSub(ckpt, action, "remove", "delete a set, committed or pending, with all its files", "JOB/NAME",
         kSetHelp, RunRemove, rf);
  auto tf = std::make_shared<CkptFlags>();
  auto* ret = AddSub(ckpt, action, "retention",
                     "print the job's retention, or set it with N: each commit then removes the "
                     "oldest committed sets beyond the newest N (0: keep all, the default)",
                     "JOB", kJobHelp, RunRetention, tf);
  ret->add_option("N", tf->keep, "sets to keep (0: all)")->check(CLI::Range(int64_t{0}, int64_t{INT_MAX}));
}

}  // namespace cfs::tools
