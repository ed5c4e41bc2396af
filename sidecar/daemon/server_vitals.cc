#include "sidecar/daemon/server_vitals.h"

#include <utility>

namespace cb::daemon {
namespace {

bool InRange(int index) { return index >= 0 && index < kMaxServers; }

}  // namespace

void ServerVitals::OnHeartbeat(int index, const protocol::Heartbeat& heartbeat,
                               uint64_t now_steady_us, bool from_ready_triad) {
  if (!InRange(index)) return;
  Peer& peer = peers_[static_cast<size_t>(index)];
  peer.last_sent_steady_us = heartbeat.sent_steady_us;
  peer.received_steady_us = now_steady_us;
  // An echo of our own reading: the round trip is what remains after the time
  // the peer held it. A peer of an older build, or one that has not heard from
  // us yet, sends no echo; a skewed one (held longer than the trip) is ignored.
  if (heartbeat.echo_steady_us != 0 && heartbeat.echo_steady_us <= now_steady_us) {
    const uint64_t elapsed = now_steady_us - heartbeat.echo_steady_us;
    if (heartbeat.echo_held_us <= elapsed) {
      peer.round_trip_ms = static_cast<double>(elapsed - heartbeat.echo_held_us) / 1000.0;
    }
  }
  if (!from_ready_triad || heartbeat.live_sessions.empty()) {
    if (index == sessions_source_) ForgetHeardSessions();  // it is no longer ready
    return;
  }
  // More entries than servers is a malformed heartbeat: not a count of anything.
  if (heartbeat.live_sessions.size() > static_cast<size_t>(kMaxServers)) return;
  // One source at a time, the lowest ready triad server: two servers' counts,
  // taken at different moments, would make a falling count rise now and then.
  if (sessions_source_ >= 0 && index > sessions_source_) return;
  sessions_source_ = index;
  heard_sessions_ = heartbeat.live_sessions;
  heard_any_sessions_ = true;
}

void ServerVitals::StampEcho(int index, protocol::Heartbeat& heartbeat,
                             uint64_t now_steady_us) const {
  heartbeat.sent_steady_us = now_steady_us;
  heartbeat.echo_steady_us = 0;
  heartbeat.echo_held_us = 0;
  if (!InRange(index)) return;
  const Peer& peer = peers_[static_cast<size_t>(index)];
  if (peer.last_sent_steady_us == 0 || peer.received_steady_us > now_steady_us) return;
  heartbeat.echo_steady_us = peer.last_sent_steady_us;
  heartbeat.echo_held_us = now_steady_us - peer.received_steady_us;
}

void ServerVitals::OnPeerDown(int index) {
  if (!InRange(index)) return;
  Peer& peer = peers_[static_cast<size_t>(index)];
  peer.last_sent_steady_us = 0;
  peer.received_steady_us = 0;
  peer.round_trip_ms.reset();
  if (index == sessions_source_) ForgetHeardSessions();
}

void ServerVitals::ForgetHeardSessions() {
  sessions_source_ = -1;
  heard_sessions_.clear();
  heard_any_sessions_ = false;
}

std::optional<double> ServerVitals::RoundTripMs(int index) const {
  if (!InRange(index)) return std::nullopt;
  return peers_[static_cast<size_t>(index)].round_trip_ms;
}

void ServerVitals::SetOwnSessionCounts(std::optional<std::vector<uint64_t>> counts) {
  own_sessions_ = std::move(counts);
}

std::optional<uint64_t> ServerVitals::Sessions(int index) const {
  if (!InRange(index)) return std::nullopt;
  const std::vector<uint64_t>* counts = own_sessions_ ? &*own_sessions_ : nullptr;
  if (counts == nullptr && heard_any_sessions_) counts = &heard_sessions_;
  if (counts == nullptr) return std::nullopt;
  // A shorter list from a peer means zero for the indices it leaves out.
  return static_cast<size_t>(index) < counts->size() ? (*counts)[static_cast<size_t>(index)] : 0;
}

void ServerVitals::ObserveStates(const ClusterView& view, int64_t now_unix_ms) {
  for (int index = 0; index < kMaxServers; ++index) {
    Peer& peer = peers_[static_cast<size_t>(index)];
    const ServerState state = view.state(index);
    if (state != peer.state || peer.state_since_unix_ms == 0) {
      peer.state = state;
      peer.state_since_unix_ms = now_unix_ms;
    }
  }
}

int64_t ServerVitals::StateSinceUnixMs(int index) const {
  if (!InRange(index)) return 0;
  return peers_[static_cast<size_t>(index)].state_since_unix_ms;
}

}  // namespace cb::daemon
