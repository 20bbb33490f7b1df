// Checkpoint sets on top of Client (see checkpoint.h and docs/checkpoints.md).
// Every step before the commit rename only touches JOB/.pending, which no
// reader takes for a committed set; the rename moves a set whose files are
// fsynced and whose manifest is complete, so a crash anywhere leaves either
// the old state or the whole new set.
#include "client/checkpoint.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <tuple>

#include "common/logging.h"

namespace cfs::client {
namespace {

constexpr size_t kMaxName = 255;
constexpr uint32_t kReaddirBatch = 1024;
constexpr int kSyncThreads = 16;                       // files fsynced at once by a commit
constexpr uint64_t kMaxManifestBytes = uint64_t{1} << 30;
constexpr char kFormat[] = "cfs-checkpoint-set";
constexpr char kTmpPrefix[] = ".cfs-ckpt.tmp.";
constexpr char kTrashPrefix[] = ".trash-";
constexpr uint32_t kDirType = S_IFDIR >> 12;
constexpr uint32_t kRegType = S_IFREG >> 12;
constexpr uint32_t kRenameNoReplace = 1;

bool StartsWith(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

// Test hook: CFS_CKPT_CRASH_AT=STEP kills this process (SIGKILL) at that step
// of a commit or a removal, where random kills rarely land (ckpt_test).
void CrashPoint(const char* step) {
  const char* at = std::getenv("CFS_CKPT_CRASH_AT");
  if (at && std::strcmp(at, step) == 0) ::raise(SIGKILL);
}

std::string Hex64(uint64_t v) {
  char b[17];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}

uint64_t Random64() {
  static std::mutex mu;
  static std::mt19937_64 gen{std::random_device{}() ^
                             static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count())};
  std::lock_guard<std::mutex> g(mu);
  return gen();
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "proj/run7/step-1" for messages: the set as the user wrote it, without the leading '/'.
std::string Label(const CkptSetName& s) { return s.job.substr(1) + "/" + s.name; }

Status WithContext(const Status& st, const std::string& what) {
  return Status(st.err(), what + ": " + st.message());
}

bool Newer(const CkptManifest& a, const CkptManifest& b) {
  return std::tie(a.seq, a.commit_ns, a.name) > std::tie(b.seq, b.commit_ns, b.name);
}

CkptSetInfo InfoOf(const CkptManifest& m) {
  CkptSetInfo i;
  i.name = m.name;
  i.committed = true;
  i.seq = m.seq;
  i.commit_ns = m.commit_ns;
  i.files = m.files.size();
  i.bytes = m.bytes;
  return i;
}

}  // namespace

// ---------------------------------------------------------------- names

Result<std::string> ParseCkptJob(const std::string& job) {
  std::string out;
  size_t pos = 0;
  while (pos <= job.size()) {
    size_t next = job.find('/', pos);
    if (next == std::string::npos) next = job.size();
    std::string comp = job.substr(pos, next - pos);
    pos = next + 1;
    if (comp.empty()) continue;  // leading, trailing or doubled '/'
    if (comp == "." || comp == "..")
      return Status::Invalid("checkpoint job '" + job + "': '.' and '..' are not allowed");
    if (comp == kCkptPendingDir)
      return Status::Invalid("checkpoint job '" + job + "': '.pending' holds a job's pending sets");
    if (comp.size() > kMaxName)
      return Status::Invalid("checkpoint job '" + job + "': a component is longer than 255 bytes");
    if (comp.find('\0') != std::string::npos)
      return Status::Invalid("checkpoint job: NUL in the name");
    out += "/" + comp;
  }
  if (out.empty()) return Status::Invalid("checkpoint job '" + job + "': empty (the root cannot be a job)");
  return out;
}

Result<CkptSetName> ParseCkptSet(const std::string& set) {
  size_t slash = set.rfind('/');
  if (slash == std::string::npos)
    return Status::Invalid("checkpoint set '" + set + "' is not JOB/NAME");
  CkptSetName s;
  s.name = set.substr(slash + 1);
  if (s.name.empty()) return Status::Invalid("checkpoint set '" + set + "': empty NAME");
  if (s.name[0] == '.')
    return Status::Invalid("checkpoint set '" + set + "': NAME may not start with '.'");
  if (s.name.size() > kMaxName)
    return Status::Invalid("checkpoint set '" + set + "': NAME is longer than 255 bytes");
  if (s.name.find('\0') != std::string::npos) return Status::Invalid("checkpoint set: NUL in the name");
  CFS_ASSIGN_OR_RETURN(s.job, ParseCkptJob(set.substr(0, slash)));
  return s;
}

// ---------------------------------------------------------------- manifest

std::string ManifestToJson(const CkptManifest& m) {
  // Ordered: the manifest is also read by people (`cat JOB/NAME/.cfs-ckpt`).
  nlohmann::ordered_json files = nlohmann::ordered_json::array();
  for (const auto& f : m.files) files.push_back({{"path", f.path}, {"size", f.size}});
  nlohmann::ordered_json j{{"format", kFormat},
                   {"version", kCkptFormatVersion},
                   {"name", m.name},
                   {"seq", m.seq},
                   {"commit_ns", m.commit_ns},
                   {"commit_id", m.commit_id},
                   {"file_count", m.files.size()},
                   {"bytes", m.bytes},
                   {"files", std::move(files)}};
  return j.dump(1) + "\n";
}

Result<CkptManifest> ParseManifest(const std::string& text, const std::string& name) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Corruption("manifest is not JSON");
  try {
    if (j.value("format", "") != kFormat) return Status::Corruption("not a checkpoint manifest");
    if (j.at("version").get<uint32_t>() != kCkptFormatVersion)
      return Status::Corruption("manifest format version " + j.at("version").dump() + " is not " +
                                std::to_string(kCkptFormatVersion));
    CkptManifest m;
    m.name = j.at("name").get<std::string>();
    if (m.name != name)
      return Status::Corruption("manifest names set '" + m.name + "', the directory is '" + name + "'");
    m.seq = j.at("seq").get<uint64_t>();
    m.commit_ns = j.at("commit_ns").get<int64_t>();
    m.commit_id = j.at("commit_id").get<std::string>();
    m.bytes = j.at("bytes").get<uint64_t>();
    uint64_t sum = 0;
    for (const auto& f : j.at("files")) {
      m.files.push_back({f.at("path").get<std::string>(), f.at("size").get<uint64_t>()});
      sum += m.files.back().size;
    }
    if (m.seq == 0) return Status::Corruption("manifest has seq 0");
    if (j.at("file_count").get<uint64_t>() != m.files.size() || sum != m.bytes)
      return Status::Corruption("manifest totals do not match its file list");
    return m;
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("bad manifest: ") + e.what());
  }
}

