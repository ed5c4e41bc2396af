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
//  - A spoke cut off from the whole triad keeps its view as it was (README
//    "Partitions"): losing the last triad server it hears tells it nothing about
//    the servers, only about its own links. So a triad peer whose connection
//    closes or falls silent is marked down only while another triad peer has
//    been heard lately (within the midpoint of heartbeat interval and
//    timeout: a live link is heard every interval); otherwise it stays as it
//    was, and the view is stale (view_stale_since_unix_ms) until a triad server
//    is connected again. The web server goes on routing by the stale view, and
//    its passive failure detection catches a backend that does fail.
//  - A sidecar told that it is itself down refutes the rumour: it raises its own
//    incarnation above the rumour's, and the raised "up" wins everywhere.
//  - A view is published only once it is founded (DESIGN.md "Request path"): a
//    starting sidecar knows only itself, and a view showing everyone else down
//    would send their sessions to it. Founded means: agreeing with the triad
//    (every connected triad peer has sent its view, at least one of them is
//    founded itself, and every server that the latest view of each founded one
//    shows up is up here too: for a triad server, connected), or the alone wait
//    (ClusterConfig::alone_wait) over (for a spoke: once a connected triad
//    server has sent its view), or the only server of the cluster (no dynamic
//    servers known). A spoke that starts reaching no triad server stays
//    unfounded until one has told it its view: it knows nothing of the other
//    servers, and its web server keeps the view file it had. Once founded, always founded.
//    At a cold start of the whole triad nobody is founded before the alone wait.
//  - The operator's drain flag is versioned apart (admin_version, raised by the
//    triad on every drain/enable; at equal versions draining wins), so it survives
//    the restart of the drained server and of any one triad server.
//  - Identity (id, addresses, weight) of static servers comes from the cluster file
//    and is never taken from a peer.
//  - Deployment (sidecar/deploy): what a server runs comes from its own heartbeats
//    (and, for servers a spoke is not connected to, from the triad's view); the
//    current version of each deployment is the target of highest version, merged
//    from every view update and from the deploys this sidecar takes.
//  - Dynamic servers (admission.h) are admitted by a triad server, which records
//    their identity with a raised `admission`; every sidecar takes the identity with
//    the highest admission (at equal admissions the larger identity, so that all
//    agree), and of one server admitted twice (by triad servers that could not
//    hear each other) the lower index. A triad server frees the index of a dynamic server it has
//    seen down for dynamic_server_timeout by publishing a tombstone (empty id, admission raised).
//
// Thread-safety: none; the daemon uses it from its io_context thread only.
#ifndef CLUSTER_BALANCE_SIDECAR_MEMBERSHIP_MEMBERSHIP_H_
#define CLUSTER_BALANCE_SIDECAR_MEMBERSHIP_MEMBERSHIP_H_

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "shared/cluster_config.h"
#include "shared/cluster_view.h"
#include "shared/server_set.h"
#include "sidecar/membership/admission.h"
#include "sidecar/protocol/messages.h"

namespace cb::membership {

class Membership {
 public:
  // `self_index`: this server's index; `self_incarnation`: this start's incarnation
  // (the daemon keeps it in the data dir and raises it at every start).
  Membership(const ClusterConfig& config, int self_index, uint64_t self_incarnation,
             int64_t now_unix_ms);
  // A dynamic server's own membership: `self` is its identity at the index the
  // triad admitted it to (at least FirstDynamicIndex()).
  Membership(const ClusterConfig& config, const protocol::ServerRecord& self,
             uint64_t self_incarnation, int64_t now_unix_ms);

  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  int self_index() const { return self_index_; }
  uint64_t self_incarnation() const { return records_[Slot(self_index_)].incarnation; }
  bool is_triad(int index) const { return index >= 0 && index < kTriadSize && Known(index); }
  int first_dynamic_index() const { return first_dynamic_; }
  bool is_dynamic_index(int index) const { return index >= first_dynamic_ && index < kMaxServers; }

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

  // On a triad server: admits the dynamic server of `request` (fields checked with
  // CheckJoinRequest) and returns its index. A server already known by id keeps its
  // index, with its addresses and weight updated; otherwise it gets back
  // `previous_index` when that is free and in this server's share, else the lowest
  // free index of this server's share. InvalidArgument with the reason when the
  // request is refused (bad fields, an address in use by a live server, no free
  // index in the share, or a previous_index in another share that this server
  // has never heard of: the admitter's word has not reached it yet; or a server
  // that is connected at other addresses: one id running on two machines). The daemon then reports
  // the connection with OnPeerAuthenticated.
  Result<int> Admit(const protocol::JoinRequest& request, int64_t now_unix_ms);
  // On a triad server: frees the indices of its share whose dynamic server it has
  // seen down for dynamic_server_timeout; returns the ids freed. (Only the admitter
  // frees, so an index whose admitter is down for good stays taken, shown down.)
  std::vector<std::string> FreeLongDownDynamicServers(int64_t now_unix_ms);
  // The identities of dynamic indices (tombstones included) that a triad server
  // keeps in its data dir, and puts back at its next start (all down).
  std::vector<protocol::ServerRecord> DynamicIdentities() const;
  void RestoreDynamicIdentities(const std::vector<protocol::ServerRecord>& records,
                                int64_t now_unix_ms);
  // Grows whenever a dynamic identity changes: the daemon saves them again.
  uint64_t identity_generation() const { return identity_generation_; }

