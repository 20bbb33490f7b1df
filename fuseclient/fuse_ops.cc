#include "fuse_ops.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/logging.h"
#include "read_buffer.h"

namespace cfs::fuse {
namespace {

using client::File;

constexpr double kTimeout = 1.0;  // entry and attribute cache, seconds
constexpr size_t kNameMax = 255;
constexpr uint32_t kReaddirBatch = 512;
constexpr uint32_t kRenameNoreplace = 1, kRenameExchange = 2;

FuseContext* Ctx(fuse_req_t req) { return static_cast<FuseContext*>(fuse_req_userdata(req)); }
client::Client* Cl(fuse_req_t req) { return Ctx(req)->client; }

// An open file: one per open(), all sharing the Client's File of the inode.
struct FileHandle {
  std::shared_ptr<File> file;
  int flags = 0;
};
FileHandle* FH(fuse_file_info* fi) { return reinterpret_cast<FileHandle*>(fi->fh); }

// An open directory: one READDIR batch kept so that the kernel's small
// readdir buffers do not each cost an M-worker round trip.
struct DirHandle {
  std::mutex mu;
  uint64_t start = UINT64_MAX;  // cookie the batch was fetched after
  std::vector<pb::DirEntry> entries;
  bool eof = false;
  bool plus = false;
};

void ReplyErr(fuse_req_t req, const Status& s, const char* op) {
  int e = FuseErrno(s);
  if (e != ENOENT && e != ENODATA && e != EEXIST) LOG_DEBUG("{} failed: {}", op, s.ToString());
  fuse_reply_err(req, e);
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

timespec Ts(int64_t ns) {
  timespec t;
  t.tv_sec = ns / 1000000000;
  t.tv_nsec = ns % 1000000000;
  if (t.tv_nsec < 0) {
    t.tv_nsec += 1000000000;
    t.tv_sec -= 1;
  }
  return t;
}

int64_t Ns(const timespec& t) { return int64_t(t.tv_sec) * 1000000000 + t.tv_nsec; }

struct stat ToStat(const pb::Attr& a) {
  struct stat st;
  memset(&st, 0, sizeof st);
  st.st_ino = a.ino();
  st.st_mode = a.mode();
  st.st_nlink = a.nlink();
  st.st_uid = a.uid();
  st.st_gid = a.gid();
  st.st_rdev = a.rdev();
  st.st_size = static_cast<off_t>(a.size());
  st.st_blocks = static_cast<blkcnt_t>((a.size() + 511) / 512);
  st.st_blksize = 1 << 20;  // programs size their buffers by this: 1 MiB requests
  st.st_atim = Ts(a.atime_ns());
  st.st_mtim = Ts(a.mtime_ns());
  st.st_ctim = Ts(a.ctime_ns());
  return st;
}

void NoteDir(fuse_req_t req, uint64_t parent, const pb::Attr& a) {
  if (!S_ISDIR(a.mode())) return;
  FuseContext* c = Ctx(req);
  std::lock_guard lk(c->mu);
  if (c->dir_parent.size() > (1u << 20)) c->dir_parent.clear();
  c->dir_parent[a.ino()] = parent;
}

fuse_entry_param ToEntry(const pb::Attr& a) {
  fuse_entry_param e;
  memset(&e, 0, sizeof e);
  e.ino = a.ino();
  e.generation = a.generation();
  e.attr = ToStat(a);
  e.attr_timeout = kTimeout;
  e.entry_timeout = kTimeout;
  return e;
}

void ReplyEntry(fuse_req_t req, const Result<pb::Attr>& r, const char* op) {
  if (!r.ok()) return ReplyErr(req, r.status(), op);
  fuse_entry_param e = ToEntry(*r);
  fuse_reply_entry(req, &e);
}

bool NameTooLong(fuse_req_t req, const char* name) {
  if (strlen(name) <= kNameMax) return false;
  fuse_reply_err(req, ENAMETOOLONG);
  return true;
}

// Only the user.* xattr namespace is stored; security.*, system.* (ACLs) and
// trusted.* are not supported, which programs take as "none there".
bool XattrNamespaceOk(fuse_req_t req, const char* name) {
  if (strncmp(name, "user.", 5) == 0) return true;
  fuse_reply_err(req, EOPNOTSUPP);
  return false;
}

// ---------------------------------------------------------------- ops

void Init(void* userdata, fuse_conn_info* conn) {
  // 1 MiB per READ and WRITE request: libfuse sizes its buffers for 256 pages
  // and sends max_pages to the kernel from max_write.
  // (conn->max_read must stay as the max_read mount option left it, or libfuse
  // fails INIT; reads are bounded by max_pages, 1 MiB, anyway.)
  conn->max_write = 1 << 20;
  conn->max_readahead = 1 << 20;
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  auto want = [conn](unsigned cap) {
    if (conn->capable & cap) conn->want |= cap;
  };
  want(FUSE_CAP_ASYNC_READ);
  want(FUSE_CAP_ATOMIC_O_TRUNC);
  want(FUSE_CAP_PARALLEL_DIROPS);
  want(FUSE_CAP_AUTO_INVAL_DATA);
  want(FUSE_CAP_READDIRPLUS);
  want(FUSE_CAP_READDIRPLUS_AUTO);
  // Page cache is write-through: a write reaches us (and so the cluster)
  // before write(2) returns, which keeps close-to-open simple.
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  static_cast<FuseContext*>(userdata)->initialized = true;
  LOG_INFO("fuse connection up proto={}.{} max_write={} max_readahead={}", conn->proto_major,
           conn->proto_minor, conn->max_write, conn->max_readahead);
}

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (NameTooLong(req, name)) return;
  auto r = Cl(req)->Lookup(parent, name);
  if (r.ok()) NoteDir(req, parent, *r);
  ReplyEntry(req, r, "lookup");
}

void Forget(fuse_req_t req, fuse_ino_t, uint64_t) { fuse_reply_none(req); }
void ForgetMulti(fuse_req_t req, size_t, fuse_forget_data*) { fuse_reply_none(req); }

void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  auto r = Cl(req)->GetAttr(ino);
  if (!r.ok()) return ReplyErr(req, r.status(), "getattr");
  struct stat st = ToStat(*r);
  fuse_reply_attr(req, &st, kTimeout);
}

void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  client::Client* c = Cl(req);
  pb::SetattrRequest r;
  r.set_ino(ino);
  uint32_t valid = 0;
  if (to_set & FUSE_SET_ATTR_MODE) {
    valid |= pb::SETATTR_MODE;
    r.set_mode(attr->st_mode);
  }
  if (to_set & FUSE_SET_ATTR_UID) {
    valid |= pb::SETATTR_UID;
    r.set_uid(attr->st_uid);
  }
  if (to_set & FUSE_SET_ATTR_GID) {
    valid |= pb::SETATTR_GID;
    r.set_gid(attr->st_gid);
  }
  // "now" carries our clock too, so either reading of the bits gives a sane time.
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
    valid |= pb::SETATTR_ATIME | pb::SETATTR_ATIME_NOW;
    r.set_atime_ns(NowNs());
  } else if (to_set & FUSE_SET_ATTR_ATIME) {
    valid |= pb::SETATTR_ATIME;
    r.set_atime_ns(Ns(attr->st_atim));
  }
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
    valid |= pb::SETATTR_MTIME | pb::SETATTR_MTIME_NOW;
    r.set_mtime_ns(NowNs());
  } else if (to_set & FUSE_SET_ATTR_MTIME) {
    valid |= pb::SETATTR_MTIME;
    r.set_mtime_ns(Ns(attr->st_mtim));
  }
  if (to_set & FUSE_SET_ATTR_SIZE) {
    if (attr->st_size < 0) return (void)fuse_reply_err(req, EINVAL);
    if (fi != nullptr && fi->fh != 0) {
      // Through the open File, so its buffered writes and size stay coherent.
      Status s = FH(fi)->file->Truncate(static_cast<uint64_t>(attr->st_size));
      if (!s.ok()) return ReplyErr(req, s, "truncate");
    } else {
      valid |= pb::SETATTR_SIZE;
      r.set_size(static_cast<uint64_t>(attr->st_size));
    }
  }
  Result<pb::Attr> res = Status::OK();
  if (valid != 0) {
    r.set_valid(valid);
    res = c->SetAttr(r);
  } else {
    res = c->GetAttr(ino);
  }
  if (!res.ok()) return ReplyErr(req, res.status(), "setattr");
  struct stat st = ToStat(*res);
  fuse_reply_attr(req, &st, kTimeout);
}

