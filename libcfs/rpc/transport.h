// The transport interface: how a client reaches a server and how a server
// serves. TCP (tcp_transport.cc) is the first implementation; RDMA slots in
// behind the same interface. Callers never see sockets or queue pairs.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cfs.pb.h"
#include "common/status.h"

namespace cfs::rpc {

struct Endpoint {
  std::string host;
  uint16_t port = 0;
  std::string ToString() const { return host + ":" + std::to_string(port); }
  // Parses "host:port".
  static Result<Endpoint> Parse(const std::string& s);
  bool operator==(const Endpoint&) const = default;
};

// Alignment every transport gives a server's request bulk (ServerCall::bulk).
constexpr size_t kBulkAlignment = 4096;

struct ConstBuf {
  const void* data;
  size_t len;
};

// One request on a channel. Pointers must stay valid until the call completes.
struct CallSpec {
  pb::Method method = pb::METHOD_NONE;
  const google::protobuf::Message* request = nullptr;  // required
  std::vector<ConstBuf> bulk_out;                      // sent after the body, gathered
  google::protobuf::Message* response = nullptr;       // may be null: body ignored
  void* bulk_in = nullptr;                             // response bulk lands here...
  size_t bulk_in_cap = 0;                              // ...up to this many bytes
  std::chrono::milliseconds timeout{60000};
};

// A call in flight. Wait() returns the server's status (or a transport error)
// once the response, including its bulk, has fully arrived.
class PendingCall {
 public:
  virtual ~PendingCall() = default;
  virtual Status Wait() = 0;
  // Bytes of response bulk written to bulk_in (valid after Wait()).
  virtual uint64_t bulk_in_len() const = 0;
};

// A connection to one server. Thread-safe; many calls may be in flight at once
// (pipelined), completed in any order.
class Channel {
 public:
  virtual ~Channel() = default;
  virtual std::shared_ptr<PendingCall> Start(const CallSpec& spec) = 0;
  Status Call(const CallSpec& spec) { return Start(spec)->Wait(); }
  // False once the connection failed; a pool replaces broken channels.
  virtual bool healthy() const = 0;
  virtual const Endpoint& peer() const = 0;
  // "tcp" or "rdma": what this channel really runs on (logs, `cfs status`).
  virtual const char* kind() const = 0;
};

// Server side of one request. The handler must call Reply exactly once (the
// server replies EIO for a handler that returns without replying).
class ServerCall {
 public:
  virtual ~ServerCall() = default;
  virtual pb::Method method() const = 0;
  virtual std::string_view body() const = 0;
  // Request bulk. It starts at a kBulkAlignment-aligned address, so a store
  // can write it to disk with O_DIRECT without copying it first.
  virtual std::string_view bulk() const = 0;
  virtual const std::string& peer() const = 0;
  // A buffer of at least len bytes for the response bulk, owned by the call
  // (one per call; a second request replaces the first). Bulk that Reply
  // sends from it leaves without a staging copy: on RDMA it is registered
  // memory the RDMA WRITE reads directly. kBulkAlignment-aligned, so a store
  // may fill it with O_DIRECT. Null when memory is exhausted.
  virtual char* ReplyBuffer(size_t len) = 0;
  // Sends the response; `bulk` must stay valid until Reply returns.
  virtual void Reply(const Status& st, const google::protobuf::Message* response,
                     std::vector<ConstBuf> bulk = {}) = 0;
  virtual bool replied() const = 0;
};

using Handler = std::function<void(ServerCall&)>;

class Server {
 public:
  virtual ~Server() = default;
  virtual void Register(pb::Method method, Handler handler) = 0;
  // Binds and starts serving; port 0 picks a free port (see port()).
  virtual Status Start(const std::string& host, uint16_t port) = 0;
  virtual uint16_t port() const = 0;
  virtual void Stop() = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual std::string name() const = 0;
  virtual Result<std::shared_ptr<Channel>> Connect(const Endpoint& ep,
                                                   std::chrono::milliseconds timeout) = 0;
  virtual std::unique_ptr<Server> NewServer(int handler_threads) = 0;
};

// By name (transport_select.cc):
//   tcp   TCP only.
//   rdma  channels run on RDMA (Connect fails when RDMA cannot reach the peer);
//         servers serve RDMA and TCP on the same port number (rdma_cm's port
//         space is its own), so TCP-only tools still reach them.
//   auto  channels try RDMA and fall back to TCP, logging which they chose;
//         servers add RDMA to TCP when this machine can use RDMA.
// rdma_device: RdmaOptions::device ("" = whatever device holds the address).
Result<std::shared_ptr<Transport>> MakeTransport(const std::string& name,
                                                 const std::string& rdma_device = "");

// Typed handler helper: parses Req, calls fn, replies with Resp (no bulk).
template <class Req, class Resp>
Handler Typed(std::function<Status(const Req&, Resp*)> fn);

}  // namespace cfs::rpc

#include "rpc/transport_inl.h"
