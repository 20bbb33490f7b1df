#include "file_chunk_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <bitset>
#include <cstring>
#include <shared_mutex>
#include <vector>

#include "common/checksum.h"
#include "common/layout.h"
#include "common/logging.h"

namespace cfs::storage {
namespace {

constexpr uint64_t kB = kChecksumBlock;
constexpr int kLockStripes = 64;
// O_DIRECT alignment of offsets, lengths and memory: the largest logical block
// size of the disks we run on (4Kn); kBulkAlignment-aligned bulk meets it.
constexpr uint64_t kDirectAlign = 4096;

static_assert(std::endian::native == std::endian::little, "checksum records are stored little-endian");

const char* ZeroBlock() {
  static const std::vector<char> z(kB, 0);
  return z.data();
}

// Checksum of an all-zero block: what a hole or a never-written block holds.
uint64_t ZeroBlockChecksum() {
  static const uint64_t c = BlockChecksum(ZeroBlock(), kB);
  return c;
}

Status IoError(int e, const std::string& what) {
  if (e == ENOSPC || e == EDQUOT)
    return Status::NoSpace("target full (no space left on device) while " + what);
  return Status::FromErrno(e, what);
}

// Reads up to len bytes; fewer only at end of file. Returns the count.
Result<size_t> PreadFull(int fd, char* buf, size_t len, uint64_t off, const std::string& what) {
  size_t done = 0;
  while (done < len) {
    ssize_t r = ::pread(fd, buf + done, len - done, static_cast<off_t>(off + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return IoError(errno, what);
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  return done;
}

// Writes all of iov at off; *done says how many bytes made it on failure.
Status PwritevFull(int fd, std::vector<iovec> iov, uint64_t off, size_t* done,
                   const std::string& what) {
  *done = 0;
  size_t idx = 0;
  while (idx < iov.size()) {
    int cnt = static_cast<int>(std::min<size_t>(iov.size() - idx, IOV_MAX));
    ssize_t r = ::pwritev(fd, &iov[idx], cnt, static_cast<off_t>(off + *done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return IoError(errno, what);
    }
    if (r == 0) return IoError(ENOSPC, what);
    *done += static_cast<size_t>(r);
    size_t left = static_cast<size_t>(r);
    while (idx < iov.size() && left >= iov[idx].iov_len) {
      left -= iov[idx].iov_len;
      idx++;
    }
    if (idx < iov.size() && left > 0) {
      iov[idx].iov_base = static_cast<char*>(iov[idx].iov_base) + left;
      iov[idx].iov_len -= left;
    }
  }
  return Status::OK();
}

Status ReadRecords(int fd, uint64_t b0, size_t n, std::vector<ChecksumRecord>* out,
                   const std::string& path) {
  std::vector<char> buf(n * kChecksumRecordSize, 0);
  auto r = PreadFull(fd, buf.data(), buf.size(), b0 * kChecksumRecordSize,
                     "reading checksums of " + path);
  if (!r.ok()) return r.status();
  out->resize(n);
  for (size_t i = 0; i < n; i++) {
    std::memcpy(&(*out)[i].cur, &buf[i * kChecksumRecordSize], 8);
    std::memcpy(&(*out)[i].prev, &buf[i * kChecksumRecordSize + 8], 8);
  }
  return Status::OK();
}

Status WriteRecords(int fd, uint64_t b0, const std::vector<ChecksumRecord>& recs,
                    const std::string& path) {
  std::vector<char> buf(recs.size() * kChecksumRecordSize);
  for (size_t i = 0; i < recs.size(); i++) {
    std::memcpy(&buf[i * kChecksumRecordSize], &recs[i].cur, 8);
    std::memcpy(&buf[i * kChecksumRecordSize + 8], &recs[i].prev, 8);
  }
  size_t done;
  return PwritevFull(fd, {iovec{buf.data(), buf.size()}}, b0 * kChecksumRecordSize, &done,
                     "writing checksums of " + path);
}

uint64_t Mix(uint64_t x) {  // splitmix64 finalizer: spreads inodes over shards
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::string Hex(uint64_t v, int digits) {
  char buf[17];
  snprintf(buf, sizeof(buf), "%0*llx", digits, static_cast<unsigned long long>(v));
  return buf;
}

Status FsyncPath(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "opening directory " + dir);
  int r = ::fsync(fd);
  int e = errno;
  ::close(fd);
  return r == 0 ? Status::OK() : Status::FromErrno(e, "fsync of directory " + dir);
}

}  // namespace

struct FileChunkStore::Object {
  uint64_t ino = 0;
  std::string path;
  int data_fd = -1;
  int csum_fd = -1;
  std::mutex direct_mu;  // guards direct_fd's opening
  int direct_fd = -1;    // the data file opened O_DIRECT (on first direct write)
  // Shared by reads and writes; exclusive for truncate and delete.
  std::shared_mutex mu;
  // Block b is guarded by stripes[b % kLockStripes]: writes exclusive, reads shared.
  std::array<std::shared_mutex, kLockStripes> stripes;
  bool deleted = false;                // set under mu exclusive
  std::atomic<bool> dir_dirty{false};  // created since its directory was last synced

  ~Object() {
    if (data_fd >= 0) ::close(data_fd);
    if (csum_fd >= 0) ::close(csum_fd);
    if (direct_fd >= 0) ::close(direct_fd);
  }
};

namespace {

// Locks the stripes covering blocks [b0, b1] in index order (no deadlock).
class StripeGuard {
 public:
  StripeGuard(std::array<std::shared_mutex, kLockStripes>& s, uint64_t b0, uint64_t b1, bool excl)
      : s_(s), excl_(excl) {
    if (b1 - b0 + 1 >= kLockStripes) {
      mask_.set();
    } else {
      for (uint64_t b = b0; b <= b1; b++) mask_.set(b % kLockStripes);
    }
    for (int i = 0; i < kLockStripes; i++)
      if (mask_[i]) excl_ ? s_[i].lock() : s_[i].lock_shared();
  }
  ~StripeGuard() {
    for (int i = kLockStripes - 1; i >= 0; i--)
      if (mask_[i]) excl_ ? s_[i].unlock() : s_[i].unlock_shared();
  }
  StripeGuard(const StripeGuard&) = delete;
  StripeGuard& operator=(const StripeGuard&) = delete;

 private:
  std::array<std::shared_mutex, kLockStripes>& s_;
  bool excl_;
  std::bitset<kLockStripes> mask_;
};

}  // namespace

FileChunkStore::FileChunkStore(std::string root, FileChunkStoreOptions opts)
    : root_(std::move(root)),
      objects_dir_(root_ + "/objects"),
      opts_(opts),
      direct_ok_(opts.direct_io) {}

FileChunkStore::~FileChunkStore() = default;

Result<std::unique_ptr<FileChunkStore>> FileChunkStore::Open(const std::string& root,
                                                             FileChunkStoreOptions opts) {
  struct stat st;
  if (::stat(root.c_str(), &st) != 0) return Status::FromErrno(errno, "target directory " + root);
  if (!S_ISDIR(st.st_mode)) return Status(ENOTDIR, "target " + root + " is not a directory");
  std::string objects = root + "/objects";
  if (::mkdir(objects.c_str(), 0755) != 0 && errno != EEXIST)
    return Status::FromErrno(errno, "creating " + objects);
  if (opts.max_open_objects < 1) opts.max_open_objects = 1;
  return std::unique_ptr<FileChunkStore>(new FileChunkStore(root, opts));
}

std::string FileChunkStore::ShardDir(uint64_t ino) const {
  return objects_dir_ + "/" + Hex(Mix(ino) >> 56, 2);
}
std::string FileChunkStore::ObjectPath(uint64_t ino, uint32_t slot) const {
  std::string p = ShardDir(ino) + "/" + Hex(ino, 16);
  if (slot != 0) p += "." + std::to_string(slot);
  return p;
}
std::string FileChunkStore::ChecksumPath(uint64_t ino, uint32_t slot) const {
  return ObjectPath(ino, slot) + ".csum";
}

Status FileChunkStore::SyncDirs(uint64_t ino) const {
  CFS_RETURN_IF_ERROR(FsyncPath(ShardDir(ino)));
  return FsyncPath(objects_dir_);
}

size_t FileChunkStore::unsynced_dirs() const {
  std::lock_guard<std::mutex> g(mu_);
  size_t n = unsynced_dirs_.size();
  for (const auto& [k, e] : cache_) n += e.obj->dir_dirty ? 1 : 0;
  return n;
}

size_t FileChunkStore::open_objects() const {
  std::lock_guard<std::mutex> g(mu_);
  return cache_.size();
}

Result<std::shared_ptr<FileChunkStore::Object>> FileChunkStore::Get(Key key, bool create) {
  const uint64_t ino = key.ino;
  {
    std::lock_guard<std::mutex> g(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      return it->second.obj;
    }
  }
  // Misses are serialized so that a delete cannot slip between our open and
  // our insert (which would cache fds of unlinked files).
  std::lock_guard<std::mutex> og(open_mu_);
  {
    std::lock_guard<std::mutex> g(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second.obj;
  }
  auto obj = std::make_shared<Object>();
  obj->ino = ino;
  obj->path = ObjectPath(ino, key.slot);
  bool created = false;
  if (create) {
    std::string shard = ShardDir(ino);
    if (::mkdir(shard.c_str(), 0755) == 0) {
      created = true;
    } else if (errno != EEXIST) {
      return IoError(errno, "creating directory " + shard);
    }
    obj->data_fd = ::open(obj->path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (obj->data_fd >= 0) {
      created = true;
    } else if (errno == EEXIST) {
      obj->data_fd = ::open(obj->path.c_str(), O_RDWR | O_CLOEXEC);
    }
  } else {
    obj->data_fd = ::open(obj->path.c_str(), O_RDWR | O_CLOEXEC);
    if (obj->data_fd < 0 && errno == ENOENT)
      return Status::NotFound("no object " + obj->path);
  }
  if (obj->data_fd < 0) return IoError(errno, "opening object " + obj->path);
  std::string csum = ChecksumPath(ino, key.slot);
  obj->csum_fd = ::open(csum.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (obj->csum_fd < 0) return IoError(errno, "opening checksum file " + csum);
  std::lock_guard<std::mutex> g(mu_);
  // An object evicted before its creation was synced hands the duty on.
  obj->dir_dirty = unsynced_dirs_.erase(key) > 0 || created;
  lru_.push_front(key);
  cache_[key] = CacheEntry{obj, lru_.begin()};
  EvictLocked();
  return obj;
}

void FileChunkStore::EvictLocked() {
  // Only objects nobody uses are closed; busy ones may exceed the bound briefly.
  auto it = lru_.end();
  while (cache_.size() > opts_.max_open_objects && it != lru_.begin()) {
    --it;
    auto c = cache_.find(*it);
    if (c->second.obj.use_count() == 1) {
      // Closing the fds keeps the data in the page cache (a later fdatasync
      // of a new fd flushes it), but the "directory not synced" flag lives
      // in the object: keep it, or FSYNC_OBJECT would skip the directories.
      if (c->second.obj->dir_dirty) unsynced_dirs_.insert(*it);
      cache_.erase(c);
      it = lru_.erase(it);
    }
  }
}

void FileChunkStore::Forget(Key key, const Object* obj) {
  std::lock_guard<std::mutex> g(mu_);
  unsynced_dirs_.erase(key);
  auto it = cache_.find(key);
  if (it == cache_.end() || it->second.obj.get() != obj) return;
  lru_.erase(it->second.lru);
  cache_.erase(it);
}

Status FileChunkStore::ChecksumMismatch(const Object& obj, uint64_t b) {
  checksum_errors_++;
  std::string msg = "checksum mismatch in object " + obj.path + " block " + std::to_string(b);
  LOG_ERROR("{} ino={} offset={}", msg, obj.ino, b * kB);
  return Status::Corruption(msg);
}

Result<uint64_t> FileChunkStore::ReadBlockAndMatch(Object& obj, uint64_t b,
                                                   const ChecksumRecord& rec, char* buf) {
  auto r = PreadFull(obj.data_fd, buf, kB, b * kB, "reading object " + obj.path);
  if (!r.ok()) return r.status();
  if (*r < kB) std::memset(buf + *r, 0, kB - *r);
  uint64_t c = BlockChecksum(buf, kB);
  if (c == rec.cur) return rec.cur;
  if (c == rec.prev) return rec.prev;
  return uint64_t{0};
}

bool FileChunkStore::CanWriteDirect(uint64_t offset, std::string_view data) const {
  // Below one checksum block the page cache is cheaper than a synchronous disk write.
  return direct_ok_.load(std::memory_order_relaxed) && data.size() >= kB &&
         offset % kDirectAlign == 0 && data.size() % kDirectAlign == 0 &&
         reinterpret_cast<uintptr_t>(data.data()) % kDirectAlign == 0;
}

int FileChunkStore::DirectFd(Object& obj) {
  std::lock_guard<std::mutex> g(obj.direct_mu);
  if (obj.direct_fd < 0) {
    obj.direct_fd = ::open(obj.path.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (obj.direct_fd < 0) {
      if (direct_ok_.exchange(false))
        LOG_WARN("{}: O_DIRECT refused ({}); target {} writes through the page cache",
                 obj.path, std::strerror(errno), root_);
    }
  }
  return obj.direct_fd;
}

Status FileChunkStore::WriteSlot(uint64_t ino, uint32_t slot, uint64_t offset,
                                 std::string_view data) {
  if (data.empty()) return Status::OK();
  const uint64_t end = offset + data.size();
  if (end < offset || end > (uint64_t{1} << 62)) return Status::Invalid("write range out of bounds");
  const uint64_t b0 = offset / kB, b1 = (end - 1) / kB;
  const size_t n = b1 - b0 + 1;

  std::shared_ptr<Object> obj;
  std::shared_lock<std::shared_mutex> ol;
  for (;;) {
    CFS_ASSIGN_OR_RETURN(obj, Get(Key{ino, slot}, true));
    ol = std::shared_lock<std::shared_mutex>(obj->mu);
    if (!obj->deleted) break;
    ol.unlock();  // deleted under us: the next Get opens a fresh object
  }
  StripeGuard sg(obj->stripes, b0, b1, /*excl=*/true);

  std::vector<ChecksumRecord> recs;
  CFS_RETURN_IF_ERROR(ReadRecords(obj->csum_fd, b0, n, &recs, obj->path));
  std::vector<ChecksumRecord> next(n);
  std::unique_ptr<char[]> scratch;
  auto buf = [&] {
    if (!scratch) scratch.reset(new char[kB]);
    return scratch.get();
  };
  // A partial write into a never-written block that lies inside the file
  // writes zeros over the rest of the block, so that stale bytes (left by a
  // crash in Truncate) can never disagree with the new checksum.
  uint64_t w0 = offset, w1 = end;
  int64_t fsize = -1;
  auto file_size = [&]() -> int64_t {
    if (fsize < 0) {
      struct stat st;
      fsize = ::fstat(obj->data_fd, &st) == 0 ? st.st_size : 0;
    }
    return fsize;
  };

  for (size_t i = 0; i < n; i++) {
    const uint64_t b = b0 + i, bs = b * kB, be = bs + kB;
    const ChecksumRecord& rec = recs[i];
    const bool never = rec.cur == 0;
    if (offset <= bs && end >= be) {  // the whole block is overwritten
      uint64_t old;
      if (never) {
        old = ZeroBlockChecksum();
      } else if (rec.prev == 0 || rec.prev == rec.cur) {
        old = rec.cur;
      } else {  // a write was torn here: see which checksum the disk holds
        CFS_ASSIGN_OR_RETURN(uint64_t m, ReadBlockAndMatch(*obj, b, rec, buf()));
        old = m != 0 ? m : rec.cur;
      }
      next[i] = {BlockChecksum(data.data() + (bs - offset), kB), old};
      continue;
    }
    char* s = buf();
    uint64_t old;
    if (never) {
      std::memset(s, 0, kB);
      old = ZeroBlockChecksum();
      if (static_cast<int64_t>(bs) < file_size()) {
        if (bs < offset) w0 = bs;
        if (end < be) w1 = std::max(w1, std::min<uint64_t>(be, static_cast<uint64_t>(file_size())));
      }
    } else {
      CFS_ASSIGN_OR_RETURN(old, ReadBlockAndMatch(*obj, b, rec, s));
      if (old == 0) return ChecksumMismatch(*obj, b);
    }
    const uint64_t lo = std::max(offset, bs), hi = std::min(end, be);
    std::memcpy(s + (lo - bs), data.data() + (lo - offset), hi - lo);
    next[i] = {BlockChecksum(s, kB), old};
  }

  // 1. Records {new, old}: until the data lands, the disk still matches `old`.
  CFS_RETURN_IF_ERROR(WriteRecords(obj->csum_fd, b0, next, obj->path));
  // 2. The data, straight from the caller's buffer (plus zero padding, above).
  std::vector<iovec> iov;
  if (w0 < offset) iov.push_back({const_cast<char*>(ZeroBlock()), offset - w0});
  iov.push_back({const_cast<char*>(data.data()), data.size()});
  if (w1 > end) iov.push_back({const_cast<char*>(ZeroBlock()), w1 - end});
  size_t done = 0;
  const std::string what = "writing " + std::to_string(data.size()) + " bytes at offset " +
                           std::to_string(offset) + " of object " + obj->path;
  Status st;
  const int dfd = iov.size() == 1 && CanWriteDirect(offset, data) ? DirectFd(*obj) : -1;
  if (dfd >= 0) {
    // O_DIRECT flushes and invalidates cached pages of the range, so the
    // buffered reads of data_fd stay coherent; the stripe locks keep them out
    // while it runs.
    st = PwritevFull(dfd, iov, w0, &done, what);
    if (st.ok()) {
      direct_bytes_ += data.size();
    } else if (st.err() == EINVAL && done == 0) {
      if (direct_ok_.exchange(false))
        LOG_WARN("{}: O_DIRECT write refused; target {} writes through the page cache", obj->path,
                 root_);
      st = PwritevFull(obj->data_fd, iov, w0, &done, what);
    }
  } else {
    st = PwritevFull(obj->data_fd, iov, w0, &done, what);
  }
  if (!st.ok()) {
    // Part of the range may hold new bytes. Bytes outside the range are intact
    // (verified above), so the checksum of what is on disk now is truthful.
    for (size_t i = 0; i < n; i++) {
      char* s = buf();
      auto m = ReadBlockAndMatch(*obj, b0 + i, next[i], s);
      if (m.ok() && *m == 0) next[i].cur = BlockChecksum(s, kB);
    }
    Status rs = WriteRecords(obj->csum_fd, b0, next, obj->path);
    if (!rs.ok()) LOG_ERROR("could not repair checksums after failed write: {}", rs.ToString());
    LOG_WARN("write failed: {}", st.ToString());
    return st;
  }
  // 3. Settle the records {new, new}: a later full-block overwrite then knows
  // what the disk holds without reading it.
  for (auto& r : next) r.prev = r.cur;
  Status ss = WriteRecords(obj->csum_fd, b0, next, obj->path);
  if (!ss.ok()) LOG_WARN("could not settle checksums (still valid): {}", ss.ToString());
  return Status::OK();
}

Status FileChunkStore::ReadSlot(uint64_t ino, uint32_t slot, uint64_t offset, uint64_t len,
                                char* out) {
  if (len == 0) return Status::OK();
  const uint64_t end = offset + len;
  if (end < offset || end > (uint64_t{1} << 62)) return Status::Invalid("read range out of bounds");
  auto got = Get(Key{ino, slot}, false);
  if (!got.ok()) {
    if (got.status().err() != ENOENT) return got.status();
    std::memset(out, 0, len);  // a missing object reads as zeros
    return Status::OK();
  }
  std::shared_ptr<Object> obj = *got;
  std::shared_lock<std::shared_mutex> ol(obj->mu);
  if (obj->deleted) {
    std::memset(out, 0, len);
    return Status::OK();
  }
  const uint64_t b0 = offset / kB, b1 = (end - 1) / kB;
  StripeGuard sg(obj->stripes, b0, b1, /*excl=*/false);
  std::vector<ChecksumRecord> recs;
  CFS_RETURN_IF_ERROR(ReadRecords(obj->csum_fd, b0, b1 - b0 + 1, &recs, obj->path));
  std::unique_ptr<char[]> scratch;

  uint64_t b = b0;
  while (b <= b1) {
    const uint64_t bs = b * kB, be = bs + kB;
    if (offset <= bs && end >= be) {
      // A run of fully covered blocks: one read straight into out.
      uint64_t e = b;
      while (e < b1 && end >= (e + 2) * kB) e++;
      char* dst = out + (bs - offset);
      const size_t want = (e - b + 1) * kB;
      CFS_ASSIGN_OR_RETURN(size_t r, PreadFull(obj->data_fd, dst, want, bs, "reading object " + obj->path));
      if (r < want) std::memset(dst + r, 0, want - r);
      for (uint64_t x = b; x <= e; x++) {
        const ChecksumRecord& rec = recs[x - b0];
        char* p = dst + (x - b) * kB;
        if (rec.cur == 0) {
          std::memset(p, 0, kB);
          continue;
        }
        uint64_t c = BlockChecksum(p, kB);
        if (c != rec.cur && c != rec.prev) return ChecksumMismatch(*obj, x);
      }
      b = e + 1;
      continue;
    }
    const uint64_t lo = std::max(offset, bs), hi = std::min(end, be);
    const ChecksumRecord& rec = recs[b - b0];
    if (rec.cur == 0) {
      std::memset(out + (lo - offset), 0, hi - lo);
    } else {
      if (!scratch) scratch.reset(new char[kB]);
      CFS_ASSIGN_OR_RETURN(uint64_t m, ReadBlockAndMatch(*obj, b, rec, scratch.get()));
      if (m == 0) return ChecksumMismatch(*obj, b);
      std::memcpy(out + (lo - offset), scratch.get() + (lo - bs), hi - lo);
    }
    b++;
  }
  return Status::OK();
}

Status FileChunkStore::FsyncSlot(uint64_t ino, uint32_t slot) {
  auto got = Get(Key{ino, slot}, false);
  if (!got.ok()) return got.status().err() == ENOENT ? Status::OK() : got.status();
  std::shared_ptr<Object> obj = *got;
  std::shared_lock<std::shared_mutex> ol(obj->mu);
  if (obj->deleted) return Status::OK();
  if (::fdatasync(obj->data_fd) != 0) return IoError(errno, "fdatasync of object " + obj->path);
  if (::fdatasync(obj->csum_fd) != 0)
    return IoError(errno, "fdatasync of checksums of " + obj->path);
  if (obj->dir_dirty.exchange(false)) {
    Status st = FsyncPath(ShardDir(ino));
    if (st.ok()) st = FsyncPath(objects_dir_);
    if (!st.ok()) {
      obj->dir_dirty = true;
      return st;
    }
  }
  return Status::OK();
}

Status FileChunkStore::TruncateSlot(uint64_t ino, uint32_t slot, uint64_t size) {
  if (size > (uint64_t{1} << 62)) return Status::Invalid("truncate size out of bounds");
  auto got = Get(Key{ino, slot}, false);
  // A missing object already reads as zeros at any length.
  if (!got.ok()) return got.status().err() == ENOENT ? Status::OK() : got.status();
  std::shared_ptr<Object> obj = *got;
  std::unique_lock<std::shared_mutex> ol(obj->mu);
  if (obj->deleted) return Status::OK();

  const uint64_t keep_blocks = (size + kB - 1) / kB;
  bool settle = false;
  ChecksumRecord last;
  const uint64_t lb = size / kB;
  if (size % kB != 0) {
    std::vector<ChecksumRecord> recs;
    CFS_RETURN_IF_ERROR(ReadRecords(obj->csum_fd, lb, 1, &recs, obj->path));
    if (recs[0].cur != 0) {
      std::unique_ptr<char[]> s(new char[kB]);
      CFS_ASSIGN_OR_RETURN(uint64_t m, ReadBlockAndMatch(*obj, lb, recs[0], s.get()));
      if (m == 0) {
        // Keep the old record: the block stays reported as corrupt, not blessed.
        LOG_WARN("truncate of {}: last block {} fails its checksum; left as is", obj->path, lb);
      } else {
        std::memset(s.get() + size % kB, 0, kB - size % kB);
        last = {BlockChecksum(s.get(), kB), m};
        CFS_RETURN_IF_ERROR(WriteRecords(obj->csum_fd, lb, {last}, obj->path));
        settle = true;
      }
    }
  }
  // Records beyond the end go first: a crash then leaves blocks that read as zeros.
  struct stat st;
  if (::fstat(obj->csum_fd, &st) != 0) return IoError(errno, "stat of checksums of " + obj->path);
  if (static_cast<uint64_t>(st.st_size) > keep_blocks * kChecksumRecordSize &&
      ::ftruncate(obj->csum_fd, static_cast<off_t>(keep_blocks * kChecksumRecordSize)) != 0)
    return IoError(errno, "truncating checksums of " + obj->path);
  if (::ftruncate(obj->data_fd, static_cast<off_t>(size)) != 0)
    return IoError(errno, "truncating object " + obj->path + " to " + std::to_string(size));
  if (settle) {
    last.prev = last.cur;
    Status ss = WriteRecords(obj->csum_fd, lb, {last}, obj->path);
    if (!ss.ok()) LOG_WARN("could not settle checksum after truncate: {}", ss.ToString());
  }
  return Status::OK();
}

Status FileChunkStore::DeleteSlot(uint64_t ino, uint32_t slot) {
  auto got = Get(Key{ino, slot}, false);
  if (!got.ok()) {
    if (got.status().err() != ENOENT) return got.status();
    std::string csum = ChecksumPath(ino, slot);  // a sidecar left alone by a crash
    if (::unlink(csum.c_str()) != 0 && errno != ENOENT)
      return Status::FromErrno(errno, "removing " + csum);
    return Status::OK();
  }
  std::shared_ptr<Object> obj = *got;
  std::unique_lock<std::shared_mutex> ol(obj->mu);
  if (obj->deleted) return Status::OK();
  if (::unlink(obj->path.c_str()) != 0 && errno != ENOENT)
    return Status::FromErrno(errno, "removing object " + obj->path);
  std::string csum = ChecksumPath(ino, slot);
  if (::unlink(csum.c_str()) != 0 && errno != ENOENT)
    return Status::FromErrno(errno, "removing " + csum);
  obj->deleted = true;
  Forget(Key{ino, slot}, obj.get());
  return Status::OK();
}

Result<ChunkStoreStats> FileChunkStore::Stats() {
  struct statvfs vfs;
  if (::statvfs(root_.c_str(), &vfs) != 0) return Status::FromErrno(errno, "statvfs of " + root_);
  ChunkStoreStats s;
  s.capacity = static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;
  s.free = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  return s;
}

}  // namespace cfs::storage