void Readlink(fuse_req_t req, fuse_ino_t ino) {
  auto r = Cl(req)->Readlink(ino);
  if (!r.ok()) return ReplyErr(req, r.status(), "readlink");
  fuse_reply_readlink(req, r->c_str());
}

void Mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  if (NameTooLong(req, name)) return;
  const fuse_ctx* ctx = fuse_req_ctx(req);
  client::Client* c = Cl(req);
  if (S_ISREG(mode)) {
    pb::Attr attr;
    auto f = c->Create(parent, name, mode, ctx->uid, ctx->gid, /*exclusive=*/true,
                       client::LayoutHint{}, &attr);
    if (!f.ok()) return ReplyErr(req, f.status(), "mknod");
    c->Release(*f);
    return ReplyEntry(req, attr, "mknod");
  }
  ReplyEntry(req, c->Mknod(parent, name, mode, rdev, ctx->uid, ctx->gid), "mknod");
}

void Mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  if (NameTooLong(req, name)) return;
  const fuse_ctx* ctx = fuse_req_ctx(req);
  auto r = Cl(req)->Mkdir(parent, name, (mode & 07777) | S_IFDIR, ctx->uid, ctx->gid);
  if (r.ok()) NoteDir(req, parent, *r);
  ReplyEntry(req, r, "mkdir");
}

