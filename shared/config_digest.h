// Digest of a cluster file's meaning, for the consistency check peers make when
// they connect: two sidecars whose files differ refuse each other and say which
// part differs, instead of running a confused cluster.
//
// Each section is hashed separately (XXH3-128 over a canonical rendering of the
// parsed model), so comments, white space, key order inside a table and the
// spelling of equal values ("60s" and "1m") do not change the digest, while any
// change of meaning does. `server_set` hashes the servers sorted by id, so that a
// reordered server list is told apart from a changed one. Pure; thread-safe.
#ifndef CLUSTER_BALANCE_SHARED_CONFIG_DIGEST_H_
#define CLUSTER_BALANCE_SHARED_CONFIG_DIGEST_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "shared/cluster_config.h"
#include "shared/status.h"

namespace cb {

struct Digest128 {
  uint64_t high = 0;
  uint64_t low = 0;

  std::string Hex() const;  // 32 lower-case hex digits
  // The inverse of Hex(): exactly 32 hex digits (either case), else InvalidArgument.
  static Result<Digest128> FromHex(std::string_view hex);
  bool operator==(const Digest128&) const = default;
};

struct ConfigDigest {
  Digest128 cluster;     // [cluster]
  Digest128 node;        // [node] defaults
  Digest128 servers;     // [[server]] in order, with their overrides
  Digest128 server_set;  // the same servers sorted by id
  Digest128 caches;      // [cache.*]
  Digest128 deploy;      // [deploy]

  // One digest over all sections.
  Digest128 Combined() const;
  bool operator==(const ConfigDigest&) const = default;
};

ConfigDigest DigestConfig(const ClusterConfig& config);

// Empty when equal; otherwise the differing parts for a log line, e.g.
// "server list order differs (same servers)" or "[cluster] differs; caches differ".
std::string DescribeConfigDifference(const ConfigDigest& local, const ConfigDigest& remote);

}  // namespace cb

#endif  // CLUSTER_BALANCE_SHARED_CONFIG_DIGEST_H_
