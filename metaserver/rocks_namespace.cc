#include "rocks_namespace.h"

#include <sys/stat.h>
#include <xxhash.h>

#include <algorithm>
#include <ctime>
#include <set>

#include <rocksdb/options.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include "common/logging.h"
#include "meta_keys.h"

namespace cfs::meta {

namespace {

const char* const kCfNames[] = {"default", "inodes", "dentries", "xattrs", "orphans", "gc", "state", "degraded"};
const char kNextInoKey[] = "next_ino";

int64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::OK();
  if (s.IsNoSpace()) return Status(ENOSPC, what + ": " + s.ToString());
  return Status::IOError(what + ": " + s.ToString());
}

Status CheckName(const std::string& n) {
  if (n.size() > kNameMax) return Status(ENAMETOOLONG, "name longer than 255 bytes");
  if (n.empty() || n == "." || n == ".." || n.find('/') != std::string::npos ||
      n.find('\0') != std::string::npos)
    return Status::Invalid("invalid name \"" + n + "\"");
  return Status::OK();
}

bool IsDir(const pb::InodeRecord& r) { return S_ISDIR(r.attr().mode()); }
uint32_t TypeOf(uint32_t mode) { return mode >> 12; }

void Touch(pb::InodeRecord* r, int64_t now, bool mtime) {
  if (mtime) r->mutable_attr()->set_mtime_ns(now);
  r->mutable_attr()->set_ctime_ns(now);
}

// A new inode's record: all times `now`, generation 1.
pb::InodeRecord NewInodeRecord(uint64_t ino, uint32_t mode, uint32_t uid, uint32_t gid, uint32_t nlink,
                               int64_t now) {
  pb::InodeRecord rec;
  auto* a = rec.mutable_attr();
  a->set_ino(ino);
  a->set_mode(mode);
  a->set_uid(uid);
  a->set_gid(gid);
  a->set_nlink(nlink);
  a->set_atime_ns(now);
  a->set_mtime_ns(now);
  a->set_ctime_ns(now);
  a->set_generation(1);
  return rec;
}

std::string Ser(const google::protobuf::Message& m) {
  std::string s;
  m.SerializeToString(&s);
  return s;
}

}  // namespace

Result<WalSync> ParseWalSync(const std::string& s) {
  if (s == "group") return WalSync::kGroup;
  if (s == "none") return WalSync::kNone;
  return Status::Invalid("--wal-sync must be group or none, got \"" + s + "\"");
}

uint64_t RocksNamespace::NameHash(const std::string& name) {
  uint64_t h = XXH3_64bits(name.data(), name.size()) >> 1;
  return h < 3 ? 3 : h;
}

// One mutation in the making: inode records are loaded once and modified in
// place, so that aliases (same parent twice) stay coherent; Commit turns them
// into a single WriteBatch. Caller holds ns->mu_.
class Txn {
 public:
  explicit Txn(RocksNamespace* ns) : ns_(ns) {}

  Result<pb::InodeRecord*> Get(uint64_t ino) {
    auto it = cache_.find(ino);
    if (it != cache_.end()) return &it->second;
    CFS_ASSIGN_OR_RETURN(pb::InodeRecord rec, ns_->LoadInode(ino));
    return &cache_.emplace(ino, std::move(rec)).first->second;
  }
  Result<pb::InodeRecord*> GetDir(uint64_t ino) {
    CFS_ASSIGN_OR_RETURN(pb::InodeRecord * r, Get(ino));
    if (!IsDir(*r)) return Status(ENOTDIR, "inode " + std::to_string(ino) + " is not a directory");
    return r;
  }
  pb::InodeRecord* New(uint64_t ino, pb::InodeRecord rec) {
    dirty_.insert(ino);
    return &(cache_[ino] = std::move(rec));
  }
  void Dirty(uint64_t ino) { dirty_.insert(ino); }

  Result<std::optional<pb::DentryRecord>> GetDentry(uint64_t parent, const std::string& name) {
    std::string v;
    auto s = ns_->db_->Get(rocksdb::ReadOptions(), ns_->dentries_,
                           DentryKey(parent, RocksNamespace::NameHash(name), name), &v);
    if (s.IsNotFound()) return std::optional<pb::DentryRecord>();
    CFS_RETURN_IF_ERROR(FromRocks(s, "read dentry"));
    pb::DentryRecord d;
    if (!d.ParseFromString(v)) return Status::Corruption("bad dentry record under " + std::to_string(parent));
    return std::optional<pb::DentryRecord>(d);
  }
  void PutDentry(uint64_t parent, const std::string& name, uint64_t ino, uint32_t mode) {
    pb::DentryRecord d;
    d.set_ino(ino);
    d.set_type(TypeOf(mode));
    batch_.Put(ns_->dentries_, DentryKey(parent, RocksNamespace::NameHash(name), name), Ser(d));
  }
  void DelDentry(uint64_t parent, const std::string& name) {
    batch_.Delete(ns_->dentries_, DentryKey(parent, RocksNamespace::NameHash(name), name));
  }

  Result<bool> DirEmpty(uint64_t ino) {
    std::unique_ptr<rocksdb::Iterator> it(ns_->db_->NewIterator(rocksdb::ReadOptions(), ns_->dentries_));
    std::string prefix = InoKey(ino);
    it->Seek(prefix);
    if (it->Valid() && it->key().starts_with(prefix)) return false;
    CFS_RETURN_IF_ERROR(FromRocks(it->status(), "scan directory"));
    return true;
  }

  // True when `a` is `d` or one of d's ancestors (rename cycle check).
  Result<bool> IsAncestor(uint64_t a, uint64_t d) {
    uint64_t p = d;
    for (int guard = 0; guard < (1 << 20); guard++) {
      if (p == a) return true;
      if (p == kRootIno) return false;
      CFS_ASSIGN_OR_RETURN(pb::InodeRecord * r, Get(p));
      p = r->parent();
      if (p == 0) return Status::Corruption("directory " + std::to_string(d) + " has no parent");
    }
    return Status::Corruption("directory parent chain loops");
  }

  // Deletes an inode with its xattrs; a regular file's objects are queued for deletion.
  Status DeleteInode(uint64_t ino) {
    CFS_ASSIGN_OR_RETURN(pb::InodeRecord * r, Get(ino));
    std::string key = InoKey(ino);
    batch_.Delete(ns_->inodes_, key);
    if (r->orphan()) {
      batch_.Delete(ns_->orphans_, key);
      d_orphans_--;
    }
    std::unique_ptr<rocksdb::Iterator> it(ns_->db_->NewIterator(rocksdb::ReadOptions(), ns_->xattrs_));
    for (it->Seek(key); it->Valid() && it->key().starts_with(key); it->Next())
      batch_.Delete(ns_->xattrs_, it->key());
    CFS_RETURN_IF_ERROR(FromRocks(it->status(), "scan xattrs"));
    uint32_t mode = r->attr().mode();
    if (S_ISREG(mode) && r->attr().layout().targets_size() > 0) {
      pb::Layout gc;
      *gc.mutable_targets() = r->attr().layout().targets();
      batch_.Put(ns_->gc_, key, Ser(gc));
      d_pending_++;
    }
    d_inodes_--;
    if (S_ISREG(mode)) d_files_--;
    if (S_ISDIR(mode)) d_dirs_--;
    dirty_.erase(ino);
    deleted_.insert(ino);
    return Status::OK();
  }

