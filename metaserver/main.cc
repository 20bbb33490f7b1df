// cfs-meta: the M-worker daemon. Flags or a config file (--config, CLI11
// format: `key = value` lines named like the long flags).
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "common/cli_parse.h"
#include "common/daemon_util.h"
#include "common/layout.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "client/repair.h"
#include "meta_service.h"
#include "rocks_namespace.h"
#include "rpc/transport.h"

namespace {

int Fail(const std::string& msg) {
  std::fprintf(stderr, "cfs-meta: %s\n", msg.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cfs-meta: the CFS M-worker (namespace, layouts, S-worker registry)"};
  std::string listen = "0.0.0.0:7000", db, metrics, log_file, log_level = "info";
  std::string stripe = "0+0", unit = "1M", wal_sync = "group";
  int heartbeat_ms = 5000, threads = 8, orphan_grace_s = 60;
  int64_t rebuild_after_s = 600, scrub_interval_s = 604800;
  std::string rebuild_rate = "200M", scrub_rate = "100M";
  bool check = false;
  app.set_config("--config", "", "read options from this config file (key = value)");
  app.add_option("--listen", listen, "address to serve RPCs on, HOST:PORT")->capture_default_str();
  // Checked after parsing (not ->required()) so that an unknown option is what gets reported.
  app.add_option("--db", db, "metadata directory (RocksDB); created if missing (required)");
  app.add_option("--metrics", metrics, "serve Prometheus metrics at http://HOST:PORT/metrics");
  app.add_option("--log", log_file, "log file (default: stderr)");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  app.add_option("--default-stripe", stripe,
                 "default K+M for new files; K=0 means all up targets (at most 16)")
      ->capture_default_str();
  app.add_option("--default-unit", unit, "default stripe unit (64K..64M, power of two)")->capture_default_str();
  app.add_option("--heartbeat-timeout-ms", heartbeat_ms, "mark an S-worker down after this silence")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--orphan-grace-s", orphan_grace_s,
                 "after a restart, reclaim unlinked-but-open files not reopened within this time")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--wal-sync", wal_sync,
                 "group: acknowledge after a (group-committed) WAL fsync; none: after the write "
                 "reaches the OS (survives kill -9, not power loss)")
      ->check(CLI::IsMember({"group", "none"}))
      ->capture_default_str();
  app.add_option("--rebuild-after-s", rebuild_after_s,
                 "retire a target whose S-worker has been down this long and rebuild its units on "
                 "spares (0: only on `cfs rebuild`)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--rebuild-rate", rebuild_rate, "rebuild throttle, bytes/s (e.g. 200M; 0: unthrottled)")
      ->capture_default_str();
  app.add_option("--scrub-interval-s", scrub_interval_s,
                 "start a slow background scrub pass this long after the last one ended (a week by "
                 "default; 0: only on `cfs scrub`)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--scrub-rate", scrub_rate, "scrub throttle, bytes/s (e.g. 100M; 0: unthrottled)")
      ->capture_default_str();
  app.add_option("--threads", threads, "RPC handler threads")->check(CLI::Range(1, 256))->capture_default_str();
  app.add_flag("--check", check, "check the namespace in --db for consistency and exit (0 = consistent)");
  if (int rc = cfs::ParseCommandLine(&app, argc, argv, "cfs-meta"); rc != cfs::kParsedOk) return rc;
  if (db.empty()) {
    std::fprintf(stderr, "cfs-meta: error: --db DIR is required\nRun with --help for more information.\n");
    return cfs::kExitBadCommandLine;
  }

  cfs::meta::MetaOptions mo;
  uint32_t k = 0, m = 0;
  // "K+M" or "K"; K = 0 is allowed here (all up targets), so not cfs::ParseStripe.
  {
    size_t plus = stripe.find('+');
    std::string ks = stripe.substr(0, plus), ms = plus == std::string::npos ? "0" : stripe.substr(plus + 1);
    auto digits = [](const std::string& x) {
      return !x.empty() && x.size() < 4 && x.find_first_not_of("0123456789") == std::string::npos;
    };
    if (!digits(ks) || !digits(ms)) return Fail("--default-stripe: expected K+M such as 4+0, got \"" + stripe + "\"");
    k = static_cast<uint32_t>(std::stoul(ks));
    m = static_cast<uint32_t>(std::stoul(ms));
    if (k > cfs::kMaxDataUnits) return Fail("--default-stripe: K must be 0.." + std::to_string(cfs::kMaxDataUnits));
    if (m > cfs::kMaxParityUnits) return Fail("--default-stripe: M must be 0.." + std::to_string(cfs::kMaxParityUnits));
  }
  auto unit_bytes = cfs::ParseSize(unit);
  if (!unit_bytes.ok()) return Fail("--default-unit: " + unit_bytes.status().message());
  if (*unit_bytes > UINT32_MAX) return Fail("--default-unit: too large");
  mo.default_unit = static_cast<uint32_t>(*unit_bytes);
  mo.default_k = k;
  mo.default_m = m;
  {
    cfs::pb::Layout l;
    l.set_unit(mo.default_unit);
    l.set_k(k);
    l.set_m(m);
    if (cfs::Status s = cfs::meta::Placement::CheckShape(l); !s.ok())
      return Fail("default layout: " + s.message());
  }
  mo.heartbeat_timeout = std::chrono::milliseconds(heartbeat_ms);
  mo.orphan_grace = std::chrono::seconds(orphan_grace_s);
  mo.threads = threads;
  {
    auto rr = rebuild_rate == "0" ? cfs::Result<uint64_t>(uint64_t(0)) : cfs::ParseSize(rebuild_rate);
    if (!rr.ok()) return Fail("--rebuild-rate: " + rr.status().message());
    auto sr = scrub_rate == "0" ? cfs::Result<uint64_t>(uint64_t(0)) : cfs::ParseSize(scrub_rate);
    if (!sr.ok()) return Fail("--scrub-rate: " + sr.status().message());
    mo.rebuild.rebuild_after = std::chrono::seconds(rebuild_after_s);
    mo.rebuild.rate_bytes_per_s = *rr;
    mo.scrub.interval = std::chrono::seconds(scrub_interval_s);
    mo.scrub.rate_bytes_per_s = *sr;
    mo.repairer_factory = [](const std::string& addr) { return cfs::client::NewRepairer(addr); };
  }
  auto ep = cfs::rpc::Endpoint::Parse(listen);
  if (!ep.ok()) return Fail("--listen: " + ep.status().message());

