#include "sidecar/cache/ownership.h"

#include <string>

#include "shared/rendezvous.h"

namespace cb::cache {
namespace {

bool IsTriadIndex(int index) { return index >= 0 && index < 3; }

}  // namespace

Ownership::Ownership(int self_index, bool triad, int voters)
    : self_index_(self_index), triad_(triad), voters_(voters < 1 ? 1 : voters) {}

void Ownership::PeerConnected(int index) {
  // The pull from a triad peer starts with its first heartbeat, which says
  // whether it is ready (whether its data can make this server ready).
  connected_.Add(index);
}

bool Ownership::PeerLost(int index) {
  connected_.Remove(index);
  peers_ready_.Remove(index);
  if (index >= 0 && index < kMaxServers) peer_triad_links(index) = 0;
  pulled_.Remove(index);
  synced_.Remove(index);
  syncing_.Remove(index);
  if (IsTriadIndex(index)) peer_ready_seen(index) = 0;
  const bool was_counting = counting_pulls_.Contains(index);
  counting_pulls_.Remove(index);
  // A pull cut short proves nothing.
  return triad_ && !ready_ && was_counting && counting_pulls_.empty();
}

Ownership::Pull Ownership::OnHeartbeat(int index, const protocol::Heartbeat& heartbeat,
                                       bool pulling) {
  if (index < 0 || index >= kMaxServers || index == self_index_) return {};
  // A spoke's links decide whether it votes for this server (Votes).
  peer_triad_links(index) = heartbeat.triad_links;
  if (!IsTriadIndex(index)) return {};
  const bool ready = heartbeat.store_ready;
  const bool was_ready = peers_ready_.Contains(index);
  if (ready) {
    peers_ready_.Add(index);
  } else {
    peers_ready_.Remove(index);
  }
  peer_ready_seen(index) = heartbeat.ready_seen;
  if (triad_ && !pulled_.Contains(index)) {
    pulled_.Add(index);
    // A ready peer may hold what this server never saw (it was cut off from the
    // peer, or down): this server owns keys beside it only once it has pulled.
    if (ready) syncing_.Add(index);
    return Pull{true, ready && !ready_};
  }
  if (triad_ && ready && !was_ready) {
    // Turned ready while connected: it may have pulled records from a server
    // this one has not synced with (one this one cannot reach), and those must
    // be here before this one owns keys. If it caught up only from servers this
    // one has synced with, and this one's pull of what it held when it connected
    // (records it may have taken while cut off) is over, it has nothing this one
    // lacks: the pull started now, for convergence, need not hold up ownership.
    ServerSet covered = synced_;
    covered.Add(self_index_);
    if (ServerSet::FromBits(heartbeat.caught_up_from).Without(covered).empty() && !pulling) {
      synced_.Add(index);
    } else {
      syncing_.Add(index);
    }
    return Pull{true, !ready_};
  }
  return {};
}

void Ownership::CountPull(int peer) { counting_pulls_.Add(peer); }

bool Ownership::PullFinished(int peer) {
  if (syncing_.Contains(peer)) {
    syncing_.Remove(peer);
    synced_.Add(peer);
  }
  if (!counting_pulls_.Contains(peer)) return false;
  counting_pulls_.Remove(peer);
  caught_up_from_.Add(peer);
  return counting_pulls_.empty();
}

bool Ownership::BecomeReady() {
  if (ready_) return false;
  ready_ = true;
  return true;
}

bool Ownership::Votes(int peer) const {
  if (peer >= voters_ || peer == self_index_ || !connected_.Contains(peer)) return false;
  if (IsTriadIndex(peer)) return true;
  // A spoke's vote that names a triad server this one does not reach is for
  // another side (or, stale, for the side before a loss: it counts again once
  // the spoke has said whom it votes for now). One that has not yet said it
  // votes for this server counts for nothing either.
  const ServerSet vote = ServerSet::FromBits(peer_triad_links(peer));
  return triad_ && vote.Contains(self_index_) &&
         vote.Without(ServerSet::FromBits(triad_links())).empty();
}

int Ownership::voters_reached() const {
  int reached = self_index_ >= 0 && self_index_ < voters_ ? 1 : 0;
  connected_.ForEach([&](int peer) {
    if (Votes(peer)) ++reached;
  });
  return reached;
}

bool Ownership::IsQuorum(int reached, bool with_index_zero) const {
  if (2 * reached != voters_) return 2 * reached > voters_;
  // A tie: two sides of equal size cannot both hold index 0.
  return with_index_zero;
}

bool Ownership::quorum() const {
  if (!triad_) return true;
  return IsQuorum(voters_reached(), self_index_ == 0 || connected_.Contains(0));
}

void Ownership::Heard(int index) {
  if (index < 0 || index >= kMaxServers) return;
  heard_at_[static_cast<std::size_t>(index)] = ++events_;
}

bool Ownership::QuorumHeardSince(uint64_t mark) const {
  if (!triad_) return true;
  int reached = self_index_ < voters_ ? 1 : 0;
  bool with_index_zero = self_index_ == 0;
  connected_.ForEach([&](int peer) {
    if (!Votes(peer)) return;
    if (heard_at_[static_cast<std::size_t>(peer)] <= mark) return;
    ++reached;
    if (peer == 0) with_index_zero = true;
  });
  return IsQuorum(reached, with_index_zero);
}

bool Ownership::synced() const {
  if (!triad_ || !ready_ || !quorum()) return false;
  return ReadyPeers().Without(synced_).empty();
}

ServerSet Ownership::SyncedPeers() const {
  // A peer's own bit in the ready_seen it sends is its synced().
  ServerSet peers;
  ReadyPeers().ForEach([&](int peer) {
    if (ServerSet::FromBits(peer_ready_seen(peer)).Contains(peer)) peers.Add(peer);
  });
  return peers;
}

uint64_t Ownership::triad_links() const {
  ServerSet links = TriadPeers();
  if (triad_) links.Add(self_index_);
  return links.bits();
}

uint64_t Ownership::QuorumVote() const {
  if (triad_) return triad_links();
  ServerSet best;
  TriadPeers().ForEach([&](int server) {
    // The group of `server`: itself and each triad server reached here that it
    // names and that names it.
    ServerSet group;
    group.Add(server);
    const ServerSet theirs = ServerSet::FromBits(peer_triad_links(server));
    TriadPeers().ForEach([&](int other) {
      if (theirs.Contains(other) && ServerSet::FromBits(peer_triad_links(other)).Contains(server)) {
        group.Add(other);
      }
    });
    // Visited by increasing index: at equal size the first group found stays.
    if (group.size() > best.size()) best = group;
  });
  return best.bits();
}

uint64_t Ownership::ready_seen() const {
  // The ready triad servers this one is connected to (itself included): the
  // ones that may own keys.
  ServerSet owners = SyncedPeers();
  if (synced()) owners.Add(self_index_);
  ServerSet seen;
  SyncedPeers().ForEach([&](int peer) {
    const ServerSet theirs = ServerSet::FromBits(peer_triad_links(peer));
    // A peer not yet connected to one of those would be taken for down there, and
    // that server would go on owning the peer's keys.
    if (owners.Without(theirs).Without(ServerSet::FromBits(uint64_t{1} << peer)).empty()) {
      seen.Add(peer);
    }
  });
  if (synced()) seen.Add(self_index_);
  return seen.bits();
}

bool Ownership::owning() const {
  if (!synced()) return false;
  bool acknowledged = true;
  TriadPeers().ForEach([&](int peer) {
    if (peer == self_index_) return;
    if (!ServerSet::FromBits(peer_ready_seen(peer)).Contains(self_index_)) acknowledged = false;
  });
  return acknowledged;
}

int Ownership::OwnerOf(std::string_view cache, std::string_view key) const {
  // Rendezvous over cache, NUL, key.
  std::string joined(cache);
  joined += '\0';
  joined += key;
  // A triad server the others do not count yet (or cannot all reach: one side of
  // an asymmetric cut) leaves its keys to the servers they do count.
  ServerSet owners = ReadyTriad();
  if (triad_ && !owning()) owners.Remove(self_index_);
  return OwnerAmongLiveTriad(joined, owners);
}

void Ownership::Stamp(protocol::Heartbeat& heartbeat) const {
  heartbeat.store_ready = ready_;
  heartbeat.ready_seen = ready_seen();
  heartbeat.triad_links = QuorumVote();
  heartbeat.caught_up_from = caught_up_from_.bits();
}

}  // namespace cb::cache
