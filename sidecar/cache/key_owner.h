// A triad server running key-level commands as the keys' owner (doc/store.md
// "Ownership"): it reads the record, executes the command (memcache/commands.h),
// applies its cache's expiry policy (ttl caps, idle timeouts), stamps a version
// from the hybrid logical clock, stores the record and has every other live
// triad server store it too (replication.h). The answer goes out once this store
// and every replica are done: both sync at once, so it waits for the slowest
// disk, not for the sum of two.
//
// A write carries its request id: one this server (or a lost owner whose record
// reached it) applied already is answered as it was then, once every live triad
// server has the record, instead of being applied twice (applied_requests.h).
// A read of a record of an idle-timeout cache less than half its timeout from
// expiring writes the record again with a new expiry.
//
// Thread-safety: none; the sidecar's io_context thread only.
#ifndef CLUSTER_BALANCE_SIDECAR_CACHE_KEY_OWNER_H_
#define CLUSTER_BALANCE_SIDECAR_CACHE_KEY_OWNER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "shared/cluster_config.h"
#include "sidecar/cache/applied_requests.h"
#include "sidecar/cache/cache_stats.h"
#include "sidecar/cache/replication.h"
#include "sidecar/memcache/parser.h"
#include "sidecar/protocol/messages.h"
#include "sidecar/store/hybrid_clock.h"
#include "sidecar/store/record.h"
#include "sidecar/store/record_store.h"

namespace cb::cache {

class KeyOwner {
 public:
  using Done = std::function<void(const protocol::CacheOpReply&)>;

  // `store`: this triad server's (null on a spoke, which never owns keys). The
  // references must outlive the KeyOwner.
  KeyOwner(const ClusterConfig& config, int self_index, store::RecordStore* store,
           Replicator& replicator, store::HybridClock& clock, AppliedRequests& applied,
           std::function<int64_t()> now, CacheNodeStats& stats);
  KeyOwner(const KeyOwner&) = delete;
  KeyOwner& operator=(const KeyOwner&) = delete;

  // Runs `op` on this store and answers it through `done`, exactly once, now or
  // when the replicas have acknowledged. A flush_all op flushes its cache on
  // every live triad server; a command that is not key-level is "ERROR".
  // Precondition: this server owns op's key now (Ownership::owning, OwnerOf).
  void Run(const protocol::CacheOp& op, Done done);

  // A triad peer was lost: this server may own its keys from now on, so every
  // version it stamps from now on is above any the lost server can have stamped.
  void TriadPeerLost();

 private:
  // A retried write already applied: `reply` once every live triad server has
  // the record.
  void AnswerAgain(const protocol::CacheOp& op, const std::string& reply, Done done);
  void ApplyCachePolicy(std::string_view cache, memcache::Command command, store::Record& record,
                        int64_t now) const;
  void RefreshIdle(const std::string& cache, const std::string& key, const store::Record& record,
                   int64_t now);

  const ClusterConfig& config_;
  const int self_index_;
  store::RecordStore* const store_;
  Replicator& replicator_;
  store::HybridClock& clock_;
  AppliedRequests& applied_;
  const std::function<int64_t()> now_;
  CacheNodeStats& stats_;
};

}  // namespace cb::cache

#endif  // CLUSTER_BALANCE_SIDECAR_CACHE_KEY_OWNER_H_
