#include "sidecar/testing/test_cluster_config.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "shared/status.h"

namespace cb::testing_support {

ClusterConfig StaticServersConfig(int count, std::string_view cluster_keys,
                                  std::string_view tables) {
  std::string text = "[cluster]\nname = \"shop\"\nkey_file = \"k\"\n";
  text += cluster_keys;
  text += "\n";
  text += tables;
  text += "\n";
  for (int i = 0; i < count; ++i) {
    text += "[[server]]\nid = \"s" + std::to_string(i) +
            "\"\ncluster_address = \"127.0.0.1:" + std::to_string(7000 + i) +
            "\"\nhttp_address = \"127.0.0.1:" + std::to_string(8000 + i) + "\"\n";
  }
  Result<ClusterConfig> config = ParseClusterConfig(text, "test.toml");
  EXPECT_TRUE(config.ok()) << config.status().ToString();
  if (!config.ok()) return ClusterConfig{};
  return std::move(config).value();
}

}  // namespace cb::testing_support
