// Crash atomicity of RocksNamespace: a child process (this binary re-executed)
// runs a storm of creates, mkdirs, renames, links, unlinks and rmdirs from
// several threads, reporting each operation on a pipe before the call and once
// it was acknowledged. The parent SIGKILLs it at a random moment, reopens the
// store, and checks that the namespace is consistent and that each thread's
// directory holds exactly what its acknowledged operations built (the one
// operation in flight may or may not have happened).
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "rocks_namespace.h"

namespace cfs::meta {
namespace {

constexpr int kThreads = 3;
constexpr int kPipeFd = 100;

using Model = std::map<std::string, char>;  // relative path -> 'f' or 'd'

std::string Parent(const std::string& p) {
  auto s = p.rfind('/');
  return s == std::string::npos ? "" : p.substr(0, s);
}
std::string Base(const std::string& p) {
  auto s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

// Applies one logged operation ("C p", "M p", "R a b", "U p", "D p", "L a b").
void Apply(Model* m, const std::string& op) {
  std::istringstream in(op);
  std::string kind, a, b;
  in >> kind >> a >> b;
  if (kind == "C" || kind == "L") {
    (*m)[kind == "C" ? a : b] = 'f';
  } else if (kind == "M") {
    (*m)[a] = 'd';
  } else if (kind == "U" || kind == "D") {
    m->erase(a);
  } else if (kind == "R") {
    if ((*m)[a] == 'd') {
      Model moved;
      for (auto it = m->begin(); it != m->end();) {
        if (it->first == a || it->first.rfind(a + "/", 0) == 0) {
          moved[b + it->first.substr(a.size())] = it->second;
          it = m->erase(it);
        } else {
          ++it;
        }
      }
      for (auto& kv : moved) (*m)[kv.first] = kv.second;
    } else {
      m->erase(a);
      (*m)[b] = 'f';
    }
  }
}

// ---------------------------------------------------------------- child

void Report(const std::string& line) {
  std::string l = line + "\n";
  if (write(kPipeFd, l.data(), l.size()) != ssize_t(l.size())) _exit(3);
}

Result<uint64_t> Resolve(RocksNamespace* ns, uint64_t root, const std::string& dir) {
  uint64_t ino = root;
  std::string rest = dir;
  while (!rest.empty()) {
    auto s = rest.find('/');
    std::string part = rest.substr(0, s);
    rest = s == std::string::npos ? "" : rest.substr(s + 1);
    CFS_ASSIGN_OR_RETURN(pb::Attr a, ns->Lookup(ino, part));
    ino = a.ino();
  }
  return ino;
}

void Storm(RocksNamespace* ns, int tid, uint64_t top, uint64_t seed) {
  std::mt19937_64 rng(seed * 1000 + tid);
  Model m;
  uint64_t counter = 0;
  auto pick = [&](char kind) -> std::string {
    std::vector<std::string> v;
    for (auto& [p, k] : m)
      if (k == kind) v.push_back(p);
    if (v.empty()) return "";
    return v[rng() % v.size()];
  };
  auto dirs = [&]() {
    std::vector<std::string> v{""};
    for (auto& [p, k] : m)
      if (k == 'd') v.push_back(p);
    return v;
  };
  auto join = [](const std::string& d, const std::string& n) { return d.empty() ? n : d + "/" + n; };
  for (;;) {
    int r = int(rng() % 100);
    std::string op;
    std::string file = pick('f'), dir = pick('d');
    auto ds = dirs();
    std::string somedir = ds[rng() % ds.size()];
    if (file.empty() || r < 30) {
      op = "C " + join(somedir, "f" + std::to_string(counter++));
    } else if (r < 40 && ds.size() < 6) {
      op = "M d" + std::to_string(counter++);  // directories only at the top level
    } else if (r < 60) {
      std::string to = join(somedir, "f" + std::to_string(counter++));
      if (rng() % 3 == 0) {
        std::string other = pick('f');
        // Replace an existing file, but not another link of the same inode:
        // rename(2) between two links of one inode is a no-op.
        if (!other.empty() && other != file) {
          auto pa = Resolve(ns, top, Parent(file)), po = Resolve(ns, top, Parent(other));
          if (pa.ok() && po.ok()) {
            auto ia = ns->Lookup(*pa, Base(file)), io = ns->Lookup(*po, Base(other));
            if (ia.ok() && io.ok() && ia->ino() != io->ino()) to = other;
          }
        }
      }
      op = "R " + file + " " + to;
    } else if (r < 75) {
      op = "U " + file;
    } else if (r < 85) {
      op = "L " + file + " " + join(somedir, "f" + std::to_string(counter++));
    } else if (r < 92 && !dir.empty()) {
      bool empty = true;
      for (auto& [p, k] : m)
        if (p.rfind(dir + "/", 0) == 0) empty = false;
      op = empty ? "D " + dir : "R " + dir + " d" + std::to_string(counter++);
    } else {
      continue;
    }
    std::istringstream in(op);
    std::string kind, a, b;
    in >> kind >> a >> b;
    Report("B " + std::to_string(tid) + " " + op);
    Status st;
    auto pa = Resolve(ns, top, Parent(a));
    if (!pa.ok()) {
      st = pa.status();
    } else if (kind == "C") {
      pb::CreateRequest c;
      c.set_parent(*pa);
      c.set_name(Base(a));
      c.set_mode(S_IFREG | 0644);
      c.set_exclusive(true);
      st = ns->Create(c, [](const pb::Layout*) -> Result<pb::Layout> {
                pb::Layout l;
                l.set_unit(1 << 20);
                l.set_k(1);
                l.add_targets(1);
                return l;
              }).status();
    } else if (kind == "M") {
      pb::MkdirRequest c;
      c.set_parent(*pa);
      c.set_name(Base(a));
      c.set_mode(0755);
      st = ns->Mkdir(c).status();
    } else if (kind == "U") {
      st = ns->Unlink(*pa, Base(a));
    } else if (kind == "D") {
      st = ns->Rmdir(*pa, Base(a));
    } else {
      auto pb_ = Resolve(ns, top, Parent(b));
      if (!pb_.ok()) {
        st = pb_.status();
      } else if (kind == "R") {
        pb::RenameRequest rr;
        rr.set_parent(*pa);
        rr.set_name(Base(a));
        rr.set_new_parent(*pb_);
        rr.set_new_name(Base(b));
        st = ns->Rename(rr);
      } else {
        auto src = ns->Lookup(*pa, Base(a));
        st = src.ok() ? ns->Link(src->ino(), *pb_, Base(b)).status() : src.status();
      }
    }
    if (st.ok()) {
      Apply(&m, op);
      Report("A " + std::to_string(tid));
    } else {
      Report("E " + std::to_string(tid) + " " + st.ToString());
    }
  }
}

void ChildMain(const char* db, uint64_t seed, int round) {
  alarm(60);  // never outlive a broken parent
  auto ns = RocksNamespace::Open(db, RocksOptions());
  if (!ns.ok()) _exit(2);
  std::vector<uint64_t> tops;
  for (int t = 0; t < kThreads; t++) {
    std::string name = "r" + std::to_string(round) + "t" + std::to_string(t);
    Report("B m M " + name);
    pb::MkdirRequest c;
    c.set_parent(kRootIno);
    c.set_name(name);
    c.set_mode(0755);
    auto a = (*ns)->Mkdir(c);
    if (!a.ok()) _exit(4);
    Report("A m");
    tops.push_back(a->ino());
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++)
    threads.emplace_back([&, t] { Storm(ns->get(), t, tops[t], seed); });
  for (auto& th : threads) th.join();
  _exit(0);
}

// ---------------------------------------------------------------- parent

void Walk(RocksNamespace* ns, uint64_t dir, const std::string& prefix, Model* out) {
  uint64_t cookie = 0;
  for (;;) {
    pb::ReaddirRequest r;
    r.set_ino(dir);
    r.set_cookie(cookie);
    r.set_max_entries(100);
    pb::ReaddirResponse resp;
    ASSERT_TRUE(ns->Readdir(r, &resp).ok());
    for (auto& e : resp.entries()) {
      std::string p = prefix.empty() ? e.name() : prefix + "/" + e.name();
      bool is_dir = e.type() == (S_IFDIR >> 12);
      (*out)[p] = is_dir ? 'd' : 'f';
      if (is_dir) Walk(ns, e.ino(), p, out);
      cookie = e.cookie();
    }
    if (resp.eof()) break;
  }
}

std::string Show(const Model& m) {
  std::string s;
  for (auto& [p, k] : m) s += std::string(1, k) + ":" + p + " ";
  return s;
}

TEST(MetaCrashTest, KillDuringStormLosesNothingAcknowledged) {
  char tmpl[] = "/tmp/cfs-crash-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string db = std::string(tmpl) + "/db";
  uint64_t base_seed = std::random_device{}();
  std::mt19937_64 rng(base_seed);
  size_t total_acked = 0;
  const int kRounds = 6;
  for (int round = 0; round < kRounds; round++) {
    uint64_t seed = rng();
    SCOPED_TRACE("round " + std::to_string(round) + " seed " + std::to_string(seed));
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      dup2(fds[1], kPipeFd);
      close(fds[0]);
      close(fds[1]);
      setenv("CFS_CRASH_CHILD_DB", db.c_str(), 1);
      setenv("CFS_CRASH_SEED", std::to_string(seed).c_str(), 1);
      setenv("CFS_CRASH_ROUND", std::to_string(round).c_str(), 1);
      // Re-exec ourselves: main() below sees the environment and runs the storm.
      execl("/proc/self/exe", "meta_crash_child", static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    // Read the log while the child runs; kill it at a random moment.
    std::string log;
    std::atomic<bool> done{false};
    std::thread reader([&] {
      char buf[65536];
      ssize_t n;
      while ((n = read(fds[0], buf, sizeof buf)) > 0) log.append(buf, size_t(n));
      done = true;
    });
    int delay_ms = 300 + int(rng() % 1200);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    reader.join();
    close(fds[0]);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "child ended by itself, status " << status << "\n" << log.substr(0, 2000);

    // Replay the log into per-thread models.
    std::map<std::string, Model> acked;           // tid -> model of acknowledged ops
    std::map<std::string, std::string> inflight;  // tid -> op begun, not answered
    std::istringstream in(log);
    std::string line;
    size_t acks = 0;
    while (std::getline(in, line)) {
      if (line.size() < 3) continue;  // a torn last line cannot happen (atomic pipe writes)
      std::string tid = line.substr(2, line.find(' ', 2) - 2);
      if (line[0] == 'B') {
        inflight[tid] = line.substr(3 + tid.size());
      } else if (line[0] == 'A') {
        Apply(&acked[tid], inflight[tid]);
        inflight.erase(tid);
        acks++;
      } else if (line[0] == 'E') {
        ADD_FAILURE() << "operation failed in the child: " << line << " op: " << inflight[tid];
        inflight.erase(tid);
      }
    }
    total_acked += acks;

    auto ns = RocksNamespace::Open(db, RocksOptions());
    ASSERT_TRUE(ns.ok()) << ns.status().ToString();
    std::string report;
    Status cs = (*ns)->CheckConsistency(&report);
    ASSERT_TRUE(cs.ok()) << cs.ToString() << "\n" << report;

    // Top-level thread directories (made by thread "m").
    Model top;
    Walk(ns->get(), kRootIno, "", &top);
    Model expect_top = acked["m"];
    for (auto& [p, k] : top) {
      if (p.rfind("r" + std::to_string(round) + "t", 0) != 0 || p.find('/') != std::string::npos) continue;
      if (!expect_top.count(p)) {
        ASSERT_TRUE(inflight.count("m") && inflight["m"] == "M " + p) << "unexpected " << p;
      }
    }
    for (auto& [p, k] : expect_top) ASSERT_TRUE(top.count(p)) << "acknowledged mkdir lost: " << p;

    for (int t = 0; t < kThreads; t++) {
      std::string tid = std::to_string(t);
      std::string name = "r" + std::to_string(round) + "t" + tid;
      auto dir = (*ns)->Lookup(kRootIno, name);
      if (!dir.ok()) {
        EXPECT_TRUE(acked[tid].empty());
        continue;
      }
      Model actual;
      Walk(ns->get(), dir->ino(), "", &actual);
      Model without = acked[tid], with = acked[tid];
      if (inflight.count(tid)) Apply(&with, inflight[tid]);
      EXPECT_TRUE(actual == without || actual == with)
          << "thread " << tid << "\nactual:  " << Show(actual) << "\nacked:   " << Show(without)
          << "\ninflight: " << (inflight.count(tid) ? inflight[tid] : "-");
    }
  }
  EXPECT_GT(total_acked, 100u) << "the storms did too little to test anything";
  std::printf("crash rounds: %d, acknowledged operations checked: %zu (seed %llu)\n", kRounds,
              total_acked, (unsigned long long)base_seed);
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace cfs::meta

// This binary re-executed by the test above, with CFS_CRASH_CHILD_DB set, is the
// storm child (a fresh process image: no RocksDB threads inherited by fork).
int main(int argc, char** argv) {
  if (const char* db = getenv("CFS_CRASH_CHILD_DB")) {
    cfs::meta::ChildMain(db, std::strtoull(getenv("CFS_CRASH_SEED"), nullptr, 10),
              atoi(getenv("CFS_CRASH_ROUND")));
  }
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
