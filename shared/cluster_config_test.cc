#include "shared/cluster_config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace cb {
namespace {

using std::chrono::milliseconds;

constexpr std::string_view kSource = "test.toml";
constexpr milliseconds kMinute{60 * 1000};
constexpr uint64_t kMiB = 1024 * 1024;

ClusterConfig ParseOk(std::string_view text) {
  Result<ClusterConfig> result = ParseClusterConfig(text, kSource);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  return result.ok() ? *std::move(result) : ClusterConfig{};
}

// The whole error message (every problem, one per line).
std::string ParseError(std::string_view text) {
  Result<ClusterConfig> result = ParseClusterConfig(text, kSource);
  if (result.ok()) return "<parsed>";
  EXPECT_EQ(result.status().code(), Status::Code::kInvalidArgument);
  return result.status().message();
}

// A valid [cluster] of 3 lines and one [[server]] of 4 lines (lines 1..8 with the
// blank line); tests append sections from line 9 on.
constexpr std::string_view kValidHead = R"([cluster]
name = "test"
key_file = "cluster.key"

[[server]]
id = "a"
cluster_address = "127.0.0.1:7001"
http_address = "127.0.0.1:8001"
)";

std::string WithHead(std::string_view tail) { return std::string(kValidHead) + std::string(tail); }

// --- The example file ---------------------------------------------------------

