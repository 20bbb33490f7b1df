#include "common/metrics.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <sstream>

namespace cfs {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

Metrics& Metrics::Get() {
  static Metrics m;
  return m;
}

std::atomic<uint64_t>& Metrics::Counter(const std::string& name, const std::string& labels,
                                        const std::string& help) {
  std::lock_guard<std::mutex> g(mu_);
  Family& f = families_[name];
  f.type = "counter";
  if (!help.empty()) f.help = help;
  auto& p = f.series[labels];
  if (!p) p = std::make_unique<std::atomic<uint64_t>>(0);
  return *p;
}

void Metrics::Gauge(const std::string& name, std::function<double()> fn, const std::string& help) {
  std::lock_guard<std::mutex> g(mu_);
  Family& f = families_[name];
  f.type = "gauge";
  f.help = help;
  f.gauge = std::move(fn);
}

std::string Metrics::Render() {
  std::lock_guard<std::mutex> g(mu_);
  std::ostringstream o;
  for (auto& [name, f] : families_) {
    if (!f.help.empty()) o << "# HELP " << name << " " << f.help << "\n";
    o << "# TYPE " << name << " " << f.type << "\n";
    if (f.gauge) {
      o << name << " " << f.gauge() << "\n";
      continue;
    }
    for (auto& [labels, v] : f.series) {
      o << name;
      if (!labels.empty()) o << "{" << labels << "}";
      o << " " << v->load(std::memory_order_relaxed) << "\n";
    }
  }
  return o.str();
}

struct MetricsServer::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  asio::ip::address poke_addr;  // where the destructor connects to wake accept()
  std::thread thread;
  std::atomic<bool> running{true};
};

MetricsServer::MetricsServer() = default;

MetricsServer::~MetricsServer() {
  if (!impl_) return;
  impl_->running = false;
  boost::system::error_code ec;
  {
    tcp::socket poke(impl_->io);
    poke.connect(tcp::endpoint(impl_->poke_addr, port_), ec);
  }
  impl_->acceptor.close(ec);
  if (impl_->thread.joinable()) impl_->thread.join();
}

Status MetricsServer::Start(const std::string& host, uint16_t port) {
  impl_ = std::make_unique<Impl>();
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) return Status::Invalid("bad metrics address " + host);
  tcp::endpoint ep(addr, port);
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(16, ec);
  if (ec) return Status(ec.value(), "metrics listen on " + host + ":" + std::to_string(port) +
                                        ": " + ec.message());
  port_ = impl_->acceptor.local_endpoint().port();
  // The bound address (a daemon may listen on 127.0.0.2 or a NIC's address);
  // a wildcard is reached on loopback.
  impl_->poke_addr = addr.is_unspecified()
                         ? (addr.is_v6() ? asio::ip::address(asio::ip::address_v6::loopback())
                                         : asio::ip::address(asio::ip::address_v4::loopback()))
                         : addr;
  Impl* impl = impl_.get();
  impl_->thread = std::thread([impl] {
    while (impl->running) {
      tcp::socket s(impl->io);
      boost::system::error_code ec2;
      impl->acceptor.accept(s, ec2);
      if (ec2 || !impl->running) {
        if (!impl->running) return;
        continue;
      }
      boost::beast::flat_buffer buf;
      http::request<http::string_body> req;
      http::read(s, buf, req, ec2);
      if (ec2) continue;
      http::response<http::string_body> res;
      res.version(req.version());
      res.keep_alive(false);
      if (req.target() == "/metrics" || req.target() == "/") {
        res.result(http::status::ok);
        res.set(http::field::content_type, "text/plain; version=0.0.4");
        res.body() = Metrics::Get().Render();
      } else {
        res.result(http::status::not_found);
        res.body() = "not found; try /metrics\n";
      }
      res.prepare_payload();
      http::write(s, res, ec2);
      s.shutdown(tcp::socket::shutdown_both, ec2);
    }
  });
  return Status::OK();
}

}  // namespace cfs