  // The operator's drain/enable, applied on a triad server (a spoke forwards it).
  // NotFound for an unknown id.
  Status SetDraining(std::string_view server_id, bool draining);

  // Deployment. This server's deployed commits (sorted by name), as its deploy
  // agent reports them; a change of the view when they differ.
  bool SetSelfDeployed(std::vector<protocol::DeployedApp> deployed);
  // Takes `target` when it is newer than the deployment's current one (see
  // messages.h DeploymentTarget); true when it did (a change of the view).
  // Malformed targets (a name or commit the view cannot hold) are ignored.
  bool MergeDeployment(const protocol::DeploymentTarget& target);
  // The current version of every deployment, by name.
  const std::map<std::string, protocol::DeploymentTarget, std::less<>>& deployments() const {
    return deployments_;
  }

  // Outputs.
  uint64_t generation() const { return generation_; }
  // Whether the view may be published (see the rules above). Turning founded is a
  // change of the view: the event that does it returns true.
  bool founded() const { return founded_; }
  ClusterView ToView(int64_t now_unix_ms) const;
  protocol::ViewUpdate FullUpdate() const;
  protocol::Heartbeat MakeHeartbeat(int64_t now_unix_ms) const;
  // On a spoke that is cut off from the whole triad (see the rules above): since
  // when; 0 while a triad server is connected, on a triad server, and before the
  // view is founded.
  int64_t view_stale_since_unix_ms() const;
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
  // The identity part of MergeRecord for a dynamic index.
  bool MergeIdentity(const protocol::ServerRecord& remote, int64_t now_unix_ms);
  // Puts `identity` (or a tombstone) at its index with a raised admission; a new
  // occupant starts down and enabled.
  void Occupy(int index, const protocol::ServerRecord& identity, uint64_t admission,
              int64_t now_unix_ms);
  bool Changed();
  // Turns founded when the rules say so; returns whether it did (a change).
  bool CheckFounded(int64_t now_unix_ms);
  // The only server of the cluster: one static server, this one, and no dynamic
  // server known. Nobody can tell it more than it knows.
  bool OnlyServer() const;
  // Whether the loss of triad peer `index` says nothing about it: this is a
  // spoke, and no other triad peer has been heard lately (see the rules above).
  bool CutOffFromTriadWithout(int index, int64_t now_unix_ms) const;

  ClusterConfig config_;  // a copy: the static servers a join is checked against
  std::string cluster_name_;
  int static_count_;
  int first_dynamic_;
  int self_index_;
  int64_t heartbeat_timeout_ms_;
  int64_t dynamic_timeout_ms_;
  uint32_t slow_start_ms_;
  uint64_t generation_ = 1;
  uint64_t identity_generation_ = 0;
  std::array<protocol::ServerRecord, kMaxServers> records_;
  std::array<int64_t, kMaxServers> last_heard_{};
  std::array<int64_t, kMaxServers> down_since_{};  // dynamic servers: when last seen up
  ServerSet connected_;
  int64_t alone_after_unix_ms_;  // founded alone from then on
  int64_t triad_lost_unix_ms_;   // a spoke: when its last triad connection went (or its start)
  bool founded_ = false;
  // The servers the latest ViewUpdate of each triad peer shows up (valid while
  // the peer is in heard_from_triad_: connected since it sent one), and which of
  // those views were founded.
  std::array<ServerSet, kTriadSize> triad_shows_up_{};
  ServerSet heard_from_triad_;
  ServerSet founded_triad_;
  std::map<std::string, protocol::DeploymentTarget, std::less<>> deployments_;
};

// Whether a list of deployed commits is one a sidecar of ours sends: names and
// commits the view can hold, errors of bounded length, sorted and unique.
bool IsValidDeployedList(const std::vector<protocol::DeployedApp>& deployed);
bool IsValidDeploymentTarget(const protocol::DeploymentTarget& target);

}  // namespace cb::membership

#endif  // CLUSTER_BALANCE_SIDECAR_MEMBERSHIP_MEMBERSHIP_H_
