#include "target.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "common/logging.h"

namespace cfs::storage {
namespace {

constexpr char kTargetFile[] = "TARGET";
constexpr char kMagic[] = "cfs-target 1";

// key=value lines after the magic line.
Result<std::map<std::string, std::string>> ReadTargetFile(const std::string& dir) {
  std::string path = dir + "/" + kTargetFile;
  std::ifstream in(path);
  if (!in) return Status::NotFound("no " + path);
  std::string line;
  if (!std::getline(in, line) || line != kMagic)
    return Status::Corruption(path + " is not a CFS target file (first line is not '" + kMagic + "')");
  std::map<std::string, std::string> kv;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    kv[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return kv;
}

Status WriteAll(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t r = ::write(fd, s.data() + done, s.size() - done);
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write");
    }
    done += static_cast<size_t>(r);
  }
  return Status::OK();
}

}  // namespace

std::string NewUuid() {
  std::random_device rd;
  std::mt19937_64 rng((uint64_t(rd()) << 32) ^ rd());
  uint64_t a = rng(), b = rng();
  a = (a & ~0xF000ull) | 0x4000ull;                         // version 4
  b = (b & ~(0xC000ull << 48)) | (0x8000ull << 48);         // variant 10
  char buf[40];
  snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx", uint32_t(a >> 32),
           uint32_t((a >> 16) & 0xFFFF), uint32_t(a & 0xFFFF), uint32_t(b >> 48),
           static_cast<unsigned long long>(b & 0xFFFFFFFFFFFFull));
  return buf;
}

std::string ResolveWorkerUuid(const std::vector<std::string>& dirs) {
  for (const auto& d : dirs) {
    auto kv = ReadTargetFile(d);
    if (kv.ok() && kv->count("worker_uuid") && !(*kv)["worker_uuid"].empty())
      return (*kv)["worker_uuid"];
  }
  return NewUuid();
}

Result<std::unique_ptr<Target>> Target::Open(const std::string& dir_arg, const std::string& worker_uuid,
                                             FileChunkStoreOptions opts) {
  // Absolute, so that logs and the M-worker's map name it unambiguously.
  std::error_code ec;
  std::string dir = std::filesystem::absolute(dir_arg, ec).lexically_normal().string();
  if (ec || dir.empty()) dir = dir_arg;
  if (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    int e = errno;
    if (e == ENOENT) return Status::NotFound("target directory " + dir + " does not exist");
    return Status::FromErrno(e, "target directory " + dir);
  }
  if (!S_ISDIR(st.st_mode)) return Status(ENOTDIR, "target " + dir + " is not a directory");
  // Writable: really create a file (access(2) ignores read-only mounts' quirks).
  std::string probe = dir + "/.cfs-probe";
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    int e = errno;
    return Status(e, "target directory " + dir + " is not writable: " + std::strerror(e));
  }
  ::close(fd);
  ::unlink(probe.c_str());

  std::unique_ptr<Target> t(new Target());
  t->path_ = dir;
  t->worker_uuid_ = worker_uuid;
  bool dirty = false;
  auto kv = ReadTargetFile(dir);
  if (kv.ok()) {
    t->uuid_ = (*kv)["uuid"];
    if (!(*kv)["id"].empty()) t->id_ = static_cast<uint32_t>(std::stoul((*kv)["id"]));
    const std::string& owner = (*kv)["worker_uuid"];
    if (owner != worker_uuid) {
      if (!owner.empty())
        LOG_WARN("target {} was owned by worker {}; now owned by {}", dir, owner, worker_uuid);
      dirty = true;
    }
    if (t->uuid_.empty()) return Status::Corruption(dir + "/TARGET has no uuid");
  } else if (kv.status().err() == ENOENT) {
    t->uuid_ = NewUuid();
    dirty = true;
    LOG_INFO("new target path={} uuid={}", dir, t->uuid_);
  } else {
    return kv.status();
  }
  if (dirty) CFS_RETURN_IF_ERROR(t->WriteTargetFile());
  auto store = FileChunkStore::Open(dir, opts);
  if (!store.ok()) return store.status();
  t->store_ = std::move(*store);
  t->units_ = std::make_unique<FileUnitStore>(t->store_.get());
  return t;
}

Status Target::SetId(uint32_t id) {
  if (id_.exchange(id) == id) return Status::OK();
  return WriteTargetFile();
}

// Written to a temporary file, synced and renamed: a crash leaves the old or the new file.
Status Target::WriteTargetFile() {
  std::lock_guard<std::mutex> g(file_mu_);
  std::ostringstream o;
  o << kMagic << "\nuuid=" << uuid_ << "\nworker_uuid=" << worker_uuid_ << "\n";
  if (id_ != 0) o << "id=" << id_ << "\n";
  std::string path = path_ + "/" + kTargetFile, tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno(errno, "creating " + tmp);
  Status st = WriteAll(fd, o.str());
  if (st.ok() && ::fsync(fd) != 0) st = Status::FromErrno(errno, "fsync " + tmp);
  ::close(fd);
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) st = Status::FromErrno(errno, "rename to " + path);
  if (!st.ok()) return Status(st.err(), "writing " + path + ": " + st.message());
  int dfd = ::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::OK();
}

}  // namespace cfs::storage