  // Drops one link of a non-directory; at zero it becomes an orphan while open, else goes.
  Status DropLink(uint64_t ino, int64_t now) {
    CFS_ASSIGN_OR_RETURN(pb::InodeRecord * r, Get(ino));
    auto* a = r->mutable_attr();
    if (a->nlink() > 0) a->set_nlink(a->nlink() - 1);
    a->set_ctime_ns(now);
    if (a->nlink() > 0) {
      Dirty(ino);
      return Status::OK();
    }
    auto it = ns_->opens_.find(ino);
    if (it != ns_->opens_.end() && it->second > 0) {
      r->set_orphan(1);
      batch_.Put(ns_->orphans_, InoKey(ino), "");
      d_orphans_++;
      Dirty(ino);
      return Status::OK();
    }
    return DeleteInode(ino);
  }

  void CountNew(uint32_t mode) {
    d_inodes_++;
    if (S_ISREG(mode)) d_files_++;
    if (S_ISDIR(mode)) d_dirs_++;
  }

  // The directory `parent`, once `name` is a valid name not in it yet.
  Result<pb::InodeRecord*> GetDirForNewName(uint64_t parent, const std::string& name) {
    CFS_RETURN_IF_ERROR(CheckName(name));
    CFS_ASSIGN_OR_RETURN(pb::InodeRecord * p, GetDir(parent));
    CFS_ASSIGN_OR_RETURN(auto existing, GetDentry(parent, name));
    if (existing) return Status::Exists("\"" + name + "\" exists");
    return p;
  }

  // Adds the new inode rec (numbered next_ino_) as `name` in directory p, and
  // moves the inode counter on; the caller commits, then sets next_ino_.
  void AddNewInode(uint64_t parent, pb::InodeRecord* p, const std::string& name, const pb::InodeRecord& rec,
                   int64_t now) {
    const uint64_t ino = rec.attr().ino();
    New(ino, rec);
    CountNew(rec.attr().mode());
    PutDentry(parent, name, ino, rec.attr().mode());
    Touch(p, now, true);
    Dirty(parent);
    batch_.Put(ns_->state_, kNextInoKey, InoKey(ino + 1));
  }

  rocksdb::WriteBatch& batch() { return batch_; }

  // Writes everything as one batch; returns its sequence number.
  Result<uint64_t> Commit() {
    for (uint64_t ino : dirty_) {
      if (deleted_.count(ino)) continue;
      batch_.Put(ns_->inodes_, InoKey(ino), Ser(cache_[ino]));
    }
    if (batch_.Count() == 0) return uint64_t(0);
    CFS_ASSIGN_OR_RETURN(uint64_t seq, ns_->WriteLocked(&batch_));
    auto& c = ns_->counters_;
    c.inodes += d_inodes_;
    c.files += d_files_;
    c.directories += d_dirs_;
    c.pending_deletes += d_pending_;
    c.orphans += d_orphans_;
    return seq;
  }

 private:
  RocksNamespace* ns_;
  rocksdb::WriteBatch batch_;
  std::map<uint64_t, pb::InodeRecord> cache_;
  std::set<uint64_t> dirty_, deleted_;
  int64_t d_inodes_ = 0, d_files_ = 0, d_dirs_ = 0, d_pending_ = 0, d_orphans_ = 0;
};

// ---------------------------------------------------------------- open/close

Result<std::unique_ptr<RocksNamespace>> RocksNamespace::Open(const std::string& dir,
                                                            const RocksOptions& opts) {
  std::unique_ptr<RocksNamespace> ns(new RocksNamespace());
  CFS_RETURN_IF_ERROR(ns->Init(dir, opts));
  return ns;
}

Status RocksNamespace::Init(const std::string& dir, const RocksOptions& opts) {
  wal_sync_ = opts.wal_sync;
  rocksdb::DBOptions dbo;
  dbo.create_if_missing = opts.create_if_missing;
  dbo.create_missing_column_families = opts.create_if_missing;
  dbo.max_background_jobs = 2;
  dbo.keep_log_file_num = 4;
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const char* n : kCfNames) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(dbo, dir, cfs, &handles_, &raw);
  if (!s.ok()) return FromRocks(s, "open metadata db " + dir);
  db_.reset(raw);
  inodes_ = handles_[1];
  dentries_ = handles_[2];
  xattrs_ = handles_[3];
  orphans_ = handles_[4];
  gc_ = handles_[5];
  state_ = handles_[6];
  degraded_ = handles_[7];
  next_token_ = static_cast<uint64_t>(NowNs());

  std::string v;
  s = db_->Get(rocksdb::ReadOptions(), state_, kNextInoKey, &v);
  if (s.IsNotFound()) {
    // First start: the root directory.
    int64_t now = NowNs();
    pb::InodeRecord root;
    auto* a = root.mutable_attr();
    a->set_ino(kRootIno);
    a->set_mode(S_IFDIR | 0755);
    a->set_nlink(2);
    a->set_atime_ns(now);
    a->set_mtime_ns(now);
    a->set_ctime_ns(now);
    a->set_generation(1);
    root.set_parent(kRootIno);
    rocksdb::WriteBatch b;
    b.Put(inodes_, InoKey(kRootIno), Ser(root));
    b.Put(state_, kNextInoKey, InoKey(2));
    b.Put(state_, "format", "cfs-meta 1");
    rocksdb::WriteOptions wo;
    wo.sync = true;
    CFS_RETURN_IF_ERROR(FromRocks(db_->Write(wo, &b), "create root"));
    LOG_INFO("created a new file system in {}", dir);
  } else {
    CFS_RETURN_IF_ERROR(FromRocks(s, "read next_ino"));
    if (v.size() != 8) return Status::Corruption("bad next_ino record");
  }
  return LoadCounters();
}

