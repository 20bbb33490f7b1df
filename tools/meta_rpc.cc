#include "meta_rpc.h"

#include "client/client.h"
#include "cluster_locator.h"
#include "rpc/transport.h"

namespace cfs::tools {

std::unique_ptr<client::MetaClient> MetaClientOrReport(const ClusterFlags& f, int* exit_code) {
  auto loc = LocateCluster(f.cluster, f.mount, "");
  if (!loc.ok()) {
    *exit_code = loc.status().err() == EINVAL ? UsageError(loc.status().message())
                                              : Fail("finding the cluster", loc.status());
    return nullptr;
  }
  auto opts = client::ClientOptions::Parse(loc->cluster, "");
  if (!opts.ok()) {
    *exit_code = UsageError("bad cluster address '" + loc->cluster + "': " + opts.status().message());
    return nullptr;
  }
  std::vector<rpc::Endpoint> eps;
  for (const auto& a : opts->meta_addrs) {
    auto ep = rpc::Endpoint::Parse(a);
    if (!ep.ok()) {
      *exit_code = UsageError("bad cluster address '" + a + "': " + ep.status().message());
      return nullptr;
    }
    eps.push_back(*ep);
  }
  auto transport = rpc::MakeTransport("tcp");
  if (!transport.ok()) {
    *exit_code = Fail("transport", transport.status());
    return nullptr;
  }
  auto timeout = std::chrono::milliseconds(int64_t(f.timeout_s) * 1000);
  return std::make_unique<client::MetaClient>(*transport, eps, timeout, timeout);
}

std::string ProgressBar(uint64_t done, uint64_t total, int width) {
  if (total == 0) return "[" + std::string(width, '?') + "]   ?%";
  if (done > total) done = total;
  int filled = int(double(done) / double(total) * width);
  int pct = int(double(done) * 100 / double(total));
  std::string pcts = std::to_string(pct) + "%";
  return "[" + std::string(filled, '#') + std::string(width - filled, '.') + "] " +
         std::string(4 - std::min<size_t>(4, pcts.size()), ' ') + pcts;
}

std::string FormatEta(int64_t s) {
  if (s < 0) return "?";
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", (long long)(s / 3600), (long long)(s / 60 % 60),
                  (long long)(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", (long long)(s / 60), (long long)(s % 60));
  return buf;
}

}  // namespace cfs::tools