// ---------------------------------------------------------------- namespace helpers

Result<std::vector<Checkpoints::Entry>> Checkpoints::ListDir(uint64_t ino) {
  std::vector<Entry> out;
  uint64_t cookie = 0;
  for (;;) {
    CFS_ASSIGN_OR_RETURN(pb::ReaddirResponse r, c_->Readdir(ino, cookie, kReaddirBatch, true));
    for (const auto& e : r.entries()) {
      if (e.name() == "." || e.name() == "..") continue;
      out.push_back({e.name(), e.ino(), e.type(), e.attr().size()});
    }
    if (r.eof() || r.entries_size() == 0) break;
    cookie = r.entries(r.entries_size() - 1).cookie();
  }
  return out;
}

Result<pb::Attr> Checkpoints::LookupOpt(uint64_t parent, const std::string& name, bool* found) {
  auto a = c_->Lookup(parent, name);
  *found = a.ok();
  if (!a.ok() && a.status().err() == ENOENT) return pb::Attr();
  return a;
}

Result<uint64_t> Checkpoints::EnsureDir(uint64_t parent, const std::string& name) {
  for (int attempt = 0;; attempt++) {
    bool found;
    CFS_ASSIGN_OR_RETURN(pb::Attr a, LookupOpt(parent, name, &found));
    if (found) {
      if (!S_ISDIR(a.mode())) return Status(ENOTDIR, "'" + name + "' exists and is not a directory");
      return a.ino();
    }
    auto m = c_->Mkdir(parent, name, 0755, uid_, gid_);
    if (m.ok()) return m->ino();
    // Another rank made it between our lookup and mkdir: look again (once
    // more at most; a directory that keeps vanishing is someone's rm -r).
    if (m.status().err() != EEXIST || attempt > 0) return m.status();
  }
}