Status RocksNamespace::LoadCounters() {
  std::lock_guard l(mu_);
  counters_ = NamespaceCounters();
  std::string v;
  CFS_RETURN_IF_ERROR(FromRocks(db_->Get(rocksdb::ReadOptions(), state_, kNextInoKey, &v), "next_ino"));
  next_ino_ = GetBE64(v);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), inodes_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    pb::InodeRecord r;
    if (it->key().size() != 8 || !r.ParseFromArray(it->value().data(), int(it->value().size())))
      return Status::Corruption("bad inode record");
    counters_.inodes++;
    if (S_ISREG(r.attr().mode())) counters_.files++;
    if (S_ISDIR(r.attr().mode())) counters_.directories++;
    next_ino_ = std::max(next_ino_, GetBE64(it->key().ToStringView()) + 1);
  }
  CFS_RETURN_IF_ERROR(FromRocks(it->status(), "scan inodes"));
  it.reset(db_->NewIterator(rocksdb::ReadOptions(), gc_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) counters_.pending_deletes++;
  it.reset(db_->NewIterator(rocksdb::ReadOptions(), orphans_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) counters_.orphans++;
  it.reset(db_->NewIterator(rocksdb::ReadOptions(), degraded_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) counters_.degraded++;
  return FromRocks(it->status(), "scan degraded");
}

RocksNamespace::~RocksNamespace() {
  if (db_) {
    db_->FlushWAL(true);
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
    db_->Close();
  }
}

Status RocksNamespace::FlushMemtables() {
  rocksdb::FlushOptions fo;
  fo.wait = true;
  return FromRocks(db_->Flush(fo, handles_), "flush");
}

Result<uint64_t> RocksNamespace::WriteLocked(rocksdb::WriteBatch* batch) {
  rocksdb::WriteOptions wo;
  wo.sync = false;
  CFS_RETURN_IF_ERROR(FromRocks(db_->Write(wo, batch), "write metadata"));
  return db_->GetLatestSequenceNumber();
}

// Group commit: whoever finds no sync running syncs the WAL up to the newest
// sequence number; everyone whose write is covered by it returns together.
Status RocksNamespace::WaitDurable(uint64_t seq) {
  if (wal_sync_ == WalSync::kNone || seq == 0) return Status::OK();
  std::unique_lock l(sync_mu_);
  while (synced_seq_ < seq) {
    if (syncing_) {
      sync_cv_.wait(l);
      continue;
    }
    syncing_ = true;
    uint64_t upto = db_->GetLatestSequenceNumber();
    l.unlock();
    auto s = db_->SyncWAL();
    l.lock();
    syncing_ = false;
    if (s.ok()) synced_seq_ = std::max(synced_seq_, upto);
    sync_cv_.notify_all();
    if (!s.ok()) return FromRocks(s, "sync metadata WAL");
  }
  return Status::OK();
}

Result<pb::InodeRecord> RocksNamespace::LoadInode(uint64_t ino) {
  std::string v;
  auto s = db_->Get(rocksdb::ReadOptions(), inodes_, InoKey(ino), &v);
  if (s.IsNotFound()) return Status::Stale("no inode " + std::to_string(ino));
  CFS_RETURN_IF_ERROR(FromRocks(s, "read inode"));
  pb::InodeRecord r;
  if (!r.ParseFromString(v)) return Status::Corruption("bad inode record " + std::to_string(ino));
  return r;
}

// ---------------------------------------------------------------- reads

// A directory's default layout (unit/k/m, no targets) rides in attr.layout so
// clients (cfs getstripe DIR) can show it without another call.
static pb::Attr AttrOf(const pb::InodeRecord& r) {
  pb::Attr a = r.attr();
  if (IsDir(r) && r.has_dir_layout()) *a.mutable_layout() = r.dir_layout();
  return a;
}

Result<pb::Attr> RocksNamespace::GetAttr(uint64_t ino) {
  CFS_ASSIGN_OR_RETURN(pb::InodeRecord r, LoadInode(ino));
  return AttrOf(r);
}

Result<pb::Attr> RocksNamespace::Lookup(uint64_t parent, const std::string& name) {
  CFS_ASSIGN_OR_RETURN(pb::InodeRecord p, LoadInode(parent));
  if (!IsDir(p)) return Status(ENOTDIR, "inode " + std::to_string(parent) + " is not a directory");
  if (name == ".") return AttrOf(p);
  if (name == "..") return GetAttr(p.parent() ? p.parent() : kRootIno);
  CFS_RETURN_IF_ERROR(CheckName(name));
  std::string v;
  auto s = db_->Get(rocksdb::ReadOptions(), dentries_, DentryKey(parent, NameHash(name), name), &v);
  if (s.IsNotFound()) return Status::NotFound("no entry \"" + name + "\" in " + std::to_string(parent));
  CFS_RETURN_IF_ERROR(FromRocks(s, "read dentry"));
  pb::DentryRecord d;
  if (!d.ParseFromString(v)) return Status::Corruption("bad dentry record");
  return GetAttr(d.ino());
}

Result<std::string> RocksNamespace::Readlink(uint64_t ino) {
  CFS_ASSIGN_OR_RETURN(pb::InodeRecord r, LoadInode(ino));
  if (!S_ISLNK(r.attr().mode())) return Status::Invalid("inode " + std::to_string(ino) + " is not a symlink");
  return r.symlink_target();
}

Status RocksNamespace::Readdir(const pb::ReaddirRequest& req, pb::ReaddirResponse* resp) {
  CFS_ASSIGN_OR_RETURN(pb::InodeRecord dir, LoadInode(req.ino()));
  if (!IsDir(dir)) return Status(ENOTDIR, "inode " + std::to_string(req.ino()) + " is not a directory");
  uint32_t max = req.max_entries() == 0 ? 1024 : std::min<uint32_t>(req.max_entries(), 65536);
  std::string prefix = InoKey(req.ino());
  std::string start = prefix;
  PutBE64(&start, req.cookie() >= 3 ? req.cookie() + 1 : 0);
  rocksdb::ReadOptions ro;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, dentries_));
  uint64_t last_hash = 0;
  for (it->Seek(start); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    std::string_view key = it->key().ToStringView();
    if (key.size() < 16) return Status::Corruption("bad dentry key");
    uint64_t hash = GetBE64(key, 8);
    // Entries that share a hash share a cookie: never split them across pages.
    if (uint32_t(resp->entries_size()) >= max && hash != last_hash) return Status::OK();
    pb::DentryRecord d;
    if (!d.ParseFromArray(it->value().data(), int(it->value().size())))
      return Status::Corruption("bad dentry record");
    auto* e = resp->add_entries();
    e->set_name(std::string(key.substr(16)));
    e->set_ino(d.ino());
    e->set_type(d.type());
    e->set_cookie(hash);
    if (req.plus()) {
      auto a = GetAttr(d.ino());
      if (a.ok()) *e->mutable_attr() = *a;
    }
    last_hash = hash;
  }
  CFS_RETURN_IF_ERROR(FromRocks(it->status(), "readdir"));
  resp->set_eof(true);
  return Status::OK();
}

// ---------------------------------------------------------------- mutations

