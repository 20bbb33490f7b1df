// TCP transport on Boost.Asio. Blocking sockets with one reader thread per
// connection: requests are pipelined (written under a lock, matched to
// responses by call id), bulk is sent with scatter-gather writes straight from
// the caller's buffers and received straight into the caller's buffer.
#pragma once

#include "rpc/transport.h"

namespace cfs::rpc {

std::shared_ptr<Transport> NewTcpTransport();

}  // namespace cfs::rpc