Result<uint64_t> Checkpoints::MkdirP(const std::string& path) {
  uint64_t ino = 1;
  size_t pos = 1;
  while (pos < path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos) next = path.size();
    auto r = EnsureDir(ino, path.substr(pos, next - pos));
    if (!r.ok()) return WithContext(r.status(), "creating " + path.substr(0, next));
    ino = *r;
    pos = next + 1;
  }
  return ino;
}

Result<uint64_t> Checkpoints::JobDir(const std::string& job) {
  auto a = c_->Resolve(job);
  if (!a.ok()) {
    if (a.status().err() == ENOENT) return Status::NotFound("no checkpoint job " + job.substr(1));
    return a.status();
  }
  if (!S_ISDIR(a->mode())) return Status(ENOTDIR, "checkpoint job " + job.substr(1) + " is not a directory");
  return a->ino();
}

Result<std::string> Checkpoints::ReadWhole(uint64_t ino) {
  pb::Attr attr;
  CFS_ASSIGN_OR_RETURN(std::shared_ptr<File> f, c_->Open(ino, O_RDONLY, &attr));
  Status st;
  std::string data;
  if (attr.size() > kMaxManifestBytes) {
    st = Status(EFBIG, "manifest larger than 1 GiB");
  } else {
    data.resize(attr.size());
    size_t got = 0;
    while (got < data.size()) {
      auto n = f->Read(data.data() + got, data.size() - got, got);
      if (!n.ok()) {
        st = n.status();
        break;
      }
      if (*n == 0) break;
      got += *n;
    }
    data.resize(got);
  }
  Status rs = c_->Release(f);
  if (!st.ok()) return st;
  if (!rs.ok()) return rs;
  return data;
}

Result<CkptManifest> Checkpoints::ReadManifest(uint64_t dir, const std::string& name, bool* valid) {
  *valid = false;
  bool found;
  Result<std::string> text = Status::OK();
  for (int attempt = 0;; attempt++) {
    CFS_ASSIGN_OR_RETURN(pb::Attr a, LookupOpt(dir, kCkptManifest, &found));
    if (!found || !S_ISREG(a.mode())) return CkptManifest();
    text = ReadWhole(a.ino());
    // Replaced between the lookup and the open (a crashed attempt's manifest
    // being overwritten): look it up again.
    bool replaced = !text.ok() && (text.status().err() == ENOENT || text.status().err() == ESTALE);
    if (!replaced || attempt == 3) break;
  }
  // An unreadable manifest is an error, not "no set": latest must not fall
  // back to an older set because an S-worker did not answer.
  CFS_RETURN_IF_ERROR(text.status());
  auto m = ParseManifest(*text, name);
  if (!m.ok()) {
    LOG_WARN("checkpoint directory {} (ino {}) is not a committed set: {}", name, dir,
             m.status().ToString());
    return CkptManifest();
  }
  *valid = true;
  return m;
}

Result<std::vector<Checkpoints::Committed>> Checkpoints::CommittedSets(uint64_t job_ino) {
  CFS_ASSIGN_OR_RETURN(std::vector<Entry> entries, ListDir(job_ino));
  std::vector<Committed> out;
  for (const auto& e : entries) {
    if (e.type != kDirType || e.name.empty() || e.name[0] == '.') continue;
    bool valid;
    auto m = ReadManifest(e.ino, e.name, &valid);
    if (!m.ok()) {
      // Removed between the listing and the read (retention of another commit).
      if (m.status().err() == ENOENT || m.status().err() == ESTALE) continue;
      return WithContext(m.status(), "reading the manifest of " + e.name);
    }
    if (valid) out.push_back({std::move(*m), e.ino});
  }
  std::sort(out.begin(), out.end(),
            [](const Committed& a, const Committed& b) { return Newer(b.manifest, a.manifest); });
  return out;
}