TEST(ClusterConfigExampleTest, ExampleFileLoadsWithTheDocumentedValues) {
  const std::string path = std::string(CLUSTER_BALANCE_SOURCE_DIR) + "/conf-examples/cluster.toml";
  Result<ClusterConfig> loaded = LoadClusterConfig(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const ClusterConfig& config = *loaded;

  EXPECT_EQ(config.source, path);
  EXPECT_EQ(config.name, "shop-prod");
  EXPECT_EQ(config.key_file, "/etc/cluster-balance/cluster.key");
  EXPECT_EQ(config.ResolvePath(config.key_file), "/etc/cluster-balance/cluster.key");
  EXPECT_EQ(config.heartbeat_interval, milliseconds(1000));
  EXPECT_EQ(config.heartbeat_timeout, milliseconds(3000));
  EXPECT_EQ(config.dynamic_server_timeout, 15 * kMinute);
  EXPECT_EQ(config.slow_start, kMinute);
  EXPECT_EQ(config.max_frame_bytes, 16 * kMiB);
  EXPECT_EQ(config.retry_timeout, milliseconds(2000));

  EXPECT_EQ(config.node_defaults.admin_listen, (HostPort{"127.0.0.1", 6880}));
  EXPECT_EQ(config.node_defaults.memcached_listen, (HostPort{"127.0.0.1", 11211}));
  EXPECT_EQ(config.node_defaults.data_dir, "/var/lib/cluster-balance");
  EXPECT_EQ(config.node_defaults.view_file, "/run/cluster-balance/view");
  EXPECT_EQ(config.node_defaults.memcached_max_line_bytes, kMiB);

  ASSERT_EQ(config.servers.size(), 5u);
  const char* const ids[] = {"app-a", "app-b", "app-c", "app-d", "app-e"};
  for (int i = 0; i < 5; ++i) {
    const ServerConfig& server = config.servers[static_cast<std::size_t>(i)];
    SCOPED_TRACE(server.id);
    EXPECT_EQ(server.index, i);
    EXPECT_EQ(server.id, ids[i]);
    EXPECT_EQ(server.is_triad(), i < 3);
    const std::string host = "10.0.0." + std::to_string(11 + i);
    EXPECT_EQ(server.cluster_address, (HostPort{host, 6800}));
    EXPECT_EQ(server.http_address, (HostPort{host, 8080}));
    EXPECT_GT(server.line, 0);
  }
  EXPECT_EQ(config.servers[0].weight, 100u);
  EXPECT_EQ(config.servers[1].weight, 100u);
  EXPECT_EQ(config.servers[2].weight, 100u);
  EXPECT_EQ(config.servers[3].weight, 50u);
  EXPECT_EQ(config.servers[4].weight, 100u);

  // Node settings: defaults, with app-c's and app-e's overrides.
  EXPECT_EQ(config.servers[0].node, config.node_defaults);
  EXPECT_EQ(config.servers[1].node, config.node_defaults);
  EXPECT_EQ(config.servers[3].node, config.node_defaults);
  NodeSettings app_c = config.node_defaults;
  app_c.data_dir = "/srv/cluster-balance";
  EXPECT_EQ(config.servers[2].node, app_c);
  NodeSettings app_e = config.node_defaults;
  app_e.memcached_listen = HostPort{"127.0.0.1", 11311};
  app_e.admin_listen = HostPort{"127.0.0.1", 6881};
  app_e.view_file = "";
  EXPECT_EQ(config.servers[4].node, app_e);

  ASSERT_EQ(config.caches.size(), 3u);  // sorted by name
  EXPECT_EQ(config.caches[0], (CacheConfig{"catalog", milliseconds(0), 5 * kMinute, 4 * kMiB}));
  EXPECT_EQ(config.caches[1], (CacheConfig{"default", milliseconds(0), milliseconds(0), kMiB}));
  EXPECT_EQ(config.caches[2], (CacheConfig{"session", 30 * kMinute, milliseconds(0), kMiB}));

  EXPECT_EQ(config.deploy, (DeployConfig{false, "production", "default", 3}));
}

TEST(ClusterConfigExampleTest, ExampleFileSpellsOutTheDefaults) {
  // Apart from its own choices, the example states the defaults: its [cluster],
  // session and default caches and [deploy] equal a minimal file's.
  Result<ClusterConfig> example =
      LoadClusterConfig(std::string(CLUSTER_BALANCE_SOURCE_DIR) + "/conf-examples/cluster.toml");
  ASSERT_TRUE(example.ok()) << example.status().ToString();
  const ClusterConfig minimal = ParseOk(kValidHead);
  EXPECT_EQ(example->heartbeat_interval, minimal.heartbeat_interval);
  EXPECT_EQ(example->heartbeat_timeout, minimal.heartbeat_timeout);
  EXPECT_EQ(example->dynamic_server_timeout, minimal.dynamic_server_timeout);
  EXPECT_EQ(example->slow_start, minimal.slow_start);
  EXPECT_EQ(example->max_frame_bytes, minimal.max_frame_bytes);
  EXPECT_EQ(example->retry_timeout, minimal.retry_timeout);
  EXPECT_EQ(example->durability, minimal.durability);
  EXPECT_EQ(example->node_defaults.memcached_max_line_bytes,
            minimal.node_defaults.memcached_max_line_bytes);
  EXPECT_EQ(example->node_defaults.spoke_cache_bytes, minimal.node_defaults.spoke_cache_bytes);
  EXPECT_EQ(example->node_defaults.admin_listen, minimal.node_defaults.admin_listen);
  EXPECT_EQ(example->node_defaults.memcached_listen, minimal.node_defaults.memcached_listen);
  EXPECT_EQ(example->node_defaults.data_dir, minimal.node_defaults.data_dir);
  EXPECT_EQ(*example->FindCache("session"), *minimal.FindCache("session"));
  EXPECT_EQ(*example->FindCache("default"), *minimal.FindCache("default"));
  EXPECT_EQ(example->deploy, minimal.deploy);
}

TEST(ClusterConfigExampleTest, ExampleFileSetsEveryKeyTheParserAccepts) {
  // The example is the operators' reference: each key appears set (not only in a
  // comment), so that the test above also proves the parser accepts it.
  std::ifstream file(std::string(CLUSTER_BALANCE_SOURCE_DIR) + "/conf-examples/cluster.toml");
  ASSERT_TRUE(file.good());
  std::vector<std::string> set_keys;
  for (std::string line; std::getline(file, line);) {
    const std::size_t equals = line.find(" = ");
    if (line.empty() || line[0] == '#' || line[0] == '[' || equals == std::string::npos) continue;
    set_keys.push_back(line.substr(0, equals));
  }
  for (const char* key : {"name",
                          "key_file",
                          "heartbeat_interval",
                          "heartbeat_timeout",
                          "dynamic_server_timeout",
                          "slow_start",
                          "max_frame_size",
                          "admin_listen",
                          "memcached_listen",
                          "data_dir",
                          "view_file",
                          "spoke_cache_size",
                          "memcached_max_line_size",
                          "retry_timeout",
                          "durability",
                          "id",
                          "cluster_address",
                          "http_address",
                          "weight",
                          "idle_timeout",
                          "ttl",
                          "max_entry_size",
                          "remote",
                          "stage",
                          "host",
                          "keep_versions",
                          "deploy_root",
                          "admin_tls_certificate",
                          "admin_tls_key",
                          "admin_users",
                          "max_size",
                          "max_files",
                          "activate_timeout"}) {
    EXPECT_NE(std::find(set_keys.begin(), set_keys.end(), key), set_keys.end()) << key;
  }
}

// --- Defaults and overrides ---------------------------------------------------

TEST(ClusterConfigTest, MinimalFileGetsEveryDefault) {
  const ClusterConfig config = ParseOk(kValidHead);
  EXPECT_EQ(config.source, kSource);
  EXPECT_EQ(config.name, "test");
  EXPECT_EQ(config.key_file, "cluster.key");
  EXPECT_EQ(config.heartbeat_interval, milliseconds(1000));
  EXPECT_EQ(config.heartbeat_timeout, milliseconds(3000));
  EXPECT_EQ(config.dynamic_server_timeout, 15 * kMinute);
  EXPECT_EQ(config.slow_start, kMinute);
  EXPECT_EQ(config.max_frame_bytes, 16 * kMiB);
  EXPECT_EQ(config.retry_timeout, milliseconds(2000));

  EXPECT_EQ(config.node_defaults.admin_listen, (HostPort{"127.0.0.1", 6880}));
  EXPECT_EQ(config.node_defaults.memcached_listen, (HostPort{"127.0.0.1", 11211}));
  EXPECT_EQ(config.node_defaults.data_dir, "/var/lib/cluster-balance");
  EXPECT_EQ(config.node_defaults.view_file, "");

  ASSERT_EQ(config.servers.size(), 1u);
  const ServerConfig& server = config.servers[0];
  EXPECT_EQ(server.index, 0);
  EXPECT_EQ(server.id, "a");
  EXPECT_EQ(server.cluster_address, (HostPort{"127.0.0.1", 7001}));
  EXPECT_EQ(server.http_address, (HostPort{"127.0.0.1", 8001}));
  EXPECT_EQ(server.weight, 100u);
  EXPECT_EQ(server.node, config.node_defaults);
  EXPECT_EQ(server.line, 5);
  EXPECT_TRUE(server.is_triad());

  ASSERT_EQ(config.caches.size(), 2u);
  EXPECT_EQ(config.caches[0], (CacheConfig{"default", milliseconds(0), milliseconds(0), kMiB}));
  EXPECT_EQ(config.caches[1], (CacheConfig{"session", 30 * kMinute, milliseconds(0), kMiB}));

  EXPECT_FALSE(config.deploy.remote);
  EXPECT_EQ(config.deploy.stage, "production");
  EXPECT_EQ(config.deploy.host, "default");
  EXPECT_EQ(config.deploy.keep_versions, 3u);
  EXPECT_EQ(config.deploy.max_bytes, 512 * kMiB);
  EXPECT_EQ(config.deploy.max_files, 100'000u);
  EXPECT_EQ(config.deploy.activate_timeout, kMinute);
  EXPECT_TRUE(config.deploy.activate.empty());
  EXPECT_EQ(config.node_defaults.deploy_root, "");
  EXPECT_EQ(config.node_defaults.admin_tls_certificate, "");
  EXPECT_EQ(config.node_defaults.admin_tls_key, "");
  EXPECT_EQ(config.node_defaults.admin_users, "");
}

TEST(ClusterConfigTest, DeployLimitsAndActivation) {
  const ClusterConfig config = ParseOk(WithHead(R"([deploy]
max_size = "2GiB"
max_files = 5000
activate_timeout = "90s"

[deploy.activate]
shop = "systemctl reload php-fpm"
"api.v2_x-y" = "touch tmp/restart.txt && echo 'done'"
)"));
  EXPECT_EQ(config.deploy.max_bytes, 2048 * kMiB);
  EXPECT_EQ(config.deploy.max_files, 5000u);
  EXPECT_EQ(config.deploy.activate_timeout, milliseconds(90'000));
  const std::map<std::string, std::string, std::less<>> activate{
      {"api.v2_x-y", "touch tmp/restart.txt && echo 'done'"}, {"shop", "systemctl reload php-fpm"}};
  EXPECT_EQ(config.deploy.activate, activate);
  // The inline form is the same table.
  EXPECT_EQ(ParseOk(WithHead("[deploy]\nactivate = { shop = \"systemctl reload php-fpm\" }\n"))
                .deploy.activate.at("shop"),
            "systemctl reload php-fpm");
  EXPECT_EQ(ParseOk(WithHead("[deploy]\nmax_size = 1\nmax_files = 1\nactivate_timeout = "
                             "\"1s\"\n"))
                .deploy,
            (DeployConfig{false, "production", "default", 3, 1, 1, {}, milliseconds(1000)}));
  EXPECT_EQ(ParseOk(WithHead("[deploy]\nactivate_timeout = \"24h\"\n")).deploy.activate_timeout,
            24 * 60 * kMinute);
}

TEST(ClusterConfigTest, DeployRootAndAdminFilesInNodeAndPerServer) {
  const ClusterConfig config = ParseOk(R"([cluster]
name = "c"
key_file = "k"

[node]
deploy_root = "/srv/apps"
admin_tls_certificate = "tls/admin.pem"
admin_tls_key = "tls/admin.key"
admin_users = "admin-users"

[[server]]
id = "a"
cluster_address = "127.0.0.1:7001"
http_address = "127.0.0.1:8001"
deploy_root = "/data/apps"
admin_users = "/etc/cluster-balance/a-users"

[[server]]
id = "b"
cluster_address = "127.0.0.1:7002"
http_address = "127.0.0.1:8002"
)");
  NodeSettings defaults;
  defaults.deploy_root = "/srv/apps";
  defaults.admin_tls_certificate = "tls/admin.pem";
  defaults.admin_tls_key = "tls/admin.key";
  defaults.admin_users = "admin-users";
  EXPECT_EQ(config.node_defaults, defaults);
  NodeSettings a = defaults;
  a.deploy_root = "/data/apps";
  a.admin_users = "/etc/cluster-balance/a-users";
  EXPECT_EQ(config.servers[0].node, a);
  EXPECT_EQ(config.servers[1].node, defaults);
}

TEST(ClusterConfigTest, LoopbackAdminNeedsNoTlsOrUsers) {
  for (const char* address : {"127.0.0.1:6880", "127.1.2.3:6880", "[::1]:6880", "localhost:6880",
                              "LocalHost:6880", "[::ffff:127.0.0.1]:6880"}) {
    SCOPED_TRACE(address);
    const ClusterConfig config =
        ParseOk(WithHead(std::string("admin_listen = \"") + address +
                         "\"\n[node]\nadmin_listen = \"" + address + "\"\n"));
    EXPECT_EQ(config.servers[0].node.admin_listen, config.node_defaults.admin_listen);
  }
}

TEST(ClusterConfigTest, RemoteAdminWithTlsAndUsers) {
  const ClusterConfig config = ParseOk(WithHead(R"([node]
admin_listen = "0.0.0.0:6880"
admin_tls_certificate = "admin.pem"
admin_tls_key = "admin.key"
admin_users = "admin-users"
)"));
  EXPECT_EQ(config.servers[0].node.admin_listen, (HostPort{"0.0.0.0", 6880}));
  EXPECT_EQ(config.servers[0].node.admin_users, "admin-users");
  // A server may move its admin to a remote address when [node] names the files.
  EXPECT_EQ(ParseOk(WithHead(R"(admin_listen = "10.0.0.1:6880"
[node]
admin_tls_certificate = "admin.pem"
admin_tls_key = "admin.key"
admin_users = "admin-users"
)"))
                .servers[0]
                .node.admin_listen,
            (HostPort{"10.0.0.1", 6880}));
}

TEST(ClusterConfigTest, ExampleFileSpellsOutTheDeployDefaults) {
  Result<ClusterConfig> example =
      LoadClusterConfig(std::string(CLUSTER_BALANCE_SOURCE_DIR) + "/conf-examples/cluster.toml");
  ASSERT_TRUE(example.ok()) << example.status().ToString();
  const ClusterConfig minimal = ParseOk(kValidHead);
  EXPECT_EQ(example->node_defaults.deploy_root, minimal.node_defaults.deploy_root);
  EXPECT_EQ(example->node_defaults.admin_tls_certificate,
            minimal.node_defaults.admin_tls_certificate);
  EXPECT_EQ(example->node_defaults.admin_tls_key, minimal.node_defaults.admin_tls_key);
  EXPECT_EQ(example->node_defaults.admin_users, minimal.node_defaults.admin_users);
}

TEST(ClusterConfigTest, EveryKeySet) {
  const ClusterConfig config = ParseOk(R"([cluster]
name = "c.1_x-y"
key_file = "keys/cluster.key"
heartbeat_interval = "250ms"
heartbeat_timeout = "2s"
dynamic_server_timeout = "1h"
slow_start = "0s"
max_frame_size = "64MiB"

[node]
admin_listen = "[::1]:7880"
memcached_listen = "0.0.0.0:11311"
data_dir = "/data"
view_file = "/run/x/view"

[[server]]
id = "s1"
cluster_address = "db.internal:6800"
http_address = "[fd00::1]:8080"
weight = 0

[cache.objects]
idle_timeout = "10m"
max_entry_size = 1048576

[deploy]
remote = true
stage = "staging"
host = "www.example.com"
keep_versions = 100
)");
  EXPECT_EQ(config.name, "c.1_x-y");
  EXPECT_EQ(config.key_file, "keys/cluster.key");
  EXPECT_EQ(config.ResolvePath(config.key_file), "keys/cluster.key");  // source has no directory
  EXPECT_EQ(config.heartbeat_interval, milliseconds(250));
  EXPECT_EQ(config.heartbeat_timeout, milliseconds(2000));
  EXPECT_EQ(config.dynamic_server_timeout, 60 * kMinute);
  EXPECT_EQ(config.slow_start, milliseconds(0));
  EXPECT_EQ(config.max_frame_bytes, 64 * kMiB);
  const NodeSettings node{HostPort{"::1", 7880}, HostPort{"0.0.0.0", 11311}, "/data",
                          "/run/x/view"};
  EXPECT_EQ(config.node_defaults, node);
  ASSERT_EQ(config.servers.size(), 1u);
  EXPECT_EQ(config.servers[0].cluster_address, (HostPort{"db.internal", 6800}));
  EXPECT_EQ(config.servers[0].http_address, (HostPort{"fd00::1", 8080}));
  EXPECT_EQ(config.servers[0].weight, 0u);
  EXPECT_EQ(config.servers[0].node, node);
  ASSERT_EQ(config.caches.size(), 3u);
  EXPECT_EQ(config.caches[1], (CacheConfig{"objects", 10 * kMinute, milliseconds(0), kMiB}));
  EXPECT_EQ(config.deploy, (DeployConfig{true, "staging", "www.example.com", 100}));
}

TEST(ClusterConfigTest, PerServerNodeOverrides) {
  // [node] is applied to every server wherever it appears in the file; a server's
  // own keys override it for that server only.
  const ClusterConfig config = ParseOk(R"([cluster]
name = "c"
key_file = "k"

[[server]]
id = "a"
cluster_address = "127.0.0.1:7001"
http_address = "127.0.0.1:8001"
admin_listen = "127.0.0.1:6901"
memcached_listen = "127.0.0.1:11301"

[[server]]
id = "b"
cluster_address = "127.0.0.1:7002"
http_address = "127.0.0.1:8002"
data_dir = "/data/b"
view_file = "/run/b/view"

[[server]]
id = "c"
cluster_address = "127.0.0.1:7003"
http_address = "127.0.0.1:8003"

[node]
data_dir = "/data/default"
admin_listen = "127.0.0.1:6900"
)");
  NodeSettings defaults;
  defaults.data_dir = "/data/default";
  defaults.admin_listen = HostPort{"127.0.0.1", 6900};
  EXPECT_EQ(config.node_defaults, defaults);

  ASSERT_EQ(config.servers.size(), 3u);
  NodeSettings a = defaults;
  a.admin_listen = HostPort{"127.0.0.1", 6901};
  a.memcached_listen = HostPort{"127.0.0.1", 11301};
  EXPECT_EQ(config.servers[0].node, a);
  NodeSettings b = defaults;
  b.data_dir = "/data/b";
  b.view_file = "/run/b/view";
  EXPECT_EQ(config.servers[1].node, b);
  EXPECT_EQ(config.servers[2].node, defaults);
  EXPECT_EQ(config.servers[0].line, 5);
  EXPECT_EQ(config.servers[1].line, 12);
  EXPECT_EQ(config.servers[2].line, 19);
}

TEST(ClusterConfigTest, SpokeCacheSizeDefaultsAndOverrides) {
  EXPECT_EQ(ParseOk(kValidHead).servers[0].node.spoke_cache_bytes, 64u * 1024 * 1024);
  const ClusterConfig config = ParseOk(WithHead(R"(spoke_cache_size = "8MiB"
[node]
spoke_cache_size = 1000
)"));
  EXPECT_EQ(config.node_defaults.spoke_cache_bytes, 1000u);
  EXPECT_EQ(config.servers[0].node.spoke_cache_bytes, 8u * 1024 * 1024);
  EXPECT_NE(ParseError(WithHead("[node]\nspoke_cache_size = \"lots\"\n")).find("spoke_cache_size"),
            std::string::npos);
}

TEST(ClusterConfigTest, MemcachedMaxLineSizeDefaultsOverridesAndLimits) {
  EXPECT_EQ(ParseOk(kValidHead).servers[0].node.memcached_max_line_bytes, 1024u * 1024);
  const ClusterConfig config = ParseOk(WithHead(R"(memcached_max_line_size = "4MiB"
[node]
memcached_max_line_size = "64KiB"
)"));
  EXPECT_EQ(config.node_defaults.memcached_max_line_bytes, 64u * 1024);
  EXPECT_EQ(config.servers[0].node.memcached_max_line_bytes, 4u * 1024 * 1024);
  for (const char* bad : {"1000", "\"2GiB\"", "\"big\""}) {
    EXPECT_NE(ParseError(WithHead(std::string("[node]\nmemcached_max_line_size = ") + bad + "\n"))
                  .find("memcached_max_line_size"),
              std::string::npos)
        << bad;
  }
}

TEST(ClusterConfigTest, RetryTimeoutDefaultsAndLimits) {
  EXPECT_EQ(ParseOk(kValidHead).retry_timeout, milliseconds(2000));
  const std::string head = "[cluster]\nname = \"c\"\nkey_file = \"k\"\n";
  const std::string server =
      "[[server]]\nid = \"a\"\ncluster_address = \"h:1\"\nhttp_address = \"h:2\"\n";
  EXPECT_EQ(ParseOk(head + "retry_timeout = \"500ms\"\n" + server).retry_timeout,
            milliseconds(500));
  for (const char* bad : {"\"5ms\"", "\"2m\"", "2"}) {
    EXPECT_NE(ParseError(head + "retry_timeout = " + bad + "\n" + server).find("retry_timeout"),
              std::string::npos)
        << bad;
  }
}

TEST(ClusterConfigTest, DurabilityIsReplicatedUnlessTheFileSaysFsync) {
  EXPECT_EQ(ParseOk(kValidHead).durability, ClusterConfig::Durability::kReplicated);
  const std::string head = "[cluster]\nname = \"c\"\nkey_file = \"k\"\n";
  const std::string server =
      "[[server]]\nid = \"a\"\ncluster_address = \"h:1\"\nhttp_address = \"h:2\"\n";
  EXPECT_EQ(ParseOk(head + "durability = \"fsync\"\n" + server).durability,
            ClusterConfig::Durability::kFsync);
  EXPECT_EQ(ParseOk(head + "durability = \"replicated\"\n" + server).durability,
            ClusterConfig::Durability::kReplicated);
  for (const char* bad : {"\"sync\"", "\"FSYNC\"", "\"\""}) {
    const std::string message = ParseError(head + "durability = " + bad + "\n" + server);
    EXPECT_NE(message.find("durability: must be \"replicated\" (the default) or \"fsync\""),
              std::string::npos)
        << bad << ": " << message;
  }
  for (const char* bad : {"true", "1"}) {
    EXPECT_NE(ParseError(head + "durability = " + bad + "\n" + server).find("durability"),
              std::string::npos)
        << bad;
  }
}

TEST(ClusterConfigTest, TriadIsTheFirstThreeServersInFileOrder) {
  std::string text = "[cluster]\nname = \"c\"\nkey_file = \"k\"\n";
  const char* const ids[] = {"zeta", "alpha", "mu", "beta", "omega"};
  for (int i = 0; i < 5; ++i) {
    text += "[[server]]\nid = \"" + std::string(ids[i]) +
            "\"\ncluster_address = \"h:" + std::to_string(7000 + i) +
            "\"\nhttp_address = \"h:" + std::to_string(8000 + i) + "\"\n";
  }
  const ClusterConfig config = ParseOk(text);
  ASSERT_EQ(config.servers.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(config.servers[static_cast<std::size_t>(i)].id, ids[i]);
    EXPECT_EQ(config.servers[static_cast<std::size_t>(i)].index, i);
    EXPECT_EQ(config.servers[static_cast<std::size_t>(i)].is_triad(), i < 3);
  }
}

TEST(ClusterConfigTest, SessionCacheKeepsItsIdleTimeoutUnlessReplaced) {
  // Only max_entry_size: the 30m idle timeout stays.
  ClusterConfig config = ParseOk(WithHead("[cache.session]\nmax_entry_size = \"2MiB\"\n"));
  EXPECT_EQ(*config.FindCache("session"),
            (CacheConfig{"session", 30 * kMinute, milliseconds(0), 2 * kMiB}));
  // A ttl replaces the idle timeout rather than adding to it.
  config = ParseOk(WithHead("[cache.session]\nttl = \"1h\"\n"));
  EXPECT_EQ(*config.FindCache("session"),
            (CacheConfig{"session", milliseconds(0), 60 * kMinute, kMiB}));
  // "0s" means never.
  config = ParseOk(WithHead("[cache.session]\nidle_timeout = \"0s\"\n"));
  EXPECT_EQ(*config.FindCache("session"),
            (CacheConfig{"session", milliseconds(0), milliseconds(0), kMiB}));
  // An empty table is the default.
  config = ParseOk(WithHead("[cache.session]\n[cache.extra]\n"));
  EXPECT_EQ(*config.FindCache("session"),
            (CacheConfig{"session", 30 * kMinute, milliseconds(0), kMiB}));
  EXPECT_EQ(*config.FindCache("extra"),
            (CacheConfig{"extra", milliseconds(0), milliseconds(0), kMiB}));
}

TEST(ClusterConfigTest, CachesAreSortedByName) {
  const ClusterConfig config =
      ParseOk(WithHead("[cache.zz]\n[cache.Aa]\n[cache.m-1]\n[cache.b_2]\n[cache.9]\n"));
  std::vector<std::string> names;
  for (const CacheConfig& cache : config.caches) names.push_back(cache.name);
  EXPECT_EQ(names, (std::vector<std::string>{"9", "Aa", "b_2", "default", "m-1", "session", "zz"}));
}

TEST(ClusterConfigTest, SizesAsPlainIntegersOrStrings) {
  ClusterConfig config = ParseOk(R"([cluster]
name = "c"
key_file = "k"
max_frame_size = 131072
[[server]]
id = "a"
cluster_address = "h:1"
http_address = "h:2"
[cache.session]
max_entry_size = "1B"
[cache.default]
max_entry_size = 1
)");
  EXPECT_EQ(config.max_frame_bytes, 131072u);
  EXPECT_EQ(config.FindCache("session")->max_entry_bytes, 1u);
  EXPECT_EQ(config.FindCache("default")->max_entry_bytes, 1u);
}

TEST(ClusterConfigTest, LimitsAtTheirEdgesAreAccepted) {
  const ClusterConfig config = ParseOk(R"([cluster]
name = "c"
key_file = "k"
heartbeat_interval = "10ms"
heartbeat_timeout = "11ms"
dynamic_server_timeout = "11ms"
slow_start = "24h"
max_frame_size = "1GiB"
[[server]]
id = "a"
cluster_address = "h:1"
http_address = "h:2"
weight = 1000000
[cache.big]
max_entry_size = "1048512KiB"
[deploy]
keep_versions = 1
)");
  EXPECT_EQ(config.heartbeat_interval, milliseconds(10));
  EXPECT_EQ(config.heartbeat_timeout, milliseconds(11));
  EXPECT_EQ(config.dynamic_server_timeout, milliseconds(11));
  EXPECT_EQ(config.slow_start, 24 * 60 * kMinute);
  EXPECT_EQ(config.max_frame_bytes, uint64_t{1} << 30);
  EXPECT_EQ(config.servers[0].weight, 1'000'000u);
  EXPECT_EQ(config.FindCache("big")->max_entry_bytes, (uint64_t{1} << 30) - 64 * 1024);
  EXPECT_EQ(config.deploy.keep_versions, 1u);
}

TEST(ClusterConfigTest, SixtyFourServersAreAccepted) {
  std::string text = "[cluster]\nname = \"c\"\nkey_file = \"k\"\n";
  for (int i = 0; i < 64; ++i) {
    text += "[[server]]\nid = \"s" + std::to_string(i) +
            "\"\ncluster_address = \"h:" + std::to_string(7000 + i) +
            "\"\nhttp_address = \"h:" + std::to_string(8000 + i) + "\"\n";
  }
  const ClusterConfig config = ParseOk(text);
  ASSERT_EQ(config.servers.size(), 64u);
  EXPECT_EQ(config.servers[63].index, 63);
  EXPECT_EQ(config.servers[63].id, "s63");
  EXPECT_EQ(config.servers[63].line, 4 + 63 * 4);
}

// --- Lookups and paths --------------------------------------------------------

TEST(ClusterConfigTest, FindServerAndFindCache) {
  const ClusterConfig config = ParseOk(WithHead(R"(
[[server]]
id = "b"
cluster_address = "127.0.0.1:7002"
http_address = "127.0.0.1:8002"

[cache.things]
ttl = "1m"
)"));
  const ServerConfig* b = config.FindServer("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b, &config.servers[1]);
  EXPECT_EQ(b->index, 1);
  EXPECT_EQ(config.FindServer("a"), &config.servers[0]);
  EXPECT_EQ(config.FindServer("c"), nullptr);
  EXPECT_EQ(config.FindServer(""), nullptr);
  EXPECT_EQ(config.FindServer("A"), nullptr);  // ids are case-sensitive

  const CacheConfig* things = config.FindCache("things");
  ASSERT_NE(things, nullptr);
  EXPECT_EQ(things->ttl, kMinute);
  ASSERT_NE(config.FindCache("session"), nullptr);
  ASSERT_NE(config.FindCache("default"), nullptr);
  EXPECT_EQ(config.FindCache("thing"), nullptr);
  EXPECT_EQ(config.FindCache(""), nullptr);
}

TEST(ClusterConfigTest, ResolvePath) {
  ClusterConfig config;
  config.source = "/etc/cluster-balance/cluster.toml";
  EXPECT_EQ(config.ResolvePath("cluster.key"), "/etc/cluster-balance/cluster.key");
  EXPECT_EQ(config.ResolvePath("./keys/cluster.key"), "/etc/cluster-balance/keys/cluster.key");
  EXPECT_EQ(config.ResolvePath("../shared/cluster.key"), "/etc/shared/cluster.key");
  EXPECT_EQ(config.ResolvePath("/var/lib/k"), "/var/lib/k");
  EXPECT_EQ(config.ResolvePath("/var/lib/../k"), "/var/lib/../k");  // absolute: as written

  config.source = "conf/cluster.toml";
  EXPECT_EQ(config.ResolvePath("cluster.key"), "conf/cluster.key");
  EXPECT_EQ(config.ResolvePath("../cluster.key"), "cluster.key");
  EXPECT_EQ(config.ResolvePath("/abs/k"), "/abs/k");

  config.source = "cluster.toml";
  EXPECT_EQ(config.ResolvePath("cluster.key"), "cluster.key");

  config.source = "";
  EXPECT_EQ(config.ResolvePath("cluster.key"), "cluster.key");
  EXPECT_EQ(config.ResolvePath("./a/../cluster.key"), "./a/../cluster.key");
}

// --- Loading ------------------------------------------------------------------

TEST(LoadClusterConfigTest, MissingFileIsNotFoundNamingThePath) {
  const std::string path = testing::TempDir() + "cluster-balance-no-such-dir/cluster.toml";
  Result<ClusterConfig> result = LoadClusterConfig(path);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), Status::Code::kNotFound);
  EXPECT_EQ(result.status().message(), path + ": cannot open the cluster file");
}

TEST(LoadClusterConfigTest, MessagesNameTheFilePath) {
  const std::filesystem::path dir =
      std::filesystem::path(testing::TempDir()) / "cluster_config_test_load";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "bad.toml").string();
  {
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    file << "[cluster]\nname = \"c\"\nkey_file = \"k\"\nheartbeat_interval = 5\n";
  }
  Result<ClusterConfig> result = LoadClusterConfig(path);
  std::filesystem::remove_all(dir);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(result.status().message(),
            path + ":4: cluster.heartbeat_interval: expected a string\n" + path +
                ":1: server: no [[server]] entries: a cluster needs at least one server");
}

TEST(LoadClusterConfigTest, SourceIsThePathAndKeyFileResolvesNextToIt) {
  const std::filesystem::path dir =
      std::filesystem::path(testing::TempDir()) / "cluster_config_test_source";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "cluster.toml").string();
  {
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    file << kValidHead;
  }
  Result<ClusterConfig> result = LoadClusterConfig(path);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->source, path);
  EXPECT_EQ(result->ResolvePath(result->key_file), (dir / "cluster.key").string());
}

// --- Errors: every message is "<file>:<line>: <field>: <what>" ------------------

TEST(ClusterConfigErrorTest, TomlSyntaxErrorNamesFileAndLine) {
  const std::string message = ParseError(R"([cluster]
name = "c"
key_file = "k"
heartbeat_interval = "1s
[[server]]
)");
  EXPECT_EQ(message.rfind("test.toml:4: ", 0), 0u) << message;
  EXPECT_GT(message.size(), std::string_view("test.toml:4: ").size()) << message;

  const std::string redefined = ParseError("[cluster]\nname = \"c\"\nname = \"d\"\n");
  EXPECT_EQ(redefined.rfind("test.toml:3: ", 0), 0u) << redefined;
  EXPECT_NE(redefined.find("name"), std::string::npos) << redefined;

  const std::string bad_header = ParseError("[cluster]\nname = \"c\"\n\n\n[[server]\n");
  EXPECT_EQ(bad_header.rfind("test.toml:5: ", 0), 0u) << bad_header;
}

TEST(ClusterConfigErrorTest, EmptyFile) {
  EXPECT_EQ(ParseError(""),
            "test.toml:1: cluster: missing section [cluster] (with name and key_file)\n"
            "test.toml:1: server: no [[server]] entries: a cluster needs at least one server");
}

TEST(ClusterConfigErrorTest, MissingClusterSection) {
  EXPECT_EQ(ParseError(R"([[server]]
id = "a"
cluster_address = "127.0.0.1:7001"
http_address = "127.0.0.1:8001"
)"),
            "test.toml:1: cluster: missing section [cluster] (with name and key_file)");
}

TEST(ClusterConfigErrorTest, ClusterOfTheWrongTypeIsReportedOnce) {
  EXPECT_EQ(ParseError(R"(cluster = "prod"
[[server]]
id = "a"
cluster_address = "127.0.0.1:7001"
http_address = "127.0.0.1:8001"
)"),
            "test.toml:1: cluster: expected a table ([cluster])");
}

TEST(ClusterConfigErrorTest, MissingNameAndKeyFile) {
  EXPECT_EQ(ParseError(R"(
[cluster]
heartbeat_interval = "1s"

[[server]]
id = "a"
cluster_address = "127.0.0.1:7001"
http_address = "127.0.0.1:8001"
)"),
            "test.toml:2: cluster.name: missing (required)\n"
            "test.toml:2: cluster.key_file: missing (required)");
}

TEST(ClusterConfigErrorTest, InvalidNameAndEmptyKeyFile) {
  EXPECT_EQ(ParseError(R"([cluster]
name = "my cluster"
key_file = ""
[[server]]
id = "a"
cluster_address = "127.0.0.1:7001"
http_address = "127.0.0.1:8001"
)"),
            "test.toml:2: cluster.name: \"my cluster\" is not 1..63 letters, digits, '.', '-' or "
            "'_'\n"
            "test.toml:3: cluster.key_file: must not be empty");
  const std::string long_name(64, 'n');
  EXPECT_EQ(ParseError("[cluster]\nname = \"" + long_name +
                       "\"\nkey_file = \"k\"\n[[server]]\nid = \"a\"\ncluster_address = "
                       "\"h:1\"\nhttp_address = \"h:2\"\n"),
            "test.toml:2: cluster.name: \"" + long_name +
                "\" is not 1..63 letters, digits, '.', '-' or '_'");
  EXPECT_EQ(ParseError("[cluster]\nname = \"-x\"\nkey_file = \"k\"\n[[server]]\nid = \"a\"\n"
                       "cluster_address = \"h:1\"\nhttp_address = \"h:2\"\n"),
            "test.toml:2: cluster.name: \"-x\" is not 1..63 letters, digits, '.', '-' or '_'");
  EXPECT_EQ(ParseOk("[cluster]\nname = \"" + std::string(63, 'n') +
                    "\"\nkey_file = \"k\"\n[[server]]\nid = \"a\"\ncluster_address = "
                    "\"h:1\"\nhttp_address = \"h:2\"\n")
                .name.size(),
            63u);
}

TEST(ClusterConfigErrorTest, NoServers) {
  EXPECT_EQ(ParseError("[cluster]\nname = \"c\"\nkey_file = \"k\"\n"),
            "test.toml:1: server: no [[server]] entries: a cluster needs at least one server");
}

TEST(ClusterConfigErrorTest, ServerThatIsNotAnArrayOfTables) {
  EXPECT_EQ(ParseError("server = \"a\"\n[cluster]\nname = \"c\"\nkey_file = \"k\"\n"),
            "test.toml:1: server: expected [[server]] tables");
  EXPECT_EQ(ParseError("\nserver = []\n[cluster]\nname = \"c\"\nkey_file = \"k\"\n"),
            "test.toml:2: server: expected [[server]] tables");
  EXPECT_EQ(ParseError("[cluster]\nname = \"c\"\nkey_file = \"k\"\n\n[server]\nid = \"a\"\n"),
            "test.toml:5: server: expected [[server]] tables");
}

TEST(ClusterConfigErrorTest, MissingServerKeys) {
  EXPECT_EQ(ParseError(WithHead("\n[[server]]\nweight = 5\n")),
            "test.toml:10: server[1].id: missing (required)\n"
            "test.toml:10: server[1].cluster_address: missing (required)\n"
            "test.toml:10: server[1].http_address: missing (required)");
}

TEST(ClusterConfigErrorTest, InvalidServerId) {
  EXPECT_EQ(ParseError(WithHead(R"(
[[server]]
id = "b/1"
cluster_address = "127.0.0.1:7002"
http_address = "127.0.0.1:8002"
)")),
            "test.toml:11: server[1].id: \"b/1\" is not 1..63 letters, digits, '.', '-' or '_'");
}

TEST(ClusterConfigErrorTest, DuplicateIdNamesTheFirstLine) {
  EXPECT_EQ(ParseError(R"([cluster]
name = "c"
key_file = "k"

[[server]]
id = "app-a"
cluster_address = "127.0.0.1:7001"
http_address = "127.0.0.1:8001"

[[server]]
id = "app-b"
cluster_address = "127.0.0.1:7002"
http_address = "127.0.0.1:8002"

[[server]]
cluster_address = "127.0.0.1:7003"
http_address = "127.0.0.1:8003"
id = "app-a"
)"),
            "test.toml:18: server[2].id: duplicate id \"app-a\" (first at line 6)");
}

TEST(ClusterConfigErrorTest, DuplicateClusterAddress) {
  EXPECT_EQ(ParseError(WithHead(R"(
[[server]]
id = "b"
cluster_address = "127.0.0.1:7001"
http_address = "127.0.0.1:8002"
)")),
            "test.toml:12: server[1].cluster_address: address 127.0.0.1:7001 is also "
            "server[0].cluster_address (line 7)");
}

TEST(ClusterConfigErrorTest, DuplicateAddressIsComparedAsParsed) {
  // "[::1]" and leading zeros in the port are spellings of the same address.
  EXPECT_EQ(ParseError(R"([cluster]
name = "c"
key_file = "k"
[[server]]
id = "a"
cluster_address = "[::1]:7001"
http_address = "[::1]:8001"
[[server]]
id = "b"
cluster_address = "[::1]:07001"
http_address = "[::1]:8002"
)"),
            "test.toml:10: server[1].cluster_address: address [::1]:7001 is also "
            "server[0].cluster_address (line 6)");
}

TEST(ClusterConfigErrorTest, HttpAddressEqualToAnotherServersClusterAddress) {
  EXPECT_EQ(ParseError(WithHead(R"(
[[server]]
id = "b"
cluster_address = "127.0.0.1:7002"
http_address = "127.0.0.1:7001"
)")),
            "test.toml:13: server[1].http_address: address 127.0.0.1:7001 is also "
            "server[0].cluster_address (line 7)");
}

TEST(ClusterConfigErrorTest, HttpAddressEqualToItsOwnClusterAddress) {
  EXPECT_EQ(ParseError(R"([cluster]
name = "c"
key_file = "k"
[[server]]
id = "a"
cluster_address = "127.0.0.1:7001"
http_address = "127.0.0.1:7001"
)"),
            "test.toml:7: server[0].http_address: address 127.0.0.1:7001 is also "
            "server[0].cluster_address (line 6)");
}

TEST(ClusterConfigErrorTest, DuplicateHttpAddress) {
  EXPECT_EQ(ParseError(WithHead(R"(
[[server]]
id = "b"
cluster_address = "127.0.0.1:7002"
http_address = "127.0.0.1:8001"
)")),
            "test.toml:13: server[1].http_address: address 127.0.0.1:8001 is also "
            "server[0].http_address (line 8)");
}

TEST(ClusterConfigErrorTest, MoreThanSixtyFourServers) {
  std::string text = "[cluster]\nname = \"c\"\nkey_file = \"k\"\n";
  for (int i = 0; i < 65; ++i) {
    text += "[[server]]\nid = \"s" + std::to_string(i) +
            "\"\ncluster_address = \"h:" + std::to_string(7000 + i) +
            "\"\nhttp_address = \"h:" + std::to_string(8000 + i) + "\"\n";
  }
  // Server 64 (the 65th) starts at line 4 + 64 * 4 = 260.
  EXPECT_EQ(ParseError(text),
            "test.toml:260: server: more than 64 servers; a triad domain has one route "
            "character per server");
}

TEST(ClusterConfigErrorTest, MalformedAddresses) {
  EXPECT_EQ(ParseError(R"([cluster]
name = "c"
key_file = "k"
[[server]]
id = "a"
cluster_address = "127.0.0.1"
http_address = "127.0.0.1:65536"
[node]
admin_listen = "[::1:6880"
memcached_listen = ":11211"
)"),
            "test.toml:9: node.admin_listen: address \"[::1:6880\" has an unbalanced '[' "
            "(expected host:port, e.g. \"10.0.0.10:6800\" or \"[::1]:6800\")\n"
            "test.toml:10: node.memcached_listen: address \":11211\" has no host (expected "
            "host:port, e.g. \"10.0.0.10:6800\" or \"[::1]:6800\")\n"
            "test.toml:6: server[0].cluster_address: address \"127.0.0.1\" has no port "
            "(expected host:port, e.g. \"10.0.0.10:6800\" or \"[::1]:6800\")\n"
            "test.toml:7: server[0].http_address: address \"127.0.0.1:65536\" has a port "
            "outside 1..65535 (expected host:port, e.g. \"10.0.0.10:6800\" or "
            "\"[::1]:6800\")");
}

TEST(ClusterConfigErrorTest, MalformedOverrideAddress) {
  EXPECT_EQ(ParseError(WithHead("admin_listen = \"local host:6880\"\n")),
            "test.toml:9: server[0].admin_listen: address \"local host:6880\" has a character "
            "not allowed in a host name (expected host:port, e.g. \"10.0.0.10:6800\" or "
            "\"[::1]:6800\")");
}

TEST(ClusterConfigErrorTest, AddressLongerThanSixtyThreeCharacters) {
  const std::string host(60, 'h');  // 60 + ":7001" = 65 characters
  EXPECT_EQ(ParseError("[cluster]\nname = \"c\"\nkey_file = \"k\"\n[[server]]\nid = \"a\"\n"
                       "cluster_address = \"" +
                       host + ":7001\"\nhttp_address = \"h:2\"\n"),
            "test.toml:6: server[0].cluster_address: longer than 63 characters");
  const std::string fits(58, 'h');  // 63 characters
  EXPECT_EQ(ParseOk("[cluster]\nname = \"c\"\nkey_file = \"k\"\n[[server]]\nid = \"a\"\n"
                    "cluster_address = \"" +
                    fits + ":7001\"\nhttp_address = \"h:2\"\n")
                .servers[0]
                .cluster_address.host,
            fits);
}

TEST(ClusterConfigErrorTest, MalformedDurations) {
  EXPECT_EQ(ParseError(R"([cluster]
name = "c"
key_file = "k"
heartbeat_interval = "3"
heartbeat_timeout = "5 s"
slow_start = "-1s"
dynamic_server_timeout = "1d"
[[server]]
id = "a"
cluster_address = "h:1"
http_address = "h:2"
[cache.session]
idle_timeout = "30min"
)"),
            "test.toml:4: cluster.heartbeat_interval: duration \"3\" is not a whole number with "
            "a unit ms, s, m or h (e.g. \"3s\")\n"
            "test.toml:5: cluster.heartbeat_timeout: duration \"5 s\" is not a whole number with "
            "a unit ms, s, m or h (e.g. \"3s\")\n"
            "test.toml:7: cluster.dynamic_server_timeout: duration \"1d\" is not a whole number "
            "with a unit ms, s, m or h (e.g. \"3s\")\n"
            "test.toml:6: cluster.slow_start: duration \"-1s\" is not a whole number with a unit "
            "ms, s, m or h (e.g. \"3s\")\n"
            "test.toml:13: cache.session.idle_timeout: duration \"30min\" is not a whole number "
            "with a unit ms, s, m or h (e.g. \"3s\")");
}

TEST(ClusterConfigErrorTest, WrongTypes) {
  EXPECT_EQ(ParseError(R"([cluster]
name = 5
key_file = ["k"]
heartbeat_interval = 1000
max_frame_size = true
[node]
data_dir = 7
view_file = false
admin_listen = 6880
[[server]]
id = "a"
cluster_address = "h:1"
http_address = "h:2"
weight = "100"
[[server]]
id = 2
cluster_address = "h:3"
http_address = "h:4"
weight = 1.5
[cache.session]
ttl = 60
max_entry_size = -1
[deploy]
remote = "yes"
stage = 1
keep_versions = "3"
)"),
            "test.toml:2: cluster.name: expected a string\n"
            "test.toml:3: cluster.key_file: expected a string\n"
            "test.toml:4: cluster.heartbeat_interval: expected a string\n"
            "test.toml:5: cluster.max_frame_size: expected a size such as \"1MiB\" or a whole "
            "number of bytes\n"
            "test.toml:9: node.admin_listen: expected a string\n"
            "test.toml:7: node.data_dir: expected a string\n"
            "test.toml:8: node.view_file: expected a string\n"
            "test.toml:14: server[0].weight: expected a whole number\n"
            "test.toml:16: server[1].id: expected a string\n"
            "test.toml:19: server[1].weight: expected a whole number\n"
            "test.toml:21: cache.session.ttl: expected a string\n"
            "test.toml:22: cache.session.max_entry_size: expected a size such as \"1MiB\" or a "
            "whole number of bytes\n"
            "test.toml:24: deploy.remote: expected true or false\n"
            "test.toml:25: deploy.stage: expected a string\n"
            "test.toml:26: deploy.keep_versions: expected a whole number");
}

TEST(ClusterConfigErrorTest, SectionsOfTheWrongType) {
  EXPECT_EQ(ParseError(WithHead("node = 1\ndeploy = \"x\"\ncache = 3\n")),
            // The keys land in the last table opened, [[server]] a; reported in
            // the order of the names.
            "test.toml:11: server[0].cache: unknown key\n"
            "test.toml:10: server[0].deploy: unknown key\n"
            "test.toml:9: server[0].node: unknown key");
  EXPECT_EQ(ParseError(R"(node = 1
deploy = "x"
cache = 3
[cluster]
name = "c"
key_file = "k"
[[server]]
id = "a"
cluster_address = "h:1"
http_address = "h:2"
)"),
            "test.toml:1: node: expected a table ([node])\n"
            "test.toml:3: cache: expected a table ([cache])\n"
            "test.toml:2: deploy: expected a table ([deploy])");
  EXPECT_EQ(ParseError(WithHead("[cache]\nsession = \"30m\"\n")),
            "test.toml:10: cache.session: expected a table ([cache.session])");
}

TEST(ClusterConfigErrorTest, WeightOutOfRange) {
  EXPECT_EQ(ParseError(WithHead("weight = -1\n")),
            "test.toml:9: server[0].weight: -1 is outside 0..1000000");
  EXPECT_EQ(ParseError(WithHead("weight = 1000001\n")),
            "test.toml:9: server[0].weight: 1000001 is outside 0..1000000");
  EXPECT_EQ(ParseError(WithHead("weight = 9223372036854775807\n")),
            "test.toml:9: server[0].weight: 9223372036854775807 is outside 0..1000000");
}

TEST(ClusterConfigErrorTest, KeepVersionsOutOfRange) {
  EXPECT_EQ(ParseError(WithHead("[deploy]\nkeep_versions = 0\n")),
            "test.toml:10: deploy.keep_versions: 0 is outside 1..100");
  EXPECT_EQ(ParseError(WithHead("[deploy]\nkeep_versions = 101\n")),
            "test.toml:10: deploy.keep_versions: 101 is outside 1..100");
}

TEST(ClusterConfigErrorTest, InvalidDeployNamesAndEmptyDataDir) {
  EXPECT_EQ(ParseError(WithHead("data_dir = \"\"\n[deploy]\nstage = \"pre prod\"\nhost = \"\"\n")),
            "test.toml:9: server[0].data_dir: must not be empty\n"
            "test.toml:11: deploy.stage: \"pre prod\" is not letters, digits, '.', '-' or '_' "
            "(it is part of deployment tag names)\n"
            "test.toml:12: deploy.host: \"\" is not letters, digits, '.', '-' or '_' (it is "
            "part of deployment tag names)");
}

TEST(ClusterConfigErrorTest, RemoteAdminWithoutTlsOrUsers) {
  EXPECT_EQ(ParseError(WithHead("[node]\nadmin_listen = \"0.0.0.0:6880\"\n")),
            "test.toml:10: node.admin_listen: remote admin requires TLS and users: 0.0.0.0:6880 "
            "is not a loopback address, and credentials and deployments must not cross the "
            "network in clear text or without a password (set admin_tls_certificate, "
            "admin_tls_key, admin_users)");
  // A host name may resolve to anything: remote.
  EXPECT_EQ(ParseError(WithHead(R"(admin_listen = "app-a.internal:6880"
admin_tls_certificate = "admin.pem"
admin_tls_key = "admin.key"
)")),
            "test.toml:9: server[0].admin_listen: remote admin requires TLS and users: "
            "app-a.internal:6880 is not a loopback address, and credentials and deployments "
            "must not cross the network in clear text or without a password (set admin_users)");
  // A server that clears one of [node]'s files; reported at the server's entry.
  EXPECT_EQ(ParseError(WithHead(R"(admin_tls_key = ""
[node]
admin_listen = "[fd00::1]:6880"
admin_tls_certificate = "admin.pem"
admin_tls_key = "admin.key"
admin_users = "admin-users"
)")),
            "test.toml:5: server[0].admin_listen: remote admin requires TLS and users: "
            "[fd00::1]:6880 is not a loopback address, and credentials and deployments must not "
            "cross the network in clear text or without a password (set admin_tls_key)");
  // Dynamic servers run with [node]'s settings: they must be safe even when every
  // static server overrides them.
  EXPECT_EQ(ParseError(WithHead(R"(admin_listen = "127.0.0.1:6880"
[node]
admin_listen = "10.0.0.1:6880"
admin_users = "admin-users"
)")),
            "test.toml:11: node.admin_listen: remote admin requires TLS and users: "
            "10.0.0.1:6880 is not a loopback address, and credentials and deployments must not "
            "cross the network in clear text or without a password (set admin_tls_certificate, "
            "admin_tls_key)");
}

TEST(ClusterConfigErrorTest, DeployLimitsOutOfRange) {
  EXPECT_EQ(ParseError(WithHead(R"([deploy]
max_size = 0
max_files = 0
activate_timeout = "0s"
)")),
            "test.toml:10: deploy.max_size: must be at least 1 byte\n"
            "test.toml:11: deploy.max_files: 0 is outside 1..100000000\n"
            "test.toml:12: deploy.activate_timeout: must be between 1s and 24h");
  EXPECT_EQ(ParseError(WithHead("[deploy]\nactivate_timeout = \"25h\"\n")),
            "test.toml:10: deploy.activate_timeout: must be between 1s and 24h");
  EXPECT_EQ(ParseError(WithHead("[deploy]\nmax_size = \"lots\"\n"))
                .rfind("test.toml:10: deploy.max_size: size \"lots\" is not a whole number", 0),
            0u);
  EXPECT_NE(ParseError(WithHead("[deploy]\nactivate_timeout = \"60\"\n"))
                .find("test.toml:10: deploy.activate_timeout: "),
            std::string::npos);
  EXPECT_EQ(ParseError(WithHead("[deploy]\nmax_files = \"10\"\n")),
            "test.toml:10: deploy.max_files: expected a whole number");
}

TEST(ClusterConfigErrorTest, BadActivationEntries) {
  EXPECT_EQ(ParseError(WithHead(R"([deploy.activate]
".hidden" = "true"
"a..b" = "true"
"with space" = "true"
empty = ""
number = 3
shop = "true"
)")),
            "test.toml:10: deploy.activate..hidden: webapp names are 1..63 letters, digits, '.', "
            "'-' or '_' (no \"..\"; they are part of deployment tag names)\n"
            "test.toml:11: deploy.activate.a..b: webapp names are 1..63 letters, digits, '.', "
            "'-' or '_' (no \"..\"; they are part of deployment tag names)\n"
            "test.toml:13: deploy.activate.empty: expected a command (a non-empty string for "
            "/bin/sh -c)\n"
            "test.toml:14: deploy.activate.number: expected a command (a non-empty string for "
            "/bin/sh -c)\n"
            "test.toml:12: deploy.activate.with space: webapp names are 1..63 letters, digits, "
            "'.', '-' or '_' (no \"..\"; they are part of deployment tag names)");
  EXPECT_EQ(ParseError(WithHead("[deploy]\nactivate = \"systemctl reload app\"\n")),
            "test.toml:10: deploy.activate: expected a table ([activate])");
}

TEST(ClusterConfigErrorTest, NodeFilesMustBeStrings) {
  EXPECT_EQ(ParseError(WithHead(R"(deploy_root = 1
[node]
admin_users = true
)")),
            "test.toml:11: node.admin_users: expected a string\n"
            "test.toml:9: server[0].deploy_root: expected a string");
}

TEST(ClusterConfigErrorTest, UnknownKeyInEachSectionSuggestsTheNearKey) {
  EXPECT_EQ(ParseError(R"([cluster]
name = "c"
key_file = "k"
heartbeat_intervall = "1s"

[node]
data_dirs = "/x"

[[server]]
id = "a"
cluster_address = "h:1"
http_address = "h:2"
wieght = 5

[cache.session]
idle_timout = "1m"

[deploy]
keep_version = 2
)"),
            "test.toml:4: cluster.heartbeat_intervall: unknown key (did you mean "
            "\"heartbeat_interval\"?)\n"
            "test.toml:7: node.data_dirs: unknown key (did you mean \"data_dir\"?)\n"
            "test.toml:13: server[0].wieght: unknown key (did you mean \"weight\"?)\n"
            "test.toml:16: cache.session.idle_timout: unknown key (did you mean "
            "\"idle_timeout\"?)\n"
            "test.toml:19: deploy.keep_version: unknown key (did you mean \"keep_versions\"?)");
}

TEST(ClusterConfigErrorTest, UnknownKeyFarFromAnyKnownKeyHasNoSuggestion) {
  EXPECT_EQ(ParseError(WithHead("[deploy]\nbranch = \"main\"\n")),
            "test.toml:10: deploy.branch: unknown key");
  EXPECT_EQ(ParseError(R"([cluster]
name = "c"
key_file = "k"
colour = "blue"
[[server]]
id = "a"
cluster_address = "h:1"
http_address = "h:2"
)"),
            "test.toml:4: cluster.colour: unknown key");
}

TEST(ClusterConfigErrorTest, UnknownSubTableIsAnUnknownKey) {
  EXPECT_EQ(ParseError(WithHead("[cluster.extra]\nx = 1\n")),
            "test.toml:9: cluster.extra: unknown key");
}

TEST(ClusterConfigErrorTest, UnknownTopLevelSections) {
  EXPECT_EQ(ParseError(WithHead("\n[clusters]\nname = \"x\"\n\n[[servers]]\nid = \"b\"\n")),
            "test.toml:10: clusters: unknown section (expected cluster, node, server, cache or "
            "deploy)\n"
            "test.toml:13: servers: unknown section (expected cluster, node, server, cache or "
            "deploy)");
  EXPECT_EQ(ParseError(std::string("version = 2\n") + std::string(kValidHead)),
            "test.toml:1: version: unknown section (expected cluster, node, server, cache or "
            "deploy)");
}

TEST(ClusterConfigErrorTest, BadCacheNames) {
  const std::string hint =
      ": cache names are letters, digits, '-' or '_' (they prefix memcached keys as "
      "<cache>:<key>)";
  const std::string long_name(65, 'c');
  EXPECT_EQ(ParseError(WithHead("[cache.\"a.b\"]\n[cache.\"-x\"]\n[cache.\"has space\"]\n[cache." +
                                long_name + "]\n[cache.\"a:b\"]\n")),
            // In the order of the names, as TOML tables keep them.
            "test.toml:10" + std::string(": cache.-x") + hint + "\n" +  //
                "test.toml:9: cache.a.b" + hint + "\n" +                //
                "test.toml:13: cache.a:b" + hint + "\n" +               //
                "test.toml:12: cache." + long_name + hint + "\n" +      //
                "test.toml:11: cache.has space" + hint);
  EXPECT_NE(
      ParseOk(WithHead("[cache." + std::string(64, 'c') + "]\n")).FindCache(std::string(64, 'c')),
      nullptr);
}

TEST(ClusterConfigErrorTest, IdleTimeoutAndTtlTogether) {
  EXPECT_EQ(ParseError(WithHead("[cache.things]\nttl = \"5m\"\nidle_timeout = \"1m\"\n")),
            "test.toml:10: cache.things.ttl: set idle_timeout or ttl, not both");
  // Even "0s" counts as set.
  EXPECT_EQ(ParseError(WithHead("[cache.session]\nidle_timeout = \"0s\"\nttl = \"0s\"\n")),
            "test.toml:11: cache.session.ttl: set idle_timeout or ttl, not both");
}

TEST(ClusterConfigErrorTest, HeartbeatTimeoutNotLongerThanInterval) {
  EXPECT_EQ(ParseError(R"([cluster]
name = "c"
key_file = "k"
heartbeat_interval = "3s"
heartbeat_timeout = "3000ms"
[[server]]
id = "a"
cluster_address = "h:1"
http_address = "h:2"
)"),
            "test.toml:5: cluster.heartbeat_timeout: must be longer than heartbeat_interval (3s)");
  // The default timeout (3s) against a longer interval: reported at [cluster].
  EXPECT_EQ(ParseError(R"(
[cluster]
name = "c"
key_file = "k"
heartbeat_interval = "5s"
[[server]]
id = "a"
cluster_address = "h:1"
http_address = "h:2"
)"),
            "test.toml:2: cluster.heartbeat_timeout: must be longer than heartbeat_interval (5s)");
}

TEST(ClusterConfigErrorTest, OtherClusterLimits) {
  EXPECT_EQ(ParseError(R"([cluster]
name = "c"
key_file = "k"
heartbeat_interval = "9ms"
heartbeat_timeout = "1s"
dynamic_server_timeout = "999ms"
slow_start = "1441m"
max_frame_size = "65535"
[[server]]
id = "a"
cluster_address = "h:1"
http_address = "h:2"
)"),
            "test.toml:4: cluster.heartbeat_interval: must be at least 10ms\n"
            "test.toml:6: cluster.dynamic_server_timeout: must not be shorter than "
            "heartbeat_timeout\n"
            "test.toml:7: cluster.slow_start: must be at most 24h\n"
            "test.toml:8: cluster.max_frame_size: must be between 64KiB and 1GiB");
  EXPECT_EQ(ParseError(R"([cluster]
name = "c"
key_file = "k"
max_frame_size = "1025MiB"
[[server]]
id = "a"
cluster_address = "h:1"
http_address = "h:2"
)"),
            "test.toml:4: cluster.max_frame_size: must be between 64KiB and 1GiB");
}

TEST(ClusterConfigErrorTest, MaxEntrySizeTooLarge) {
  // The default frame limit is 16MiB; an entry must leave 64KiB of it.
  EXPECT_EQ(ParseError(WithHead("[cache.big]\nmax_entry_size = \"16MiB\"\n")),
            "test.toml:10: cache.big.max_entry_size: must be at least 1 byte and 64KiB below "
            "cluster.max_frame_size");
  EXPECT_EQ(ParseError(WithHead("[cache.big]\nmax_entry_size = \"16321KiB\"\n")),
            "test.toml:10: cache.big.max_entry_size: must be at least 1 byte and 64KiB below "
            "cluster.max_frame_size");
  EXPECT_EQ(ParseOk(WithHead("[cache.big]\nmax_entry_size = \"16320KiB\"\n"))
                .FindCache("big")
                ->max_entry_bytes,
            16320u * 1024);
  EXPECT_EQ(ParseError(WithHead("[cache.big]\nmax_entry_size = 0\n")),
            "test.toml:10: cache.big.max_entry_size: must be at least 1 byte and 64KiB below "
            "cluster.max_frame_size");
  EXPECT_EQ(ParseError(WithHead("[cache.big]\nmax_entry_size = \"2TiB\"\n")),
            "test.toml:10: cache.big.max_entry_size: size \"2TiB\" is not a whole number of bytes "
            "with an optional unit B, KiB, MiB or GiB (e.g. \"1MiB\")");
}

TEST(ClusterConfigErrorTest, MaxEntrySizeNearTheLimitOfSixtyFourBitsIsTooLarge) {
  // Regression: the check once added 64KiB to the entry size, which wrapped
  // around for the largest sizes and let them through.
  for (std::string_view size :
       {"18446744073709551615", "18446744073709551615B", "17179869183GiB", "9223372036854775807"}) {
    const std::string value =
        size.back() == '7' ? std::string(size) : "\"" + std::string(size) + "\"";
    EXPECT_EQ(ParseError(WithHead("[cache.big]\nmax_entry_size = " + value + "\n")),
              "test.toml:10: cache.big.max_entry_size: must be at least 1 byte and 64KiB below "
              "cluster.max_frame_size")
        << size;
  }
}

TEST(ClusterConfigErrorTest, FrameLimitTooSmallForTheDefaultCaches) {
  // Regression: the default caches (1MiB entries) were not checked against a
  // smaller max_frame_size unless they had a [cache.*] table of their own.
  EXPECT_EQ(ParseError(R"([cluster]
name = "c"
key_file = "k"
max_frame_size = "1MiB"
[[server]]
id = "a"
cluster_address = "h:1"
http_address = "h:2"
)"),
            "test.toml:4: cluster.max_frame_size: must be at least 64KiB above the "
            "max_entry_size of cache \"default\" (1048576 bytes by default; set it in "
            "[cache.default])\n"
            "test.toml:4: cluster.max_frame_size: must be at least 64KiB above the "
            "max_entry_size of cache \"session\" (1048576 bytes by default; set it in "
            "[cache.session])");
  // Lowering both entry limits makes the small frame valid.
  const ClusterConfig config = ParseOk(R"([cluster]
name = "c"
key_file = "k"
max_frame_size = "1MiB"
[[server]]
id = "a"
cluster_address = "h:1"
http_address = "h:2"
[cache.default]
max_entry_size = "960KiB"
[cache.session]
max_entry_size = "960KiB"
)");
  EXPECT_EQ(config.max_frame_bytes, kMiB);
  EXPECT_EQ(config.FindCache("session")->max_entry_bytes, 960u * 1024);
  EXPECT_EQ(config.FindCache("session")->idle_timeout, 30 * kMinute);
}

TEST(ClusterConfigErrorTest, SeveralProblemsAreReportedTogether) {
  EXPECT_EQ(ParseError(R"([cluster]
name = "c"
heartbeat_interval = "1 s"

[[server]]
id = "a"
cluster_address = "10.0.0.1:6800"
http_address = "10.0.0.1:8080"

[[server]]
id = "a"
cluster_address = "10.0.0.1:6800"
http_address = "10.0.0.2:8080"
weight = -5

[cache.session]
ttl = "1h"
idle_timeout = "1h"

[deploy]
remotely = true
)"),
            "test.toml:1: cluster.key_file: missing (required)\n"
            "test.toml:3: cluster.heartbeat_interval: duration \"1 s\" is not a whole number "
            "with a unit ms, s, m or h (e.g. \"3s\")\n"
            "test.toml:11: server[1].id: duplicate id \"a\" (first at line 6)\n"
            "test.toml:12: server[1].cluster_address: address 10.0.0.1:6800 is also "
            "server[0].cluster_address (line 7)\n"
            "test.toml:14: server[1].weight: -5 is outside 0..1000000\n"
            "test.toml:17: cache.session.ttl: set idle_timeout or ttl, not both\n"
            "test.toml:21: deploy.remotely: unknown key (did you mean \"remote\"?)");
}

TEST(ClusterConfigErrorTest, AtMostTwentyProblemsAreListed) {
  std::string text(kValidHead);
  text += "[deploy]\n";  // line 9
  for (int i = 0; i < 25; ++i) text += "unknown_" + std::to_string(100 + i) + " = 1\n";
  const std::string message = ParseError(text);
  std::string expected;
  for (int i = 0; i < 20; ++i) {
    expected += "test.toml:" + std::to_string(10 + i) + ": deploy.unknown_" +
                std::to_string(100 + i) + ": unknown key\n";
  }
  expected += "(5 more problems)";
  EXPECT_EQ(message, expected);
}

}  // namespace
}  // namespace cb