void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (NameTooLong(req, name)) return;
  Status s = Cl(req)->Unlink(parent, name);
  if (!s.ok()) return ReplyErr(req, s, "unlink");
  fuse_reply_err(req, 0);
}

void Rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (NameTooLong(req, name)) return;
  Status s = Cl(req)->Rmdir(parent, name);
  if (!s.ok()) return ReplyErr(req, s, "rmdir");
  fuse_reply_err(req, 0);
}

void Symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
  if (NameTooLong(req, name)) return;
  if (strlen(target) >= PATH_MAX) return (void)fuse_reply_err(req, ENAMETOOLONG);
  const fuse_ctx* ctx = fuse_req_ctx(req);
  ReplyEntry(req, Cl(req)->Symlink(parent, name, target, ctx->uid, ctx->gid), "symlink");
}

void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
            const char* newname, unsigned int flags) {
  if (NameTooLong(req, name) || NameTooLong(req, newname)) return;
  if ((flags & ~(kRenameNoreplace | kRenameExchange)) != 0 ||
      flags == (kRenameNoreplace | kRenameExchange))
    return (void)fuse_reply_err(req, EINVAL);  // e.g. RENAME_WHITEOUT
  Status s = Cl(req)->Rename(parent, name, newparent, newname, flags);
  if (!s.ok()) return ReplyErr(req, s, "rename");
  fuse_reply_err(req, 0);
}

void Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  if (NameTooLong(req, newname)) return;
  ReplyEntry(req, Cl(req)->Link(ino, newparent, newname), "link");
}

// Shared by open and create: the handle, and close-to-open freshness.
void ReplyOpened(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, std::shared_ptr<File> f,
                 const fuse_entry_param* e) {
  auto* h = new FileHandle{std::move(f), fi->flags};
  fi->fh = reinterpret_cast<uint64_t>(h);
  fi->keep_cache = 0;  // close-to-open: drop cached pages at every open
  fi->direct_io = 0;   // but let the page cache serve repeated reads while open
  int rc = e ? fuse_reply_create(req, e, fi) : fuse_reply_open(req, fi);
  if (rc != 0) {  // the opener was interrupted: nobody will release this handle
    Cl(req)->Release(h->file);
    delete h;
  }
}

void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
            fuse_file_info* fi) {
  if (NameTooLong(req, name)) return;
  const fuse_ctx* ctx = fuse_req_ctx(req);
  pb::Attr attr;
  auto f = Cl(req)->Create(parent, name, (mode & 07777) | S_IFREG, ctx->uid, ctx->gid,
                           (fi->flags & O_EXCL) != 0, client::LayoutHint{}, &attr);
  if (!f.ok()) return ReplyErr(req, f.status(), "create");
  if ((fi->flags & O_TRUNC) && (fi->flags & O_ACCMODE) != O_RDONLY && (*f)->size() > 0) {
    Status s = (*f)->Truncate(0);
    if (!s.ok()) {
      Cl(req)->Release(*f);
      return ReplyErr(req, s, "create truncate");
    }
    attr.set_size(0);
  }
  fuse_entry_param e = ToEntry(attr);
  ReplyOpened(req, attr.ino(), fi, std::move(*f), &e);
}

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  FuseContext* c = Ctx(req);
  pb::Attr attr;
  auto f = c->client->Open(ino, static_cast<uint32_t>(fi->flags), &attr);
  if (!f.ok()) return ReplyErr(req, f.status(), "open");
  if ((fi->flags & O_TRUNC) && (fi->flags & O_ACCMODE) != O_RDONLY && (*f)->size() > 0) {
    Status s = (*f)->Truncate(0);
    if (!s.ok()) {
      c->client->Release(*f);
      return ReplyErr(req, s, "open truncate");
    }
  }
  // Close-to-open: Open fetched fresh attributes from the M-worker; make the
  // kernel ask again instead of trusting what it cached before this open.
  if (c->se != nullptr) fuse_lowlevel_notify_inval_inode(c->se, ino, -1, 0);
  ReplyOpened(req, ino, fi, std::move(*f), nullptr);
}

