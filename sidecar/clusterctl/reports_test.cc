#include "sidecar/clusterctl/reports.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "shared/config_digest.h"

namespace cb {
namespace {

constexpr std::string_view kFourServers = R"(
[cluster]
name = "shop"
key_file = "cluster.key"
[[server]]
id = "app-a"
cluster_address = "10.0.0.10:6800"
http_address = "10.0.0.10:8080"
[[server]]
id = "app-b"
cluster_address = "10.0.0.11:6800"
http_address = "10.0.0.11:8080"
[[server]]
id = "app-c"
cluster_address = "10.0.0.12:6800"
http_address = "10.0.0.12:8080"
[[server]]
id = "app-d"
cluster_address = "10.0.0.13:6800"
http_address = "10.0.0.13:8080"
weight = 50
[cache.pages]
ttl = "5m"
)";

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The line of `text` that starts with `prefix`, or "" when none does.
std::string LineStartingWith(const std::string& text, const std::string& prefix) {
  for (const std::string& line : Lines(text)) {
    if (line.rfind(prefix, 0) == 0) return line;
  }
  return "";
}

TEST(ConfigReportTest, ListsEveryServerWithRouteCharacterAndRole) {
  Result<ClusterConfig> config = ParseClusterConfig(kFourServers, "shop.toml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  const std::string report = RenderConfigReport(*config);

  EXPECT_NE(report.find("cluster shop (shop.toml)"), std::string::npos) << report;
  const std::string first = LineStartingWith(report, "0 ");
  EXPECT_NE(first.find(" A "), std::string::npos) << first;
  EXPECT_NE(first.find("triad"), std::string::npos) << first;
  EXPECT_NE(first.find("app-a"), std::string::npos) << first;
  EXPECT_NE(first.find("10.0.0.10:8080"), std::string::npos) << first;
  const std::string spoke = LineStartingWith(report, "3 ");
  EXPECT_NE(spoke.find(" D "), std::string::npos) << spoke;
  EXPECT_NE(spoke.find("spoke"), std::string::npos) << spoke;
  EXPECT_NE(spoke.find(" 50 "), std::string::npos) << spoke;
  EXPECT_EQ(LineStartingWith(report, "4 "), "");
}

TEST(ConfigReportTest, ShowsCachesAndTheCombinedDigest) {
  Result<ClusterConfig> config = ParseClusterConfig(kFourServers, "shop.toml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  const std::string report = RenderConfigReport(*config);

  EXPECT_NE(report.find(DigestConfig(*config).Combined().Hex()), std::string::npos) << report;
  EXPECT_NE(LineStartingWith(report, "session ").find("idle 30m"), std::string::npos) << report;
  EXPECT_NE(LineStartingWith(report, "pages ").find("ttl 5m"), std::string::npos) << report;
  EXPECT_NE(LineStartingWith(report, "default ").find("never"), std::string::npos) << report;
}

TEST(ViewTableTest, ShowsPresentServersOnlyWithStateAndWarmUpAge) {
  ClusterView view;
  ASSERT_TRUE(view.SetClusterName("shop").ok());
  view.generation = 42;
  view.published_unix_ms = 1'000'000;
  for (int index : {0, 1, 5}) {
    ViewServer& server = view.server(index);
    server.index = static_cast<uint8_t>(index);
    server.weight = 100;
    server.incarnation = 7;
    ASSERT_TRUE(server.SetId("app-" + std::to_string(index)).ok());
    ASSERT_TRUE(server.SetHttpAddress("10.0.0." + std::to_string(index) + ":8080").ok());
  }
  view.server(0).state = static_cast<uint8_t>(ServerState::kUp);
  view.server(0).up_since_unix_ms = 1'000'000 - 90'000;
  ASSERT_TRUE(view.server(0).SetDeployedVersion("3f2a9c").ok());
  view.server(1).state = static_cast<uint8_t>(ServerState::kDraining);
  view.server(5).state = static_cast<uint8_t>(ServerState::kDown);

  const std::string table = RenderViewTable(view, 1'000'000);
  EXPECT_NE(table.find("cluster shop, generation 42"), std::string::npos) << table;
  const std::string up = LineStartingWith(table, "0 ");
  EXPECT_NE(up.find(" up "), std::string::npos) << up;
  EXPECT_NE(up.find("90s"), std::string::npos) << up;
  EXPECT_NE(up.find("3f2a9c"), std::string::npos) << up;
  EXPECT_NE(LineStartingWith(table, "1 ").find("draining"), std::string::npos) << table;
  const std::string down = LineStartingWith(table, "5 ");
  EXPECT_NE(down.find(" F "), std::string::npos) << down;
  EXPECT_NE(down.find("spoke"), std::string::npos) << down;
  EXPECT_NE(down.find("down"), std::string::npos) << down;
  EXPECT_EQ(Lines(table).size(), 5u) << table;  // title, header, three servers
}

}  // namespace
}  // namespace cb

namespace cb {
namespace {

TEST(StatusTableTest, ShowsEveryServerWithHeartbeatAge) {
  const nlohmann::json status = nlohmann::json::parse(R"({
    "cluster": "shop", "generation": 12,
    "server": {"id": "app-d", "index": 3},
    "servers": [
      {"index": 0, "route": "A", "role": "triad", "id": "app-a", "state": "up",
       "incarnation": 5, "heartbeat_age_ms": 120, "up_since_unix_ms": 940000,
       "rtt_ms": 0.2371, "sessions": 42, "http_address": "10.0.0.10:8080"},
      {"index": 3, "route": "D", "role": "spoke", "id": "app-d", "state": "draining",
       "incarnation": 9, "heartbeat_age_ms": null, "up_since_unix_ms": 1000000,
       "http_address": "10.0.0.13:8080"},
      {"index": 1, "route": "B", "role": "triad", "id": "app-b", "state": "down",
       "incarnation": 2, "http_address": "10.0.0.11:8080"},
      {"index": 7, "route": "H", "role": "spoke", "dynamic": true, "id": "web-7", "state": "up",
       "incarnation": 3, "heartbeat_age_ms": null, "up_since_unix_ms": 990000,
       "http_address": "10.0.0.27:8080"}
    ]})");
  const std::string table = RenderStatusTable(status, 1'000'000);
  EXPECT_NE(table.find("cluster shop, as seen by app-d (index 3), generation 12"),
            std::string::npos)
      << table;
  const std::string a = LineStartingWith(table, "0 ");
  EXPECT_NE(a.find("120ms"), std::string::npos) << a;
  EXPECT_NE(a.find("1m"), std::string::npos) << a;  // up for 60 s
  EXPECT_NE(a.find(" 0.24ms "), std::string::npos) << a;
  EXPECT_NE(a.find(" 42 "), std::string::npos) << a;
  const std::string d = LineStartingWith(table, "3 ");
  EXPECT_NE(d.find("draining"), std::string::npos) << d;
  const std::string b = LineStartingWith(table, "1 ");
  EXPECT_NE(b.find("down"), std::string::npos) << b;
  EXPECT_NE(LineStartingWith(table, "7 ").find("spoke (dynamic)"), std::string::npos) << table;
  EXPECT_EQ(d.find("dynamic"), std::string::npos) << d;
}

TEST(StatusTableTest, MalformedJsonNeverThrows) {
  for (const char* text : {"null", "[]", "{\"servers\": 7}", "{\"servers\": [1, \"x\", null]}",
                           "{\"server\": [], \"servers\": [{\"index\": \"zero\"}]}",
                           "{\"servers\": [{\"dynamic\": \"yes\"}]}"}) {
    EXPECT_NO_THROW(RenderStatusTable(nlohmann::json::parse(text), 0)) << text;
  }
}

}  // namespace
}  // namespace cb

