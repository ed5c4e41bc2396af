// The store as the cluster sees it (doc/store.md): what a memcached request on
// any server does. CacheNode coordinates the parts: it sends each key-level
// command to the key's owner among the ready triad servers (ownership.h), or
// runs it itself when it is the owner (key_owner.h), and asks again while
// ownership settles or after the owner was lost, until config.retry_timeout
// after the request arrived; a multi-key get gathers one such command per key.
// It answers version, verbosity and stats (memcache/info_replies.h), hands the
// store messages of its peers to replication.h and catch_up.h, decides which
// pulls to start and when the store is ready, sweeps expired records, and on a
// spoke validates its copies with the owner (spoke_cache.h).
//
// A write is answered once every live triad server has stored it; a request
// that meets no owner within the retry timeout, or a write no triad server
// could store, is answered SERVER_ERROR.
//
// Thread-safety: none; everything runs on the sidecar's io_context thread.
#ifndef CLUSTER_BALANCE_SIDECAR_CACHE_CACHE_NODE_H_
#define CLUSTER_BALANCE_SIDECAR_CACHE_CACHE_NODE_H_

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "shared/cluster_config.h"
#include "shared/server_set.h"
#include "sidecar/cache/applied_requests.h"
#include "sidecar/cache/cache_stats.h"
#include "sidecar/cache/catch_up.h"
#include "sidecar/cache/key_owner.h"
#include "sidecar/cache/ownership.h"
#include "sidecar/cache/peer_link.h"
#include "sidecar/cache/replication.h"
#include "sidecar/cache/spoke_cache.h"
#include "sidecar/memcache/cache_service.h"
#include "sidecar/memcache/info_replies.h"
#include "sidecar/protocol/messages.h"
#include "sidecar/store/hybrid_clock.h"
#include "sidecar/store/record_store.h"

namespace cb::cache {

struct CacheNodeOptions {
  int self_index = 0;
  // This start's incarnation: with self_index, it makes request ids unique.
  uint64_t self_incarnation = 0;
  // Triad servers: the open store (spokes: null).
  store::RecordStore* store = nullptr;
  // Spokes: bytes of records kept to validate with the owner.
  uint64_t spoke_cache_bytes = 64 * 1024 * 1024;
  // Writes remembered by id (applied_requests.h), at most.
  std::size_t max_applied_requests = 200'000;
  // Records per anti-entropy or sweep step.
  std::size_t sweep_batch = 1000;
  // Bytes of records per page of a bucket sent to a catching-up peer (a page
  // holds at least one record, however large).
  std::size_t pull_page_bytes = 4 * 1024 * 1024;
};

class CacheNode : public memcache::CacheService {
 public:
  using Clock = std::function<int64_t()>;  // unix milliseconds

  CacheNode(boost::asio::io_context& io, const ClusterConfig& config, CacheNodeOptions options,
            PeerLink& link, Clock now);
  CacheNode(const CacheNode&) = delete;
  CacheNode& operator=(const CacheNode&) = delete;
  ~CacheNode() override;

  // Starts the timers (readiness when alone, sweeping). Stop() answers every
  // pending request with an error and cancels them; nothing is called after it.
  void Start();
  void Stop();

  void Handle(memcache::Request request, Done done) override;

  // From the daemon: a peer's connection was authenticated / closed; a peer said
  // in its heartbeat whether its store is ready; a store message arrived.
  void OnPeerUp(int index);
  void OnPeerDown(int index);
  void OnPeerStoreState(int index, const protocol::Heartbeat& heartbeat);
  // Fills in the store's part of a heartbeat this server sends.
  void StampHeartbeat(protocol::Heartbeat& heartbeat) const;
  void OnPeerMessage(int index, const protocol::Message& message);