void Read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  static thread_local ReadBuffer scratch;
  char* buf = scratch.Get(size);
  if (!buf) return ReplyErr(req, Status(ENOMEM, "no memory for a read of " + std::to_string(size) + " bytes"), "read");
  auto r = FH(fi)->file->Read(buf, size, static_cast<uint64_t>(off));
  if (!r.ok()) return ReplyErr(req, r.status(), "read");
  fuse_reply_buf(req, buf, *r);
}

void Write(fuse_req_t req, fuse_ino_t, const char* data, size_t size, off_t off,
           fuse_file_info* fi) {
  // With O_APPEND the kernel already put off at its i_size (the end of file).
  auto r = FH(fi)->file->Write(data, size, static_cast<uint64_t>(off));
  if (!r.ok()) return ReplyErr(req, r.status(), "write");
  fuse_reply_write(req, *r);
}

void Flush(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  Status s = FH(fi)->file->Flush();
  if (!s.ok()) return ReplyErr(req, s, "flush");
  fuse_reply_err(req, 0);
}

void Release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  std::unique_ptr<FileHandle> h(FH(fi));
  Status s = Cl(req)->Release(h->file);
  if (!s.ok()) LOG_WARN("release of ino={} failed: {}", h->file->ino(), s.ToString());
  fuse_reply_err(req, s.ok() ? 0 : FuseErrno(s));
}

void Fsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info* fi) {
  Status s = FH(fi)->file->Fsync();
  if (!s.ok()) return ReplyErr(req, s, "fsync");
  fuse_reply_err(req, 0);
}

void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto* d = new DirHandle;
  fi->fh = reinterpret_cast<uint64_t>(d);
  fi->cache_readdir = 0;
  fi->keep_cache = 0;
  if (fuse_reply_open(req, fi) != 0) delete d;
}

void ReleaseDir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  delete reinterpret_cast<DirHandle*>(fi->fh);
  fuse_reply_err(req, 0);
}

void FsyncDir(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) { fuse_reply_err(req, 0); }

