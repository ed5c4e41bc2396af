// What one sidecar knows of every server, and the rules that change it.
//
// Pure: no sockets and no clock. The daemon feeds it events (a peer authenticated,
// a connection closed, a heartbeat, a view update from the triad, a tick of time)
// and publishes what it says (ToView() into the view file, FullUpdate() to peers).
//
// Rules (DESIGN.md "Heartbeat", issue 3):
//  - Liveness is versioned by the server's incarnation, which grows with every start
//    of that server. A server's own sidecar is the only one that raises it.
//  - What this sidecar observes directly wins for the peers it is connected to: a
//    closed connection marks the peer down at once, silence for heartbeat_timeout
//    marks it down, an authenticated connection marks it up.
//  - A triad server trusts nothing else about liveness: every server connects to
//    each triad server, so what it does not see connected is down.
//  - A spoke takes the triad's word about the servers it is not connected to (the
//    other spokes): a record with a higher incarnation replaces ours; at equal
//    incarnation "down" replaces "up".
//  - A sidecar told that it is itself down refutes the rumour: it raises its own
//    incarnation above the rumour's, and the raised "up" wins everywhere.
//  - The operator's drain flag is versioned apart (admin_version, raised by the
//    triad on every drain/enable; at equal versions draining wins), so it survives
//    the restart of the drained server and of any one triad server.
//  - Identity (id, addresses, weight) of static servers comes from the cluster file
//    and is never taken from a peer.
//
// Thread-safety: none; the daemon uses it from its io_context thread only.
#ifndef CLUSTER_BALANCE_SIDECAR_MEMBERSHIP_MEMBERSHIP_H_
#define CLUSTER_BALANCE_SIDECAR_MEMBERSHIP_MEMBERSHIP_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "shared/cluster_config.h"
#include "shared/cluster_view.h"
#include "shared/server_set.h"
#include "sidecar/protocol/messages.h"

namespace cb::membership {

class Membership {
 public:
  // `self_index`: this server's index; `self_incarnation`: this start's incarnation
  // (the daemon keeps it in the data dir and raises it at every start).
  Membership(const ClusterConfig& config, int self_index, uint64_t self_incarnation,
             int64_t now_unix_ms);

  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  int self_index() const { return self_index_; }
  uint64_t self_incarnation() const { return records_[Slot(self_index_)].incarnation; }
  bool is_triad(int index) const { return index >= 0 && index < 3 && Known(index); }

  // The servers this sidecar dials, so that each pair has one connection: a spoke
  // dials every triad server; a triad server dials the triad servers of higher index
  // (and is dialed by the others and by every spoke).
  ServerSet PeersToDial() const;
  // Whether a connection with `index` is allowed at all: spokes talk to the triad
  // only, never to each other.
  bool MayConnect(int index) const;

  // Events. Each returns true when the view changed (generation() grew).
  bool OnPeerAuthenticated(int index, uint64_t peer_incarnation, int64_t now_unix_ms);
  bool OnPeerClosed(int index, int64_t now_unix_ms);
  bool OnHeartbeat(int index, const protocol::Heartbeat& heartbeat, int64_t now_unix_ms);
  bool OnViewUpdate(int from_index, const protocol::ViewUpdate& update, int64_t now_unix_ms);
  // Marks down every connected peer silent for longer than the heartbeat timeout and
  // returns their indices (the daemon closes those connections).
  std::vector<int> Tick(int64_t now_unix_ms);

  // The operator's drain/enable, applied on a triad server (a spoke forwards it).
  // NotFound for an unknown id.
  Status SetDraining(std::string_view server_id, bool draining);

  // Outputs.
  uint64_t generation() const { return generation_; }
  ClusterView ToView(int64_t now_unix_ms) const;
  protocol::ViewUpdate FullUpdate() const;
  protocol::Heartbeat MakeHeartbeat(int64_t now_unix_ms) const;
  // When this sidecar last heard from `index` directly; 0 = never / not connected.
  int64_t last_heard_unix_ms(int index) const { return last_heard_[Slot(index)]; }
  bool connected(int index) const { return connected_.Contains(index); }
  const protocol::ServerRecord& record(int index) const { return records_[Slot(index)]; }
  bool Known(int index) const { return !records_[Slot(index)].id.empty(); }
  int IndexOf(std::string_view server_id) const;

 private:
  static std::size_t Slot(int index) { return static_cast<std::size_t>(index); }
  bool SetAlive(int index, bool alive, uint64_t incarnation, int64_t now_unix_ms);
  bool MergeRecord(const protocol::ServerRecord& remote, int64_t now_unix_ms);
  bool Changed();

  std::string cluster_name_;
  int static_count_;
  int self_index_;
  int64_t heartbeat_timeout_ms_;
  uint32_t slow_start_ms_;
  uint64_t generation_ = 1;
  std::array<protocol::ServerRecord, kMaxServers> records_;
  std::array<int64_t, kMaxServers> last_heard_{};
  ServerSet connected_;
};

}  // namespace cb::membership

#endif  // CLUSTER_BALANCE_SIDECAR_MEMBERSHIP_MEMBERSHIP_H_
