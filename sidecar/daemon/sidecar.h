// One running sidecar: owns the cluster listener, the dialers to the triad, the
// authenticated peer connections, the heartbeat timer, the admin endpoint and the
// view file, and feeds Membership with what they see.
//
// Dynamic servers (membership/admission.h): every connection between a dynamic
// server and a triad server continues after the handshake with the dynamic
// server's JoinRequest, which the triad server answers (admitting or confirming
// its index) before the connection counts as a peer's.
//
// Connections (DESIGN.md "Transport"): one per pair of servers. Every spoke dials
// each triad server; within the triad the lower index dials the higher, so the
// triad is fully connected by one connection per pair; spokes never connect to
// each other (refused if one tries). Every connection starts with the mutual HMAC
// handshake (auth/handshake.h); a refusal is logged on both sides with its reason.
//
// Thread-safety: none; everything runs on the one io_context thread it was
// started on.
#ifndef CLUSTER_BALANCE_SIDECAR_DAEMON_SIDECAR_H_
#define CLUSTER_BALANCE_SIDECAR_DAEMON_SIDECAR_H_

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "shared/cluster_config.h"
#include "shared/view_file.h"
#include "sidecar/admin/admin_server.h"
#include "sidecar/auth/cluster_key.h"
#include "sidecar/auth/handshake.h"
#include "sidecar/cache/cache_node.h"
#include "sidecar/daemon/peer_dialers.h"
#include "sidecar/daemon/peer_session.h"
#include "sidecar/daemon/server_vitals.h"
#include "sidecar/daemon/status_history.h"
#include "sidecar/daemon/status_report.h"
#include "sidecar/deploy/deploy_agent.h"
#include "sidecar/membership/membership.h"
#include "sidecar/memcache/memcache_server.h"
#include "sidecar/store/record_store.h"
#include "sidecar/transport/connection.h"
#include "sidecar/transport/listener.h"

namespace cb::daemon {

struct SidecarOptions {
  ClusterConfig config;
  // This server: a static one from the cluster file, or a dynamic one from its
  // command line, at the index the triad admitted it to.
  ServerConfig self;
  bool dynamic = false;
  auth::ClusterKey key{""};
  uint64_t incarnation = 0;
  std::string data_dir;  // resolved: a triad server keeps the dynamic servers there
  std::string view_path;
  // Dynamic servers: a triad server moved this server to another index (its old
  // one was given away while it was cut off for longer than
  // dynamic_server_timeout). The owner stops this Sidecar and starts another at
  // the new index. Called on the io_context thread; must not destroy the Sidecar.
  std::function<void(int new_index)> on_index_moved;
};

class Sidecar : private cache::PeerLink, private deploy::DeployLink {
 public:
  // Binds the cluster and admin ports and opens the view file; an error (one line,
  // naming the address or path) when any of them fails. Nothing is dialed before
  // this returns OK.
  static Result<std::unique_ptr<Sidecar>> Start(boost::asio::io_context& io,
                                                SidecarOptions options);

  Sidecar(const Sidecar&) = delete;
  Sidecar& operator=(const Sidecar&) = delete;
  ~Sidecar();

  // Leaves the cluster cleanly: closes every connection (peers see the close and
  // mark this server down at once), stops listening, dialing and timers, and
  // publishes a last view. Idempotent.
  void Stop();

  // What GET /status and GET /metrics show (status_report.h).
  StatusSnapshot Snapshot(int64_t now_unix_ms) const;
  // What GET /history shows (status_history.h).
  nlohmann::json History() const { return history_.Json(); }

