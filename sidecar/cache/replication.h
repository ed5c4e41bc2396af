// Replication among the triad (doc/store.md "Ownership"): the owner of a key
// sends each record it stores to every other connected triad server, which
// applies it (the highest version wins) and acknowledges it once synced to
// disk; a write is done once each of them has acknowledged it or gone. A flush
// travels the same way, as a tombstone version over every older record of its
// cache, and is remembered (FlushMarkers) so that a write older than it that
// arrives later becomes what the flush would have made of it.
//
// Thread-safety: none; the sidecar's io_context thread only.
#ifndef CLUSTER_BALANCE_SIDECAR_CACHE_REPLICATION_H_
#define CLUSTER_BALANCE_SIDECAR_CACHE_REPLICATION_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "shared/cluster_config.h"
#include "shared/server_set.h"
#include "sidecar/cache/applied_requests.h"
#include "sidecar/cache/cache_stats.h"
#include "sidecar/cache/ownership.h"
#include "sidecar/cache/peer_link.h"
#include "sidecar/protocol/messages.h"
#include "sidecar/store/hybrid_clock.h"
#include "sidecar/store/record.h"
#include "sidecar/store/record_store.h"

namespace cb::cache {

// The latest flush of each cache seen by this server. In memory only: after a
// restart, catch-up settles a write that crossed a flush by version.
class FlushMarkers {
 public:
  // A flush of `cache` at `version` (an older one than the latest changes nothing).
  void Note(const std::string& cache, const store::Version& version);
  // A record of `cache` older than its latest flush becomes that flush's
  // tombstone, the same on every replica; any other record stays as it is.
  void Settle(const std::string& cache, store::Record& record) const;

 private:
  std::map<std::string, store::Version, std::less<>> flushed_at_;
};

class Replicator {
 public:
  // ok: every triad server that acknowledged said it stored the record.
  using Done = std::function<void(bool ok)>;

  // `store` is this triad server's (null on a spoke, which only acknowledges
  // that it stored nothing). The references must outlive the Replicator.
  Replicator(const ClusterConfig& config, int self_index, store::RecordStore* store,
             Ownership& ownership, PeerLink& link, store::HybridClock& clock,
             AppliedRequests& applied, std::function<int64_t()> now, CacheNodeStats& stats);
  Replicator(const Replicator&) = delete;
  Replicator& operator=(const Replicator&) = delete;

  // Sends a record stored here to every other connected triad server, and calls
  // `done` once each has acknowledged it or gone (at once when there is none).
  // `request` and `reply`: the client's write that made the record, if any,
  // which the replicas remember (applied_requests.h).
  void Replicate(const std::string& cache, const std::string& key, const store::Record& record,
                 Done done, const protocol::RequestId& request = {}, const std::string& reply = {});
  // Flushes `cache` here at a new version, then on every other connected triad
  // server as Replicate does; done(false) at once when this store fails.
  void Flush(const std::string& cache, Done done);

  // A peer's Replicate: applied, synced, acknowledged.
  void Receive(int peer, const protocol::Replicate& replicate);
  void Receive(int peer, const protocol::ReplicateAck& ack);
  // No write waits for `peer` any more: it is no longer live, and it catches up
  // when it returns. A write that waited only for it is done once this server
  // has heard a quorum after the loss (ownership.h QuorumHeardSince): a lost
  // replica may be the first sign that this server is the one cut off, and a
  // write it alone holds must then not be acknowledged. Call it after
  // Ownership::PeerLost.
  void PeerLost(int peer);
  // After a heartbeat (Ownership::Heard): completes the writes whose quorum is
  // now confirmed.
  void ConfirmQuorum();
  // This server's loss of its quorum is settled (CacheNode waits a heartbeat
  // timeout): every write waiting for its confirmation fails. A write whose
  // last replica answers while the quorum is lost waits for it the same way.
  void QuorumLost();
  // Calls every waiting `done` with false (the node stops).
  void FailAll();

  // How long the oldest write still waiting for a replica has waited (0: none).
  int64_t OldestWaitMs() const;
  const FlushMarkers& flush_markers() const { return flush_markers_; }

 private:
  struct Waiting {
    ServerSet replicas;
    int64_t started_unix_ms = 0;
    bool ok = true;  // false once a replica said it could not store the record
    Done done;
    uint64_t lost_mark = 0;  // confirming_: when its last replica was lost
  };

  void Send(const std::string& cache, const std::string& key, const store::Record& record,
            bool flush, Done done, const protocol::RequestId& request, const std::string& reply);

  // A write whose replicas are gone, or may all be on this server's side of a
  // cut: done once a quorum is heard after now (ConfirmQuorum), failed by
  // QuorumLost.
  void AwaitQuorum(Waiting write);
  // Finishes a write: counted as replicated, `done` called with `ok`.
  void Finish(Waiting& write, bool ok);

  const ClusterConfig& config_;
  const int self_index_;
  store::RecordStore* const store_;
  Ownership& ownership_;
  PeerLink& link_;
  store::HybridClock& clock_;
  AppliedRequests& applied_;
  const std::function<int64_t()> now_;
  CacheNodeStats& stats_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, Waiting> waiting_;
  std::vector<Waiting> confirming_;  // all replicas lost; waiting for the quorum
  FlushMarkers flush_markers_;
};

}  // namespace cb::cache

#endif  // CLUSTER_BALANCE_SIDECAR_CACHE_REPLICATION_H_
