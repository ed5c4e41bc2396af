// The store as the cluster sees it (DESIGN.md "Sessions and caches"): what a
// memcached request on any server does, and how the triad keeps every record
// three times.
//
// Ownership. The owner of (cache, key) is the rendezvous choice
// (shared/rendezvous.h) among the READY triad servers (ready_seen()): this one
// when its store has caught up and synced (below), and each connected triad peer
// that has, and is connected to every triad server this one sees. Views of who is ready differ for
// a moment (heartbeats carry them), so a server executes a request only if it is the owner in its
// own view AND every connected triad peer counts it (heartbeat's ready_seen); otherwise
// the sender asks again a little later, for up to the heartbeat timeout. Two triad servers that see
// each other therefore never both act as owner of one key: a server joins the owners only after the
// others count it, and rendezvous over sets that differ only in servers that do
// not own yet picks the same owner for every other key. Every key-level request goes to the
// owner, which reads its record, executes the command (memcache/commands.h),
// stamps a version from its hybrid logical clock, stores it, and sends it to every
// other connected triad server; the client gets its answer only once each of them
// has acknowledged the record as synced to disk. A triad server that dies while
// the owner waits is dropped from the wait: it is no longer live, and it catches
// up when it returns. So every acknowledged write is on every live triad server,
// two of them can die without losing it, and when the owner dies the next in
// rendezvous order, which has the record, takes over at once. No locks and no
// coordinator: the owner serializes the writes of its keys, and every replica keeps
// the highest version (store/record_store.h).
//
// Catch-up. A triad server starts not ready. From every triad peer it connects
// to, it pulls what it lacks, and it is ready once a pull from every connected
// peer that was itself ready has finished (a peer that is catching up too has
// nothing to vouch for): per cache, the peer's 256 bucket digests, then the
// records of each bucket whose digest differs from its own (anti-entropy by
// digests: a server that missed a few writes transfers a few buckets, not the
// store). With no ready peer within the heartbeat timeout plus the reconnect cap
// (a live peer would have dialed it and said so by then: the others are down, or
// restarting too) it becomes ready with what it has. Both sides of each triad
// connection pull, so a wiped server is rebuilt and a server that was cut off
// brings back what it took meanwhile.
//
// Ready is not yet owning. A ready server is SYNCED, and so may own keys, once it
// has also pulled from every connected ready triad peer since that peer connected
// (or turned ready): a server that was cut off, or became ready alone while a
// peer it could not reach held newer records, must not answer for keys before it
// has those records. Its own bit in the ready_seen it sends says it is synced;
// peers count only synced servers as owners, and own its keys meanwhile (when
// two ready servers meet again with the third down, neither owns any key until
// both pulls are over: requests wait, for up to the heartbeat timeout).
//
// Owner loss is not the client's problem. A request whose owner is lost before
// it answers (its connection closed), or cannot be sent to it, is asked again of
// the new owner until config.retry_timeout after it arrived; so is one that
// meets no owner yet. Reads simply run again. Every write the client sent
// carries a request id, the same on each try: the owner that applies it, and
// every replica the record reaches, remember the id with the answer
// (applied_requests.h), and an owner asked again answers as it did the first
// time (after making sure every live triad server has the record) instead of
// applying it twice. So set, add, replace, cas, delete, touch, incr, decr,
// append and prepend take effect once, retried or not. What still answers
// SERVER_ERROR: no owner within the retry timeout (the whole triad down, or an
// owner that hangs without closing its connections until the heartbeat timeout
// marks it down, when that is longer), and a write no triad server could store.
//
// Spokes keep no store: every read asks the owner. They keep recently read
// records in a bounded LRU and send the version they hold with a get; the owner
// answers "unchanged" instead of the bytes. This is validation, not
// invalidation, on purpose: a spoke that was cut off, or whose sessions were
// served elsewhere meanwhile, can never answer from a stale copy, because no
// answer comes from the copy without the owner's word on its version.
//
// Thread-safety: none; everything runs on the sidecar's io_context thread.
#ifndef CLUSTER_BALANCE_SIDECAR_CACHE_CACHE_NODE_H_
#define CLUSTER_BALANCE_SIDECAR_CACHE_CACHE_NODE_H_

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>  // before Asio: Boost 1.74 under g++ 12 needs it
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
#include "sidecar/memcache/commands.h"
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
  std::vector<std::shared_ptr<boost::asio::steady_timer>> delayed_flushes_;
};

}  // namespace cb::cache

#endif  // CLUSTER_BALANCE_SIDECAR_CACHE_CACHE_NODE_H_
