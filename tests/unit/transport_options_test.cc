// Client transport options (issue 5): transport/rdma_device parsing and the
// data-transport error of Client::Connect, on a machine without RDMA.
#include <gtest/gtest.h>

#include "client/client.h"
#include "rpc/rdma_transport.h"

namespace cfs::client {
namespace {

TEST(TransportOptionsTest, ParsesTransportAndDevice) {
  auto o = ClientOptions::Parse("h:1", "transport=rdma,rdma_device=rxe0,timeout_ms=500");
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->transport, "rdma");
  EXPECT_EQ(o->rdma_device, "rxe0");
  auto a = ClientOptions::Parse("h:1", "transport=auto");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->transport, "auto");
  EXPECT_EQ(a->rdma_device, "");
  auto d = ClientOptions::Parse("h:1", "");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->transport, "tcp");  // the library's default

  auto empty = ClientOptions::Parse("h:1", "rdma_device=");
  EXPECT_EQ(empty.status().err(), EINVAL);
  EXPECT_NE(empty.status().message().find("rdma_device"), std::string::npos) << empty.status().message();
  auto bogus = ClientOptions::Parse("h:1", "transport=bogus");
  EXPECT_EQ(bogus.status().err(), EINVAL);
  EXPECT_NE(bogus.status().message().find("tcp, rdma or auto"), std::string::npos);
  auto unknown = ClientOptions::Parse("h:1", "nope=1");
  EXPECT_NE(unknown.status().message().find("rdma_device"), std::string::npos)
      << "the list of known options names rdma_device: " << unknown.status().message();
}

// transport=rdma where RDMA is unusable fails at Connect with the transport's
// reason, marked as the data transport's (not "M-worker unreachable").
TEST(TransportOptionsTest, RdmaWithoutDeviceFailsAtConnect) {
  ASSERT_FALSE(rpc::RdmaUsable().ok())
      << "this machine has usable RDMA; the test checks the error of a machine without it";
  auto o = ClientOptions::Parse("127.0.0.1:1", "transport=rdma");
  ASSERT_TRUE(o.ok());
  auto c = Client::Connect(*o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message().rfind("data transport rdma: ", 0), 0u) << c.status().ToString();
}

}  // namespace
}  // namespace cfs::client
