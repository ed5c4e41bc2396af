#include "shared/config_digest.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shared/cluster_config.h"

namespace cb {
namespace {

// Two triad servers and a spoke, one override, every section present.
constexpr std::string_view kBase = R"(# Base file for the digest tests.
[cluster]
name = "digest-test"
key_file = "cluster.key"
heartbeat_interval = "1s"
heartbeat_timeout = "3s"
slow_start = "60s"

[node]
data_dir = "/var/lib/cb"

[[server]]
id = "a"
cluster_address = "127.0.0.1:7001"
http_address = "127.0.0.1:8001"

[[server]]
id = "b"
cluster_address = "127.0.0.1:7002"
http_address = "127.0.0.1:8002"
weight = 50

[[server]]
id = "c"
cluster_address = "127.0.0.1:7003"
http_address = "127.0.0.1:8003"
admin_listen = "127.0.0.1:6883"

[cache.session]
idle_timeout = "30m"

[cache.objects]
ttl = "10m"
max_entry_size = "1024KiB"

[deploy]
stage = "production"
keep_versions = 3
)";

// The same meaning: other comments, white space, key order and spellings
// ("1m" for "60s", "1MiB" for "1024KiB", "1000ms" for "1s", "1800s" for "30m"),
// [deploy] written before the servers.
constexpr std::string_view kBaseRespelled = R"(
[deploy]
keep_versions   =   3
stage="production"

[cluster]   # the cluster
slow_start = "1m"
heartbeat_timeout = "3000ms"
key_file = "cluster.key"
name = "digest-test"
heartbeat_interval = "1000ms"

[[server]]
http_address = "127.0.0.1:8001"
cluster_address = "127.0.0.1:7001"
id = "a"
[[server]]
weight = 50
id = "b"
http_address = "127.0.0.1:8002"
cluster_address = "127.0.0.1:7002"
[[server]]
admin_listen = "127.0.0.1:6883"
http_address = "127.0.0.1:8003"
id = "c"
cluster_address = "127.0.0.1:7003"

[cache.objects]
max_entry_size = "1MiB"
ttl = "600s"
[cache.session]
idle_timeout = "1800s"

[node]
	data_dir = "/var/lib/cb"   # tab-indented
)";

ClusterConfig Parse(std::string_view text, std::string_view source = "digest.toml") {
  Result<ClusterConfig> result = ParseClusterConfig(text, source);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  return result.ok() ? *std::move(result) : ClusterConfig{};
}

ConfigDigest DigestOf(std::string_view text) { return DigestConfig(Parse(text)); }

