// The store's counters since the start, for /metrics and memcached's "stats".
// The parts of CacheNode count in one CacheNodeStats.
#ifndef CLUSTER_BALANCE_SIDECAR_CACHE_CACHE_STATS_H_
#define CLUSTER_BALANCE_SIDECAR_CACHE_CACHE_STATS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace cb::cache {

struct CacheCounters {
  uint64_t hits = 0, misses = 0;  // gets answered by this server as the owner
};

struct CacheNodeStats {
  uint64_t gets = 0, hits = 0, misses = 0, writes = 0;
  uint64_t forwarded = 0;       // requests sent to an owner
  uint64_t replicated = 0;      // writes acknowledged by every live triad server
  uint64_t writes_waiting = 0;  // writes waiting for replicas now
  uint64_t failed = 0;          // requests answered with SERVER_ERROR
  uint64_t retried = 0;         // requests asked again after their owner was lost
  uint64_t answered_again = 0;  // retried writes this owner had applied already
  uint64_t buckets_pulled = 0;  // anti-entropy
  uint64_t records_pulled = 0;
  uint64_t spoke_cache_bytes = 0;
  uint64_t spoke_cache_validated = 0;  // gets answered "unchanged" by the owner
  std::map<std::string, CacheCounters, std::less<>> per_cache;
};

}  // namespace cb::cache

#endif  // CLUSTER_BALANCE_SIDECAR_CACHE_CACHE_STATS_H_
