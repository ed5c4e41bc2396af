// Which triad servers may own keys, as this server sees it (doc/store.md
// "Ownership" and "Ready is not yet owning"): set logic over what the
// connections and the triad peers' heartbeats say, and over the pulls of
// catch-up. Pure: no I/O and no timers; CacheNode feeds it the events and acts
// on what it answers.
//
// A triad server is READY once a pull from every connected peer that was
// ready has finished (or when it carries on alone); it is SYNCED once it is
// ready and has also pulled from every connected ready peer since that peer
// connected (or turned ready); it is OWNING, and executes requests for its
// keys, once it is synced and every connected triad peer counts it (the
// ready_seen of their heartbeats).
//
// Quorum (README "Partitions"): a triad server owns keys only while it reaches
// more than half of the cluster file's servers, itself included (at exactly
// half, only the side holding index 0). So of two sides of a partition at
// most one serves the store, and a triad server cut off from the others
// answers errors instead of what it alone holds. A triad peer counts while
// connected. A spoke casts one vote, for a group of triad servers that reach
// each other (QuorumVote: the largest group among those it reaches, as their
// heartbeats say), and a triad server counts it only while its last heartbeat's
// vote names this server and no triad server this one does not reach: a spoke
// that reaches both sides of a cut between triad servers counts for one side
// only. Dynamic servers do not count: their number is not something both sides
// agree on.
//
// Thread-safety: none; the sidecar's io_context thread only.
#ifndef CLUSTER_BALANCE_SIDECAR_CACHE_OWNERSHIP_H_
#define CLUSTER_BALANCE_SIDECAR_CACHE_OWNERSHIP_H_

#include <array>
#include <cstdint>
#include <string_view>

#include "shared/server_set.h"
#include "sidecar/protocol/messages.h"

namespace cb::cache {

class Ownership {
 public:
  // `triad`: this server holds a store (self_index is 0, 1 or 2). `voters`: the
  // number of servers in the cluster file (indices 0 .. voters-1), at least 1.
  Ownership(int self_index, bool triad, int voters);
  Ownership(const Ownership&) = delete;
  Ownership& operator=(const Ownership&) = delete;

  // --- Events.

  // A peer's connection was authenticated.
  void PeerConnected(int index);
  // A peer's connection closed: what it said, and what was pulled from it, no
  // longer counts. Returns true when this server, not ready, was waiting for
  // that pull and for no other: its catch-up must start over.
  bool PeerLost(int index);

  // What a triad peer's heartbeat says about its store, `pulling` telling
  // whether a pull from it is under way. Returns whether to pull from it now,
  // and whether readiness waits for that pull (then call CountPull once it went
  // out). Heartbeats of this server itself or of a spoke are ignored.
  struct Pull {
    bool start = false;
    bool counts = false;
  };
  Pull OnHeartbeat(int index, const protocol::Heartbeat& heartbeat, bool pulling);
  // Readiness waits for the pull from `peer` that just went out.
  void CountPull(int peer);
  // Every request of the pull from `peer` was answered. Returns true when it was
  // the last pull readiness waited for: the caller makes this server ready.
  bool PullFinished(int peer);
  // Ready with what it holds; false when it was ready already.
  bool BecomeReady();

  // --- What follows.

  bool ready() const { return ready_; }
  // Reaches more than half of the cluster file's servers (see Quorum above);
  // always true on a spoke, which owns nothing.
  bool quorum() const;
  // The cluster file's servers that count toward the quorum: itself, the
  // connected triad peers, and the connected spokes that vote for it.
  int voters_reached() const;
  int voters() const { return voters_; }
  // Ready, in quorum, and pulled from every connected ready triad peer.
  bool synced() const;