Result<pb::Attr> RocksNamespace::SetAttr(const pb::SetattrRequest& req) {
  uint64_t seq;
  pb::Attr out;
  {
    std::lock_guard l(mu_);
    Txn t(this);
    CFS_ASSIGN_OR_RETURN(pb::InodeRecord * r, t.Get(req.ino()));
    auto* a = r->mutable_attr();
    int64_t now = NowNs();
    uint32_t v = req.valid();
    if (v & pb::SETATTR_SIZE) {
      if (S_ISDIR(a->mode())) return Status(EISDIR, "cannot set the size of a directory");
      if (!S_ISREG(a->mode())) return Status::Invalid("size applies to regular files only");
      a->set_size(req.size());
      a->set_mtime_ns(now);
    }
    if (v & pb::SETATTR_MODE) a->set_mode((a->mode() & S_IFMT) | (req.mode() & 07777));
    if (v & pb::SETATTR_UID) a->set_uid(req.uid());
    if (v & pb::SETATTR_GID) a->set_gid(req.gid());
    if (v & pb::SETATTR_ATIME) a->set_atime_ns(req.atime_ns());
    if (v & pb::SETATTR_MTIME) a->set_mtime_ns(req.mtime_ns());
    if (v & pb::SETATTR_ATIME_NOW) a->set_atime_ns(now);
    if (v & pb::SETATTR_MTIME_NOW) a->set_mtime_ns(now);
    a->set_ctime_ns(now);
    t.Dirty(req.ino());
    out = *a;
    CFS_ASSIGN_OR_RETURN(seq, t.Commit());
  }
  CFS_RETURN_IF_ERROR(WaitDurable(seq));
  return out;
}

Result<CreateResult> RocksNamespace::Create(const pb::CreateRequest& req, const LayoutChooser& choose) {
  uint64_t seq;
  CreateResult out;
  {
    std::lock_guard l(mu_);
    Txn t(this);
    CFS_RETURN_IF_ERROR(CheckName(req.name()));
    CFS_ASSIGN_OR_RETURN(pb::InodeRecord * p, t.GetDir(req.parent()));
    CFS_ASSIGN_OR_RETURN(auto existing, t.GetDentry(req.parent(), req.name()));
    if (existing) {
      if (req.exclusive()) return Status::Exists("\"" + req.name() + "\" exists");
      CFS_ASSIGN_OR_RETURN(pb::InodeRecord * r, t.Get(existing->ino()));
      if (S_ISDIR(r->attr().mode())) return Status(EISDIR, "\"" + req.name() + "\" is a directory");
      if (!S_ISREG(r->attr().mode())) return Status::Exists("\"" + req.name() + "\" exists");
      if (req.client_id() != 0) opens_[existing->ino()]++;
      out.attr = r->attr();
      out.created = false;
      return out;
    }
    uint32_t mode = req.mode();
    if ((mode & S_IFMT) == 0) mode |= S_IFREG;
    uint32_t type = mode & S_IFMT;
    if (type != S_IFREG && type != S_IFIFO && type != S_IFSOCK && type != S_IFCHR && type != S_IFBLK)
      return Status::Invalid("create: unsupported file type");
    pb::Layout layout;
    if (type == S_IFREG) {
      CFS_ASSIGN_OR_RETURN(layout, choose(p->has_dir_layout() ? &p->dir_layout() : nullptr));
    }
    int64_t now = NowNs();
    uint64_t ino = next_ino_;
    pb::InodeRecord rec = NewInodeRecord(
        ino, mode, req.uid(), (p->attr().mode() & S_ISGID) ? p->attr().gid() : req.gid(), 1, now);
    rec.mutable_attr()->set_rdev(req.rdev());
    if (type == S_IFREG) *rec.mutable_attr()->mutable_layout() = layout;
    t.AddNewInode(req.parent(), p, req.name(), rec, now);
    CFS_ASSIGN_OR_RETURN(seq, t.Commit());
    next_ino_ = ino + 1;
    if (req.client_id() != 0) opens_[ino]++;
    out.attr = rec.attr();
    out.created = true;
  }
  Status s = WaitDurable(seq);
  if (!s.ok()) return s;
  return out;
}

Result<pb::Attr> RocksNamespace::Mkdir(const pb::MkdirRequest& req) {
  uint64_t seq;
  pb::Attr out;
  {
    std::lock_guard l(mu_);
    Txn t(this);
    CFS_ASSIGN_OR_RETURN(pb::InodeRecord * p, t.GetDirForNewName(req.parent(), req.name()));
    int64_t now = NowNs();
    uint64_t ino = next_ino_;
    bool sgid = p->attr().mode() & S_ISGID;
    pb::InodeRecord rec = NewInodeRecord(ino, S_IFDIR | (req.mode() & 07777) | (sgid ? S_ISGID : 0), req.uid(),
                                         sgid ? p->attr().gid() : req.gid(), 2, now);
    rec.set_parent(req.parent());
    if (p->has_dir_layout()) *rec.mutable_dir_layout() = p->dir_layout();
    p->mutable_attr()->set_nlink(p->attr().nlink() + 1);  // the new ".."
    t.AddNewInode(req.parent(), p, req.name(), rec, now);
    CFS_ASSIGN_OR_RETURN(seq, t.Commit());
    next_ino_ = ino + 1;
    out = rec.attr();
  }
  CFS_RETURN_IF_ERROR(WaitDurable(seq));
  return out;
}

Status RocksNamespace::Unlink(uint64_t parent, const std::string& name) {
  uint64_t seq;
  {
    std::lock_guard l(mu_);
    Txn t(this);
    CFS_RETURN_IF_ERROR(CheckName(name));
    CFS_ASSIGN_OR_RETURN(pb::InodeRecord * p, t.GetDir(parent));
    CFS_ASSIGN_OR_RETURN(auto d, t.GetDentry(parent, name));
    if (!d) return Status::NotFound("no entry \"" + name + "\"");
    CFS_ASSIGN_OR_RETURN(pb::InodeRecord * r, t.Get(d->ino()));
    if (IsDir(*r)) return Status(EISDIR, "\"" + name + "\" is a directory");
    int64_t now = NowNs();
    t.DelDentry(parent, name);
    Touch(p, now, true);
    t.Dirty(parent);
    CFS_RETURN_IF_ERROR(t.DropLink(d->ino(), now));
    CFS_ASSIGN_OR_RETURN(seq, t.Commit());
  }
  return WaitDurable(seq);
}

Status RocksNamespace::Rmdir(uint64_t parent, const std::string& name) {
  uint64_t seq;
  {
    std::lock_guard l(mu_);
    Txn t(this);
    CFS_RETURN_IF_ERROR(CheckName(name));
    CFS_ASSIGN_OR_RETURN(pb::InodeRecord * p, t.GetDir(parent));
    CFS_ASSIGN_OR_RETURN(auto d, t.GetDentry(parent, name));
    if (!d) return Status::NotFound("no entry \"" + name + "\"");
    CFS_ASSIGN_OR_RETURN(pb::InodeRecord * r, t.Get(d->ino()));
    if (!IsDir(*r)) return Status(ENOTDIR, "\"" + name + "\" is not a directory");
    CFS_ASSIGN_OR_RETURN(bool empty, t.DirEmpty(d->ino()));
    if (!empty) return Status(ENOTEMPTY, "directory \"" + name + "\" is not empty");
    int64_t now = NowNs();
    t.DelDentry(parent, name);
    CFS_RETURN_IF_ERROR(t.DeleteInode(d->ino()));
    p->mutable_attr()->set_nlink(p->attr().nlink() - 1);
    Touch(p, now, true);
    t.Dirty(parent);
    CFS_ASSIGN_OR_RETURN(seq, t.Commit());
  }
  return WaitDurable(seq);
}

