// ClientImpl: the Client behind cfs-fuse, the cfs CLI and the C API. Namespace
// calls go to the M-worker through MetaClient; open files are FileImpl objects
// shared by all handles of one inode; data goes through StripedIo.
#include <sys/stat.h>

#include <map>
#include <mutex>
#include <random>

#include "client/client.h"
#include "client/cluster_map.h"
#include "client/file_impl.h"
#include "client/meta_client.h"
#include "client/striped_io.h"
#include "common/logging.h"

namespace cfs::client {
namespace {

constexpr auto kMapMaxAge = std::chrono::seconds(30);
constexpr size_t kMaxName = 255;

Status CheckName(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos)
    return Status::Invalid("bad file name '" + name + "'");
  if (name.size() > kMaxName) return Status(ENAMETOOLONG, "name longer than 255 bytes");
  return Status::OK();
}

Status CheckHint(const LayoutHint& h) {
  if (h.m > kMaxParityUnits)
    return Status::Invalid("parity unit count m must be 0.." + std::to_string(kMaxParityUnits));
  if (h.unit != 0) {
    Layout l;
    l.unit = h.unit;
    CFS_RETURN_IF_ERROR(l.ValidateShape());
  }
  if (h.k > kMaxDataUnits)
    return Status::Invalid("data unit count k must be 1.." + std::to_string(kMaxDataUnits));
  return Status::OK();
}

struct OpenEntry {
  std::shared_ptr<FileImpl> file;
  int refs = 0;
};

class ClientImpl : public Client {
 public:
  // meta_transport reaches the M-worker (TCP), data_transport the S-workers.
  ClientImpl(const ClientOptions& opts, std::shared_ptr<rpc::Transport> meta_transport,
             std::shared_ptr<rpc::Transport> data_transport, std::vector<rpc::Endpoint> addrs)
      : opts_(opts),
        meta_(std::move(meta_transport), std::move(addrs), opts.timeout,
              std::min<std::chrono::milliseconds>(opts.timeout, std::chrono::seconds(15))),
        map_(&meta_, kMapMaxAge),
        data_pool_(std::move(data_transport), opts.channels_per_worker),
        io_(&data_pool_, &map_, opts.timeout, &meta_, opts.failure_timeout) {
    std::random_device rd;
    client_id_ = (uint64_t(rd()) << 32 | rd()) | 1;  // never 0 (0 means "not opening")
    tuning_.readahead_stripes = opts.readahead_stripes;
    tuning_.write_behind_stripes = opts.write_behind_stripes;
  }

  ~ClientImpl() override {
    std::map<uint64_t, OpenEntry> files;
    {
      std::lock_guard<std::mutex> g(files_mu_);
      files.swap(files_);
    }
    for (auto& [ino, e] : files) {
      Status st = e.file->FlushData();
      if (!st.ok()) LOG_WARN("ino {}: flush at disconnect failed: {}", ino, st.ToString());
      SendClose(*e.file);
    }
  }

  Status Init() {
    // One quick round at mount: an unreachable M-worker is a clear error now.
    meta_.set_retry_for(std::chrono::milliseconds(0));
    Status st = map_.Get(true).status();
    meta_.set_retry_for(std::min<std::chrono::milliseconds>(opts_.timeout, std::chrono::seconds(15)));
    return st;
  }

  uint64_t client_id() const override { return client_id_; }
  void LimitRetries(std::chrono::milliseconds window) override { meta_.LimitRetries(window); }

  // ---- namespace ----
  Result<pb::Attr> Lookup(uint64_t parent, const std::string& name) override {
    CFS_RETURN_IF_ERROR(CheckName(name));
    pb::LookupRequest req;
    req.set_parent(parent);
    req.set_name(name);
    pb::AttrResponse resp;
    CFS_RETURN_IF_ERROR(meta_.Call(pb::LOOKUP, req, &resp));
    MergeOpenSize(resp.mutable_attr());
    return std::move(*resp.mutable_attr());
  }

  Result<pb::Attr> GetAttr(uint64_t ino) override {
    pb::InoRequest req;
    req.set_ino(ino);
    pb::AttrResponse resp;
    CFS_RETURN_IF_ERROR(meta_.Call(pb::GETATTR, req, &resp));
    MergeOpenSize(resp.mutable_attr());
    return std::move(*resp.mutable_attr());
  }