Status Checkpoints::Walk(uint64_t dir, const std::string& prefix, bool top,
                         std::vector<Entry>* files) {
  CFS_ASSIGN_OR_RETURN(std::vector<Entry> entries, ListDir(dir));
  for (auto& e : entries) {
    if (top && (e.name == kCkptManifest || StartsWith(e.name, kTmpPrefix))) continue;
    if (e.type == kDirType) {
      CFS_RETURN_IF_ERROR(Walk(e.ino, prefix + e.name + "/", false, files));
    } else if (e.type == kRegType) {
      e.name = prefix + e.name;
      files->push_back(std::move(e));
    }
  }
  return Status::OK();
}

Status Checkpoints::SyncFiles(const std::vector<Entry>& files, std::vector<CkptFile>* out) {
  out->assign(files.size(), {});
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status first;
  auto work = [&] {
    for (size_t i; !failed && (i = next++) < files.size();) {
      const Entry& e = files[i];
      pb::Attr attr;
      // FSYNC_OBJECT goes to every target of the layout even when this
      // client wrote nothing (FileImpl::Fsync): it syncs what others wrote.
      Status st;
      auto f = c_->Open(e.ino, O_RDONLY, &attr);
      if (!f.ok()) {
        st = f.status();
      } else {
        st = (*f)->Fsync();
        Status rs = c_->Release(*f);
        if (st.ok()) st = rs;
      }
      if (!st.ok()) {
        std::lock_guard<std::mutex> g(mu);
        if (first.ok()) first = WithContext(st, "making " + e.name + " durable");
        failed = true;
        return;
      }
      (*out)[i] = {e.name, attr.size()};
    }
  };
  const size_t n = std::min<size_t>(kSyncThreads, files.size());
  std::vector<std::thread> threads;
  for (size_t t = 1; t < n; t++) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  return first;
}

Status Checkpoints::WriteManifest(uint64_t set_ino, CkptManifest* m) {
  const std::string tmp = kTmpPrefix + m->commit_id;
  const std::string text = ManifestToJson(*m);
  pb::Attr attr;
  CFS_ASSIGN_OR_RETURN(std::shared_ptr<File> f,
                       c_->Create(set_ino, tmp, 0644, uid_, gid_, true, LayoutHint{}, &attr));
  Status st;
  auto w = f->Write(text.data(), text.size(), 0);
  if (!w.ok()) st = w.status();
  if (st.ok()) st = f->Fsync();  // data on the S-workers and the size on the M-worker, durably
  Status rs = c_->Release(f);
  if (st.ok()) st = rs;
  CrashPoint("manifest-tmp");
  if (st.ok()) st = c_->Rename(set_ino, tmp, set_ino, kCkptManifest, kRenameNoReplace);
  if (st.err() == EEXIST) {
    // A concurrent committer's manifest may already be there, and the set
    // may already be committed under it: replacing it would pull the
    // manifest from under that set's readers. One of the same files and
    // seq says what ours says, so it stays. Anything else is a crashed
    // attempt's (other files, or an older seq) and ours replaces it.
    bool valid = false;
    auto theirs = ReadManifest(set_ino, m->name, &valid);
    if (theirs.ok() && valid && theirs->seq == m->seq && theirs->files == m->files) {
      (void)c_->Unlink(set_ino, tmp);
      *m = std::move(*theirs);
      return Status::OK();
    }
    st = c_->Rename(set_ino, tmp, set_ino, kCkptManifest, 0);
  }
  if (!st.ok()) {
    (void)c_->Unlink(set_ino, tmp);
    return WithContext(st, "writing the manifest");
  }
  return Status::OK();
}

Status Checkpoints::RemoveTree(uint64_t dir) {
  CFS_ASSIGN_OR_RETURN(std::vector<Entry> entries, ListDir(dir));
  for (const auto& e : entries) {
    Status st;
    if (e.type == kDirType) {
      st = RemoveTree(e.ino);
      if (st.ok() || st.err() == ENOENT || st.err() == ESTALE) st = c_->Rmdir(dir, e.name);
    } else {
      st = c_->Unlink(dir, e.name);
      if (st.ok()) CrashPoint("remove-partial");
    }
    // Another remover (a crashed removal's cleanup) may be at it too.
    if (!st.ok() && st.err() != ENOENT && st.err() != ESTALE)
      return WithContext(st, "removing " + e.name);
  }
  return Status::OK();
}

