// The cluster file: one TOML file, identical on every server, parsed into a
// validated model. conf-examples/cluster.toml documents every key.
//
//   [cluster]   name, key_file, heartbeat_interval, heartbeat_timeout,
//               dynamic_server_timeout, slow_start, max_frame_size, retry_timeout,
//               durability ("replicated" or "fsync")
//   [node]      settings of each server's own sidecar: admin_listen,
//               memcached_listen, data_dir, view_file, spoke_cache_size,
//               memcached_max_line_size, deploy_root, admin_tls_certificate,
//               admin_tls_key, admin_users (a non-loopback admin_listen
//               requires the last three)
//   [[server]]  id, cluster_address, http_address, weight, and any [node] key to
//               override it for that server; in cluster order (index 0, 1, ...)
//   [cache.N]   idle_timeout or ttl, max_entry_size ("session" and "default"
//               always exist)
//   [deploy]    remote, stage, host, keep_versions, max_size, max_files,
//               activate_timeout, and [deploy.activate] WEBAPP = "command"
//
// Contract: parsing either yields a model that satisfies every rule below or an
// error listing each problem as "<file>:<line>: <field>: <what is wrong>". Unknown
// keys and sections are errors (a typo must not silently fall back to a default).
// The model is a plain value; thread-safe to read from many threads.
#ifndef CLUSTER_BALANCE_SHARED_CLUSTER_CONFIG_H_
#define CLUSTER_BALANCE_SHARED_CLUSTER_CONFIG_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "shared/cluster_view.h"
#include "shared/config_values.h"
#include "shared/route_codec.h"
#include "shared/server_set.h"
#include "shared/status.h"

namespace cb {

using std::chrono::milliseconds;

// Settings of one server's own sidecar.
struct NodeSettings {
  HostPort admin_listen{"127.0.0.1", 6880};
  HostPort memcached_listen{"127.0.0.1", 11211};
  std::string data_dir = "/var/lib/cluster-balance";
  // Where the sidecar publishes its view; empty = its default
  // (/run/cluster-balance/view when writable, else <data_dir>/view).
  std::string view_file;
  // A spoke's memory for recently read records (validated with their owner on
  // every read, so only bandwidth depends on it).
  uint64_t spoke_cache_bytes = 64 * 1024 * 1024;
  // The longest get/gets/gat/gats line a memcached client may send (its keys are
  // taken as they arrive, so this bounds work, not memory).
  uint64_t memcached_max_line_bytes = 1024 * 1024;
  // Where deployed webapps are checked out: <deploy_root>/<webapp>/current is the
  // live tree (a symlink). Empty = <data_dir>/deploy.
  std::string deploy_root{};
  // The admin endpoint on a non-loopback address (remote admin) requires all three:
  // TLS (PEM certificate chain and key) and the users file of `clusterctl passwd`
  // lines ("user:$argon2id$..."). Relative paths are relative to the cluster file.
  std::string admin_tls_certificate{};
  std::string admin_tls_key{};
  std::string admin_users{};

  bool operator==(const NodeSettings&) const = default;
};

struct ServerConfig {
  int index = 0;  // position in the file: 0, 1, 2 are the triad
  std::string id;
  HostPort cluster_address;  // the sidecar's cluster port
  HostPort http_address;     // the application backend
  uint32_t weight = 100;     // share of new sessions; 0 = none
  NodeSettings node;         // [node] with this server's overrides applied
  int line = 0;              // where the entry starts in the file

  bool is_triad() const { return index < kTriadSize; }
};

struct CacheConfig {
  std::string name;
  milliseconds idle_timeout{0};  // expire after this long unread or unwritten; 0 = never
  milliseconds ttl{0};           // expire this long after the write; 0 = never
  uint64_t max_entry_bytes = 1024 * 1024;