Status RocksNamespace::Rename(const pb::RenameRequest& req) {
  uint64_t seq;
  {
    std::lock_guard l(mu_);
    Txn t(this);
    const uint32_t flags = req.flags();
    if ((flags & ~(kRenameNoReplace | kRenameExchange)) != 0 ||
        flags == (kRenameNoReplace | kRenameExchange))
      return Status::Invalid("rename: unsupported flags " + std::to_string(flags));
    CFS_RETURN_IF_ERROR(CheckName(req.name()));
    CFS_RETURN_IF_ERROR(CheckName(req.new_name()));
    const uint64_t sp_ino = req.parent(), dp_ino = req.new_parent();
    CFS_ASSIGN_OR_RETURN(pb::InodeRecord * sp, t.GetDir(sp_ino));
    CFS_ASSIGN_OR_RETURN(pb::InodeRecord * dp, t.GetDir(dp_ino));
    CFS_ASSIGN_OR_RETURN(auto sd, t.GetDentry(sp_ino, req.name()));
    if (!sd) return Status::NotFound("no entry \"" + req.name() + "\"");
    CFS_ASSIGN_OR_RETURN(auto dd, t.GetDentry(dp_ino, req.new_name()));
    if (sp_ino == dp_ino && req.name() == req.new_name()) {
      if (flags & kRenameNoReplace) return Status::Exists("\"" + req.new_name() + "\" exists");
      return Status::OK();
    }
    CFS_ASSIGN_OR_RETURN(pb::InodeRecord * src, t.Get(sd->ino()));
    const bool src_dir = IsDir(*src);
    int64_t now = NowNs();
    if (src_dir) {
      CFS_ASSIGN_OR_RETURN(bool under, t.IsAncestor(sd->ino(), dp_ino));
      if (under) return Status::Invalid("cannot move a directory under itself");
    }
    if (flags & kRenameExchange) {
      if (!dd) return Status::NotFound("no entry \"" + req.new_name() + "\"");
      if (dd->ino() == sd->ino()) return Status::OK();
      CFS_ASSIGN_OR_RETURN(pb::InodeRecord * dst, t.Get(dd->ino()));
      const bool dst_dir = IsDir(*dst);
      if (dst_dir) {
        CFS_ASSIGN_OR_RETURN(bool under, t.IsAncestor(dd->ino(), sp_ino));
        if (under) return Status::Invalid("cannot move a directory under itself");
      }
      t.PutDentry(sp_ino, req.name(), dd->ino(), dst->attr().mode());
      t.PutDentry(dp_ino, req.new_name(), sd->ino(), src->attr().mode());
      if (sp_ino != dp_ino) {
        if (src_dir) {
          sp->mutable_attr()->set_nlink(sp->attr().nlink() - 1);
          dp->mutable_attr()->set_nlink(dp->attr().nlink() + 1);
          src->set_parent(dp_ino);
        }
        if (dst_dir) {
          dp->mutable_attr()->set_nlink(dp->attr().nlink() - 1);
          sp->mutable_attr()->set_nlink(sp->attr().nlink() + 1);
          dst->set_parent(sp_ino);
        }
      }
      Touch(dst, now, false);
      t.Dirty(dd->ino());
    } else {
      if (dd) {
        if (flags & kRenameNoReplace) return Status::Exists("\"" + req.new_name() + "\" exists");
        if (dd->ino() == sd->ino()) return Status::OK();  // two links to one inode: no-op
        CFS_ASSIGN_OR_RETURN(pb::InodeRecord * dst, t.Get(dd->ino()));
        const bool dst_dir = IsDir(*dst);
        if (src_dir && !dst_dir) return Status(ENOTDIR, "\"" + req.new_name() + "\" is not a directory");
        if (!src_dir && dst_dir) return Status(EISDIR, "\"" + req.new_name() + "\" is a directory");
        if (dst_dir) {
          CFS_ASSIGN_OR_RETURN(bool empty, t.DirEmpty(dd->ino()));
          if (!empty) return Status(ENOTEMPTY, "directory \"" + req.new_name() + "\" is not empty");
          CFS_RETURN_IF_ERROR(t.DeleteInode(dd->ino()));
          dp->mutable_attr()->set_nlink(dp->attr().nlink() - 1);
        } else {
          CFS_RETURN_IF_ERROR(t.DropLink(dd->ino(), now));
        }
      }
      t.DelDentry(sp_ino, req.name());
      t.PutDentry(dp_ino, req.new_name(), sd->ino(), src->attr().mode());
      if (src_dir && sp_ino != dp_ino) {
        sp->mutable_attr()->set_nlink(sp->attr().nlink() - 1);
        dp->mutable_attr()->set_nlink(dp->attr().nlink() + 1);
        src->set_parent(dp_ino);
      }
    }
    Touch(src, now, false);
    t.Dirty(sd->ino());
    Touch(sp, now, true);
    Touch(dp, now, true);
    t.Dirty(sp_ino);
    t.Dirty(dp_ino);
    CFS_ASSIGN_OR_RETURN(seq, t.Commit());
  }
  return WaitDurable(seq);
}

Result<pb::Attr> RocksNamespace::Link(uint64_t ino, uint64_t new_parent, const std::string& name) {
  uint64_t seq;
  pb::Attr out;
  {
    std::lock_guard l(mu_);
    Txn t(this);
    CFS_RETURN_IF_ERROR(CheckName(name));
    CFS_ASSIGN_OR_RETURN(pb::InodeRecord * r, t.Get(ino));
    if (IsDir(*r)) return Status(EPERM, "cannot hard-link a directory");
    if (r->attr().nlink() == 0 || r->orphan()) return Status::NotFound("inode was unlinked");
    CFS_ASSIGN_OR_RETURN(pb::InodeRecord * p, t.GetDirForNewName(new_parent, name));
    int64_t now = NowNs();
    r->mutable_attr()->set_nlink(r->attr().nlink() + 1);
    Touch(r, now, false);
    t.Dirty(ino);
    t.PutDentry(new_parent, name, ino, r->attr().mode());
    Touch(p, now, true);
    t.Dirty(new_parent);
    out = r->attr();
    CFS_ASSIGN_OR_RETURN(seq, t.Commit());
  }
  CFS_RETURN_IF_ERROR(WaitDurable(seq));
  return out;
}

Result<pb::Attr> RocksNamespace::Symlink(const pb::SymlinkRequest& req) {
  uint64_t seq;
  pb::Attr out;
  {
    std::lock_guard l(mu_);
    Txn t(this);
    CFS_RETURN_IF_ERROR(CheckName(req.name()));
    if (req.target().empty()) return Status::NotFound("empty symlink target");
    if (req.target().size() > kSymlinkMax) return Status(ENAMETOOLONG, "symlink target too long");
    CFS_ASSIGN_OR_RETURN(pb::InodeRecord * p, t.GetDirForNewName(req.parent(), req.name()));
    int64_t now = NowNs();
    uint64_t ino = next_ino_;
    pb::InodeRecord rec = NewInodeRecord(
        ino, S_IFLNK | 0777, req.uid(), (p->attr().mode() & S_ISGID) ? p->attr().gid() : req.gid(), 1, now);
    rec.mutable_attr()->set_size(req.target().size());
    rec.set_symlink_target(req.target());
    t.AddNewInode(req.parent(), p, req.name(), rec, now);
    CFS_ASSIGN_OR_RETURN(seq, t.Commit());
    next_ino_ = ino + 1;
    out = rec.attr();
  }
  CFS_RETURN_IF_ERROR(WaitDurable(seq));
  return out;
}

