// Test support for the tests of what reads a published view (view_tracker_test,
// balancer_test): views of numbered servers, and a fixture that publishes them
// into a real view file in a temporary directory with a real ViewWriter.
#ifndef CLUSTER_BALANCE_SHARED_PUBLISHED_VIEW_TEST_SUPPORT_H_
#define CLUSTER_BALANCE_SHARED_PUBLISHED_VIEW_TEST_SUPPORT_H_

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "shared/cluster_view.h"
#include "shared/socket_address.h"
#include "shared/view_file.h"

namespace cb {

// Server `index` answers HTTP at 10.0.0.<index>:8080.
std::string HttpAddressOf(int index);

// Puts server `index` ("app-<index>") into `view`.
void AddServer(ClusterView& view, int index, ServerState state, std::string_view http_address,
               uint32_t weight = 100);
void AddServer(ClusterView& view, int index, ServerState state);

// A web server's own lines for servers 0..count-1, at HttpAddressOf.
std::vector<SocketAddress> Configured(int count);

// A session id created by server `index`.
std::string SessionOf(int index, std::string_view rest = "abc123");

// A temporary directory with path_ = <dir>/cluster.view; writer_ is the sidecar's
// publisher once started (it holds the lock that readers test).
class PublishedViewTest : public testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  void StartWriter();
  void Publish(const ClusterView& view);
  void StartWriterWith(const ClusterView& view);

  std::string dir_;
  std::string path_;
  std::unique_ptr<ViewWriter> writer_;
};

}  // namespace cb

#endif  // CLUSTER_BALANCE_SHARED_PUBLISHED_VIEW_TEST_SUPPORT_H_
