// MakeTransport: tcp, rdma or auto (transport.h). "rdma" and "auto" wrap the
// two real transports: their servers serve both, their channels pick one.
#include <map>
#include <mutex>

#include "common/logging.h"
#include "rpc/rdma_transport.h"
#include "rpc/tcp_transport.h"
#include "rpc/transport.h"

namespace cfs::rpc {
namespace {

// Serves one set of handlers over TCP and, if given, RDMA on the same port.
class DualServer : public Server {
 public:
  // rdma_optional ("auto"): an RDMA listener that cannot start is logged and
  // the server goes on with TCP alone.
  DualServer(std::unique_ptr<Server> tcp, std::unique_ptr<Server> rdma, bool rdma_optional)
      : tcp_(std::move(tcp)), rdma_(std::move(rdma)), rdma_optional_(rdma_optional) {}
  ~DualServer() override { Stop(); }
  void Register(pb::Method method, Handler handler) override {
    if (rdma_) rdma_->Register(method, handler);
    tcp_->Register(method, std::move(handler));
  }
  Status Start(const std::string& host, uint16_t port) override {
    CFS_RETURN_IF_ERROR(tcp_->Start(host, port));
    if (!rdma_) return Status::OK();
    // The TCP port (perhaps picked by the kernel) names the RDMA one too.
    Status st = rdma_->Start(host, tcp_->port());
    if (!st.ok() && rdma_optional_) {
      LOG_WARN("transport auto: serving TCP only on {}:{}: {}", host, tcp_->port(), st.ToString());
      rdma_.reset();
      return Status::OK();
    }
    if (!st.ok()) {
      tcp_->Stop();
      return Status(st.err(), "RDMA listener on " + host + ":" + std::to_string(tcp_->port()) +
                                  ": " + st.message());
    }
    return Status::OK();
  }
  uint16_t port() const override { return tcp_->port(); }
  void Stop() override {
    if (rdma_) rdma_->Stop();
    tcp_->Stop();
  }

 private:
  std::unique_ptr<Server> tcp_, rdma_;
  const bool rdma_optional_;
};

class MixedTransport : public Transport {
 public:
  // rdma may be null ("auto" on a machine without RDMA).
  MixedTransport(std::string name, std::shared_ptr<Transport> tcp, std::shared_ptr<Transport> rdma)
      : name_(std::move(name)), tcp_(std::move(tcp)), rdma_(std::move(rdma)) {}
  std::string name() const override { return name_; }

  Result<std::shared_ptr<Channel>> Connect(const Endpoint& ep,
                                           std::chrono::milliseconds timeout) override {
    if (name_ == "rdma") return rdma_->Connect(ep, timeout);
    if (rdma_) {
      auto ch = rdma_->Connect(ep, timeout);
      if (ch.ok()) {
        Note(ep, "rdma", "");
        return ch;
      }
      Note(ep, "tcp", ch.status().ToString());
    } else {
      Note(ep, "tcp", "no usable RDMA device here");
    }
    return tcp_->Connect(ep, timeout);
  }

  std::unique_ptr<Server> NewServer(int handler_threads) override {
    return std::make_unique<DualServer>(tcp_->NewServer(handler_threads),
                                        rdma_ ? rdma_->NewServer(handler_threads) : nullptr,
                                        name_ == "auto");
  }

 private:
  // Logs the choice once per peer (and again when it changes).
  void Note(const Endpoint& ep, const char* kind, const std::string& why) {
    std::lock_guard<std::mutex> g(mu_);
    std::string& last = chosen_[ep.ToString()];
    if (last == kind) return;
    last = kind;
    if (why.empty())
      LOG_INFO("transport auto: {} reached over {}", ep.ToString(), kind);
    else
      LOG_INFO("transport auto: {} reached over {} ({})", ep.ToString(), kind, why);
  }

  std::string name_;
  std::shared_ptr<Transport> tcp_, rdma_;
  std::mutex mu_;
  std::map<std::string, std::string> chosen_;
};

}  // namespace

Result<std::shared_ptr<Transport>> MakeTransport(const std::string& name,
                                                 const std::string& rdma_device) {
  if (name == "tcp") return NewTcpTransport();
  if (name != "rdma" && name != "auto")
    return Status::Invalid("unknown transport '" + name + "' (expected tcp, rdma or auto)");
  RdmaOptions ro;
  ro.device = rdma_device;
  auto rdma = NewRdmaTransport(ro);
  if (!rdma.ok()) {
    if (name == "rdma") return rdma.status();
    LOG_INFO("transport auto: using TCP only: {}", rdma.status().message());
    return std::shared_ptr<Transport>(std::make_shared<MixedTransport>(name, NewTcpTransport(), nullptr));
  }
  return std::shared_ptr<Transport>(std::make_shared<MixedTransport>(name, NewTcpTransport(), *rdma));
}

}  // namespace cfs::rpc