Status RocksNamespace::SetDirLayout(uint64_t ino, const pb::Layout& layout) {
  uint64_t seq;
  {
    std::lock_guard l(mu_);
    Txn t(this);
    CFS_ASSIGN_OR_RETURN(pb::InodeRecord * r, t.GetDir(ino));
    if (layout.unit() == 0 && layout.k() == 0 && layout.m() == 0) {
      r->clear_dir_layout();
    } else {
      auto* dl = r->mutable_dir_layout();
      dl->Clear();
      dl->set_unit(layout.unit());
      dl->set_k(layout.k());
      dl->set_m(layout.m());
    }
    Touch(r, NowNs(), false);
    t.Dirty(ino);
    CFS_ASSIGN_OR_RETURN(seq, t.Commit());
  }
  return WaitDurable(seq);
}

// ---------------------------------------------------------------- opens

Result<pb::Attr> RocksNamespace::Open(uint64_t ino, uint64_t client_id) {
  std::lock_guard l(mu_);
  CFS_ASSIGN_OR_RETURN(pb::InodeRecord r, LoadInode(ino));
  opens_[ino]++;
  return r.attr();
}

Result<pb::Attr> RocksNamespace::Close(const pb::CloseRequest& req) {
  uint64_t seq;
  pb::Attr out;
  {
    std::lock_guard l(mu_);
    Txn t(this);
    auto it = opens_.find(req.ino());
    uint32_t left = 0;
    if (it != opens_.end()) {
      left = it->second > 0 ? it->second - 1 : 0;
      if (left == 0) opens_.erase(it); else it->second = left;
    }
    CFS_ASSIGN_OR_RETURN(pb::InodeRecord * r, t.Get(req.ino()));
    auto* a = r->mutable_attr();
    if (req.has_size() && (req.size() > a->size() || req.mtime_ns() > a->mtime_ns())) {
      a->set_size(std::max(a->size(), req.size()));
      a->set_mtime_ns(std::max(a->mtime_ns(), req.mtime_ns()));
      a->set_ctime_ns(std::max(a->ctime_ns(), a->mtime_ns()));
      t.Dirty(req.ino());
    }
    out = *a;
    if (r->orphan() && left == 0) CFS_RETURN_IF_ERROR(t.DeleteInode(req.ino()));
    CFS_ASSIGN_OR_RETURN(seq, t.Commit());
  }
  CFS_RETURN_IF_ERROR(WaitDurable(seq));
  return out;
}

Result<pb::Attr> RocksNamespace::ReportSize(uint64_t ino, uint64_t size, int64_t mtime_ns) {
  uint64_t seq;
  pb::Attr out;
  {
    std::lock_guard l(mu_);
    Txn t(this);
    CFS_ASSIGN_OR_RETURN(pb::InodeRecord * r, t.Get(ino));
    auto* a = r->mutable_attr();
    if (size > a->size() || mtime_ns > a->mtime_ns()) {
      a->set_size(std::max(a->size(), size));
      a->set_mtime_ns(std::max(a->mtime_ns(), mtime_ns));
      a->set_ctime_ns(std::max(a->ctime_ns(), a->mtime_ns()));
      t.Dirty(ino);
    }
    out = *a;
    CFS_ASSIGN_OR_RETURN(seq, t.Commit());
  }
  CFS_RETURN_IF_ERROR(WaitDurable(seq));
  return out;
}

Status RocksNamespace::PurgeClosedOrphans(uint64_t* purged) {
  uint64_t seq;
  *purged = 0;
  {
    std::lock_guard l(mu_);
    Txn t(this);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), orphans_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      uint64_t ino = GetBE64(it->key().ToStringView());
      if (opens_.count(ino)) continue;
      auto r = t.Get(ino);
      if (!r.ok()) {  // dangling orphan entry
        t.batch().Delete(orphans_, it->key());
        continue;
      }
      CFS_RETURN_IF_ERROR(t.DeleteInode(ino));
      (*purged)++;
    }
    CFS_RETURN_IF_ERROR(FromRocks(it->status(), "scan orphans"));
    CFS_ASSIGN_OR_RETURN(seq, t.Commit());
  }
  return WaitDurable(seq);
}

// ---------------------------------------------------------------- xattrs

Status RocksNamespace::SetXattr(uint64_t ino, const std::string& name, const std::string& value,
                                uint32_t flags) {
  if (name.empty() || name.size() > kXattrNameMax) return Status(ERANGE, "bad xattr name length");
  if (value.size() > kXattrValueMax) return Status(E2BIG, "xattr value larger than 64 KiB");
  if ((flags & kXattrCreate) && (flags & kXattrReplace)) return Status::Invalid("bad xattr flags");
  uint64_t seq;
  {
    std::lock_guard l(mu_);
    Txn t(this);
    CFS_ASSIGN_OR_RETURN(pb::InodeRecord * r, t.Get(ino));
    std::string key = XattrKey(ino, name), old;
    auto s = db_->Get(rocksdb::ReadOptions(), xattrs_, key, &old);
    if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "read xattr");
    bool exists = s.ok();
    if ((flags & kXattrCreate) && exists) return Status::Exists("xattr \"" + name + "\" exists");
    if ((flags & kXattrReplace) && !exists) return Status(ENODATA, "no xattr \"" + name + "\"");
    t.batch().Put(xattrs_, key, value);
    Touch(r, NowNs(), false);
    t.Dirty(ino);
    CFS_ASSIGN_OR_RETURN(seq, t.Commit());
  }
  return WaitDurable(seq);
}

Result<std::string> RocksNamespace::GetXattr(uint64_t ino, const std::string& name) {
  CFS_RETURN_IF_ERROR(LoadInode(ino).status());
  if (name.empty() || name.size() > kXattrNameMax) return Status(ERANGE, "bad xattr name length");
  std::string v;
  auto s = db_->Get(rocksdb::ReadOptions(), xattrs_, XattrKey(ino, name), &v);
  if (s.IsNotFound()) return Status(ENODATA, "no xattr \"" + name + "\"");
  CFS_RETURN_IF_ERROR(FromRocks(s, "read xattr"));
  return v;
}

Result<std::vector<std::string>> RocksNamespace::ListXattr(uint64_t ino) {
  CFS_RETURN_IF_ERROR(LoadInode(ino).status());
  std::vector<std::string> names;
  std::string prefix = InoKey(ino);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), xattrs_));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next())
    names.emplace_back(it->key().ToStringView().substr(8));
  CFS_RETURN_IF_ERROR(FromRocks(it->status(), "list xattrs"));
  return names;
}