 private:
  Sidecar(boost::asio::io_context& io, SidecarOptions options);
  // Triad servers: opens the store in the data dir. Every server: the cache node.
  Status OpenStore();
  Status Bind();
  // Every server: the deploy agent, its repository and live trees in the data dir.
  Status OpenDeploy();
  // cache::PeerLink and deploy::DeployLink.
  bool Send(int index, const protocol::Message& message) override;
  void AnnounceStoreState() override;
  // deploy::DeployLink.
  std::optional<size_t> QueuedBytes(int index) const override;
  ServerSet ConnectedTriad() const override;
  std::string ServerId(int index) const override;
  const std::map<std::string, protocol::DeploymentTarget, std::less<>>& Targets() const override;
  void AcceptTarget(const protocol::DeploymentTarget& target) override;
  void ReportDeployed(std::vector<protocol::DeployedApp> deployed) override;
  uint64_t NextTargetVersion() override;
  // Not const: a triad server counts its sessions afresh for every heartbeat.
  protocol::Heartbeat MakeHeartbeat(int64_t now_unix_ms);
  // Sends `heartbeat` to the peer at `index` with its round-trip echo; counts it.
  void SendHeartbeat(int index, protocol::Heartbeat heartbeat);
  // Four times a second: this triad server's session counts (a heartbeat at
  // once when a draining server's count changed, so `clusterctl drain --wait`
  // sees the last session go), and a sample for the history every second.
  void OnVitalsTimer();
  // This triad server's live sessions by server index, while its store has
  // caught up; nullopt otherwise.
  std::optional<std::vector<uint64_t>> CountOwnSessions(int64_t now_unix_ms);
  void StartDialers();
  void OnConnection(std::shared_ptr<transport::Connection> connection, auth::Handshake::Role role,
                    int dialed_index);
  // PeerSession's handlers.
  void OnAuthenticated(const PeerSession::Ptr& session);
  void OnSessionMessage(const PeerSession::Ptr& session, const protocol::Message& message);
  void OnHandshakeRefused(const PeerSession::Ptr& session, const std::string& reason, bool by_peer);
  void OnSessionClosed(const PeerSession::Ptr& session, const Status& why);
  // The session is the peer at `index` from now on.
  void BindPeer(const PeerSession::Ptr& session, int index);
  // The join exchange (sidecar_joins.cc).
  void OnJoinMessage(const PeerSession::Ptr& session, const protocol::Message& message);
  void OnJoinRequest(const PeerSession::Ptr& session, const protocol::JoinRequest& request);
  void OnJoinReply(const PeerSession::Ptr& session, const protocol::JoinReply& reply);
  // After a view update: closes the connection of a dynamic server whose index
  // went to another server.
  void DropDisplacedPeers();
  // Saves the dynamic servers to the data dir when they changed (triad only);
  // the error is logged too.
  Status SaveDynamicIdentities();
  // After the handshake: logs, counts, and tells the peer why before closing.
  void Refuse(const PeerSession::Ptr& session, const std::string& reason);
  void LogRefusal(const PeerSession& session, const std::string& reason);
  void OnPeerMessage(int index, const protocol::Message& message);
  Status SetDraining(const std::string& server_id, bool draining);
  void OnHeartbeatTimer();
  // After a change: publish the view file and, on the triad, push the view.
  void Publish(bool changed);
  void PushView();
  void CountRefusal(const std::string& reason);

  boost::asio::io_context& io_;
  SidecarOptions options_;
  int64_t started_unix_ms_;
  membership::Membership membership_;
  std::unique_ptr<ViewWriter> view_writer_;
  bool view_published_ = false;  // the view was founded and published once
  std::unique_ptr<transport::Listener> listener_;
  std::unique_ptr<admin::AdminServer> admin_;
  std::unique_ptr<store::RecordStore> store_;  // triad servers only
  std::unique_ptr<cache::CacheNode> cache_;
  std::unique_ptr<memcache::MemcacheServer> memcache_;
  std::unique_ptr<deploy::DeployAgent> deploy_;
  PeerDialers dialers_;
  std::vector<PeerSession::Ptr> sessions_;             // every open connection
  std::array<PeerSession::Ptr, kMaxServers> peers_{};  // bound, by index
  boost::asio::steady_timer heartbeat_timer_;
  boost::asio::steady_timer vitals_timer_;
  ServerVitals vitals_;
  StatusHistory history_;
  std::vector<uint64_t> draining_sessions_sent_;  // by index, as last announced
  bool stopped_ = false;
  uint64_t saved_identity_generation_ = 0;
  PeerCounters counters_;
};

}  // namespace cb::daemon

#endif  // CLUSTER_BALANCE_SIDECAR_DAEMON_SIDECAR_H_
