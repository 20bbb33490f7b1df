// RDMA transport on libibverbs + librdmacm (RC queue pairs, rdma_cm set-up),
// behind the same Transport interface as TCP (docs/rdma.md).
//
// Messages (RpcHeader + body) travel as SENDs into receive buffers each side
// posted in advance; a connection has `queue_depth` credits, so a client never
// has more requests in flight than the server has receive buffers, and the
// server never more responses than the client has.
//
// Bulk moves server-initiated, as in Lustre, 3FS and DAOS: a request names its
// bulk_out segments (address, rkey, length) and the server RDMA READs them
// into its own registered buffer (ServerCall::bulk(), page-aligned); a request
// names its bulk_in buffer and the server RDMA WRITEs the response bulk into
// it before SENDing the response. Bulk of at most kRdmaInlineBulk bytes rides
// inside the message instead (no registration for small I/O).
//
// Registrations: memory announced with RegisterMemory (the libcfs registered
// buffers, cfs_buf_register) is registered once per device and cached, up to
// a byte limit; any other memory is registered for the one call and
// deregistered when it completes (a cache of arbitrary user memory would go
// stale when the memory is freed and the address reused).
//
// A dying peer moves the queue pair to the error state: every call in flight
// fails with ECONNRESET, the channel reports !healthy() and the ChannelPool
// connects a fresh one. A call that times out breaks its channel first, so
// the server can no longer write into memory the caller gets back.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "rpc/transport.h"

namespace cfs::rpc {

struct RdmaOptions {
  // RDMA device to use (e.g. "rxe0", "mlx5_0"); empty: the device rdma_cm
  // picks for the address. A name that disagrees with the address is an error.
  std::string device;
  int queue_depth = 32;                     // credits (receive buffers) per connection
  size_t max_registered = size_t{1} << 30;  // bytes of cached registrations (RegisterMemory)
  int handler_threads = 16;                 // server side
};

constexpr size_t kRdmaInlineBulk = 8192;      // bulk up to this size rides in the message
constexpr size_t kRdmaMaxMessage = 32 << 10;  // header + body (+ segment list or inline bulk);
                                              // a larger body is an EMSGSIZE error (S-worker
                                              // calls stay far below; metadata stays on TCP)

// The RDMA transport. Fails with a clear error (ENODEV) when no RDMA device is
// present, and checks RLIMIT_MEMLOCK (EPERM-like message naming the limit to
// raise) when it is too low for the receive buffers and registration cache.
Result<std::shared_ptr<Transport>> NewRdmaTransport(const RdmaOptions& opts = {});

// OK if this process can use RDMA at all (a device, an ACTIVE port, memlock).
// The message says what is missing.
Status RdmaUsable(const RdmaOptions& opts = {});

// Long-lived memory (libcfs registered buffers): registered lazily per device
// and kept until UnregisterMemory. Safe to call without any RDMA device (then
// a no-op). UnregisterMemory waits until no call uses the registration.
void RegisterMemory(const void* addr, size_t len);
void UnregisterMemory(const void* addr);

// Counters for tests and `cfs status`: bytes moved by RDMA READ / WRITE and
// messages sent, since the process started.
struct RdmaCounters {
  uint64_t read_bytes = 0, write_bytes = 0, sends = 0, registrations = 0, cached_registrations = 0;
  // Response bulk copied into a staging buffer before its WRITE (bulk not
  // built in ServerCall::ReplyBuffer).
  uint64_t staged_bytes = 0;
  // One-use registrations alive now: 0 whenever no call is in flight (a leak
  // check for tests).
  uint64_t one_use_live = 0;
};
RdmaCounters GetRdmaCounters();

}  // namespace cfs::rpc