// kBase with `from` (which must occur exactly once) replaced by `to`.
std::string Edit(std::string_view from, std::string_view to) {
  std::string text(kBase);
  const std::size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  EXPECT_EQ(text.find(from, at + 1), std::string::npos) << from << " occurs twice";
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

bool IsLowerHex(const std::string& text) {
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

TEST(ConfigDigestTest, Deterministic) {
  EXPECT_EQ(DigestOf(kBase), DigestOf(kBase));
  EXPECT_EQ(DigestOf(kBase).Combined(), DigestOf(kBase).Combined());
}

TEST(ConfigDigestTest, StableUnderCommentsWhiteSpaceKeyOrderAndSpelling) {
  const ConfigDigest base = DigestOf(kBase);
  const ConfigDigest other = DigestOf(kBaseRespelled);
  EXPECT_EQ(base, other);
  EXPECT_EQ(base.Combined(), other.Combined());
  EXPECT_EQ(DescribeConfigDifference(base, other), "");
}

TEST(ConfigDigestTest, EqualValuesSpelledDifferently) {
  const ConfigDigest base = DigestOf(kBase);
  EXPECT_EQ(DigestOf(Edit("slow_start = \"60s\"", "slow_start = \"1m\"")), base);
  EXPECT_EQ(DigestOf(Edit("slow_start = \"60s\"", "slow_start = \"60000ms\"")), base);
  EXPECT_EQ(DigestOf(Edit("\"1024KiB\"", "\"1MiB\"")), base);
  EXPECT_EQ(DigestOf(Edit("\"1024KiB\"", "1048576")), base);
  EXPECT_EQ(DigestOf(Edit("\"1024KiB\"", "\"1048576B\"")), base);
  EXPECT_EQ(DigestOf(Edit("idle_timeout = \"30m\"", "idle_timeout = \"1800s\"")), base);
  EXPECT_EQ(DigestOf(Edit("\"127.0.0.1:7001\"", "\"127.0.0.1:07001\"")), base);
}

TEST(ConfigDigestTest, ExplicitDefaultsEqualOmittedOnes) {
  // Writing a default out, or leaving it out, means the same.
  const ConfigDigest base = DigestOf(kBase);
  EXPECT_EQ(DigestOf(Edit("heartbeat_timeout = \"3s\"\n", "")), base);
  EXPECT_EQ(DigestOf(Edit("[cache.session]\nidle_timeout = \"30m\"\n", "")), base);
  EXPECT_EQ(DigestOf(Edit("[deploy]\nstage = \"production\"\nkeep_versions = 3\n",
                          "[deploy]\nremote = false\nhost = \"default\"\n")),
            base);
  EXPECT_EQ(DigestOf(Edit("id = \"a\"\n", "id = \"a\"\nweight = 100\n")), base);
  // A per-server override equal to the [node] value it replaces.
  EXPECT_EQ(DigestOf(Edit("id = \"a\"\n", "id = \"a\"\ndata_dir = \"/var/lib/cb\"\n")), base);
}

TEST(ConfigDigestTest, SourceNameAndLineNumbersDoNotMatter) {
  EXPECT_EQ(DigestConfig(Parse(kBase, "/etc/cluster-balance/cluster.toml")),
            DigestConfig(Parse(kBase, "other.toml")));
  EXPECT_EQ(DigestOf(std::string("\n\n\n") + std::string(kBase)), DigestOf(kBase));
}

struct SemanticChange {
  const char* what;
  const char* from;
  const char* to;
  const char* difference;  // DescribeConfigDifference(base, changed)
};

TEST(ConfigDigestTest, EverySemanticChangeChangesTheDigest) {
  const SemanticChange changes[] = {
      {"cluster name", "name = \"digest-test\"", "name = \"digest-test2\"", "[cluster] differs"},
      {"key file", "key_file = \"cluster.key\"", "key_file = \"./cluster.key\"",
       "[cluster] differs"},
      {"heartbeat interval", "heartbeat_interval = \"1s\"", "heartbeat_interval = \"999ms\"",
       "[cluster] differs"},
      {"heartbeat timeout", "heartbeat_timeout = \"3s\"", "heartbeat_timeout = \"4s\"",
       "[cluster] differs"},
      {"slow start", "slow_start = \"60s\"", "slow_start = \"61s\"", "[cluster] differs"},
      {"dynamic server timeout", "slow_start", "dynamic_server_timeout = \"16m\"\nslow_start",
       "[cluster] differs"},
      {"max frame size", "slow_start", "max_frame_size = \"32MiB\"\nslow_start",
       "[cluster] differs"},
      // Every server inherits the [node] default, so their effective settings change too.
      {"node default inherited", "data_dir = \"/var/lib/cb\"", "data_dir = \"/srv/cb\"",
       "[node] differs; server list differs"},
      {"server cluster address", "\"127.0.0.1:7002\"", "\"127.0.0.1:7012\"", "server list differs"},
      {"server http address", "\"127.0.0.1:8003\"", "\"[::1]:8003\"", "server list differs"},
      {"server host name", "\"127.0.0.1:8001\"", "\"localhost:8001\"", "server list differs"},
      {"server id", "id = \"c\"", "id = \"c2\"", "server list differs"},
      {"server weight", "weight = 50", "weight = 51", "server list differs"},
      {"server weight zero", "weight = 50", "weight = 0", "server list differs"},
      {"server override", "\"127.0.0.1:6883\"", "\"127.0.0.1:6884\"", "server list differs"},
      {"server added", "[cache.session]",
       "[[server]]\nid = \"d\"\ncluster_address = \"127.0.0.1:7004\"\n"
       "http_address = \"127.0.0.1:8004\"\n[cache.session]",
       "server list differs"},
      {"cache limit", "max_entry_size = \"1024KiB\"", "max_entry_size = \"1025KiB\"",
       "caches differ"},
      {"cache ttl", "ttl = \"10m\"", "ttl = \"11m\"", "caches differ"},
      {"cache ttl becomes idle timeout", "ttl = \"10m\"", "idle_timeout = \"10m\"",
       "caches differ"},
      {"session idle timeout", "idle_timeout = \"30m\"", "idle_timeout = \"31m\"", "caches differ"},
      {"cache added", "[deploy]", "[cache.more]\n[deploy]", "caches differ"},
      {"cache renamed", "[cache.objects]", "[cache.object]", "caches differ"},
      {"deploy stage", "stage = \"production\"", "stage = \"staging\"", "[deploy] differs"},
      {"deploy host", "keep_versions = 3", "keep_versions = 3\nhost = \"web\"", "[deploy] differs"},
      {"deploy remote", "keep_versions = 3", "keep_versions = 3\nremote = true",
       "[deploy] differs"},
      {"deploy keep versions", "keep_versions = 3", "keep_versions = 4", "[deploy] differs"},
      {"deploy max size", "keep_versions = 3", "keep_versions = 3\nmax_size = \"1GiB\"",
       "[deploy] differs"},
      {"deploy max files", "keep_versions = 3", "keep_versions = 3\nmax_files = 10",
       "[deploy] differs"},
      {"deploy activate timeout", "keep_versions = 3",
       "keep_versions = 3\nactivate_timeout = \"2m\"", "[deploy] differs"},
      {"deploy activation added", "keep_versions = 3",
       "keep_versions = 3\n[deploy.activate]\nshop = \"true\"", "[deploy] differs"},
      {"deploy activation of another webapp", "keep_versions = 3",
       "keep_versions = 3\n[deploy.activate]\nshop2 = \"true\"", "[deploy] differs"},
      {"deploy activation command", "keep_versions = 3",
       "keep_versions = 3\n[deploy.activate]\nshop = \"false\"", "[deploy] differs"},
  };
  const ConfigDigest base = DigestOf(kBase);
  std::vector<std::string> combined{base.Combined().Hex()};
  for (const SemanticChange& change : changes) {
    SCOPED_TRACE(change.what);
    const ConfigDigest changed = DigestOf(Edit(change.from, change.to));
    EXPECT_NE(changed, base);
    EXPECT_NE(changed.Combined(), base.Combined());
    EXPECT_EQ(DescribeConfigDifference(base, changed), change.difference);
    EXPECT_EQ(DescribeConfigDifference(changed, base), change.difference);
    combined.push_back(changed.Combined().Hex());
  }
  // Every change gives its own combined digest.
  std::sort(combined.begin(), combined.end());
  EXPECT_EQ(std::adjacent_find(combined.begin(), combined.end()), combined.end());
}

TEST(ConfigDigestTest, DeployDefaultsWrittenOutEqualOmittedOnes) {
  EXPECT_EQ(DigestOf(Edit("keep_versions = 3\n",
                          "keep_versions = 3\nmax_size = \"512MiB\"\nmax_files = 100000\n"
                          "activate_timeout = \"60s\"\n[deploy.activate]\n")),
            DigestOf(kBase));
}

TEST(ConfigDigestTest, LocalFilesOfTheAdminAndDeployRootAreNotCompared) {
  // Where a server keeps its checkouts and which certificate and users file its
  // admin endpoint reads concern that server alone, not how peers work together.
  const ConfigDigest base = DigestOf(kBase);
  EXPECT_EQ(DigestOf(Edit("data_dir = \"/var/lib/cb\"\n",
                          "data_dir = \"/var/lib/cb\"\ndeploy_root = \"/srv/apps\"\n"
                          "admin_tls_certificate = \"a.pem\"\nadmin_tls_key = \"a.key\"\n"
                          "admin_users = \"users\"\n")),
            base);
}

TEST(ConfigDigestTest, NodeDefaultThatEveryServerOverridesOnlyChangesNode) {
  constexpr std::string_view kOverridden = R"([cluster]
name = "c"
key_file = "k"
[node]
view_file = "/run/cb/view"
[[server]]
id = "a"
cluster_address = "h:1"
http_address = "h:2"
view_file = "/run/a/view"
[[server]]
id = "b"
cluster_address = "h:3"
http_address = "h:4"
view_file = "/run/b/view"
)";
  std::string changed(kOverridden);
  changed.replace(changed.find("/run/cb/view"), 12, "/run/xx/view");
  const ConfigDigest base = DigestOf(kOverridden);
  const ConfigDigest other = DigestOf(changed);
  EXPECT_NE(other.node, base.node);
  EXPECT_EQ(other.servers, base.servers);
  EXPECT_EQ(DescribeConfigDifference(base, other), "[node] differs");
}

TEST(ConfigDigestTest, OnlyTheChangedSectionDiffers) {
  const ConfigDigest base = DigestOf(kBase);

  const ConfigDigest cluster = DigestOf(Edit("\"digest-test\"", "\"other\""));
  EXPECT_NE(cluster.cluster, base.cluster);
  EXPECT_EQ(cluster.node, base.node);
  EXPECT_EQ(cluster.servers, base.servers);
  EXPECT_EQ(cluster.server_set, base.server_set);
  EXPECT_EQ(cluster.caches, base.caches);
  EXPECT_EQ(cluster.deploy, base.deploy);

  const ConfigDigest caches = DigestOf(Edit("ttl = \"10m\"", "ttl = \"1h\""));
  EXPECT_EQ(caches.cluster, base.cluster);
  EXPECT_NE(caches.caches, base.caches);
  EXPECT_EQ(caches.servers, base.servers);
  EXPECT_EQ(caches.deploy, base.deploy);

  const ConfigDigest weight = DigestOf(Edit("weight = 50", "weight = 60"));
  EXPECT_EQ(weight.cluster, base.cluster);
  EXPECT_EQ(weight.node, base.node);
  EXPECT_NE(weight.servers, base.servers);
  EXPECT_NE(weight.server_set, base.server_set);
  EXPECT_EQ(weight.caches, base.caches);
}

TEST(ConfigDigestTest, ReorderedServerListIsToldApartFromAChangedOne) {
  // Swap servers a and c: same servers, other indices (and so other routes).
  std::string reordered(kBase);
  const std::string a =
      "[[server]]\nid = \"a\"\ncluster_address = \"127.0.0.1:7001\"\nhttp_address = "
      "\"127.0.0.1:8001\"\n";
  const std::string c =
      "[[server]]\nid = \"c\"\ncluster_address = \"127.0.0.1:7003\"\nhttp_address = "
      "\"127.0.0.1:8003\"\nadmin_listen = \"127.0.0.1:6883\"\n";
  ASSERT_NE(reordered.find(a), std::string::npos);
  ASSERT_NE(reordered.find(c), std::string::npos);
  reordered.replace(reordered.find(a), a.size(), "@A@");
  reordered.replace(reordered.find(c), c.size(), a);
  reordered.replace(reordered.find("@A@"), 3, c);

  const ClusterConfig reordered_config = Parse(reordered);
  ASSERT_EQ(reordered_config.servers.size(), 3u);
  ASSERT_EQ(reordered_config.servers[0].id, "c");
  ASSERT_EQ(reordered_config.servers[2].id, "a");

  const ConfigDigest base = DigestOf(kBase);
  const ConfigDigest other = DigestConfig(reordered_config);
  EXPECT_NE(other.servers, base.servers);
  EXPECT_EQ(other.server_set, base.server_set);
  EXPECT_EQ(other.cluster, base.cluster);
  EXPECT_EQ(other.node, base.node);
  EXPECT_EQ(other.caches, base.caches);
  EXPECT_EQ(other.deploy, base.deploy);
  EXPECT_NE(other.Combined(), base.Combined());
  EXPECT_EQ(DescribeConfigDifference(base, other), "server list order differs (same servers)");
  EXPECT_EQ(DescribeConfigDifference(other, base), "server list order differs (same servers)");

  // Reordered and also changed: a plain "differs".
  std::string changed = reordered;
  changed.replace(changed.find("weight = 50"), 11, "weight = 49");
  EXPECT_EQ(DescribeConfigDifference(base, DigestOf(changed)), "server list differs");
}

TEST(ConfigDigestTest, SeveralDifferencesAreListedInSectionOrder) {
  std::string text = Edit("\"digest-test\"", "\"other\"");
  text.replace(text.find("ttl = \"10m\""), 11, "ttl = \"9m\"");
  text.replace(text.find("keep_versions = 3"), 17, "keep_versions = 5");
  text.replace(text.find("/var/lib/cb"), 11, "/srv/cb");
  EXPECT_EQ(DescribeConfigDifference(DigestOf(kBase), DigestOf(text)),
            "[cluster] differs; [node] differs; server list differs; caches differ; "
            "[deploy] differs");
}

TEST(ConfigDigestTest, DescribeConfigDifferenceOnHandMadeDigests) {
  const ConfigDigest zero;
  EXPECT_EQ(DescribeConfigDifference(zero, zero), "");

  ConfigDigest other = zero;
  other.cluster.low = 1;
  EXPECT_EQ(DescribeConfigDifference(zero, other), "[cluster] differs");
  other = zero;
  other.node.high = 1;
  EXPECT_EQ(DescribeConfigDifference(zero, other), "[node] differs");
  other = zero;
  other.servers.low = 1;
  EXPECT_EQ(DescribeConfigDifference(zero, other), "server list order differs (same servers)");
  other.server_set.low = 1;
  EXPECT_EQ(DescribeConfigDifference(zero, other), "server list differs");
  other = zero;
  other.caches.high = 7;
  EXPECT_EQ(DescribeConfigDifference(zero, other), "caches differ");
  other = zero;
  other.deploy.low = 7;
  EXPECT_EQ(DescribeConfigDifference(zero, other), "[deploy] differs");
  // A server_set difference alone (servers equal) is not reported: the ordered
  // list decides whether the servers differ at all.
  other = zero;
  other.server_set.low = 1;
  EXPECT_EQ(DescribeConfigDifference(zero, other), "");
}

TEST(ConfigDigestTest, CombinedCoversEverySection) {
  const ConfigDigest base = DigestOf(kBase);
  Digest128 ConfigDigest::*const parts[] = {&ConfigDigest::cluster, &ConfigDigest::node,
                                            &ConfigDigest::servers, &ConfigDigest::server_set,
                                            &ConfigDigest::caches,  &ConfigDigest::deploy};
  std::vector<std::string> seen{base.Combined().Hex()};
  for (Digest128 ConfigDigest::*part : parts) {
    for (bool high : {false, true}) {
      ConfigDigest changed = base;
      (high ? (changed.*part).high : (changed.*part).low) ^= 1;
      EXPECT_NE(changed.Combined(), base.Combined());
      seen.push_back(changed.Combined().Hex());
    }
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(std::adjacent_find(seen.begin(), seen.end()), seen.end());

  // Sections are not interchangeable: swapping two section digests changes it.
  ConfigDigest swapped = base;
  std::swap(swapped.cluster, swapped.deploy);
  EXPECT_NE(swapped.Combined(), base.Combined());
}

TEST(ConfigDigestTest, HexIs32LowerCaseDigits) {
  EXPECT_EQ((Digest128{0, 0}).Hex(), "00000000000000000000000000000000");
  EXPECT_EQ((Digest128{0x0123456789abcdefULL, 0xfedcba9876543210ULL}).Hex(),
            "0123456789abcdeffedcba9876543210");
  EXPECT_EQ((Digest128{~0ULL, 1}).Hex(), "ffffffffffffffff0000000000000001");
  const ConfigDigest digest = DigestOf(kBase);
  for (const Digest128& part : {digest.cluster, digest.node, digest.servers, digest.server_set,
                                digest.caches, digest.deploy, digest.Combined()}) {
    const std::string hex = part.Hex();
    EXPECT_EQ(hex.size(), 32u);
    EXPECT_TRUE(IsLowerHex(hex)) << hex;
    EXPECT_NE(part, (Digest128{}));
  }
}

TEST(ConfigDigestTest, FromHexInvertsHex) {
  for (const Digest128& digest :
       {Digest128{0, 0}, Digest128{0x0123456789abcdefULL, 0xfedcba9876543210ULL},
        Digest128{~0ULL, 1}, DigestOf(kBase).Combined()}) {
    const Result<Digest128> parsed = Digest128::FromHex(digest.Hex());
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    EXPECT_EQ(*parsed, digest);
  }
  const Result<Digest128> upper = Digest128::FromHex("0123456789ABCDEFFEDCBA9876543210");
  ASSERT_TRUE(upper.ok());
  EXPECT_EQ(*upper, (Digest128{0x0123456789abcdefULL, 0xfedcba9876543210ULL}));
}

TEST(ConfigDigestTest, FromHexRejectsMalformedText) {
  const std::string good(32, 'a');
  for (const std::string& bad :
       {std::string(), std::string(31, 'a'), std::string(33, 'a'), good.substr(0, 31) + "g",
        "x" + good.substr(1), good.substr(0, 16) + " " + good.substr(17),
        std::string("0x") + good.substr(2), good.substr(0, 31) + std::string(1, '\0')}) {
    SCOPED_TRACE(bad);
    const Result<Digest128> parsed = Digest128::FromHex(bad);
    EXPECT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().code(), Status::Code::kInvalidArgument);
  }
}

TEST(ConfigDigestTest, DurabilityChangesTheClusterDigestOnlyWhenNotTheDefault) {
  const std::string servers = R"(
[[server]]
id = "a"
cluster_address = "h:1"
http_address = "h:2"
)";
  const std::string head = "[cluster]\nname = \"c\"\nkey_file = \"k\"\n";
  const ConfigDigest plain = DigestOf(head + servers);
  const ConfigDigest replicated = DigestOf(head + "durability = \"replicated\"\n" + servers);
  const ConfigDigest fsync = DigestOf(head + "durability = \"fsync\"\n" + servers);
  EXPECT_EQ(plain.Combined(), replicated.Combined());
  EXPECT_NE(plain.cluster, fsync.cluster);
  EXPECT_EQ(plain.servers, fsync.servers);
}

