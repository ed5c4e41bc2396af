#include "shared/published_view_test_support.h"

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

namespace cb {

std::string HttpAddressOf(int index) { return "10.0.0." + std::to_string(index) + ":8080"; }

void AddServer(ClusterView& view, int index, ServerState state, std::string_view http_address,
               uint32_t weight) {
  ViewServer& server = view.server(index);
  server.state = static_cast<uint8_t>(state);
  server.index = static_cast<uint8_t>(index);
  server.weight = weight;
  ASSERT_TRUE(server.SetId("app-" + std::to_string(index)).ok());
  ASSERT_TRUE(server.SetHttpAddress(http_address).ok());
}

void AddServer(ClusterView& view, int index, ServerState state) {
  AddServer(view, index, state, HttpAddressOf(index));
}

std::vector<SocketAddress> Configured(int count) {
  std::vector<SocketAddress> addresses;
  for (int index = 0; index < count; ++index) {
    Result<SocketAddress> address = ParseNumericSocketAddress(HttpAddressOf(index));
    EXPECT_TRUE(address.ok()) << address.status().ToString();
    addresses.push_back(address.ok() ? *address : SocketAddress{});
  }
  return addresses;
}

std::string SessionOf(int index, std::string_view rest) {
  return std::string(1, RouteCharForIndex(index)) + std::string(rest);
}

void PublishedViewTest::SetUp() {
  std::string base = testing::TempDir();
  if (base.empty()) base = "/tmp/";
  if (base.back() != '/') base += '/';
  std::string pattern = base + "published_view.XXXXXX";
  ASSERT_NE(mkdtemp(pattern.data()), nullptr) << pattern << ": " << std::strerror(errno);
  dir_ = pattern;
  path_ = dir_ + "/cluster.view";
}

void PublishedViewTest::TearDown() {
  writer_.reset();
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

void PublishedViewTest::StartWriter() {
  auto writer = ViewWriter::Open(path_);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  writer_ = std::move(writer).value();
}

void PublishedViewTest::Publish(const ClusterView& view) {
  ASSERT_NE(writer_, nullptr);
  const Status published = writer_->Publish(view);
  ASSERT_TRUE(published.ok()) << published.ToString();
}

void PublishedViewTest::StartWriterWith(const ClusterView& view) {
  StartWriter();
  Publish(view);
}

}  // namespace cb
