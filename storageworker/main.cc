// cfs-storage: the S-worker. Serves the stripe units kept in one or more target
// directories and registers them with the M-worker.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "common/cli_parse.h"
#include "common/daemon_util.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "meta_link.h"
#include "rpc/rdma_transport.h"
#include "rpc/transport.h"
#include "storage_service.h"
#include "target.h"

namespace {

// HOST:PORT where PORT may be 0 (any free port), unlike Endpoint::Parse.
cfs::Result<cfs::rpc::Endpoint> ParseListen(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size())
    return cfs::Status::Invalid("want HOST:PORT");
  cfs::rpc::Endpoint ep;
  ep.host = s.substr(0, colon);
  if (ep.host.size() > 2 && ep.host.front() == '[' && ep.host.back() == ']')
    ep.host = ep.host.substr(1, ep.host.size() - 2);
  const std::string port = s.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) > 65535)
    return cfs::Status::Invalid("bad port '" + port + "'");
  ep.port = static_cast<uint16_t>(std::stoul(port));
  return ep;
}

// What a server of MakeTransport(name) serves, as registered with the
// M-worker: "tcp" or "tcp+rdma" (rdma and auto servers keep TCP beside RDMA).
// auto adds RDMA only where this process can use it; the reason it could not
// is logged (MakeTransport logs it too).
std::string ServedTransports(const std::string& name, const std::string& device) {
  if (name == "tcp") return "tcp";
  if (name == "rdma") return "tcp+rdma";
  cfs::rpc::RdmaOptions ro;
  ro.device = device;
  cfs::Status usable = cfs::rpc::RdmaUsable(ro);
  if (usable.ok()) return "tcp+rdma";
  LOG_INFO("--transport auto: serving TCP only: {}", usable.message());
  return "tcp";
}

bool g_log_to_file = false;