  // Freshness of the quorum, for a write whose replicas were all lost: were
  // they lost to a failure (this server still reaches a majority) or to a
  // partition this server is on the wrong side of (its other links go silent
  // too, a little later)? Heard(index) records a heartbeat of any peer;
  // Mark() returns the moment now; QuorumHeardSince(mark) is true once the
  // servers heard after `mark`, with this one, make a quorum.
  void Heard(int index);
  uint64_t Mark() { return ++events_; }
  bool QuorumHeardSince(uint64_t mark) const;
  // The triad servers this one counts as owners (heartbeat's ready_seen):
  // itself when synced, and each connected peer that said it is synced and is
  // connected to every triad server this one counts.
  uint64_t ready_seen() const;
  // The triad servers this one is connected to, itself included when it is one.
  uint64_t triad_links() const;
  // On a spoke, the triad servers it votes for (see Quorum): of the triad
  // servers it is connected to, the largest group that reach each other (each
  // names the other in the triad_links of its last heartbeat), at equal size the
  // one with the lowest index. On a triad server, triad_links().
  uint64_t QuorumVote() const;
  // Synced, and every connected triad peer counts it.
  bool owning() const;
  // The triad servers that may own keys now (ready_seen()).
  ServerSet ReadyTriad() const { return ServerSet::FromBits(ready_seen()); }
  // The owner of (cache, key) among ReadyTriad() (shared/rendezvous.h), this
  // server left out while it is not owning(); -1 when there is none.
  int OwnerOf(std::string_view cache, std::string_view key) const;
  // Every connected peer, spokes included.
  ServerSet connected() const { return connected_; }
  // The connected triad peers.
  ServerSet TriadPeers() const { return connected_ & ServerSet::Triad(); }
  // The connected triad peers whose heartbeat said they are ready.
  ServerSet ReadyPeers() const { return peers_ready_ & TriadPeers(); }
  // Readiness waits for pulls under way.
  bool awaiting_pulls() const { return !counting_pulls_.empty(); }
  // Fills in the store's part of a heartbeat this server sends (triad_links:
  // QuorumVote()).
  void Stamp(protocol::Heartbeat& heartbeat) const;

 private:
  // The connected ready triad peers that said they are synced.
  ServerSet SyncedPeers() const;
  // Whether `reached` servers of the cluster file (this one included, and index
  // 0 among them or not) are a quorum.
  bool IsQuorum(int reached, bool with_index_zero) const;
  // Whether connected `peer` counts toward this server's quorum (see Quorum).
  bool Votes(int peer) const;
  // The last heartbeat's word of a triad peer (index 0..2), and of any peer the
  // triad servers it reaches.
  uint64_t& peer_ready_seen(int index) { return peer_ready_seen_[static_cast<std::size_t>(index)]; }
  uint64_t& peer_triad_links(int index) {
    return peer_triad_links_[static_cast<std::size_t>(index)];
  }
  uint64_t peer_ready_seen(int index) const {
    return peer_ready_seen_[static_cast<std::size_t>(index)];
  }
  uint64_t peer_triad_links(int index) const {
    return peer_triad_links_[static_cast<std::size_t>(index)];
  }

  const int self_index_;
  const bool triad_;
  const int voters_;
  bool ready_ = false;
  ServerSet connected_;
  ServerSet peers_ready_;
  std::array<uint64_t, 3> peer_ready_seen_{};
  std::array<uint64_t, kMaxServers> peer_triad_links_{};
  ServerSet pulled_;          // triad peers pulled from since they connected
  ServerSet syncing_;         // ready triad peers whose pull is under way
  ServerSet synced_;          // ready triad peers pulled from since they connected
  ServerSet caught_up_from_;  // the ready peers whose pulls made this server ready
  ServerSet counting_pulls_;  // pulls under way from peers that were ready
  uint64_t events_ = 0;       // Mark() and Heard() tick it
  std::array<uint64_t, kMaxServers> heard_at_{};  // events_ at each peer's last heartbeat
};

}  // namespace cb::cache

#endif  // CLUSTER_BALANCE_SIDECAR_CACHE_OWNERSHIP_H_