Status Checkpoints::Retire(uint64_t job_ino, uint64_t parent, const std::string& name) {
  bool found;
  CFS_ASSIGN_OR_RETURN(pb::Attr a, LookupOpt(parent, name, &found));
  if (!found) return Status::NotFound("'" + name + "' is gone");
  CFS_ASSIGN_OR_RETURN(uint64_t pending, EnsureDir(job_ino, kCkptPendingDir));
  const std::string trash = kTrashPrefix + Hex64(c_->client_id()) + "-" + Hex64(Random64());
  // The rename is the removal as far as readers go: from here on the set is
  // in no listing, whatever happens to the deletion below.
  CFS_RETURN_IF_ERROR(c_->Rename(parent, name, pending, trash, kRenameNoReplace));
  CrashPoint("remove-renamed");
  Status st = RemoveTree(a.ino());
  if (st.ok()) st = c_->Rmdir(pending, trash);
  if (!st.ok())
    LOG_WARN("removing {} (now .pending/{}) stopped: {}; the next commit in the job finishes it", name,
             trash, st.ToString());
  return st;
}

void Checkpoints::CollectTrash(uint64_t pending_ino) {
  auto entries = ListDir(pending_ino);
  if (!entries.ok()) return;
  for (const auto& e : *entries) {
    if (e.type != kDirType || !StartsWith(e.name, kTrashPrefix)) continue;
    Status st = RemoveTree(e.ino);
    if (st.ok()) st = c_->Rmdir(pending_ino, e.name);
    if (!st.ok() && st.err() != ENOENT)
      LOG_WARN("leftover .pending/{} not removed yet: {}", e.name, st.ToString());
  }
}

Status Checkpoints::ApplyRetention(uint64_t job_ino, std::vector<Committed> sets,
                                   CkptCommitResult* r) {
  auto keep = c_->GetXattr(job_ino, kCkptKeepXattr);
  if (!keep.ok() && keep.status().err() != ENODATA) return keep.status();
  r->keep = keep.ok() ? static_cast<uint32_t>(std::strtoul(keep->c_str(), nullptr, 10)) : 0;
  bool found;
  CFS_ASSIGN_OR_RETURN(pb::Attr pending, LookupOpt(job_ino, kCkptPendingDir, &found));
  if (found) CollectTrash(pending.ino());
  if (r->keep == 0 || sets.size() <= r->keep) return Status::OK();
  // sets is oldest first; the one just committed is the newest.
  for (size_t i = 0; i + r->keep < sets.size(); i++) {
    const std::string& name = sets[i].manifest.name;
    Status st = Retire(job_ino, job_ino, name);
    if (!st.ok() && st.err() != ENOENT) return WithContext(st, "removing old set " + name);
    if (st.ok()) r->retired.push_back(name);
  }
  return Status::OK();
}

// ---------------------------------------------------------------- operations