  cfs::meta::RocksOptions ro;
  ro.wal_sync = *cfs::meta::ParseWalSync(wal_sync);
  std::error_code ec;
  if (check) {
    if (!std::filesystem::is_directory(db, ec)) return Fail("no metadata directory at " + db);
    ro.create_if_missing = false;
    cfs::InitLogging("cfs-meta", log_file, "warn");
    auto ns = cfs::meta::RocksNamespace::Open(db, ro);
    if (!ns.ok()) {
      bool locked = ns.status().message().find("lock") != std::string::npos;
      return Fail(ns.status().ToString() + (locked ? " (is cfs-meta running on this --db? stop it first)" : ""));
    }
    std::string report;
    cfs::Status s = (*ns)->CheckConsistency(&report);
    auto c = (*ns)->Counters();
    if (s.ok()) {
      std::printf("consistent: %llu inodes (%llu files, %llu directories), %llu orphans, %llu pending deletes\n",
                  (unsigned long long)c.inodes, (unsigned long long)c.files,
                  (unsigned long long)c.directories, (unsigned long long)c.orphans,
                  (unsigned long long)c.pending_deletes);
      return 0;
    }
    std::printf("%s\n%s", s.ToString().c_str(), report.c_str());
    return 1;
  }

  if (!std::filesystem::exists(db, ec)) {
    if (!std::filesystem::create_directories(db, ec))
      return Fail("cannot create --db " + db + ": " + ec.message());
  } else if (!std::filesystem::is_directory(db, ec)) {
    return Fail("--db " + db + " is not a directory");
  }
  if (access(db.c_str(), W_OK | X_OK) != 0) return Fail("--db " + db + " is not writable");

  if (!log_file.empty()) {
    auto parent = std::filesystem::path(log_file).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  }
  try {
    cfs::InitLogging("cfs-meta", log_file, log_level);
  } catch (const std::exception& e) {
    return Fail(std::string("--log: ") + e.what());
  }

  // Signals are taken synchronously by the main thread; block them everywhere first.
  const sigset_t sigs = cfs::BlockStopSignals();

  auto ns = cfs::meta::RocksNamespace::Open(db, ro);
  if (!ns.ok()) {
    std::string hint = ns.status().message().find("lock") != std::string::npos
                           ? " (is another cfs-meta using this --db?)"
                           : "";
    return Fail(ns.status().ToString() + hint);
  }

  std::unique_ptr<cfs::MetricsServer> metrics_server;
  if (!metrics.empty()) {
    auto mep = cfs::rpc::Endpoint::Parse(metrics);
    if (!mep.ok()) return Fail("--metrics: " + mep.status().message());
    metrics_server = std::make_unique<cfs::MetricsServer>();
    if (cfs::Status s = metrics_server->Start(mep->host, mep->port); !s.ok())
      return Fail("--metrics " + metrics + ": " + s.ToString());
  }

  cfs::meta::MetaService service(ns->get(), mo);
  if (cfs::Status s = service.Start(ep->host, ep->port); !s.ok())
    return Fail("cannot serve on " + listen + ": " + s.ToString());
  std::string where = ep->host + ":" + std::to_string(service.port());
  LOG_INFO("cfs-meta listening on {} db={} wal_sync={} default_layout={}+{} unit={} rebuild_after={}s "
           "rebuild_rate={} scrub_interval={}s scrub_rate={}",
           where, db, wal_sync, k, m, mo.default_unit, rebuild_after_s, rebuild_rate, scrub_interval_s,
           scrub_rate);
  std::printf("cfs-meta listening on %s\n", where.c_str());
  std::fflush(stdout);

  int sig = cfs::WaitForStopSignal(sigs);
  LOG_INFO("cfs-meta stopping on signal {}", sig);
  service.Stop();
  metrics_server.reset();
  ns->reset();
  LOG_INFO("cfs-meta stopped");
  spdlog::shutdown();
  return 0;
}
