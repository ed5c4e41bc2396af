// Catch-up between triad servers (doc/store.md "Catch-up"): anti-entropy by
// bucket digests. A pull from a peer asks, per cache, for its kBuckets bucket
// digests, then for the records of each bucket whose digest differs from this
// store's, one page at a time, with a few buckets in flight, so neither side
// queues more than a few pages whatever the size of the store. Records that
// arrive are applied by version (the highest wins), after FlushMarkers settled
// those that a flush overtook. The same object answers a peer's pull.
//
// Which pulls to start, and what their end means, is ownership.h's and
// CacheNode's: this only moves records, and says when a pull is over.
//
// Thread-safety: none; the sidecar's io_context thread only.
#ifndef CLUSTER_BALANCE_SIDECAR_CACHE_CATCH_UP_H_
#define CLUSTER_BALANCE_SIDECAR_CACHE_CATCH_UP_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>

#include "shared/cluster_config.h"
#include "sidecar/cache/cache_stats.h"
#include "sidecar/cache/peer_link.h"
#include "sidecar/cache/replication.h"
#include "sidecar/protocol/messages.h"
#include "sidecar/store/hybrid_clock.h"
#include "sidecar/store/record_store.h"

namespace cb::cache {

class CatchUp {
 public:
  // Every request of the pull from `peer` has been answered.
  using PullFinished = std::function<void(int peer)>;

  // `store` is this triad server's (null on a spoke: it pulls nothing and
  // answers with nothing). `page_bytes`: records per page sent, at most half a
  // frame (a page holds at least one record, however large). The references
  // must outlive the CatchUp.
  CatchUp(const ClusterConfig& config, store::RecordStore* store, PeerLink& link,
          store::HybridClock& clock, const FlushMarkers& flush_markers,
          std::function<int64_t()> now, std::size_t page_bytes, CacheNodeStats& stats,
          PullFinished pull_finished);
  CatchUp(const CatchUp&) = delete;
  CatchUp& operator=(const CatchUp&) = delete;

  // Asks `peer` for the digests of every cache (a pull under way goes on, and
  // finishes once all of its requests are answered). Returns whether a request
  // went out.
  bool StartPull(int peer);
  // A pull from `peer` is under way.
  bool pulling(int peer) const { return outstanding_.contains(peer); }
  // The peer's connection closed: its pull ends unfinished (PullFinished is not
  // called).
  void PeerLost(int peer);

  // A peer's digests or pages, or its requests for this store's.
  void Receive(int peer, const protocol::DigestRequest& request);
  void Receive(int peer, const protocol::DigestReply& reply);
  void Receive(int peer, const protocol::BucketRequest& request);
  void Receive(int peer, const protocol::BucketRecords& records);

 private:
  struct BucketPulls {
    std::deque<protocol::BucketRequest> waiting;  // differing buckets not asked for yet
    int in_flight = 0;
  };

  // One request of the pull from `peer` was answered.
  void FinishStep(int peer);
  // Asks `peer` for waiting buckets while fewer than kBucketsInFlight are in flight.
  void AskForBuckets(int peer);

  const ClusterConfig& config_;
  store::RecordStore* const store_;
  PeerLink& link_;
  store::HybridClock& clock_;
  const FlushMarkers& flush_markers_;
  const std::function<int64_t()> now_;
  const std::size_t page_bytes_;
  CacheNodeStats& stats_;
  const PullFinished pull_finished_;
  std::map<int, int> outstanding_;           // triad peer -> requests not yet answered
  std::map<int, BucketPulls> bucket_pulls_;  // triad peer -> its buckets to pull
};

}  // namespace cb::cache

#endif  // CLUSTER_BALANCE_SIDECAR_CACHE_CATCH_UP_H_