Result<std::string> Checkpoints::Begin(const std::string& set) {
  CFS_ASSIGN_OR_RETURN(CkptSetName s, ParseCkptSet(set));
  CFS_ASSIGN_OR_RETURN(uint64_t job, MkdirP(s.job));
  // A set that exists as JOB/NAME is committed (or something else is in the way).
  auto committed = [&]() -> Status {
    bool found;
    CFS_ASSIGN_OR_RETURN(pb::Attr a, LookupOpt(job, s.name, &found));
    if (!found) return Status::OK();
    bool valid = false;
    if (S_ISDIR(a.mode())) CFS_RETURN_IF_ERROR(ReadManifest(a.ino(), s.name, &valid).status());
    if (valid) return Status(kErrCkptCommitted, Label(s) + " is already committed");
    return Status::Exists(Label(s) + " exists and is not a checkpoint set");
  };
  CFS_RETURN_IF_ERROR(committed());
  CFS_ASSIGN_OR_RETURN(uint64_t pending, EnsureDir(job, kCkptPendingDir));
  bool found;
  CFS_ASSIGN_OR_RETURN(pb::Attr a, LookupOpt(pending, s.name, &found));
  bool created = false;
  if (found) {
    if (!S_ISDIR(a.mode())) return Status(ENOTDIR, Label(s) + ": .pending/" + s.name + " is not a directory");
  } else {
    auto m = c_->Mkdir(pending, s.name, 0755, uid_, gid_);
    if (m.ok()) created = true;
    else if (m.status().err() != EEXIST) return WithContext(m.status(), "creating " + Label(s));
  }
  // A commit that renamed NAME between our check and our mkdir: the
  // directory we just made would be a pending set that can never commit.
  if (Status st = committed(); !st.ok()) {
    if (created) (void)c_->Rmdir(pending, s.name);
    return st;
  }
  return s.job + "/" + kCkptPendingDir + "/" + s.name;
}

Result<CkptCommitResult> Checkpoints::Commit(const std::string& set, const WritingFn& writing) {
  CFS_ASSIGN_OR_RETURN(CkptSetName s, ParseCkptSet(set));
  const std::string label = Label(s);
  CFS_ASSIGN_OR_RETURN(uint64_t job, JobDir(s.job));
  bool found;
  // (1) committed already, or nothing pending.
  CFS_ASSIGN_OR_RETURN(pb::Attr dst, LookupOpt(job, s.name, &found));
  if (found) {
    bool valid = false;
    if (S_ISDIR(dst.mode())) CFS_RETURN_IF_ERROR(ReadManifest(dst.ino(), s.name, &valid).status());
    if (valid) return Status(kErrCkptCommitted, label + " is already committed");
    return Status::Exists(label + " exists and is not a checkpoint set: cannot commit over it");
  }
  CFS_ASSIGN_OR_RETURN(pb::Attr pa, LookupOpt(job, kCkptPendingDir, &found));
  if (!found) return Status::NotFound("no pending checkpoint set " + label);
  const uint64_t pending = pa.ino();
  CFS_ASSIGN_OR_RETURN(pb::Attr sa, LookupOpt(pending, s.name, &found));
  if (!found) return Status::NotFound("no pending checkpoint set " + label);
  if (!S_ISDIR(sa.mode())) return Status(ENOTDIR, label + ": .pending/" + s.name + " is not a directory");
  const uint64_t set_ino = sa.ino();

  std::vector<Entry> files;
  if (Status ws = Walk(set_ino, "", true, &files); !ws.ok()) return WithContext(ws, "listing " + label);
  // (2) a writer of this process that has not closed: its buffered bytes
  // would be missing from the set.
  if (writing)
    for (const auto& f : files)
      if (writing(f.ino))
        return Status(kErrCkptBusy, label + ": " + f.name + " is still open for writing");
  // (3) every file durable on the S-workers.
  CkptManifest m;
  m.name = s.name;
  m.commit_id = Hex64(c_->client_id()) + Hex64(Random64());
  CFS_RETURN_IF_ERROR(SyncFiles(files, &m.files));
  CrashPoint("synced");
  std::sort(m.files.begin(), m.files.end(),
            [](const CkptFile& a, const CkptFile& b) { return a.path < b.path; });
  for (const auto& f : m.files) m.bytes += f.size;
  // (4) the manifest, durable, inside the still pending set.
  CFS_ASSIGN_OR_RETURN(std::vector<Committed> sets, CommittedSets(job));
  for (const auto& c : sets) {
    // Committed by a concurrent commit while we synced: its seq must not
    // count (a loser's manifest would then differ from the winner's).
    if (c.manifest.name == s.name) return Status(kErrCkptCommitted, label + " was committed by another process meanwhile");
    m.seq = std::max(m.seq, c.manifest.seq);
  }
  m.seq++;
  m.commit_ns = NowNs();
  // Still pending? (Narrows, without closing, the window in which a
  // concurrent loser writes its manifest into the winner's set; it then
  // lists the same files with the same seq.)
  CFS_ASSIGN_OR_RETURN(pb::Attr again, LookupOpt(pending, s.name, &found));
  if (!found || again.ino() != set_ino) {
    CFS_ASSIGN_OR_RETURN(pb::Attr now, LookupOpt(job, s.name, &found));
    if (found && now.ino() == set_ino) return Status(kErrCkptCommitted, label + " was committed by another process meanwhile");
    return Status::NotFound(label + " was removed while committing");
  }
  Status st = WriteManifest(set_ino, &m);
  if (st.ok()) CrashPoint("manifest");
  // (5) the commit point.
  bool maybe_ours = false;
  if (st.ok()) {
    st = c_->Rename(pending, s.name, job, s.name, kRenameNoReplace);
    if (st.ok()) CrashPoint("renamed");
    // A transport error leaves it open whether the M-worker applied it (a
    // rename is never resent); an answer such as EEXIST or ENOENT means not.
    maybe_ours = !st.ok() && st.IsRetryable();
  }
  if (!st.ok()) {
    // Our rename whose reply was lost, or a concurrent commit of the same set
    // (its files are ours too: it walked the same directory).
    CFS_ASSIGN_OR_RETURN(pb::Attr now, LookupOpt(job, s.name, &found));
    bool valid = false;
    CkptManifest theirs;
    if (found && S_ISDIR(now.mode())) {
      auto r = ReadManifest(now.ino(), s.name, &valid);
      if (r.ok()) theirs = std::move(*r);
    }
    if (!valid || !maybe_ours || theirs.commit_id != m.commit_id) {
      if (valid) return Status(kErrCkptCommitted, label + " was committed by another process meanwhile");
      if (found) return Status::Exists(label + " exists and is not a checkpoint set: cannot commit over it");
      return WithContext(st, "committing " + label);
    }
  }
  // Temporary manifests of crashed attempts (or of a concurrent loser, which
  // then fails with kErrCkptCommitted) are not part of the set.
  if (auto top = ListDir(set_ino); top.ok())
    for (const auto& e : *top)
      if (StartsWith(e.name, kTmpPrefix)) (void)c_->Unlink(set_ino, e.name);
  CkptCommitResult r;
  r.set = InfoOf(m);
  // (6) retention, on what this commit saw plus itself.
  sets.push_back({m, set_ino});
  r.retention = ApplyRetention(job, std::move(sets), &r);
  if (!r.retention.ok())
    LOG_WARN("{} committed; retention incomplete: {}", label, r.retention.ToString());
  return r;
}