Status RocksNamespace::RemoveXattr(uint64_t ino, const std::string& name) {
  uint64_t seq;
  {
    std::lock_guard l(mu_);
    Txn t(this);
    CFS_ASSIGN_OR_RETURN(pb::InodeRecord * r, t.Get(ino));
    std::string key = XattrKey(ino, name), old;
    auto s = db_->Get(rocksdb::ReadOptions(), xattrs_, key, &old);
    if (s.IsNotFound()) return Status(ENODATA, "no xattr \"" + name + "\"");
    CFS_RETURN_IF_ERROR(FromRocks(s, "read xattr"));
    t.batch().Delete(xattrs_, key);
    Touch(r, NowNs(), false);
    t.Dirty(ino);
    CFS_ASSIGN_OR_RETURN(seq, t.Commit());
  }
  return WaitDurable(seq);
}

// ---------------------------------------------------------------- gc queue

Result<std::vector<GcItem>> RocksNamespace::ListGc(size_t max) {
  std::vector<GcItem> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), gc_));
  for (it->SeekToFirst(); it->Valid() && out.size() < max; it->Next()) {
    pb::Layout l;
    if (it->key().size() != 8 || !l.ParseFromArray(it->value().data(), int(it->value().size())))
      return Status::Corruption("bad gc record");
    GcItem item;
    item.ino = GetBE64(it->key().ToStringView());
    item.targets.assign(l.targets().begin(), l.targets().end());
    out.push_back(std::move(item));
  }
  CFS_RETURN_IF_ERROR(FromRocks(it->status(), "scan gc"));
  return out;
}

Status RocksNamespace::GcDone(const std::vector<std::pair<uint64_t, uint32_t>>& done) {
  if (done.empty()) return Status::OK();
  uint64_t seq;
  {
    std::lock_guard l(mu_);
    std::map<uint64_t, std::set<uint32_t>> by_ino;
    for (auto& [ino, t] : done) by_ino[ino].insert(t);
    rocksdb::WriteBatch b;
    int64_t finished = 0;
    for (auto& [ino, ts] : by_ino) {
      std::string v, key = InoKey(ino);
      auto s = db_->Get(rocksdb::ReadOptions(), gc_, key, &v);
      if (s.IsNotFound()) continue;
      CFS_RETURN_IF_ERROR(FromRocks(s, "read gc"));
      pb::Layout l, rest;
      if (!l.ParseFromString(v)) return Status::Corruption("bad gc record");
      for (uint32_t t : l.targets())
        if (!ts.count(t)) rest.add_targets(t);
      if (rest.targets_size() == 0) {
        b.Delete(gc_, key);
        finished++;
      } else {
        b.Put(gc_, key, Ser(rest));
      }
    }
    if (b.Count() == 0) return Status::OK();
    CFS_ASSIGN_OR_RETURN(seq, WriteLocked(&b));
    counters_.pending_deletes -= finished;
  }
  return WaitDurable(seq);
}

// ---------------------------------------------------------------- redundancy

static std::string TokenValue(uint64_t token) { return InoKey(token); }

Status RocksNamespace::AddDegraded(uint64_t ino, const std::vector<uint32_t>& targets) {
  if (targets.empty()) return Status::OK();
  uint64_t seq;
  {
    std::lock_guard l(mu_);
    rocksdb::WriteBatch b;
    std::set<uint32_t> seen;
    int64_t added = 0;
    for (uint32_t t : targets) {
      if (!seen.insert(t).second) continue;
      std::string key = DegradedKey(t, ino), old;
      auto s = db_->Get(rocksdb::ReadOptions(), degraded_, key, &old);
      if (s.IsNotFound()) added++;
      else CFS_RETURN_IF_ERROR(FromRocks(s, "read degraded"));
      b.Put(degraded_, key, TokenValue(next_token_++));
    }
    CFS_ASSIGN_OR_RETURN(seq, WriteLocked(&b));
    counters_.degraded += added;
  }
  return WaitDurable(seq);
}

Result<std::vector<DegradedItem>> RocksNamespace::ListDegraded(const DegradedItem* after, size_t max) {
  std::vector<DegradedItem> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), degraded_));
  if (after) {
    std::string from = DegradedKey(after->target, after->ino);
    it->Seek(from);
    if (it->Valid() && it->key().ToStringView() == from) it->Next();
  } else {
    it->SeekToFirst();
  }
  for (; it->Valid() && out.size() < max; it->Next()) {
    std::string_view k = it->key().ToStringView();
    if (k.size() != 12 || it->value().size() != 8) return Status::Corruption("bad degraded record");
    DegradedItem d;
    d.target = DegradedKeyTarget(k);
    d.ino = GetBE64(k, 4);
    d.token = GetBE64(it->value().ToStringView());
    out.push_back(d);
  }
  CFS_RETURN_IF_ERROR(FromRocks(it->status(), "scan degraded"));
  return out;
}

Status RocksNamespace::DegradedDone(const DegradedItem& item) {
  uint64_t seq;
  {
    std::lock_guard l(mu_);
    std::string key = DegradedKey(item.target, item.ino), v;
    auto s = db_->Get(rocksdb::ReadOptions(), degraded_, key, &v);
    if (s.IsNotFound()) return Status::OK();
    CFS_RETURN_IF_ERROR(FromRocks(s, "read degraded"));
    if (v.size() != 8 || GetBE64(v) != item.token) return Status::OK();  // reported again meanwhile
    rocksdb::WriteBatch b;
    b.Delete(degraded_, key);
    CFS_ASSIGN_OR_RETURN(seq, WriteLocked(&b));
    counters_.degraded--;
  }
  return WaitDurable(seq);
}

Result<std::vector<pb::Attr>> RocksNamespace::ScanFiles(uint64_t after_ino, size_t max) {
  std::vector<pb::Attr> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), inodes_));
  for (it->Seek(InoKey(after_ino + 1)); it->Valid() && out.size() < max; it->Next()) {
    pb::InodeRecord r;
    if (it->key().size() != 8 || !r.ParseFromArray(it->value().data(), int(it->value().size())))
      return Status::Corruption("bad inode record");
    if (!S_ISREG(r.attr().mode()) || r.attr().layout().targets_size() == 0) continue;
    out.push_back(r.attr());
  }
  CFS_RETURN_IF_ERROR(FromRocks(it->status(), "scan inodes"));
  return out;
}