// Offsets: 0 start, 1 after ".", 2 after ".."; else the CFS cookie (>= 3) of
// the last entry returned, stable while the directory changes.
void DoReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi,
               bool plus) {
  FuseContext* c = Ctx(req);
  auto* d = reinterpret_cast<DirHandle*>(fi->fh);
  // Unlocked before every reply: once the kernel has the reply it may send
  // RELEASEDIR at once, which frees the handle (and this mutex) on another thread.
  std::unique_lock lk(d->mu);
  std::vector<char> buf(size);
  size_t used = 0;
  // Adds one entry; false once the buffer is full (the entry was not added).
  auto add = [&](const char* name, const pb::Attr* attr, uint64_t e_ino, uint32_t type,
                 off_t next) {
    size_t n;
    if (plus) {
      fuse_entry_param e;
      memset(&e, 0, sizeof e);
      if (attr != nullptr) {
        e = ToEntry(*attr);
      } else {  // "." and "..": no lookup count, the kernel skips them
        e.attr.st_ino = e_ino;
        e.attr.st_mode = type << 12;
      }
      n = fuse_add_direntry_plus(req, buf.data() + used, size - used, name, &e, next);
    } else {
      struct stat st;
      memset(&st, 0, sizeof st);
      st.st_ino = e_ino;
      st.st_mode = type << 12;
      n = fuse_add_direntry(req, buf.data() + used, size - used, name, &st, next);
    }
    if (n > size - used) return false;
    used += n;
    return true;
  };
  if (off == 0) {
    if (!add(".", nullptr, ino, S_IFDIR >> 12, 1)) {
      lk.unlock();
      return (void)fuse_reply_buf(req, nullptr, 0);
    }
    off = 1;
  }
  if (off == 1) {
    uint64_t parent = ino;
    if (ino == FUSE_ROOT_ID) {
      parent = FUSE_ROOT_ID;
    } else {
      std::lock_guard lk2(c->mu);
      auto it = c->dir_parent.find(ino);
      if (it != c->dir_parent.end()) parent = it->second;
    }
    if (!add("..", nullptr, parent, S_IFDIR >> 12, 2)) {
      lk.unlock();
      return (void)fuse_reply_buf(req, buf.data(), used);
    }
    off = 2;
  }
  uint64_t cookie = off == 2 ? 0 : static_cast<uint64_t>(off);
  for (;;) {
    // Find the position after `cookie` in the batch, or fetch a new batch.
    size_t i = 0;
    bool found = false;
    if (d->plus == plus && d->start != UINT64_MAX) {
      if (d->start == cookie) {
        found = true;
      } else {
        for (size_t j = 0; j < d->entries.size(); j++) {
          if (d->entries[j].cookie() == cookie) {
            i = j + 1;
            found = true;
            break;
          }
        }
      }
    }
    if (!found || (i == d->entries.size() && !d->eof)) {
      auto r = c->client->Readdir(ino, cookie, kReaddirBatch, plus);
      if (!r.ok()) {
        d->start = UINT64_MAX;
        if (used > 0) break;  // report what we have; the error comes next call
        lk.unlock();
        return ReplyErr(req, r.status(), "readdir");
      }
      d->start = cookie;
      d->entries.assign(r->entries().begin(), r->entries().end());
      d->eof = r->eof();
      d->plus = plus;
      i = 0;
    }
    if (i == d->entries.size()) break;  // end of directory
    bool full = false;
    for (; i < d->entries.size(); i++) {
      const pb::DirEntry& de = d->entries[i];
      if (plus && S_ISDIR(de.attr().mode())) NoteDir(req, ino, de.attr());
      if (!add(de.name().c_str(), plus ? &de.attr() : nullptr, de.ino(), de.type(),
               static_cast<off_t>(de.cookie()))) {
        full = true;
        break;
      }
      cookie = de.cookie();
    }
    if (full || d->eof) break;
  }
  lk.unlock();
  fuse_reply_buf(req, buf.data(), used);
}

void Readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  DoReaddir(req, ino, size, off, fi, false);
}
void ReaddirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  DoReaddir(req, ino, size, off, fi, true);
}

void Statfs(fuse_req_t req, fuse_ino_t) {
  auto r = Cl(req)->Statfs();
  if (!r.ok()) return ReplyErr(req, r.status(), "statfs");
  struct statvfs sv;
  memset(&sv, 0, sizeof sv);
  uint64_t bs = r->block_size() ? r->block_size() : 4096;
  sv.f_bsize = 1 << 20;  // preferred I/O size
  sv.f_frsize = bs;
  sv.f_blocks = r->capacity() / bs;
  sv.f_bfree = r->free() / bs;
  sv.f_bavail = r->free() / bs;
  sv.f_files = r->files();
  sv.f_ffree = r->files_free();
  sv.f_favail = r->files_free();
  sv.f_namemax = kNameMax;
  fuse_reply_statfs(req, &sv);
}

void SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
              int flags) {
  if (!XattrNamespaceOk(req, name)) return;
  if (strlen(name) > XATTR_NAME_MAX) return (void)fuse_reply_err(req, ERANGE);
  if ((flags & ~(XATTR_CREATE | XATTR_REPLACE)) != 0) return (void)fuse_reply_err(req, EINVAL);
  Status s = Cl(req)->SetXattr(ino, name, std::string(value, size), static_cast<uint32_t>(flags));
  if (!s.ok()) return ReplyErr(req, s, "setxattr");
  fuse_reply_err(req, 0);
}

void GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  if (!XattrNamespaceOk(req, name)) return;
  auto r = Cl(req)->GetXattr(ino, name);
  if (!r.ok()) return ReplyErr(req, r.status(), "getxattr");
  if (size == 0) return (void)fuse_reply_xattr(req, r->size());
  if (size < r->size()) return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, r->data(), r->size());
}

void ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  auto r = Cl(req)->ListXattr(ino);
  if (!r.ok()) return ReplyErr(req, r.status(), "listxattr");
  std::string all;
  for (const auto& n : *r) {
    all += n;
    all.push_back('\0');
  }
  if (size == 0) return (void)fuse_reply_xattr(req, all.size());
  if (size < all.size()) return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, all.data(), all.size());
}

void RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  if (!XattrNamespaceOk(req, name)) return;
  Status s = Cl(req)->RemoveXattr(ino, name);
  if (!s.ok()) return ReplyErr(req, s, "removexattr");
  fuse_reply_err(req, 0);
}

// With default_permissions the kernel checks itself and never asks; this is
// the same check for a mount without it.
void Access(fuse_req_t req, fuse_ino_t ino, int mask) {
  auto r = Cl(req)->GetAttr(ino);
  if (!r.ok()) return ReplyErr(req, r.status(), "access");
  if (mask == F_OK) return (void)fuse_reply_err(req, 0);
  const fuse_ctx* ctx = fuse_req_ctx(req);
  uint32_t mode = r->mode();
  if (ctx->uid == 0) {
    // root passes everything but execute, which needs some x bit on a non-directory
    bool ok = !(mask & X_OK) || S_ISDIR(mode) || (mode & 0111);
    return (void)fuse_reply_err(req, ok ? 0 : EACCES);
  }
  uint32_t bits;
  if (ctx->uid == r->uid()) {
    bits = (mode >> 6) & 7;
  } else {
    bool in_group = ctx->gid == r->gid();
    if (!in_group) {
      gid_t groups[64];
      int n = fuse_req_getgroups(req, 64, groups);
      for (int i = 0; i < n && i < 64; i++) in_group |= groups[i] == r->gid();
    }
    bits = in_group ? (mode >> 3) & 7 : mode & 7;
  }
  bool ok = ((mask & R_OK) == 0 || (bits & 4)) && ((mask & W_OK) == 0 || (bits & 2)) &&
            ((mask & X_OK) == 0 || (bits & 1));
  fuse_reply_err(req, ok ? 0 : EACCES);
}

// Preallocation is not supported; EOPNOTSUPP makes posix_fallocate(3) and
// friends fall back to writing zeros.
void Fallocate(fuse_req_t req, fuse_ino_t, int, off_t, off_t, fuse_file_info*) {
  fuse_reply_err(req, EOPNOTSUPP);
}

fuse_lowlevel_ops MakeOps() {
  fuse_lowlevel_ops o;
  memset(&o, 0, sizeof o);
  o.init = Init;
  o.lookup = Lookup;
  o.forget = Forget;
  o.forget_multi = ForgetMulti;
  o.getattr = GetAttr;
  o.setattr = SetAttr;
  o.readlink = Readlink;
  o.mknod = Mknod;
  o.mkdir = Mkdir;
  o.unlink = Unlink;
  o.rmdir = Rmdir;
  o.symlink = Symlink;
  o.rename = Rename;
  o.link = Link;
  o.open = Open;
  o.read = Read;
  o.write = Write;
  o.flush = Flush;
  o.release = Release;
  o.fsync = Fsync;
  o.opendir = OpenDir;
  o.readdir = Readdir;
  o.readdirplus = ReaddirPlus;
  o.releasedir = ReleaseDir;
  o.fsyncdir = FsyncDir;
  o.statfs = Statfs;
  o.setxattr = SetXattr;
  o.getxattr = GetXattr;
  o.listxattr = ListXattr;
  o.removexattr = RemoveXattr;
  o.access = Access;
  o.create = Create;
  o.fallocate = Fallocate;
  // Left unset on purpose (libfuse answers ENOSYS and the kernel falls back):
  // getlk/setlk/flock (kernel-local locks), bmap, ioctl (ENOTTY), poll (always
  // ready), copy_file_range (kernel copies through read/write), lseek
  // (generic SEEK_DATA/SEEK_HOLE).
  return o;
}

}  // namespace

int FuseErrno(const Status& s) {
  int e = s.err();
  if (e < 0) e = -e;
  switch (e) {
    case 0:
      return EIO;  // never reply "success" for a failure
    case EBADMSG:  // checksum mismatch: the data is not there to give
    case EPROTO:
    case EHOSTUNREACH:
    case ECONNREFUSED:
    case ECONNRESET:
    case EPIPE:
    case ENOTCONN:
      return EIO;
    default:
      return e > 4095 ? EIO : e;
  }
}

const fuse_lowlevel_ops* CfsFuseOps() {
  static const fuse_lowlevel_ops ops = MakeOps();
  return &ops;
}

}  // namespace cfs::fuse