Result<CkptSetInfo> Checkpoints::Latest(const std::string& job_arg) {
  CFS_ASSIGN_OR_RETURN(std::string job, ParseCkptJob(job_arg));
  CFS_ASSIGN_OR_RETURN(uint64_t ino, JobDir(job));
  CFS_ASSIGN_OR_RETURN(std::vector<Committed> sets, CommittedSets(ino));
  if (sets.empty()) return Status::NotFound("no committed checkpoint set in " + job.substr(1));
  return InfoOf(sets.back().manifest);
}

Result<std::string> Checkpoints::Path(const std::string& set) {
  CFS_ASSIGN_OR_RETURN(CkptSetName s, ParseCkptSet(set));
  CFS_ASSIGN_OR_RETURN(uint64_t job, JobDir(s.job));
  bool found;
  CFS_ASSIGN_OR_RETURN(pb::Attr a, LookupOpt(job, s.name, &found));
  bool valid = false;
  if (found && S_ISDIR(a.mode())) CFS_RETURN_IF_ERROR(ReadManifest(a.ino(), s.name, &valid).status());
  if (valid) return s.job + "/" + s.name;
  if (found) return Status::NotFound(Label(s) + " is not a checkpoint set (no valid manifest)");
  CFS_ASSIGN_OR_RETURN(pb::Attr p, LookupOpt(job, kCkptPendingDir, &found));
  if (found) CFS_RETURN_IF_ERROR(LookupOpt(p.ino(), s.name, &found).status());
  if (found) return Status::NotFound(Label(s) + " is pending: not committed yet");
  return Status::NotFound("no checkpoint set " + Label(s));
}