Status RocksNamespace::ReplaceTarget(uint64_t ino, uint32_t index, uint32_t old_target,
                                     uint32_t new_target) {
  uint64_t seq;
  {
    std::lock_guard l(mu_);
    Txn t(this);
    CFS_ASSIGN_OR_RETURN(pb::InodeRecord * r, t.Get(ino));
    auto* layout = r->mutable_attr()->mutable_layout();
    if (!S_ISREG(r->attr().mode()) || index >= uint32_t(layout->targets_size()) ||
        layout->targets(int(index)) != old_target)
      return Status(EAGAIN, "layout of inode " + std::to_string(ino) + " changed");
    for (uint32_t x : layout->targets())
      if (x == new_target) return Status::Exists("target " + std::to_string(new_target) + " already in the layout");
    layout->set_targets(int(index), new_target);
    t.Dirty(ino);
    std::string key = DegradedKey(new_target, ino), old;
    auto s = db_->Get(rocksdb::ReadOptions(), degraded_, key, &old);
    bool added = s.IsNotFound();
    if (!added) CFS_RETURN_IF_ERROR(FromRocks(s, "read degraded"));
    t.batch().Put(degraded_, key, TokenValue(next_token_++));
    CFS_ASSIGN_OR_RETURN(seq, t.Commit());
    if (added) counters_.degraded++;
  }
  return WaitDurable(seq);
}

// ---------------------------------------------------------------- state

Result<std::optional<std::string>> RocksNamespace::GetState(const std::string& key) {
  std::string v;
  auto s = db_->Get(rocksdb::ReadOptions(), state_, key, &v);
  if (s.IsNotFound()) return std::optional<std::string>();
  CFS_RETURN_IF_ERROR(FromRocks(s, "read state"));
  return std::optional<std::string>(std::move(v));
}

Status RocksNamespace::PutState(const std::vector<std::pair<std::string, std::string>>& kvs) {
  uint64_t seq;
  {
    std::lock_guard l(mu_);
    rocksdb::WriteBatch b;
    for (auto& [k, v] : kvs) b.Put(state_, k, v);
    CFS_ASSIGN_OR_RETURN(seq, WriteLocked(&b));
  }
  return WaitDurable(seq);
}

Result<std::vector<std::pair<std::string, std::string>>> RocksNamespace::ScanState(
    const std::string& prefix) {
  std::vector<std::pair<std::string, std::string>> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), state_));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next())
    out.emplace_back(it->key().ToString(), it->value().ToString());
  CFS_RETURN_IF_ERROR(FromRocks(it->status(), "scan state"));
  return out;
}

NamespaceCounters RocksNamespace::Counters() {
  std::lock_guard l(mu_);
  return counters_;
}

// ---------------------------------------------------------------- fsck

Status RocksNamespace::CheckConsistency(std::string* report) {
  std::lock_guard l(mu_);
  report->clear();
  size_t problems = 0;
  auto bad = [&](const std::string& s) {
    if (problems++ < 200) *report += s + "\n";
  };
  const rocksdb::Snapshot* snap = db_->GetSnapshot();
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;

  std::map<uint64_t, pb::InodeRecord> inodes;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, inodes_));
  uint64_t max_ino = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    pb::InodeRecord r;
    if (it->key().size() != 8 || !r.ParseFromArray(it->value().data(), int(it->value().size()))) {
      bad("unparsable inode record");
      continue;
    }
    uint64_t ino = GetBE64(it->key().ToStringView());
    if (r.attr().ino() != ino) bad("inode " + std::to_string(ino) + " record says ino " + std::to_string(r.attr().ino()));
    max_ino = std::max(max_ino, ino);
    inodes.emplace(ino, std::move(r));
  }
  if (!inodes.count(kRootIno)) bad("root inode missing");

  std::map<uint64_t, uint32_t> refs, subdirs;
  std::map<uint64_t, std::vector<uint64_t>> children;
  it.reset(db_->NewIterator(ro, dentries_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string_view k = it->key().ToStringView();
    pb::DentryRecord d;
    if (k.size() < 17 || !d.ParseFromArray(it->value().data(), int(it->value().size()))) {
      bad("unparsable dentry");
      continue;
    }
    uint64_t parent = GetBE64(k), hash = GetBE64(k, 8);
    std::string name(k.substr(16));
    std::string where = "dentry " + std::to_string(parent) + "/" + name;
    if (NameHash(name) != hash) bad(where + ": wrong hash in key");
    auto p = inodes.find(parent);
    if (p == inodes.end()) { bad(where + ": parent inode missing"); continue; }
    if (!IsDir(p->second)) bad(where + ": parent is not a directory");
    auto c = inodes.find(d.ino());
    if (c == inodes.end()) { bad(where + ": points to missing inode " + std::to_string(d.ino())); continue; }
    if (TypeOf(c->second.attr().mode()) != d.type()) bad(where + ": type differs from inode");
    if (c->second.orphan()) bad(where + ": points to an orphan");
    refs[d.ino()]++;
    children[parent].push_back(d.ino());
    if (IsDir(c->second)) {
      subdirs[parent]++;
      if (c->second.parent() != parent) bad(where + ": directory's parent field is " + std::to_string(c->second.parent()));
    }
  }
  std::set<uint64_t> orphan_keys;
  it.reset(db_->NewIterator(ro, orphans_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    uint64_t ino = GetBE64(it->key().ToStringView());
    orphan_keys.insert(ino);
    auto r = inodes.find(ino);
    if (r == inodes.end()) bad("orphan " + std::to_string(ino) + " has no inode");
    else if (!r->second.orphan()) bad("orphan " + std::to_string(ino) + " not marked in its inode");
  }
  // Reachability from the root.
  std::set<uint64_t> reached{kRootIno};
  std::vector<uint64_t> stack{kRootIno};
  while (!stack.empty()) {
    uint64_t d = stack.back();
    stack.pop_back();
    for (uint64_t c : children[d])
      if (reached.insert(c).second) stack.push_back(c);
  }
  for (auto& [ino, r] : inodes) {
    std::string who = "inode " + std::to_string(ino);
    uint32_t n = r.attr().nlink(), rc = refs[ino];
    if (ino == kRootIno) {
      if (rc != 0) bad("root has a directory entry");
    } else if (r.orphan()) {
      if (rc != 0) bad(who + ": orphan with " + std::to_string(rc) + " entries");
      if (!orphan_keys.count(ino)) bad(who + ": marked orphan but not in the orphan list");
      continue;
    } else if (!reached.count(ino)) {
      bad(who + ": not reachable from the root");
    }
    if (IsDir(r)) {
      if (ino != kRootIno && rc != 1) bad(who + ": directory with " + std::to_string(rc) + " entries");
      if (n != 2 + subdirs[ino])
        bad(who + ": directory nlink " + std::to_string(n) + " but " + std::to_string(subdirs[ino]) + " subdirectories");
    } else if (n != rc) {
      bad(who + ": nlink " + std::to_string(n) + " but " + std::to_string(rc) + " entries");
    }
  }
  std::string v;
  if (db_->Get(ro, state_, kNextInoKey, &v).ok() && v.size() == 8) {
    if (GetBE64(v) <= max_ino) bad("next_ino " + std::to_string(GetBE64(v)) + " <= max inode " + std::to_string(max_ino));
  } else {
    bad("next_ino missing");
  }
  db_->ReleaseSnapshot(snap);
  if (problems == 0) return Status::OK();
  *report = std::to_string(problems) + " problem(s):\n" + *report;
  return Status(EUCLEAN, "namespace inconsistent: " + std::to_string(problems) + " problem(s)");
}

}  // namespace cfs::meta