  bool operator==(const CacheConfig&) const = default;
};

struct DeployConfig {
  bool remote = false;  // accept deployments from other machines (always authenticated)
  std::string stage = "production";
  std::string host = "default";
  uint32_t keep_versions = 3;  // old checkouts kept for rollback
  // An upload (archive or tree) larger than this, or with more files, is refused.
  uint64_t max_bytes = 512 * 1024 * 1024;
  uint64_t max_files = 100'000;
  // Per webapp, a command run (by /bin/sh -c, in the new live directory) after each
  // switch: [deploy.activate] NAME = "command". Killed after activate_timeout.
  std::map<std::string, std::string, std::less<>> activate{};
  milliseconds activate_timeout{60 * 1000};

  bool operator==(const DeployConfig&) const = default;
};

struct ClusterConfig {
  std::string source;  // file name used in messages
  std::string name;
  std::string key_file;  // shared cluster key; relative paths are relative to `source`
  milliseconds heartbeat_interval{1000};
  milliseconds heartbeat_timeout{3000};
  milliseconds dynamic_server_timeout{15 * 60 * 1000};  // a dynamic server's index is freed
  milliseconds slow_start{60 * 1000};
  uint64_t max_frame_bytes = 16 * 1024 * 1024;
  // How long the store keeps retrying a memcached command whose key's owner is
  // lost mid-request or not known yet, on the new owner, before the client gets
  // SERVER_ERROR. Cluster-wide: every triad server remembers the writes it applied
  // for this long, so that a retry of one is answered, not applied again.
  milliseconds retry_timeout{2000};
  // When a triad server acknowledges a write (README "Durability"): kReplicated
  // once every live triad server has applied it, without waiting for a disk;
  // kFsync once every live triad server has it synced to disk as well.
  enum class Durability { kReplicated, kFsync };
  Durability durability = Durability::kReplicated;
  NodeSettings node_defaults;
  std::vector<ServerConfig> servers;  // static servers in cluster order
  std::vector<CacheConfig> caches;    // sorted by name
  DeployConfig deploy;

  // The longest a sidecar waits before dialing a lost peer again: one heartbeat
  // interval, so a server that comes back is connected again within about one
  // interval, and one that hears from no peer within the heartbeat timeout plus
  // this knows that no peer is there to hear from.
  milliseconds reconnect_cap() const { return heartbeat_interval; }
  // How long a starting sidecar waits to hear from a live triad peer before it
  // takes itself for alone and carries on with what it has: a live peer dials it
  // (or is dialed) within reconnect_cap() and is heard from within the heartbeat
  // timeout.
  milliseconds alone_wait() const { return heartbeat_timeout + reconnect_cap(); }

  const ServerConfig* FindServer(std::string_view id) const;
  const CacheConfig* FindCache(std::string_view name) const;
  // `path` as the sidecar should open it: relative paths are taken relative to the
  // directory of the cluster file.
  std::string ResolvePath(std::string_view path) const;
};

// Limits the validation enforces.
// Ids, the cluster name and addresses are published in the view's fixed fields.
inline constexpr std::size_t kMaxIdLength = kViewIdCapacity - 1;
inline constexpr std::size_t kMaxAddressLength = kViewAddressCapacity - 1;
static_assert(kViewClusterNameCapacity - 1 >= kMaxIdLength);
inline constexpr std::size_t kMaxCacheNameLength = 64;
inline constexpr int64_t kMaxWeight = 1'000'000;
inline constexpr std::string_view kSessionCache = "session";
inline constexpr std::string_view kDefaultCache = "default";

// Whether `id` may name a server: 1..kMaxIdLength letters, digits, '.', '-', '_',
// starting with a letter or digit. Dynamic servers, named on their command line,
// follow the same rule as the cluster file's.
bool IsValidServerId(std::string_view id);

// Parses TOML text; `source_name` names it in messages.
Result<ClusterConfig> ParseClusterConfig(std::string_view toml_text, std::string_view source_name);

// Reads and parses a cluster file.
Result<ClusterConfig> LoadClusterConfig(const std::string& path);

}  // namespace cb

#endif  // CLUSTER_BALANCE_SHARED_CLUSTER_CONFIG_H_