Result<std::vector<CkptSetInfo>> Checkpoints::List(const std::string& job_arg) {
  CFS_ASSIGN_OR_RETURN(std::string job, ParseCkptJob(job_arg));
  CFS_ASSIGN_OR_RETURN(uint64_t ino, JobDir(job));
  CFS_ASSIGN_OR_RETURN(std::vector<Committed> sets, CommittedSets(ino));
  std::vector<CkptSetInfo> out;
  for (const auto& c : sets) out.push_back(InfoOf(c.manifest));
  bool found;
  CFS_ASSIGN_OR_RETURN(pb::Attr p, LookupOpt(ino, kCkptPendingDir, &found));
  if (!found) return out;
  CFS_ASSIGN_OR_RETURN(std::vector<Entry> pending, ListDir(p.ino()));
  std::sort(pending.begin(), pending.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
  for (const auto& e : pending) {
    if (e.type != kDirType || e.name.empty() || e.name[0] == '.') continue;
    CkptSetInfo i;
    i.name = e.name;
    std::vector<Entry> files;
    Status st = Walk(e.ino, "", true, &files);
    if (!st.ok() && (st.err() == ENOENT || st.err() == ESTALE)) continue;  // committed or removed meanwhile
    CFS_RETURN_IF_ERROR(st);
    i.files = files.size();
    for (const auto& f : files) i.bytes += f.size;
    out.push_back(std::move(i));
  }
  return out;
}

Status Checkpoints::Remove(const std::string& set) {
  CFS_ASSIGN_OR_RETURN(CkptSetName s, ParseCkptSet(set));
  CFS_ASSIGN_OR_RETURN(uint64_t job, JobDir(s.job));
  bool found, removed = false;
  CFS_ASSIGN_OR_RETURN(pb::Attr a, LookupOpt(job, s.name, &found));
  if (found) {
    bool valid = false;
    if (S_ISDIR(a.mode())) CFS_RETURN_IF_ERROR(ReadManifest(a.ino(), s.name, &valid).status());
    if (!valid) return Status::NotFound(Label(s) + " is not a checkpoint set (no valid manifest): not removed");
    Status st = Retire(job, job, s.name);
    if (!st.ok() && st.err() != ENOENT) return WithContext(st, "removing " + Label(s));
    removed |= st.ok();
  }
  CFS_ASSIGN_OR_RETURN(pb::Attr p, LookupOpt(job, kCkptPendingDir, &found));
  if (found) {
    CFS_ASSIGN_OR_RETURN(pb::Attr e, LookupOpt(p.ino(), s.name, &found));
    if (found && S_ISDIR(e.mode())) {
      Status st = Retire(job, p.ino(), s.name);
      if (!st.ok() && st.err() != ENOENT) return WithContext(st, "removing pending " + Label(s));
      removed |= st.ok();
    }
  }
  if (!removed) return Status::NotFound("no checkpoint set " + Label(s));
  return Status::OK();
}

Status Checkpoints::SetRetention(const std::string& job_arg, uint32_t keep) {
  CFS_ASSIGN_OR_RETURN(std::string job, ParseCkptJob(job_arg));
  CFS_ASSIGN_OR_RETURN(uint64_t ino, MkdirP(job));
  return c_->SetXattr(ino, kCkptKeepXattr, std::to_string(keep), 0);
}

Result<uint32_t> Checkpoints::GetRetention(const std::string& job_arg) {
  CFS_ASSIGN_OR_RETURN(std::string job, ParseCkptJob(job_arg));
  CFS_ASSIGN_OR_RETURN(uint64_t ino, JobDir(job));
  auto v = c_->GetXattr(ino, kCkptKeepXattr);
  if (!v.ok()) {
    if (v.status().err() == ENODATA) return 0u;
    return v.status();
  }
  char* end = nullptr;
  unsigned long n = std::strtoul(v->c_str(), &end, 10);
  if (v->empty() || *end != '\0' || n > UINT32_MAX)
    return Status::Corruption("bad " + std::string(kCkptKeepXattr) + " value '" + *v + "' on " + job.substr(1));
  return static_cast<uint32_t>(n);
}

}  // namespace cfs::client