  bool is_triad() const { return options_.store != nullptr; }
  // Caught up (or alone when the triad was down): what it holds may make other
  // triad servers ready.
  bool store_ready() const { return ownership_.ready(); }
  // Ready, and has pulled from every connected ready triad peer since it
  // connected (or that peer turned ready having caught up only from servers this
  // one has synced with): it may own keys (its own bit in ready_seen()).
  bool synced() const { return ownership_.synced(); }
  // The triad servers this one counts as owners (for the heartbeat): itself when
  // synced, and every connected triad peer that said it is synced and is
  // connected to every triad server this one is connected to.
  uint64_t ready_seen() const { return ownership_.ready_seen(); }
  // The triad servers this one is connected to, itself included (heartbeat).
  uint64_t triad_links() const { return ownership_.triad_links(); }
  // Reaches more than half of the cluster file's servers (always true on a
  // spoke): a triad server without it owns no key (ownership.h "Quorum").
  bool quorum() const { return ownership_.quorum(); }
  int voters_reached() const { return ownership_.voters_reached(); }
  // Synced, and every connected triad peer has seen it: it may act as owner.
  bool owning() const { return ownership_.owning(); }
  // The triad servers that may own keys now.
  ServerSet ReadyTriad() const { return ownership_.ReadyTriad(); }
  CacheNodeStats stats() const;
  // Writes forgotten before their time (applied_requests.h): a retry of one of
  // those would have been applied twice.
  uint64_t applied_forgotten_early() const { return applied_.forgotten_early(); }
  // How long the oldest write still waiting for a replica has waited (0: none):
  // the replication lag.
  int64_t OldestReplicationMs() const { return replicator_.OldestWaitMs(); }

 private:
  using OpDone = std::function<void(const protocol::CacheOpReply&)>;
  struct Forwarded {
    int owner = -1;
    OpDone done;
  };

  // One key-level operation wherever its owner is; asked again until `deadline`
  // (0: the retry timeout from now) while ownership is settling or after the
  // owner was lost.
  void Run(protocol::CacheOp op, OpDone done, int64_t deadline = 0);
  // Why a request found no owner before its deadline (the error's text).
  std::string NoOwnerReason() const;
  // Acts on losing or regaining the quorum (ownership.h) across an event: a
  // loss that lasts a heartbeat timeout is logged and fails the writes waiting
  // for the quorum; regaining it after that is logged.
  void NoteQuorumChange(bool had_quorum);
  void RetryLater(protocol::CacheOp op, OpDone done, int64_t deadline);
  void Flush(const std::string& cache, Done done);
  void ArmAloneTimer();
  // What memcached's "stats" reports.
  memcache::ServerStats ServerStats() const;

  // Catch-up.
  // `counts`: the peer is ready, so finishing this pull makes this server ready.
  // Returns whether readiness now waits for this pull.
  bool StartPull(int peer, bool counts);
  void BecomeReady(const char* why);
  // Every request of the pull from `peer` has been answered.
  void OnPullFinished(int peer);
  // One per store message (protocol::StoreMessage).
  void Receive(int peer, const protocol::CacheOp& op);
  void Receive(int peer, const protocol::CacheOpReply& reply);
  void Receive(int peer, const protocol::Replicate& replicate);
  void Receive(int peer, const protocol::ReplicateAck& ack);
  void Receive(int peer, const protocol::DigestRequest& request);
  void Receive(int peer, const protocol::DigestReply& reply);
  void Receive(int peer, const protocol::BucketRequest& request);
  void Receive(int peer, const protocol::BucketRecords& records);
  void OnSweepTimer();

  struct PendingRetry {
    protocol::CacheOp op;
    OpDone done;
    int64_t deadline = 0;
    std::shared_ptr<boost::asio::steady_timer> timer;
  };

  boost::asio::io_context& io_;
  const ClusterConfig& config_;
  CacheNodeOptions options_;
  PeerLink& link_;
  Clock now_;
  store::HybridClock clock_;
  CacheNodeStats stats_;
  bool stopped_ = false;
  uint64_t started_unix_ms_ = 0;
  Ownership ownership_;
  AppliedRequests applied_;
  Replicator replicator_;
  CatchUp catch_up_;
  KeyOwner key_owner_;
  SpokeCache spoke_cache_;
  std::map<uint64_t, PendingRetry> retries_;
  uint64_t next_id_ = 1;
  uint64_t next_request_ = 1;  // the sequence of the next RequestId
  std::map<uint64_t, Forwarded> forwarded_;
  boost::asio::steady_timer alone_timer_;
  boost::asio::steady_timer sweep_timer_;
  // Judges a loss of the quorum once the spokes' word has had time to catch up
  // (NoteQuorumChange); quorum_lost_ from then until the quorum is back.
  boost::asio::steady_timer quorum_timer_;
  bool quorum_lost_ = false;
  std::vector<std::shared_ptr<boost::asio::steady_timer>> delayed_flushes_;
};

}  // namespace cb::cache

#endif  // CLUSTER_BALANCE_SIDECAR_CACHE_CACHE_NODE_H_