  Result<pb::Attr> SetAttr(const pb::SetattrRequest& req) override {
    if (req.valid() & pb::SETATTR_SIZE) {
      if (auto f = FindOpen(req.ino())) {
        CFS_RETURN_IF_ERROR(f->TruncateData(req.size()));
      } else {
        CFS_ASSIGN_OR_RETURN(pb::Attr a, GetAttr(req.ino()));
        if (S_ISDIR(a.mode())) return Status(EISDIR, "cannot truncate a directory");
        if (!S_ISREG(a.mode())) return Status::Invalid("truncate of a non-regular file");
        Layout l = FromProto(a.layout());
        CFS_RETURN_IF_ERROR(io_.TruncateObjects(req.ino(), l, req.size()));
      }
    }
    pb::AttrResponse resp;
    CFS_RETURN_IF_ERROR(meta_.Call(pb::SETATTR, req, &resp));
    MergeOpenSize(resp.mutable_attr());
    return std::move(*resp.mutable_attr());
  }

  Result<pb::Attr> Mkdir(uint64_t parent, const std::string& name, uint32_t mode, uint32_t uid,
                         uint32_t gid) override {
    CFS_RETURN_IF_ERROR(CheckName(name));
    pb::MkdirRequest req;
    req.set_parent(parent);
    req.set_name(name);
    req.set_mode((mode & 07777) | S_IFDIR);
    req.set_uid(uid);
    req.set_gid(gid);
    pb::AttrResponse resp;
    CFS_RETURN_IF_ERROR(meta_.Call(pb::MKDIR, req, &resp));
    return std::move(*resp.mutable_attr());
  }

  Result<pb::Attr> Mknod(uint64_t parent, const std::string& name, uint32_t mode, uint64_t rdev,
                         uint32_t uid, uint32_t gid) override {
    CFS_RETURN_IF_ERROR(CheckName(name));
    pb::CreateRequest req;
    req.set_parent(parent);
    req.set_name(name);
    req.set_mode(mode);
    req.set_rdev(rdev);
    req.set_uid(uid);
    req.set_gid(gid);
    req.set_exclusive(true);
    pb::CreateResponse resp;
    CFS_RETURN_IF_ERROR(meta_.Call(pb::MKNOD, req, &resp));
    return std::move(*resp.mutable_attr());
  }

  Status Unlink(uint64_t parent, const std::string& name) override {
    CFS_RETURN_IF_ERROR(CheckName(name));
    pb::UnlinkRequest req;
    req.set_parent(parent);
    req.set_name(name);
    pb::Empty resp;
    return meta_.Call(pb::UNLINK, req, &resp);
  }

  Status Rmdir(uint64_t parent, const std::string& name) override {
    CFS_RETURN_IF_ERROR(CheckName(name));
    pb::UnlinkRequest req;
    req.set_parent(parent);
    req.set_name(name);
    pb::Empty resp;
    return meta_.Call(pb::RMDIR, req, &resp);
  }

  Status Rename(uint64_t parent, const std::string& name, uint64_t new_parent,
                const std::string& new_name, uint32_t flags) override {
    CFS_RETURN_IF_ERROR(CheckName(name));
    CFS_RETURN_IF_ERROR(CheckName(new_name));
    if (flags & ~3u) return Status::Invalid("unsupported rename flags");
    if (flags == 3u) return Status::Invalid("RENAME_NOREPLACE and RENAME_EXCHANGE together");
    pb::RenameRequest req;
    req.set_parent(parent);
    req.set_name(name);
    req.set_new_parent(new_parent);
    req.set_new_name(new_name);
    req.set_flags(flags);
    pb::Empty resp;
    return meta_.Call(pb::RENAME, req, &resp);
  }

  Result<pb::Attr> Link(uint64_t ino, uint64_t new_parent, const std::string& new_name) override {
    CFS_RETURN_IF_ERROR(CheckName(new_name));
    pb::LinkRequest req;
    req.set_ino(ino);
    req.set_new_parent(new_parent);
    req.set_new_name(new_name);
    pb::AttrResponse resp;
    CFS_RETURN_IF_ERROR(meta_.Call(pb::LINK, req, &resp));
    MergeOpenSize(resp.mutable_attr());
    return std::move(*resp.mutable_attr());
  }