namespace cb {
namespace {

TEST(StatusTableTest, ShowsEachServersDeployedCommitAndMarksTheBehind) {
  const nlohmann::json status = nlohmann::json::parse(R"({
    "cluster": "shop", "generation": 3, "server": {"id": "app-a", "index": 0},
    "deployments": [
      {"name": "production/webapp/default/shop", "commit": "1111111111222222222233333333334444444444"}],
    "servers": [
      {"index": 0, "id": "app-a", "state": "up",
       "deployed": {"production/webapp/default/shop":
                    {"commit": "1111111111222222222233333333334444444444", "error": ""}}},
      {"index": 1, "id": "app-b", "state": "up",
       "deployed": {"production/webapp/default/shop":
                    {"commit": "aaaaaaaaaabbbbbbbbbbccccccccccdddddddddd",
                     "error": "checkout: no space"}}},
      {"index": 2, "id": "app-c", "state": "down"}
    ]})");
  const std::string table = RenderStatusTable(status, 1'000'000);
  EXPECT_NE(table.find("\nproduction/webapp/default/shop current 1111111111\n"), std::string::npos)
      << table;
  EXPECT_NE(LineStartingWith(table, "INDEX").find("DEPLOYED"), std::string::npos) << table;
  EXPECT_TRUE(LineStartingWith(table, "0 ").ends_with(" 1111111111")) << table;
  EXPECT_TRUE(LineStartingWith(table, "1 ").ends_with(" aaaaaaaaaa (behind) (failed)")) << table;
  EXPECT_TRUE(LineStartingWith(table, "2 ").ends_with(" - (behind)")) << table;
}

TEST(StatusTableTest, SeveralDeploymentsAreNamedByWebapp) {
  const nlohmann::json status = nlohmann::json::parse(R"({
    "deployments": [{"name": "production/webapp/default/shop", "commit": "c1"},
                    {"name": "production/webapp/default/blog", "commit": "c2"}],
    "servers": [{"index": 0, "id": "app-a", "state": "up",
                 "deployed": {"production/webapp/default/shop": {"commit": "c1"},
                              "production/webapp/default/blog": {"commit": "c0"}}}]})");
  const std::string table = RenderStatusTable(status, 0);
  EXPECT_TRUE(LineStartingWith(table, "0 ").ends_with(" shop:c1, blog:c0 (behind)")) << table;
}

TEST(StatusTableTest, WithoutDeploymentsThereIsNoDeployedColumn) {
  const std::string table = RenderStatusTable(
      nlohmann::json::parse(R"({"servers": [{"index": 0, "id": "app-a", "state": "up"}]})"), 0);
  EXPECT_EQ(table.find("DEPLOYED"), std::string::npos) << table;
  for (const char* text :
       {R"({"deployments": 5, "servers": [{"deployed": 3}]})",
        R"({"deployments": [7, {"name": 3}], "servers": [{"deployed": []}]})",
        R"({"deployments": [{"name": "x"}], "servers": [{"deployed": {"x": 1}}]})"}) {
    EXPECT_NO_THROW(RenderStatusTable(nlohmann::json::parse(text), 0)) << text;
  }
}

}  // namespace
}  // namespace cb
