// ClientOptions parsing and Layout <-> protobuf conversion.
#include <cstdlib>

#include "client/client.h"

namespace cfs::client {
namespace {

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t p = s.find(sep, start);
    if (p == std::string::npos) p = s.size();
    out.push_back(s.substr(start, p - start));
    start = p + 1;
  }
  return out;
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

Result<long> ParseInt(const std::string& key, const std::string& v, long lo, long hi) {
  if (v.empty()) return Status::Invalid("option " + key + " needs a value");
  char* end = nullptr;
  errno = 0;
  long n = std::strtol(v.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || n < lo || n > hi)
    return Status::Invalid("option " + key + "=" + v + " must be an integer in [" +
                           std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return n;
}

}  // namespace

Result<ClientOptions> ClientOptions::Parse(const std::string& cluster, const std::string& options) {
  ClientOptions o;
  for (const auto& part : Split(cluster, ',')) {
    std::string a = Trim(part);
    if (a.empty()) continue;
    // Validates HOST:PORT here so a typo fails at mount, not at first use.
    size_t colon = a.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == a.size())
      return Status::Invalid("M-worker address must be HOST:PORT, got '" + a + "'");
    auto port = ParseInt("port", a.substr(colon + 1), 1, 65535);
    if (!port.ok()) return Status::Invalid("bad port in M-worker address '" + a + "'");
    o.meta_addrs.push_back(a);
  }
  if (o.meta_addrs.empty()) return Status::Invalid("no M-worker address given (expected HOST:PORT)");
  for (const auto& part : Split(options, ',')) {
    std::string kv = Trim(part);
    if (kv.empty()) continue;
    size_t eq = kv.find('=');
    std::string key = Trim(kv.substr(0, eq));
    std::string val = eq == std::string::npos ? "" : Trim(kv.substr(eq + 1));
    if (key == "transport") {
      if (val != "tcp" && val != "rdma" && val != "auto")
        return Status::Invalid("option transport=" + val + ": expected tcp, rdma or auto");
      o.transport = val;
    } else if (key == "rdma_device") {
      if (val.empty()) return Status::Invalid("option rdma_device needs a device name (e.g. rxe0, mlx5_0)");
      o.rdma_device = val;
    } else if (key == "timeout_ms") {
      CFS_ASSIGN_OR_RETURN(long v, ParseInt(key, val, 100, 3600 * 1000));
      o.timeout = std::chrono::milliseconds(v);
    } else if (key == "readahead") {
      CFS_ASSIGN_OR_RETURN(long v, ParseInt(key, val, 0, 64));
      o.readahead_stripes = static_cast<int>(v);
    } else if (key == "channels") {
      CFS_ASSIGN_OR_RETURN(long v, ParseInt(key, val, 1, 64));
      o.channels_per_worker = static_cast<int>(v);
    } else if (key == "failure_timeout_ms") {
      CFS_ASSIGN_OR_RETURN(long v, ParseInt(key, val, 100, 600 * 1000));
      o.failure_timeout = std::chrono::milliseconds(v);
    } else if (key == "write_behind") {
      CFS_ASSIGN_OR_RETURN(long v, ParseInt(key, val, 0, 64));
      o.write_behind_stripes = static_cast<int>(v);
    } else {
      return Status::Invalid("unknown option '" + key +
                             "' (known: transport, rdma_device, timeout_ms, failure_timeout_ms, readahead, channels, write_behind)");
    }
  }
  return o;
}

Layout FromProto(const pb::Layout& p) {
  Layout l;
  l.unit = p.unit();
  l.k = p.k();
  l.m = p.m();
  l.targets.assign(p.targets().begin(), p.targets().end());
  return l;
}

pb::Layout ToProto(const Layout& l) {
  pb::Layout p;
  p.set_unit(l.unit);
  p.set_k(l.k);
  p.set_m(l.m);
  for (uint32_t t : l.targets) p.add_targets(t);
  return p;
}

}  // namespace cfs::client
