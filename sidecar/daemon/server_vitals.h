// What a sidecar measures and hears about each server beyond the view, for the
// admin page and /metrics (issue 14): the heartbeat round trip to each peer,
// the live session count of each server as the triad reports it, and since
// when each server has been in its state.
//
// Round trip: every heartbeat carries the sender's steady clock, and echoes the
// latest reading it received from the recipient with how long it held it
// (protocol::Heartbeat), so each side computes the round trip on its own clock;
// no clocks need to agree. Known only for peers this sidecar is connected to.
//
// Sessions: a triad server whose store has caught up counts them itself
// (RecordStore::LiveKeysByFirstByte); every other server takes the counts of one
// ready triad server, the lowest it hears, from its latest heartbeat, and has
// none until one arrives or while that server is lost or not ready (then the
// next one that speaks takes over).
//
// Pure: the caller passes the time. Thread-safety: not thread-safe; the
// Sidecar's io thread is its only user.
#ifndef CLUSTER_BALANCE_SIDECAR_DAEMON_SERVER_VITALS_H_
#define CLUSTER_BALANCE_SIDECAR_DAEMON_SERVER_VITALS_H_

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "shared/cluster_view.h"
#include "sidecar/protocol/messages.h"

namespace cb::daemon {

class ServerVitals {
 public:
  ServerVitals() = default;
  ServerVitals(const ServerVitals&) = delete;
  ServerVitals& operator=(const ServerVitals&) = delete;

  // A heartbeat from the peer at `index`, received at `now_steady_us`.
  // `from_ready_triad`: the sender is a triad server whose store has caught up,
  // so its session counts are taken.
  void OnHeartbeat(int index, const protocol::Heartbeat& heartbeat, uint64_t now_steady_us,
                   bool from_ready_triad);
  // Fills the echo fields of a heartbeat about to go to `index`, sent at
  // `now_steady_us` (which it also stamps as sent_steady_us).
  void StampEcho(int index, protocol::Heartbeat& heartbeat, uint64_t now_steady_us) const;
  // The connection to `index` closed: its round trip is unknown again.
  void OnPeerDown(int index);
  // The counts this triad server sends in its heartbeats: its own, or nullopt.
  const std::optional<std::vector<uint64_t>>& own_session_counts() const { return own_sessions_; }

  // The latest round trip to `index` in milliseconds (fractions of one).
  std::optional<double> RoundTripMs(int index) const;

  // This triad server's own counts, by index (replaces any heard ones), or
  // nothing when its store has not caught up (the heard ones apply again).
  void SetOwnSessionCounts(std::optional<std::vector<uint64_t>> counts);
  // The live sessions routed to `index`; nullopt while no count is known.
  std::optional<uint64_t> Sessions(int index) const;

  // Notes each server's state in `view` at `now_unix_ms`: a change starts a
  // new "since". A server first seen starts at now.
  void ObserveStates(const ClusterView& view, int64_t now_unix_ms);
  // Since when `index` is in its present state; 0 when never observed.
  int64_t StateSinceUnixMs(int index) const;

 private:
  struct Peer {
    uint64_t last_sent_steady_us = 0;  // the peer's clock, from its latest heartbeat
    uint64_t received_steady_us = 0;   // our clock, when that heartbeat came
    std::optional<double> round_trip_ms;
    ServerState state = ServerState::kAbsent;
    int64_t state_since_unix_ms = 0;
  };
  std::array<Peer, kMaxServers> peers_{};
  void ForgetHeardSessions();

  std::optional<std::vector<uint64_t>> own_sessions_;
  int sessions_source_ = -1;  // the triad server whose counts are heard; -1 none
  std::vector<uint64_t> heard_sessions_;
  bool heard_any_sessions_ = false;
};

}  // namespace cb::daemon

#endif  // CLUSTER_BALANCE_SIDECAR_DAEMON_SERVER_VITALS_H_