// Start-up errors go to stderr (the launcher shows them) and to the log file.
int Fail(const std::string& what) {
  if (g_log_to_file) LOG_ERROR("{}", what);
  std::cerr << "cfs-storage: " << what << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cfs;
  CLI::App app{"cfs-storage: CFS S-worker, serves stripe units from local target directories"};
  std::string meta, listen = "0.0.0.0:0", advertise, metrics, log_file, log_level = "info";
  std::string transport_name = "tcp", rdma_device;
  std::vector<std::string> target_dirs;
  int threads = 16;
  size_t max_open = 1024;
  bool direct_io = true;
  // --meta and --target are required, checked after parsing so that an unknown option is named first.
  app.add_option("--meta", meta, "M-worker address(es), HOST:PORT[,HOST:PORT...] (required)");
  app.add_option("--listen", listen, "address to serve on, HOST:PORT (port 0: any free port)")
      ->capture_default_str();
  app.add_option("--advertise", advertise,
                 "host clients use to reach this worker (default: the listen host, or 127.0.0.1 "
                 "when listening on 0.0.0.0)");
  app.add_option("--target", target_dirs, "target directory (repeat for several; required)");
  app.add_option("--transport", transport_name,
                 "what clients may reach this worker over: tcp; rdma (RDMA and TCP on the same "
                 "port number; fails at start when RDMA is unusable: no device, RLIMIT_MEMLOCK too "
                 "low); auto (adds RDMA when this machine can use it, else TCP only, saying why). "
                 "The M-worker is always reached over TCP")
      ->capture_default_str()
      ->check(CLI::IsMember({"tcp", "rdma", "auto"}))
      ->type_name("tcp|rdma|auto");
  app.add_option("--rdma-device", rdma_device,
                 "RDMA device to serve on (e.g. rxe0, mlx5_0; default: the device that holds the "
                 "listen address)")
      ->type_name("NAME");
  app.add_option("--metrics", metrics, "serve Prometheus metrics at http://HOST:PORT/metrics");
  app.add_option("--log", log_file, "log file (default: stderr)");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.add_option("--threads", threads, "request handler threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app.add_option("--max-open-objects", max_open, "objects kept open per target (fd cache)")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1} << 20));
  app.add_option("--direct-io", direct_io,
                 "write whole aligned blocks with O_DIRECT, bypassing the page cache (true|false; "
                 "falls back by itself where the file system refuses it)")
      ->capture_default_str();
  app.set_config("--config", "", "read options from this file (TOML/INI: key = value)");
  if (int rc = ParseCommandLine(&app, argc, argv, "cfs-storage"); rc != kParsedOk) return rc;
  if (meta.empty() || target_dirs.empty()) {
    std::cerr << "cfs-storage: error: " << (meta.empty() ? "--meta" : "--target")
              << " is required\nRun with --help for more information.\n";
    return kExitBadCommandLine;
  }

  // Signals are taken synchronously by main; every thread inherits the mask.
  const sigset_t sigs = BlockStopSignals();

  InitLogging("cfs-storage", log_file, log_level);
  g_log_to_file = !log_file.empty();
  RaiseFdLimit();  // two fds per cached object: as many as we are allowed

  auto meta_eps = storage::MetaLink::ParseAddresses(meta);
  if (!meta_eps.ok()) return Fail("--meta: " + meta_eps.status().message());
  auto listen_ep = ParseListen(listen);
  if (!listen_ep.ok()) return Fail("--listen '" + listen + "': " + listen_ep.status().message());
  if (advertise.empty())
    advertise = (listen_ep->host == "0.0.0.0" || listen_ep->host.empty()) ? "127.0.0.1" : listen_ep->host;

  // The transport first: `--transport rdma` where RDMA is unusable fails at
  // once with the transport's reason (no device, RLIMIT_MEMLOCK too low).
  auto transport = rpc::MakeTransport(transport_name, rdma_device);
  if (!transport.ok()) return Fail("--transport " + transport_name + ": " + transport.status().ToString());
  auto served = ServedTransports(transport_name, rdma_device);
  // The M-worker serves TCP only (small messages, no bulk): the link to it
  // never depends on RDMA.
  auto meta_transport = rpc::MakeTransport("tcp");
  if (!meta_transport.ok()) return Fail("transport tcp: " + meta_transport.status().ToString());

  std::string worker_uuid = storage::ResolveWorkerUuid(target_dirs);
  std::vector<std::unique_ptr<storage::Target>> targets;
  for (const auto& d : target_dirs) {
    auto t = storage::Target::Open(d, worker_uuid, storage::FileChunkStoreOptions{max_open, direct_io});
    if (!t.ok()) return Fail(t.status().ToString());
    LOG_INFO("target path={} uuid={} id={}", (*t)->path(), (*t)->uuid(), (*t)->id());
    targets.push_back(std::move(*t));
  }

  storage::StorageService service(std::move(targets));
  Status st = service.Start(**transport, listen_ep->host, listen_ep->port, threads);
  if (!st.ok()) return Fail(st.ToString());
  LOG_INFO("cfs-storage listening on {}:{}, serving {} (--transport {})", listen_ep->host, service.port(),
           served, transport_name);
  LOG_INFO("worker uuid={} advertise={}:{} targets={} threads={}", worker_uuid, advertise,
           service.port(), service.num_targets(), threads);

  for (size_t i = 0; i < service.num_targets(); i++) {
    storage::Target* t = &service.target(i);
    Metrics::Get().Gauge("cfs_storage_target_free_bytes_" + std::to_string(i), [t] {
      auto s = t->Stats();
      return s.ok() ? static_cast<double>(s->free) : 0.0;
    }, "free bytes of target " + t->path());
    Metrics::Get().Gauge("cfs_storage_target_direct_written_bytes_" + std::to_string(i), [t] {
      return static_cast<double>(t->direct_bytes());
    }, "bytes of target " + t->path() + " written with O_DIRECT (bypassing the page cache)");
  }
  std::unique_ptr<MetricsServer> metrics_server;
  if (!metrics.empty()) {
    metrics_server = std::make_unique<MetricsServer>();
    auto ep = ParseListen(metrics);
    if (!ep.ok()) return Fail("--metrics '" + metrics + "': " + ep.status().message());
    st = metrics_server->Start(ep->host, ep->port);
    if (!st.ok()) return Fail("metrics on " + metrics + ": " + st.ToString());
    LOG_INFO("metrics at http://{}:{}/metrics", ep->host, metrics_server->port());
  }

  storage::MetaLinkOptions lo;
  lo.meta = *meta_eps;
  lo.worker_uuid = worker_uuid;
  lo.host = advertise;
  lo.port = service.port();
  lo.transport = served;
  storage::MetaLink link(lo, &service, *meta_transport);
  link.Start();

  int sig = WaitForStopSignal(sigs);
  LOG_INFO("cfs-storage stopping on signal {}", sig);
  link.Stop();
  service.Stop();
  LOG_INFO("cfs-storage stopped");
  spdlog::shutdown();
  return 0;
}
