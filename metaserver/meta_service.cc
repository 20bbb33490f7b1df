#include "meta_service.h"

#include <algorithm>

#include <sys/stat.h>

#include "common/logging.h"
#include "common/metrics.h"

namespace cfs::meta {

MetaService::MetaService(NamespaceStore* store, const MetaOptions& opts)
    : store_(store),
      opts_(opts),
      registry_(store, opts.heartbeat_timeout),
      placement_(opts.default_unit, opts.default_k, opts.default_m) {}

MetaService::~MetaService() { Stop(); }

template <class Req, class Resp, class Fn>
void MetaService::Add(pb::Method m, Fn fn) {
  std::string label = "method=\"" + pb::Method_Name(m) + "\"";
  auto& ops = Metrics::Get().Counter("cfs_meta_ops_total", label, "M-worker requests served");
  auto& errs = Metrics::Get().Counter("cfs_meta_op_errors_total", label, "M-worker requests that failed");
  std::function<Status(const Req&, Resp*)> f = fn;
  server_->Register(m, rpc::Typed<Req, Resp>([f, &ops, &errs](const Req& r, Resp* out) {
    ops++;
    Status s = f(r, out);
    if (!s.ok()) errs++;
    return s;
  }));
}

Status MetaService::Start(const std::string& host, uint16_t port) {
  started_ = std::chrono::steady_clock::now();
  CFS_RETURN_IF_ERROR(Placement::CheckShape(placement_.DefaultLayout()));
  CFS_RETURN_IF_ERROR(registry_.Load());
  CFS_ASSIGN_OR_RETURN(transport_, rpc::MakeTransport(opts_.transport));
  server_ = transport_->NewServer(opts_.threads);
  rebuild_ = std::make_unique<RebuildManager>(store_, &registry_, opts_.repairer_factory, opts_.rebuild);
  scrub_ = std::make_unique<ScrubManager>(store_, opts_.repairer_factory, opts_.scrub);
  RegisterHandlers();
  CFS_RETURN_IF_ERROR(server_->Start(host, port));
  gc_ = std::make_unique<ObjectGc>(store_, &registry_, transport_);
  gc_->Start();
  // The Repairer reaches this M-worker like any client does.
  std::string self = host;
  if (self.empty() || self == "0.0.0.0") self = "127.0.0.1";
  else if (self == "::") self = "::1";
  if (self.find(':') != std::string::npos) self = "[" + self + "]";
  self += ":" + std::to_string(server_->port());
  rebuild_->Start(self);
  scrub_->Start(self);
  Metrics::Get().Gauge("cfs_meta_inodes", [this] { return double(store_->Counters().inodes); },
                       "inodes in the namespace");
  Metrics::Get().Gauge("cfs_meta_pending_deletes",
                       [this] { return double(store_->Counters().pending_deletes); },
                       "files whose objects await deletion");
  Metrics::Get().Gauge("cfs_meta_epoch", [this] { return double(registry_.epoch()); },
                       "cluster map epoch");
  maintenance_ = std::thread([this] { Maintenance(); });
  return Status::OK();
}

uint16_t MetaService::port() const { return server_ ? server_->port() : 0; }

void MetaService::Stop() {
  {
    std::lock_guard l(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  // The managers first: their Repairers talk to this server.
  if (rebuild_) rebuild_->Stop();
  if (scrub_) scrub_->Stop();
  if (server_) server_->Stop();
  if (maintenance_.joinable()) maintenance_.join();
  if (gc_) gc_->Stop();
}

void MetaService::Maintenance() {
  bool orphans_done = false;
  std::unique_lock l(mu_);
  while (!stop_) {
    cv_.wait_for(l, std::chrono::milliseconds(250));
    if (stop_) break;
    l.unlock();
    if (registry_.ExpireSilent() > 0) rebuild_->Kick();
    if (!orphans_done && std::chrono::steady_clock::now() - started_ >= opts_.orphan_grace) {
      uint64_t purged = 0;
      Status s = store_->PurgeClosedOrphans(&purged);
      if (s.ok()) {
        orphans_done = true;
        if (purged) {
          LOG_INFO("purged {} orphan(s) left from before the restart", purged);
          gc_->Kick();
        }
      } else {
        LOG_ERROR("purge orphans: {}", s.ToString());
      }
    }
    l.lock();
  }
}

void MetaService::RegisterHandlers() {
  NamespaceStore* ns = store_;
  // ---- cluster ----
  Add<pb::RegisterWorkerRequest, pb::RegisterWorkerResponse>(
      pb::REGISTER_WORKER, [this](const pb::RegisterWorkerRequest& r, pb::RegisterWorkerResponse* out) {
        CFS_ASSIGN_OR_RETURN(*out, registry_.Register(r));
        gc_->Kick();  // a returning worker may have objects waiting for deletion
        rebuild_->Kick();  // ... or files to resync
        return Status::OK();
      });
  Add<pb::HeartbeatRequest, pb::HeartbeatResponse>(
      pb::HEARTBEAT, [this](const pb::HeartbeatRequest& r, pb::HeartbeatResponse* out) {
        *out = registry_.Heartbeat(r);
        return Status::OK();
      });
  Add<pb::Empty, pb::ClusterMap>(pb::GET_CLUSTER_MAP, [this](const pb::Empty&, pb::ClusterMap* out) {
    *out = registry_.Map();
    return Status::OK();
  });
  Add<pb::Empty, pb::StatusResponse>(pb::GET_STATUS, [this](const pb::Empty&, pb::StatusResponse* out) {
    *out->mutable_map() = registry_.Map();
    auto c = store_->Counters();
    out->set_inodes(c.inodes);
    out->set_files(c.files);
    out->set_directories(c.directories);
    out->set_pending_deletes(c.pending_deletes);
    out->set_uptime_s(std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::steady_clock::now() - started_).count());
    out->set_version(CFS_META_VERSION);
    *out->mutable_default_layout() = placement_.DefaultLayout();
    return Status::OK();
  });
  Add<pb::Empty, pb::StatfsResponse>(pb::STATFS, [this](const pb::Empty&, pb::StatfsResponse* out) {
    uint64_t cap, free;
    registry_.Statfs(&cap, &free);
    out->set_capacity(cap);
    out->set_free(free);
    uint64_t files = store_->Counters().inodes;
    out->set_files(files);
    const uint64_t kMaxFiles = 1ull << 40;
    out->set_files_free(files < kMaxFiles ? kMaxFiles - files : 0);
    out->set_block_size(4096);
    out->set_name_max(kNameMax);
    return Status::OK();
  });
  // ---- namespace ----
  Add<pb::LookupRequest, pb::AttrResponse>(pb::LOOKUP, [ns](const pb::LookupRequest& r, pb::AttrResponse* out) {
    CFS_ASSIGN_OR_RETURN(*out->mutable_attr(), ns->Lookup(r.parent(), r.name()));
    return Status::OK();
  });
  Add<pb::InoRequest, pb::AttrResponse>(pb::GETATTR, [ns](const pb::InoRequest& r, pb::AttrResponse* out) {
    CFS_ASSIGN_OR_RETURN(*out->mutable_attr(), ns->GetAttr(r.ino()));
    return Status::OK();
  });
  Add<pb::SetattrRequest, pb::AttrResponse>(pb::SETATTR, [ns](const pb::SetattrRequest& r, pb::AttrResponse* out) {
    CFS_ASSIGN_OR_RETURN(*out->mutable_attr(), ns->SetAttr(r));
    return Status::OK();
  });
  auto create = [this, ns](const pb::CreateRequest& r, pb::CreateResponse* out) {
    CFS_RETURN_IF_ERROR(Placement::CheckShape(r.layout_hint()));
    // Snapshot the up targets before taking the store's lock (lock order:
    // registry never waits on the store while the store waits on it).
    auto up = registry_.UpTargets();
    auto down = registry_.DownTargets();
    auto res = ns->Create(r, [&](const pb::Layout* dir) { return placement_.Choose(r.layout_hint(), dir, up, down); });
    if (!res.ok()) return res.status();
    *out->mutable_attr() = res->attr;
    out->set_created(res->created);
    return Status::OK();
  };
  Add<pb::CreateRequest, pb::CreateResponse>(pb::CREATE, [create](const pb::CreateRequest& r, pb::CreateResponse* out) {
    if ((r.mode() & S_IFMT) != 0 && (r.mode() & S_IFMT) != S_IFREG)
      return Status::Invalid("CREATE makes regular files; use MKNOD");
    return create(r, out);
  });
  Add<pb::CreateRequest, pb::CreateResponse>(pb::MKNOD, [create](const pb::CreateRequest& r, pb::CreateResponse* out) {
    return create(r, out);
  });
  Add<pb::MkdirRequest, pb::AttrResponse>(pb::MKDIR, [ns](const pb::MkdirRequest& r, pb::AttrResponse* out) {
    CFS_ASSIGN_OR_RETURN(*out->mutable_attr(), ns->Mkdir(r));
    return Status::OK();
  });
  Add<pb::UnlinkRequest, pb::Empty>(pb::UNLINK, [this, ns](const pb::UnlinkRequest& r, pb::Empty*) {
    CFS_RETURN_IF_ERROR(ns->Unlink(r.parent(), r.name()));
    gc_->Kick();
    return Status::OK();
  });
  Add<pb::UnlinkRequest, pb::Empty>(pb::RMDIR, [ns](const pb::UnlinkRequest& r, pb::Empty*) {
    return ns->Rmdir(r.parent(), r.name());
  });
  Add<pb::RenameRequest, pb::Empty>(pb::RENAME, [this, ns](const pb::RenameRequest& r, pb::Empty*) {
    CFS_RETURN_IF_ERROR(ns->Rename(r));
    gc_->Kick();
    return Status::OK();
  });
  Add<pb::LinkRequest, pb::AttrResponse>(pb::LINK, [ns](const pb::LinkRequest& r, pb::AttrResponse* out) {
    CFS_ASSIGN_OR_RETURN(*out->mutable_attr(), ns->Link(r.ino(), r.new_parent(), r.new_name()));
    return Status::OK();
  });
  Add<pb::SymlinkRequest, pb::AttrResponse>(pb::SYMLINK, [ns](const pb::SymlinkRequest& r, pb::AttrResponse* out) {
    CFS_ASSIGN_OR_RETURN(*out->mutable_attr(), ns->Symlink(r));
    return Status::OK();
  });
  Add<pb::InoRequest, pb::ReadlinkResponse>(pb::READLINK, [ns](const pb::InoRequest& r, pb::ReadlinkResponse* out) {
    CFS_ASSIGN_OR_RETURN(*out->mutable_target(), ns->Readlink(r.ino()));
    return Status::OK();
  });
  Add<pb::ReaddirRequest, pb::ReaddirResponse>(pb::READDIR, [ns](const pb::ReaddirRequest& r, pb::ReaddirResponse* out) {
    return ns->Readdir(r, out);
  });
  Add<pb::OpenRequest, pb::AttrResponse>(pb::OPEN, [ns](const pb::OpenRequest& r, pb::AttrResponse* out) {
    CFS_ASSIGN_OR_RETURN(*out->mutable_attr(), ns->Open(r.ino(), r.client_id()));
    return Status::OK();
  });
  Add<pb::CloseRequest, pb::AttrResponse>(pb::CLOSE, [this, ns](const pb::CloseRequest& r, pb::AttrResponse* out) {
    CFS_ASSIGN_OR_RETURN(*out->mutable_attr(), ns->Close(r));
    if (out->attr().nlink() == 0) gc_->Kick();
    return Status::OK();
  });
  Add<pb::ReportSizeRequest, pb::AttrResponse>(pb::REPORT_SIZE, [ns](const pb::ReportSizeRequest& r, pb::AttrResponse* out) {
    CFS_ASSIGN_OR_RETURN(*out->mutable_attr(), ns->ReportSize(r.ino(), r.size(), r.mtime_ns()));
    return Status::OK();
  });
  Add<pb::XattrRequest, pb::Empty>(pb::SETXATTR, [ns](const pb::XattrRequest& r, pb::Empty*) {
    return ns->SetXattr(r.ino(), r.name(), r.value(), r.flags());
  });
  Add<pb::XattrRequest, pb::XattrResponse>(pb::GETXATTR, [ns](const pb::XattrRequest& r, pb::XattrResponse* out) {
    CFS_ASSIGN_OR_RETURN(*out->mutable_value(), ns->GetXattr(r.ino(), r.name()));
    return Status::OK();
  });
  Add<pb::XattrRequest, pb::XattrResponse>(pb::LISTXATTR, [ns](const pb::XattrRequest& r, pb::XattrResponse* out) {
    CFS_ASSIGN_OR_RETURN(auto names, ns->ListXattr(r.ino()));
    for (auto& n : names) out->add_names(n);
    return Status::OK();
  });
  Add<pb::XattrRequest, pb::Empty>(pb::REMOVEXATTR, [ns](const pb::XattrRequest& r, pb::Empty*) {
    return ns->RemoveXattr(r.ino(), r.name());
  });
  // ---- redundancy ----
  Add<pb::ReportDegradedRequest, pb::Empty>(pb::REPORT_DEGRADED, [this, ns](const pb::ReportDegradedRequest& r, pb::Empty*) {
    if (r.ino() == 0) return Status::Invalid("REPORT_DEGRADED: ino 0");
    if (r.target_ids_size() > 64) return Status::Invalid("REPORT_DEGRADED: too many targets");
    std::vector<uint32_t> ts;
    for (uint32_t t : r.target_ids())
      if (t != 0) ts.push_back(t);
    if (ts.empty()) return Status::Invalid("REPORT_DEGRADED: no target ids");
    // A client with a layout from before a rebuild swap names the retired
    // target; the unit it missed is on the spare at some index we no longer
    // know, so every target of the current layout gets a (cheap when in
    // sync) resync.
    auto attr = ns->GetAttr(r.ino());
    if (attr.ok()) {
      const auto& lt = attr->layout().targets();
      bool stale_layout = false;
      for (uint32_t t : ts)
        if (std::find(lt.begin(), lt.end(), t) == lt.end()) stale_layout = true;
      if (stale_layout) ts.assign(lt.begin(), lt.end());
    }
    CFS_RETURN_IF_ERROR(ns->AddDegraded(r.ino(), ts));
    rebuild_->Kick();
    return Status::OK();
  });
  Add<pb::RebuildStartRequest, pb::Empty>(pb::REBUILD_START, [this](const pb::RebuildStartRequest& r, pb::Empty*) {
    return rebuild_->Request(r.target_id());
  });
  Add<pb::Empty, pb::RebuildStatusResponse>(pb::REBUILD_STATUS, [this](const pb::Empty&, pb::RebuildStatusResponse* out) {
    *out = rebuild_->GetStatus();
    return Status::OK();
  });
  Add<pb::ScrubStartRequest, pb::Empty>(pb::SCRUB_START, [this](const pb::ScrubStartRequest& r, pb::Empty*) {
    return scrub_->StartPass(r.rate_bytes_per_s());
  });
  Add<pb::Empty, pb::ScrubStatusResponse>(pb::SCRUB_STATUS, [this](const pb::Empty&, pb::ScrubStatusResponse* out) {
    *out = scrub_->GetStatus();
    return Status::OK();
  });
  Add<pb::SetDirLayoutRequest, pb::Empty>(pb::SET_DIR_LAYOUT, [ns](const pb::SetDirLayoutRequest& r, pb::Empty*) {
    CFS_RETURN_IF_ERROR(Placement::CheckShape(r.layout()));
    return ns->SetDirLayout(r.ino(), r.layout());
  });
}

}  // namespace cfs::meta
