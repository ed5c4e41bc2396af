#include "sidecar/daemon/joiner.h"

#include <gtest/gtest.h>

namespace cb::daemon {
namespace {

ServerConfig DynamicServer() {
  ServerConfig self;
  self.id = "dyn-a";
  self.cluster_address = HostPort{"10.0.0.20", 6800};
  self.http_address = HostPort{"10.0.0.20", 8080};
  self.weight = 40;
  return self;
}

TEST(MakeJoinRequestTest, NamesTheServerItsAddressesWeightAndPreviousIndex) {
  const protocol::JoinRequest first = MakeJoinRequest(DynamicServer(), -1);
  EXPECT_EQ(first.server_id, "dyn-a");
  EXPECT_EQ(first.cluster_address, "10.0.0.20:6800");
  EXPECT_EQ(first.http_address, "10.0.0.20:8080");
  EXPECT_EQ(first.weight, 40u);
  EXPECT_EQ(first.previous_index, -1);
  EXPECT_EQ(MakeJoinRequest(DynamicServer(), 5).previous_index, 5);
}

}  // namespace
}  // namespace cb::daemon
