#include "file_unit_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <functional>
#include <memory>

#include "common/checksum.h"
#include "common/logging.h"

namespace cfs::storage {
namespace {

constexpr uint32_t kRecordMagic = 0x31554345;  // "ECU1" little-endian
constexpr size_t kSumOffset = kUnitRecordSize - 8;
constexpr uint32_t kCopyPiece = 1u << 20;  // bounds the memory of a RANGE/XOR copy
constexpr uint64_t kMaxObjectBytes = uint64_t{1} << 62;

struct Fd {
  int fd = -1;
  Fd() = default;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

uint64_t Mix(uint64_t x) {  // splitmix64 finalizer
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::string V(UnitVer v) { return "{" + std::to_string(v.seq) + "," + std::to_string(v.tag) + "}"; }

std::string UnitName(uint64_t ino, uint64_t index) {
  return "unit " + std::to_string(index) + " of object " + std::to_string(ino);
}

Status IoError(int e, const std::string& what) {
  if (e == ENOSPC || e == EDQUOT)
    return Status::NoSpace("target full (no space left on device) while " + what);
  return Status::FromErrno(e, what);
}

Status CheckIndex(uint64_t index, uint32_t unit) {
  if (index >= kMaxObjectBytes / unit)
    return Status::Invalid("local unit index " + std::to_string(index) + " out of range");
  return Status::OK();
}

void Put64(char* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint64_t Get64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

}  // namespace

static_assert(std::endian::native == std::endian::little, "unit records are stored little-endian");

Status CheckEcUnit(uint32_t unit) {
  if (unit < kMinEcUnit || unit > kMaxEcUnit || !std::has_single_bit(unit))
    return Status::Invalid("unit size " + std::to_string(unit) +
                           " is not a power of two in [64 KiB, 64 MiB]");
  return Status::OK();
}

void EncodeUnitRecord(const FileUnitStore::Record& r, char out[kUnitRecordSize]) {
  std::memset(out, 0, kUnitRecordSize);
  std::memcpy(out, &kRecordMagic, 4);
  out[4] = static_cast<char>(r.cur_slot);
  out[5] = static_cast<char>(r.prev_slot);
  out[6] = r.prev_present ? 1 : 0;
  out[7] = static_cast<char>(r.unit_log2);
  Put64(out + 8, r.cur.seq);
  Put64(out + 16, r.cur.tag);
  Put64(out + 24, r.prev.seq);
  Put64(out + 32, r.prev.tag);
  Put64(out + kSumOffset, BlockChecksum(out, kSumOffset));
}

bool DecodeUnitRecord(const char in[kUnitRecordSize], FileUnitStore::Record* r) {
  *r = FileUnitStore::Record{};
  if (std::all_of(in, in + kUnitRecordSize, [](char c) { return c == 0; }))
    return true;  // a hole or past the end: never written
  if (Get64(in + kSumOffset) != BlockChecksum(in, kSumOffset)) return false;
  uint32_t magic;
  std::memcpy(&magic, in, 4);
  const auto cs = static_cast<uint8_t>(in[4]), ps = static_cast<uint8_t>(in[5]);
  if (magic != kRecordMagic || cs > FileUnitStore::kZeroSlot || ps > FileUnitStore::kZeroSlot)
    return false;
  r->cur_slot = cs;
  r->prev_slot = ps;
  r->prev_present = in[6] != 0;
  r->unit_log2 = static_cast<uint8_t>(in[7]);
  r->cur = {Get64(in + 8), Get64(in + 16)};
  r->prev = {Get64(in + 24), Get64(in + 32)};
  if (r->cur.seq == 0) r->cur_slot = FileUnitStore::kZeroSlot;
  if (!r->prev_present || r->prev.seq == 0) r->prev_slot = FileUnitStore::kZeroSlot;
  return true;
}

FileUnitStore::FileUnitStore(FileChunkStore* chunks) : chunks_(chunks) {}

std::string FileUnitStore::RecordPath(uint64_t ino) const { return chunks_->ObjectPath(ino) + ".ec"; }

std::shared_mutex& FileUnitStore::LockFor(uint64_t ino, uint64_t index) {
  return locks_[Mix(ino ^ Mix(index)) % kLockStripes];
}

void FileUnitStore::LockAll() {
  for (auto& l : locks_) l.lock();
}
void FileUnitStore::UnlockAll() {
  for (auto it = locks_.rbegin(); it != locks_.rend(); ++it) it->unlock();
}

Status FileUnitStore::Damaged(uint64_t ino, uint64_t index) {
  std::string msg = "version record of " + UnitName(ino, index) + " (" + RecordPath(ino) +
                    ") fails its checksum";
  return Status::Corruption(msg);
}

Result<FileUnitStore::Record> FileUnitStore::Load(uint64_t ino, uint64_t index, bool* damaged) {
  *damaged = false;
  const std::string path = RecordPath(ino);
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) {
    if (errno == ENOENT) return Record{};
    return IoError(errno, "opening " + path);
  }
  char buf[kUnitRecordSize] = {};
  size_t done = 0;
  while (done < kUnitRecordSize) {
    ssize_t r = ::pread(f.fd, buf + done, kUnitRecordSize - done,
                        static_cast<off_t>(index * kUnitRecordSize + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return IoError(errno, "reading " + path);
    }
    if (r == 0) break;  // short: the rest reads as zeros
    done += static_cast<size_t>(r);
  }
  Record rec;
  if (!DecodeUnitRecord(buf, &rec)) {
    *damaged = true;
    damaged_records_++;
    LOG_ERROR("version record of {} in {} fails its checksum", UnitName(ino, index), path);
    return Record{};
  }
  return rec;
}

Status FileUnitStore::Store(uint64_t ino, uint64_t index, const Record& r) {
  const std::string path = RecordPath(ino);
  Fd f;
  f.fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (f.fd < 0 && errno == ENOENT) {
    std::string shard = chunks_->ShardDir(ino);
    if (::mkdir(shard.c_str(), 0755) != 0 && errno != EEXIST)
      return IoError(errno, "creating directory " + shard);
    f.fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (f.fd >= 0) {
      std::lock_guard<std::mutex> g(created_mu_);
      created_.insert(ino);
    }
  }
  if (f.fd < 0) return IoError(errno, "opening " + path);
  char buf[kUnitRecordSize];
  EncodeUnitRecord(r, buf);
  size_t done = 0;
  while (done < kUnitRecordSize) {
    ssize_t w = ::pwrite(f.fd, buf + done, kUnitRecordSize - done,
                         static_cast<off_t>(index * kUnitRecordSize + done));
    if (w < 0) {
      if (errno == EINTR) continue;
      return IoError(errno, "writing the version record of " + UnitName(ino, index) + " to " + path);
    }
    if (w == 0) return IoError(ENOSPC, "writing " + path);
    done += static_cast<size_t>(w);
  }
  return Status::OK();
}

Status FileUnitStore::CopyPatch(uint64_t ino, uint64_t index, uint32_t unit, uint8_t from,
                                uint8_t to, bool xor_data, uint32_t offset, std::string_view data,
                                const std::function<Status()>& before_write) {
  const uint64_t base = index * unit;
  const uint32_t piece = std::min(unit, kCopyPiece);
  std::unique_ptr<char[]> buf(new (std::nothrow) char[piece]);
  if (!buf) return Status(ENOMEM, "no memory for a unit copy");
  const uint64_t d0 = offset, d1 = offset + data.size();
  for (uint64_t c = 0; c < unit; c += piece) {
    if (from == kZeroSlot) {
      std::memset(buf.get(), 0, piece);
    } else {
      CFS_RETURN_IF_ERROR(chunks_->ReadSlot(ino, from, base + c, piece, buf.get()));
    }
    const uint64_t lo = std::max<uint64_t>(c, d0), hi = std::min<uint64_t>(c + piece, d1);
    if (lo < hi) {
      char* dst = buf.get() + (lo - c);
      const char* src = data.data() + (lo - d0);
      if (xor_data) {
        for (uint64_t i = 0; i < hi - lo; i++) dst[i] ^= src[i];
      } else {
        std::memcpy(dst, src, hi - lo);
      }
    }
    if (c == 0 && before_write) CFS_RETURN_IF_ERROR(before_write());
    CFS_RETURN_IF_ERROR(chunks_->WriteSlot(ino, to, base + c, std::string_view(buf.get(), piece)));
  }
  return Status::OK();
}

Result<EcWriteResult> FileUnitStore::Write(const EcWrite& w) {
  CFS_RETURN_IF_ERROR(CheckEcUnit(w.unit));
  CFS_RETURN_IF_ERROR(CheckIndex(w.index, w.unit));
  const uint64_t len = w.data.size();
  switch (w.mode) {
    case EcMode::kFull:
      if (w.offset != 0 || len != w.unit)
        return Status::Invalid("EC_FULL needs offset 0 and length == unit (" + std::to_string(w.unit) +
                               "), got offset " + std::to_string(w.offset) + " length " +
                               std::to_string(len));
      break;
    case EcMode::kRange:
    case EcMode::kXor:
      if (len == 0 || w.offset + len > w.unit)
        return Status::Invalid("EC_RANGE/EC_XOR range [" + std::to_string(w.offset) + ", +" +
                               std::to_string(len) + ") is empty or exceeds the unit (" +
                               std::to_string(w.unit) + ")");
      break;
    case EcMode::kBump:
      if (len != 0 || w.offset != 0) return Status::Invalid("EC_BUMP carries no data");
      break;
  }
  if (w.version.seq == 0) return Status::Invalid("EC_WRITE version must have seq > 0");
  const bool repair = w.version == w.base;
  if (repair && (w.mode == EcMode::kXor || w.mode == EcMode::kBump))
    return Status::Invalid("a repair (version == base) must be EC_FULL or EC_RANGE");
  const uint8_t log2 = static_cast<uint8_t>(std::countr_zero(w.unit));

  std::unique_lock<std::shared_mutex> lk(LockFor(w.ino, w.index));
  bool damaged;
  CFS_ASSIGN_OR_RETURN(Record r, Load(w.ino, w.index, &damaged));
  if (damaged) {
    // Nothing of the unit can be trusted: it reads as {0,0} to writers, and
    // only a whole new unit can bring it back.
    if (!(w.base == UnitVer{})) return EcWriteResult{false, UnitVer{}};
    if (w.mode != EcMode::kFull) return Damaged(w.ino, w.index);
  } else if (r.unit_log2 != 0 && r.unit_log2 != log2) {
    return Status::Invalid("unit size " + std::to_string(w.unit) + " disagrees with the " +
                           std::to_string(uint64_t{1} << r.unit_log2) + " recorded for " +
                           UnitName(w.ino, w.index));
  }
  if (!(r.cur == w.base)) return EcWriteResult{false, r.cur};
  const uint64_t at = w.index * w.unit;
  // The slot the new content goes to: never the one holding cur.
  auto free_slot = [&]() -> uint8_t {
    if (r.cur_slot != kZeroSlot) return static_cast<uint8_t>(1 - r.cur_slot);
    if (r.prev_present && r.prev_slot != kZeroSlot) return static_cast<uint8_t>(1 - r.prev_slot);
    return 0;
  };

  if (repair) {
    if (r.cur_slot != kZeroSlot) {
      CFS_RETURN_IF_ERROR(chunks_->WriteSlot(w.ino, r.cur_slot, at + w.offset, w.data));
      return EcWriteResult{true, r.cur};
    }
    // cur is the zero content (bumped from a never-written unit): materialize it.
    const uint8_t to = free_slot();
    CFS_RETURN_IF_ERROR(
        CopyPatch(w.ino, w.index, w.unit, kZeroSlot, to, false, w.offset, w.data, nullptr));
    r.cur_slot = to;
    r.unit_log2 = log2;
    CFS_RETURN_IF_ERROR(Store(w.ino, w.index, r));
    return EcWriteResult{true, r.cur};
  }

  Record n;
  n.unit_log2 = log2;
  n.cur = w.version;
  n.prev = r.cur;
  n.prev_slot = r.cur_slot;
  n.prev_present = true;
  if (w.mode == EcMode::kBump) {
    n.cur_slot = r.cur_slot;  // both versions name the same content
    CFS_RETURN_IF_ERROR(Store(w.ino, w.index, n));
    return EcWriteResult{true, n.cur};
  }
  const uint8_t to = free_slot();
  auto drop_prev = [&]() -> Status {
    if (!r.prev_present || r.prev_slot != to) return Status::OK();
    // prev's content is about to be overwritten: forget it first, so that a
    // crash part-way never leaves a record naming half-written bytes. (Done
    // just before the first data write: a RANGE whose base fails its checksum
    // keeps prev.)
    Record inv = r;
    inv.prev = {};
    inv.prev_slot = kZeroSlot;
    inv.prev_present = false;
    inv.unit_log2 = log2;
    return Store(w.ino, w.index, inv);
  };
  if (w.mode == EcMode::kFull) {
    CFS_RETURN_IF_ERROR(drop_prev());
    CFS_RETURN_IF_ERROR(chunks_->WriteSlot(w.ino, to, at, w.data));
  } else {
    CFS_RETURN_IF_ERROR(CopyPatch(w.ino, w.index, w.unit, r.cur_slot, to, w.mode == EcMode::kXor,
                                  w.offset, w.data, drop_prev));
  }
  n.cur_slot = to;
  CFS_RETURN_IF_ERROR(Store(w.ino, w.index, n));  // only now does the new version exist
  return EcWriteResult{true, n.cur};
}

Result<UnitVer> FileUnitStore::Read(uint64_t ino, uint64_t index, uint32_t unit, UnitVer want,
                                    uint32_t offset, uint32_t len, char* out) {
  CFS_RETURN_IF_ERROR(CheckEcUnit(unit));
  CFS_RETURN_IF_ERROR(CheckIndex(index, unit));
  if (uint64_t{offset} + len > unit)
    return Status::Invalid("EC_READ range [" + std::to_string(offset) + ", +" + std::to_string(len) +
                           ") exceeds the unit (" + std::to_string(unit) + ")");
  std::shared_lock<std::shared_mutex> lk(LockFor(ino, index));
  bool damaged;
  CFS_ASSIGN_OR_RETURN(Record r, Load(ino, index, &damaged));
  if (damaged) return Damaged(ino, index);
  if (r.unit_log2 != 0 && (uint64_t{1} << r.unit_log2) != unit)
    return Status::Invalid("unit size " + std::to_string(unit) + " disagrees with the " +
                           std::to_string(uint64_t{1} << r.unit_log2) + " recorded for " +
                           UnitName(ino, index));
  UnitVer v;
  uint8_t slot;
  if (want.seq == 0 || want == r.cur) {
    v = r.cur;
    slot = r.cur_slot;
  } else if (r.prev_present && want == r.prev) {
    v = r.prev;
    slot = r.prev_slot;
  } else {
    return Status::Stale(UnitName(ino, index) + " holds " + V(r.cur) + " (prev " +
                         (r.prev_present ? V(r.prev) : std::string("none")) + "), not " + V(want));
  }
  if (len == 0) return v;
  if (v.seq == 0 || slot == kZeroSlot) {
    std::memset(out, 0, len);
    return v;
  }
  CFS_RETURN_IF_ERROR(chunks_->ReadSlot(ino, slot, index * unit + offset, len, out));
  return v;
}

Result<uint64_t> FileUnitStore::RecordedUnits(uint64_t ino) {
  struct stat st;
  const std::string path = RecordPath(ino);
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return uint64_t{0};
    return IoError(errno, "stat " + path);
  }
  return static_cast<uint64_t>(st.st_size) / kUnitRecordSize;
}

Status FileUnitStore::Versions(uint64_t ino, uint64_t first, uint32_t count,
                               std::vector<UnitState>* out) {
  if (count > kMaxEcVersionsCount)
    return Status::Invalid("EC_VERSIONS count " + std::to_string(count) + " exceeds " +
                           std::to_string(kMaxEcVersionsCount));
  if (first >= (kMaxObjectBytes / kMinEcUnit) || first + count > kMaxObjectBytes / kMinEcUnit)
    return Status::Invalid("EC_VERSIONS first unit " + std::to_string(first) + " out of range");
  out->assign(count, UnitState{});
  if (count == 0) return Status::OK();
  const std::string path = RecordPath(ino);
  std::vector<char> buf(size_t{count} * kUnitRecordSize, 0);
  {
    Fd f;
    f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (f.fd < 0) return errno == ENOENT ? Status::OK() : IoError(errno, "opening " + path);
    size_t done = 0;
    while (done < buf.size()) {
      ssize_t r = ::pread(f.fd, buf.data() + done, buf.size() - done,
                          static_cast<off_t>(first * kUnitRecordSize + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        return IoError(errno, "reading " + path);
      }
      if (r == 0) break;
      done += static_cast<size_t>(r);
    }
  }
  for (uint32_t i = 0; i < count; i++) {
    Record r;
    if (!DecodeUnitRecord(&buf[size_t{i} * kUnitRecordSize], &r)) {
      // Read without the unit's lock, so it may have raced a record write:
      // look again under the lock before calling it damaged.
      std::shared_lock<std::shared_mutex> lk(LockFor(ino, first + i));
      bool damaged;
      CFS_ASSIGN_OR_RETURN(r, Load(ino, first + i, &damaged));
      if (damaged) {
        (*out)[i].damaged = true;
        continue;
      }
    }
    (*out)[i].cur = r.cur;
    if (r.prev_present) (*out)[i].prev = r.prev;
  }
  return Status::OK();
}

Status FileUnitStore::Rollback(uint64_t ino, uint64_t index, uint32_t unit, UnitVer version) {
  CFS_RETURN_IF_ERROR(CheckEcUnit(unit));
  CFS_RETURN_IF_ERROR(CheckIndex(index, unit));
  std::unique_lock<std::shared_mutex> lk(LockFor(ino, index));
  bool damaged;
  CFS_ASSIGN_OR_RETURN(Record r, Load(ino, index, &damaged));
  if (damaged || version.seq == 0 || !(r.cur == version) || !r.prev_present) return Status::OK();
  Record n = r;
  n.cur = r.prev;
  n.cur_slot = r.prev_slot;
  n.prev = {};
  n.prev_slot = kZeroSlot;
  n.prev_present = false;
  return Store(ino, index, n);
}

Status FileUnitStore::ResetToEmpty(uint64_t ino, uint64_t index, uint32_t unit, UnitVer version) {
  CFS_RETURN_IF_ERROR(CheckEcUnit(unit));
  CFS_RETURN_IF_ERROR(CheckIndex(index, unit));
  std::unique_lock<std::shared_mutex> lk(LockFor(ino, index));
  bool damaged;
  CFS_ASSIGN_OR_RETURN(Record r, Load(ino, index, &damaged));
  if (!damaged && !(r.cur == version)) return Status::OK();
  Record n = r;
  n.cur = {};
  n.cur_slot = kZeroSlot;
  n.prev = {};
  n.prev_slot = kZeroSlot;
  n.prev_present = false;
  return Store(ino, index, n);
}

Status FileUnitStore::Fsync(uint64_t ino) {
  // Data before records: a record made durable never names unsynced data.
  CFS_RETURN_IF_ERROR(chunks_->FsyncSlot(ino, 0));
  CFS_RETURN_IF_ERROR(chunks_->FsyncSlot(ino, 1));
  const std::string path = RecordPath(ino);
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) return errno == ENOENT ? Status::OK() : IoError(errno, "opening " + path);
  if (::fdatasync(f.fd) != 0) return IoError(errno, "fdatasync of " + path);
  bool created;
  {
    std::lock_guard<std::mutex> g(created_mu_);
    created = created_.erase(ino) > 0;
  }
  if (created) {
    Status st = chunks_->SyncDirs(ino);
    if (!st.ok()) {
      std::lock_guard<std::mutex> g(created_mu_);
      created_.insert(ino);
      return st;
    }
  }
  return Status::OK();
}

Status FileUnitStore::Truncate(uint64_t ino, uint32_t unit, uint64_t size) {
  CFS_RETURN_IF_ERROR(CheckEcUnit(unit));
  if (size % unit != 0)
    return Status::Invalid("truncate of a versioned object to " + std::to_string(size) +
                           " bytes: not a whole number of " + std::to_string(unit) + "-byte units");
  if (size > kMaxObjectBytes) return Status::Invalid("truncate size out of bounds");
  LockAll();
  struct Unlock {
    FileUnitStore* s;
    ~Unlock() { s->UnlockAll(); }
  } unlock{this};
  // Records first: a crash after leaves units past the end never written (zeros).
  const uint64_t keep = (size / unit) * kUnitRecordSize;
  const std::string path = RecordPath(ino);
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (static_cast<uint64_t>(st.st_size) > keep && ::truncate(path.c_str(), static_cast<off_t>(keep)) != 0)
      return IoError(errno, "truncating " + path);
  } else if (errno != ENOENT) {
    return IoError(errno, "stat of " + path);
  }
  for (uint32_t slot : {0u, 1u}) {
    std::string sp = chunks_->ObjectPath(ino, slot);
    if (::stat(sp.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;
      return IoError(errno, "stat of " + sp);
    }
    if (static_cast<uint64_t>(st.st_size) > size)
      CFS_RETURN_IF_ERROR(chunks_->TruncateSlot(ino, slot, size));
  }
  return Status::OK();
}

Status FileUnitStore::Delete(uint64_t ino) {
  LockAll();
  struct Unlock {
    FileUnitStore* s;
    ~Unlock() { s->UnlockAll(); }
  } unlock{this};
  // Records first: a crash after leaves no record naming deleted data.
  const std::string path = RecordPath(ino);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return Status::FromErrno(errno, "removing " + path);
  {
    std::lock_guard<std::mutex> g(created_mu_);
    created_.erase(ino);
  }
  CFS_RETURN_IF_ERROR(chunks_->DeleteSlot(ino, 1));
  return chunks_->DeleteSlot(ino, 0);
}

}  // namespace cfs::storage