  Result<pb::Attr> Symlink(uint64_t parent, const std::string& name, const std::string& target,
                           uint32_t uid, uint32_t gid) override {
    CFS_RETURN_IF_ERROR(CheckName(name));
    if (target.empty() || target.size() >= 4096) return Status(ENAMETOOLONG, "bad symlink target length");
    pb::SymlinkRequest req;
    req.set_parent(parent);
    req.set_name(name);
    req.set_target(target);
    req.set_uid(uid);
    req.set_gid(gid);
    pb::AttrResponse resp;
    CFS_RETURN_IF_ERROR(meta_.Call(pb::SYMLINK, req, &resp));
    return std::move(*resp.mutable_attr());
  }

  Result<std::string> Readlink(uint64_t ino) override {
    pb::InoRequest req;
    req.set_ino(ino);
    pb::ReadlinkResponse resp;
    CFS_RETURN_IF_ERROR(meta_.Call(pb::READLINK, req, &resp));
    return std::move(*resp.mutable_target());
  }

  Result<pb::ReaddirResponse> Readdir(uint64_t ino, uint64_t cookie, uint32_t max,
                                      bool plus) override {
    pb::ReaddirRequest req;
    req.set_ino(ino);
    req.set_cookie(cookie);
    req.set_max_entries(max);
    req.set_plus(plus);
    pb::ReaddirResponse resp;
    CFS_RETURN_IF_ERROR(meta_.Call(pb::READDIR, req, &resp));
    if (plus)
      for (auto& e : *resp.mutable_entries()) MergeOpenSize(e.mutable_attr());
    return resp;
  }

  Result<pb::StatfsResponse> Statfs() override {
    pb::Empty req;
    pb::StatfsResponse resp;
    CFS_RETURN_IF_ERROR(meta_.Call(pb::STATFS, req, &resp));
    return resp;
  }

  Status SetXattr(uint64_t ino, const std::string& name, const std::string& value,
                  uint32_t flags) override {
    pb::XattrRequest req;
    req.set_ino(ino);
    req.set_name(name);
    req.set_value(value);
    req.set_flags(flags);
    pb::Empty resp;
    return meta_.Call(pb::SETXATTR, req, &resp);
  }

  Result<std::string> GetXattr(uint64_t ino, const std::string& name) override {
    pb::XattrRequest req;
    req.set_ino(ino);
    req.set_name(name);
    pb::XattrResponse resp;
    CFS_RETURN_IF_ERROR(meta_.Call(pb::GETXATTR, req, &resp));
    return std::move(*resp.mutable_value());
  }

  Result<std::vector<std::string>> ListXattr(uint64_t ino) override {
    pb::XattrRequest req;
    req.set_ino(ino);
    pb::XattrResponse resp;
    CFS_RETURN_IF_ERROR(meta_.Call(pb::LISTXATTR, req, &resp));
    return std::vector<std::string>(resp.names().begin(), resp.names().end());
  }

  Status RemoveXattr(uint64_t ino, const std::string& name) override {
    pb::XattrRequest req;
    req.set_ino(ino);
    req.set_name(name);
    pb::Empty resp;
    return meta_.Call(pb::REMOVEXATTR, req, &resp);
  }

  Status SetDirLayout(uint64_t ino, const LayoutHint& hint) override {
    CFS_RETURN_IF_ERROR(CheckHint(hint));
    pb::SetDirLayoutRequest req;
    req.set_ino(ino);
    req.mutable_layout()->set_unit(hint.unit);
    req.mutable_layout()->set_k(hint.k);
    req.mutable_layout()->set_m(hint.m);
    pb::Empty resp;
    return meta_.Call(pb::SET_DIR_LAYOUT, req, &resp);
  }

  // ---- files ----
  Result<std::shared_ptr<File>> Create(uint64_t parent, const std::string& name, uint32_t mode,
                                       uint32_t uid, uint32_t gid, bool exclusive,
                                       const LayoutHint& hint, pb::Attr* attr) override {
    CFS_RETURN_IF_ERROR(CheckName(name));
    CFS_RETURN_IF_ERROR(CheckHint(hint));
    pb::CreateRequest req;
    req.set_parent(parent);
    req.set_name(name);
    req.set_mode((mode & 07777) | S_IFREG);
    req.set_uid(uid);
    req.set_gid(gid);
    req.set_exclusive(exclusive);
    req.mutable_layout_hint()->set_unit(hint.unit);
    req.mutable_layout_hint()->set_k(hint.k);
    req.mutable_layout_hint()->set_m(hint.m);
    req.set_client_id(client_id_);
    pb::CreateResponse resp;
    CFS_RETURN_IF_ERROR(meta_.Call(pb::CREATE, req, &resp));
    return Opened(resp.mutable_attr(), attr);
  }

