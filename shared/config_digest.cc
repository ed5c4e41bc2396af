#include "shared/config_digest.h"

#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <vector>

namespace cb {
namespace {

// Renders fields as "name=<length>:<value>\n" so that no two models share a rendering.
class Canonical {
 public:
  Canonical& Field(std::string_view name, std::string_view value) {
    text_.append(name).append("=").append(std::to_string(value.size())).append(":");
    text_.append(value).append("\n");
    return *this;
  }
  Canonical& Field(std::string_view name, uint64_t value) {
    return Field(name, std::string_view(std::to_string(value)));
  }
  Canonical& Field(std::string_view name, milliseconds value) {
    return Field(name, static_cast<uint64_t>(value.count()));
  }
  Canonical& Field(std::string_view name, const HostPort& value) {
    return Field(name, std::string_view(value.ToString()));
  }

  Digest128 Digest() const {
    const XXH128_hash_t hash = XXH3_128bits(text_.data(), text_.size());
    return Digest128{hash.high64, hash.low64};
  }

 private:
  std::string text_;
};

void RenderNode(Canonical& out, const NodeSettings& node) {
  out.Field("admin_listen", node.admin_listen)
      .Field("memcached_listen", node.memcached_listen)
      .Field("data_dir", node.data_dir)
      .Field("view_file", node.view_file)
      .Field("spoke_cache_size", node.spoke_cache_bytes)
      .Field("memcached_max_line_size", node.memcached_max_line_bytes);
}

Digest128 DigestServers(std::vector<const ServerConfig*> servers) {
  Canonical out;
  out.Field("count", servers.size());
  for (const ServerConfig* server : servers) {
    out.Field("id", server->id)
        .Field("cluster_address", server->cluster_address)
        .Field("http_address", server->http_address)
        .Field("weight", server->weight);
    RenderNode(out, server->node);
  }
  return out.Digest();
}

}  // namespace

std::string Digest128::Hex() const {
  char text[33];
  std::snprintf(text, sizeof(text), "%016llx%016llx", static_cast<unsigned long long>(high),
                static_cast<unsigned long long>(low));
  return text;
}

Result<Digest128> Digest128::FromHex(std::string_view hex) {
  if (hex.size() != 32) {
    return Status::InvalidArgument("digest: expected 32 hex digits, got " +
                                   std::to_string(hex.size()) + " characters");
  }
  Digest128 digest;
  for (std::size_t i = 0; i < hex.size(); ++i) {
    const char c = hex[i];
    uint64_t nibble;
    if (c >= '0' && c <= '9') {
      nibble = static_cast<uint64_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      nibble = static_cast<uint64_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      nibble = static_cast<uint64_t>(c - 'A' + 10);
    } else {
      return Status::InvalidArgument("digest: not a hex digit at position " + std::to_string(i));
    }
    uint64_t& half = i < 16 ? digest.high : digest.low;
    half = (half << 4) | nibble;
  }
  return digest;
}

Digest128 ConfigDigest::Combined() const {
  Canonical out;
  for (const Digest128* part : {&cluster, &node, &servers, &server_set, &caches, &deploy}) {
    out.Field("part", std::string_view(part->Hex()));
  }
  return out.Digest();
}

ConfigDigest DigestConfig(const ClusterConfig& config) {
  ConfigDigest digest;
  Canonical cluster;
  cluster.Field("name", config.name)
      .Field("key_file", config.key_file)
      .Field("heartbeat_interval", config.heartbeat_interval)
      .Field("heartbeat_timeout", config.heartbeat_timeout)
      .Field("dynamic_server_timeout", config.dynamic_server_timeout)
      .Field("slow_start", config.slow_start)
      .Field("max_frame_size", config.max_frame_bytes)
      .Field("retry_timeout", config.retry_timeout);
  // Rendered only when not the default, so that a file without it keeps the
  // digest it had before the key existed (no refusal between versions).
  if (config.durability == ClusterConfig::Durability::kFsync) cluster.Field("durability", "fsync");
  digest.cluster = cluster.Digest();
  Canonical node;
  RenderNode(node, config.node_defaults);
  digest.node = node.Digest();

  std::vector<const ServerConfig*> servers;
  for (const ServerConfig& server : config.servers) servers.push_back(&server);
  digest.servers = DigestServers(servers);
  std::sort(servers.begin(), servers.end(),
            [](const ServerConfig* a, const ServerConfig* b) { return a->id < b->id; });
  digest.server_set = DigestServers(servers);

  Canonical caches;
  caches.Field("count", config.caches.size());
  for (const CacheConfig& cache : config.caches) {  // sorted by name already
    caches.Field("name", cache.name)
        .Field("idle_timeout", cache.idle_timeout)
        .Field("ttl", cache.ttl)
        .Field("max_entry_size", cache.max_entry_bytes);
  }
  digest.caches = caches.Digest();

  // Limits and activation commands too: every server must accept and activate a
  // version alike, or a deploy converges on some servers only.
  Canonical deploy;
  deploy.Field("remote", config.deploy.remote ? 1u : 0u)
      .Field("stage", config.deploy.stage)
      .Field("host", config.deploy.host)
      .Field("keep_versions", config.deploy.keep_versions)
      .Field("max_size", config.deploy.max_bytes)
      .Field("max_files", config.deploy.max_files)
      .Field("activate_timeout", config.deploy.activate_timeout)
      .Field("activate_count", config.deploy.activate.size());
  for (const auto& [webapp, command] : config.deploy.activate) {  // sorted by name
    deploy.Field("activate_webapp", webapp).Field("activate_command", command);
  }
  digest.deploy = deploy.Digest();
  return digest;
}

std::string DescribeConfigDifference(const ConfigDigest& local, const ConfigDigest& remote) {
  std::vector<std::string> parts;
  if (!(local.cluster == remote.cluster)) parts.emplace_back("[cluster] differs");
  if (!(local.node == remote.node)) parts.emplace_back("[node] differs");
  if (!(local.servers == remote.servers)) {
    parts.emplace_back(local.server_set == remote.server_set
                           ? "server list order differs (same servers)"
                           : "server list differs");
  }
  if (!(local.caches == remote.caches)) parts.emplace_back("caches differ");
  if (!(local.deploy == remote.deploy)) parts.emplace_back("[deploy] differs");
  std::string text;
  for (const std::string& part : parts) {
    if (!text.empty()) text += "; ";
    text += part;
  }
  return text;
}

}  // namespace cb
