#include "rpc/transport.h"

namespace cfs::rpc {

Result<Endpoint> Endpoint::Parse(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size())
    return Status::Invalid("address must be HOST:PORT, got '" + s + "'");
  Endpoint ep;
  ep.host = s.substr(0, colon);
  if (ep.host.size() > 2 && ep.host.front() == '[' && ep.host.back() == ']')
    ep.host = ep.host.substr(1, ep.host.size() - 2);
  unsigned long port = 0;
  for (size_t i = colon + 1; i < s.size(); i++) {
    if (s[i] < '0' || s[i] > '9') return Status::Invalid("bad port in '" + s + "'");
    port = port * 10 + (s[i] - '0');
    if (port > 65535) return Status::Invalid("port out of range in '" + s + "'");
  }
  if (port == 0) return Status::Invalid("port 0 in '" + s + "'");
  ep.port = static_cast<uint16_t>(port);
  return ep;
}

}  // namespace cfs::rpc