  Result<std::shared_ptr<File>> Open(uint64_t ino, uint32_t flags, pb::Attr* attr) override {
    {
      std::unique_lock<std::mutex> g(files_mu_);
      auto it = files_.find(ino);
      if (it != files_.end()) {
        // Already open here: the M-worker counts one open per client and file.
        it->second.refs++;
        auto f = it->second.file;
        g.unlock();
        if (attr) {
          auto a = GetAttr(ino);
          if (!a.ok()) {
            Release(f);
            return a.status();
          }
          *attr = std::move(*a);
        }
        return std::shared_ptr<File>(f);
      }
    }
    pb::OpenRequest req;
    req.set_ino(ino);
    req.set_flags(flags);
    req.set_client_id(client_id_);
    pb::AttrResponse resp;
    CFS_RETURN_IF_ERROR(meta_.Call(pb::OPEN, req, &resp));
    return Opened(resp.mutable_attr(), attr);
  }

  Status Release(const std::shared_ptr<File>& f) override {
    if (!f) return Status(EBADF, "no file");
    const uint64_t ino = f->ino();
    std::shared_ptr<FileImpl> impl;
    {
      std::lock_guard<std::mutex> g(files_mu_);
      auto it = files_.find(ino);
      if (it == files_.end() || it->second.file.get() != f.get())
        return Status(EBADF, "file handle is not open");
      if (--it->second.refs > 0) return Status::OK();
      impl = it->second.file;
    }
    // Flush while the entry stays visible, so a concurrent Open shares this
    // File instead of reading around its buffered writes.
    Status st = impl->FlushData();
    bool last = false;
    {
      std::lock_guard<std::mutex> g(files_mu_);
      auto it = files_.find(ino);
      if (it != files_.end() && it->second.file == impl && it->second.refs == 0) {
        files_.erase(it);
        last = true;
      }
    }
    if (!last) return st;
    Status cs = SendClose(*impl);
    return st.ok() ? cs : st;
  }

  // ---- paths ----
  Result<pb::Attr> Resolve(const std::string& path) override {
    if (path.empty() || path[0] != '/') return Status::Invalid("path must be absolute: '" + path + "'");
    if (path.size() >= 4096) return Status(ENAMETOOLONG, "path too long");
    std::vector<pb::Attr> stack;
    CFS_ASSIGN_OR_RETURN(pb::Attr root, GetAttr(1));
    stack.push_back(std::move(root));
    size_t pos = 0;
    while (pos < path.size()) {
      size_t next = path.find('/', pos);
      if (next == std::string::npos) next = path.size();
      std::string comp = path.substr(pos, next - pos);
      pos = next + 1;
      if (comp.empty() || comp == ".") continue;
      if (comp == "..") {
        if (stack.size() > 1) stack.pop_back();
        continue;
      }
      if (!S_ISDIR(stack.back().mode())) return Status(ENOTDIR, "not a directory in '" + path + "'");
      auto a = Lookup(stack.back().ino(), comp);
      if (!a.ok()) return Status(a.status().err(), a.status().message() + ": " + path);
      stack.push_back(std::move(*a));
    }
    return stack.back();
  }

  Result<std::pair<uint64_t, std::string>> ResolveParent(const std::string& path) override {
    if (path.empty() || path[0] != '/') return Status::Invalid("path must be absolute: '" + path + "'");
    std::string p = path;
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    size_t slash = p.rfind('/');
    std::string name = p.substr(slash + 1);
    if (name.empty() || name == "." || name == "..")
      return Status::Invalid("path has no final name: '" + path + "'");
    CFS_RETURN_IF_ERROR(CheckName(name));
    CFS_ASSIGN_OR_RETURN(pb::Attr dir, Resolve(slash == 0 ? "/" : p.substr(0, slash)));
    if (!S_ISDIR(dir.mode())) return Status(ENOTDIR, "parent of '" + path + "' is not a directory");
    return std::make_pair(dir.ino(), name);
  }

  // ---- cluster ----
  Result<pb::StatusResponse> ClusterStatus() override {
    pb::Empty req;
    pb::StatusResponse resp;
    CFS_RETURN_IF_ERROR(meta_.Call(pb::GET_STATUS, req, &resp));
    return resp;
  }

  Result<pb::ClusterMap> GetClusterMap(bool refresh) override { return map_.Get(refresh); }