TEST(ConfigDigestTest, PinnedCombinedDigest) {
  // Pins the canonical rendering. Peers compare this digest when they connect and
  // refuse each other when it differs, so if this value changes, sidecars of the
  // old and the new version refuse each other even with identical cluster files
  // (a rolling upgrade stalls). Change it only deliberately, and say so in the
  // release notes. (Changed three times, each time with a protocol version that refuses
  // older peers anyway: [node] gained spoke_cache_size with version 4; [cluster]
  // retry_timeout and [node] memcached_max_line_size with version 6; [deploy] gained
  // max_size, max_files, activate_timeout and [deploy.activate] with issue 13's
  // deployments, whose new frames need a new protocol version too.)
  const ConfigDigest digest = DigestOf(R"([cluster]
name = "pinned"
key_file = "/etc/cluster-balance/cluster.key"

[[server]]
id = "app-a"
cluster_address = "10.0.0.11:6800"
http_address = "10.0.0.11:8080"

[[server]]
id = "app-b"
cluster_address = "10.0.0.12:6800"
http_address = "10.0.0.12:8080"
weight = 50
)");
  EXPECT_EQ(digest.Combined().Hex(), "2a617e7952c6ba3c8d1fd287e1cfacc5");
}

}  // namespace
}  // namespace cb