  Result<std::string> DataPathTo(const std::string& host, uint16_t port) override {
    CFS_ASSIGN_OR_RETURN(std::shared_ptr<rpc::Channel> ch, data_pool_.Get(rpc::Endpoint{host, port}));
    return std::string(ch->kind());
  }

 private:
  std::shared_ptr<FileImpl> FindOpen(uint64_t ino) {
    std::lock_guard<std::mutex> g(files_mu_);
    auto it = files_.find(ino);
    return it == files_.end() ? nullptr : it->second.file;
  }

  void MergeOpenSize(pb::Attr* a) {
    if (!S_ISREG(a->mode())) return;
    if (auto f = FindOpen(a->ino())) a->set_size(std::max<uint64_t>(a->size(), f->size()));
  }

  // After OPEN or CREATE: share an existing File or make one.
  Result<std::shared_ptr<File>> Opened(pb::Attr* a, pb::Attr* out) {
    if (!S_ISREG(a->mode())) {
      if (S_ISDIR(a->mode())) return Status(EISDIR, "is a directory");
      return Status::Invalid("not a regular file");
    }
    Layout l = FromProto(a->layout());
    Status vs = l.Validate();
    if (!vs.ok()) return Status::IOError("ino " + std::to_string(a->ino()) + " has a bad layout: " + vs.message());
    std::shared_ptr<FileImpl> f;
    bool extra_open = false;
    {
      std::lock_guard<std::mutex> g(files_mu_);
      auto& e = files_[a->ino()];
      if (e.file) {
        extra_open = true;  // raced with another Open, or CREATE of an open file
        e.file->NoteSize(a->size());
      } else {
        e.file = std::make_shared<FileImpl>(a->ino(), std::move(l), a->size(), &io_, &meta_, tuning_);
      }
      e.refs++;
      f = e.file;
    }
    if (extra_open) {
      // Keep the M-worker's count at one open per client and file.
      pb::CloseRequest req;
      req.set_ino(a->ino());
      req.set_client_id(client_id_);
      pb::AttrResponse resp;
      Status st = meta_.Call(pb::CLOSE, req, &resp);
      if (!st.ok()) LOG_WARN("ino {}: balancing CLOSE failed: {}", a->ino(), st.ToString());
    }
    a->set_size(std::max<uint64_t>(a->size(), f->size()));
    if (out) *out = *a;
    return std::shared_ptr<File>(f);
  }

  Status SendClose(FileImpl& f) {
    pb::CloseRequest req;
    req.set_ino(f.ino());
    req.set_client_id(client_id_);
    int64_t mtime = 0;
    if (f.dirty(&mtime)) {
      req.set_has_size(true);
      req.set_size(f.size());
      req.set_mtime_ns(mtime);
    }
    pb::AttrResponse resp;
    Status st = meta_.Call(pb::CLOSE, req, &resp);
    if (st.ok()) f.MarkReported();
    return st;
  }

  ClientOptions opts_;
  uint64_t client_id_ = 0;
  MetaClient meta_;
  ClusterMapCache map_;
  rpc::ChannelPool data_pool_;
  StripedIo io_;
  FileTuning tuning_;
  std::mutex files_mu_;  // short sections only: never held across an RPC
  std::map<uint64_t, OpenEntry> files_;
};

}  // namespace

Result<std::unique_ptr<Client>> Client::Connect(const ClientOptions& opts) {
  if (opts.meta_addrs.empty()) return Status::Invalid("no M-worker address given");
  std::vector<rpc::Endpoint> addrs;
  for (const auto& a : opts.meta_addrs) {
    CFS_ASSIGN_OR_RETURN(rpc::Endpoint ep, rpc::Endpoint::Parse(a));
    addrs.push_back(std::move(ep));
  }
  // Metadata stays on TCP whatever the data transport: small messages, no bulk,
  // and the M-worker serves TCP only.
  CFS_ASSIGN_OR_RETURN(std::shared_ptr<rpc::Transport> meta_transport, rpc::MakeTransport("tcp"));
  auto data_transport = rpc::MakeTransport(opts.transport, opts.rdma_device);
  if (!data_transport.ok())
    return Status(data_transport.status().err(),
                  "data transport " + opts.transport + ": " + data_transport.status().message());
  auto c = std::make_unique<ClientImpl>(opts, std::move(meta_transport), std::move(*data_transport),
                                        std::move(addrs));
  CFS_RETURN_IF_ERROR(c->Init());
  return std::unique_ptr<Client>(std::move(c));
}

}  // namespace cfs::client
