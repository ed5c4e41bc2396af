#include "sidecar/daemon/sidecar.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "shared/route_codec.h"
#include "sidecar/daemon/daemon_clock.h"
#include "sidecar/daemon/joiner.h"
#include "sidecar/daemon/node_state.h"
#include "sidecar/membership/admission.h"

namespace cb::daemon {
namespace {

constexpr std::chrono::milliseconds kVitalsInterval{250};

uint64_t SteadyMicros() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

membership::Membership MakeMembership(const SidecarOptions& options, int64_t now_unix_ms) {
  if (!options.dynamic) {
    return membership::Membership(options.config, options.self.index, options.incarnation,
                                  now_unix_ms);
  }
  protocol::ServerRecord self;
  self.index = options.self.index;
  self.id = options.self.id;
  self.cluster_address = options.self.cluster_address.ToString();
  self.http_address = options.self.http_address.ToString();
  self.weight = options.self.weight;
  return membership::Membership(options.config, self, options.incarnation, now_unix_ms);
}

admin::AdminResponse JsonResponse(const deploy::DeployAnswer& answer) {
  admin::AdminResponse response;
  response.status = answer.status;
  response.content_type = "application/json";
  // An error may quote an upload's entry name, which need not be UTF-8.
  response.body = answer.body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  return response;
}

}  // namespace

Result<std::unique_ptr<Sidecar>> Sidecar::Start(boost::asio::io_context& io,
                                                SidecarOptions options) {
  std::unique_ptr<Sidecar> sidecar(new Sidecar(io, std::move(options)));
  if (sidecar->membership_.is_triad(sidecar->options_.self.index)) {
    Result<std::vector<protocol::ServerRecord>> dynamic =
        LoadDynamicIdentities(sidecar->options_.data_dir);
    if (!dynamic.ok()) {
      sidecar->stopped_ = true;
      return dynamic.status();
    }
    sidecar->membership_.RestoreDynamicIdentities(*dynamic, NowUnixMs());
    sidecar->saved_identity_generation_ = sidecar->membership_.identity_generation();
  }
  if (Status opened = sidecar->OpenStore(); !opened.ok()) {
    sidecar->stopped_ = true;
    return opened;
  }
  if (Status opened = sidecar->OpenDeploy(); !opened.ok()) {
    sidecar->stopped_ = true;
    return opened;
  }
  if (Status bound = sidecar->Bind(); !bound.ok()) {
    sidecar->stopped_ = true;  // nothing ran: nothing to leave
    return bound;
  }
  sidecar->Publish(true);
  sidecar->cache_->Start();
  sidecar->deploy_->Start();
  sidecar->StartDialers();
  sidecar->OnHeartbeatTimer();
  sidecar->OnVitalsTimer();
  return sidecar;
}

Sidecar::Sidecar(boost::asio::io_context& io, SidecarOptions options)
    : io_(io),
      options_(std::move(options)),
      started_unix_ms_(NowUnixMs()),
      membership_(MakeMembership(options_, started_unix_ms_)),
      dialers_(io),
      heartbeat_timer_(io),
      vitals_timer_(io) {}

Sidecar::~Sidecar() { Stop(); }

Status Sidecar::OpenStore() {
  cache::CacheNodeOptions options;
  options.self_index = options_.self.index;
  options.self_incarnation = options_.incarnation;
  options.spoke_cache_bytes = options_.self.node.spoke_cache_bytes;
  if (membership_.is_triad(options_.self.index)) {
    // Only the triad stores; spokes ask it.
    store::RecordStoreOptions store_options;
    store_options.sync = options_.config.durability == ClusterConfig::Durability::kFsync;
    Result<std::unique_ptr<store::RecordStore>> opened =
        store::RecordStore::Open(options_.data_dir + "/store", store_options);
    if (!opened.ok()) return Status::IoError("store: " + opened.status().message());
    store_ = std::move(opened).value();
    options.store = store_.get();
  }
  cache::PeerLink& link = *this;
  cache_ = std::make_unique<cache::CacheNode>(io_, options_.config, options, link, NowUnixMs);
  return Status::Ok();
}

Status Sidecar::OpenDeploy() {
  deploy::DeployAgentOptions options;
  options.self_index = options_.self.index;
  options.self_is_triad = membership_.is_triad(options_.self.index);
  options.repository = options_.data_dir + "/deploy.git";
  options.deploy_root = options_.self.node.deploy_root.empty()
                            ? options_.data_dir + "/deploy"
                            : options_.config.ResolvePath(options_.self.node.deploy_root);
  options.config = options_.config.deploy;
  options.chunk_bytes =
      std::clamp<uint64_t>(options_.config.max_frame_bytes / 2, 1, options.chunk_bytes);
  Result<std::unique_ptr<deploy::DeployAgent>> agent =
      deploy::DeployAgent::Open(io_, std::move(options), *this);
  if (!agent.ok()) return agent.status();
  deploy_ = std::move(agent).value();
  return Status::Ok();
}

std::optional<size_t> Sidecar::QueuedBytes(int index) const {
  if (index < 0 || index >= kMaxServers) return std::nullopt;
  const auto& peer = peers_[static_cast<std::size_t>(index)];
  if (!peer || peer->connection().closed()) return std::nullopt;
  return peer->connection().queued_bytes();
}

ServerSet Sidecar::ConnectedTriad() const {
  ServerSet triad;
  for (int index = 0; index < kTriadSize; ++index) {
    if (index != options_.self.index && membership_.is_triad(index) &&
        peers_[static_cast<std::size_t>(index)]) {
      triad.Add(index);
    }
  }
  return triad;
}

std::string Sidecar::ServerId(int index) const { return membership_.record(index).id; }

const std::map<std::string, protocol::DeploymentTarget, std::less<>>& Sidecar::Targets() const {
  return membership_.deployments();
}

void Sidecar::AcceptTarget(const protocol::DeploymentTarget& target) {
  if (!membership_.MergeDeployment(target)) return;
  Publish(true);
  deploy_->OnTargetsChanged();
}

void Sidecar::ReportDeployed(std::vector<protocol::DeployedApp> deployed) {
  if (!membership_.SetSelfDeployed(std::move(deployed))) return;
  Publish(true);
  AnnounceStoreState();  // a heartbeat now: the triad shows it at once
}

uint64_t Sidecar::NextTargetVersion() {
  // Later than every version seen, and near the wall clock so that the last
  // deploy wins between servers that did not hear of each other's.
  uint64_t version = static_cast<uint64_t>(NowUnixMs()) << 16;
  for (const auto& [name, target] : membership_.deployments()) {
    version = std::max(version, target.version + 1);
  }
  return version;
}

Status Sidecar::Bind() {
  const ServerConfig& self = options_.self;
  Result<std::unique_ptr<ViewWriter>> writer = ViewWriter::Open(options_.view_path);
  if (!writer.ok()) return Status::IoError("view file: " + writer.status().message());
  view_writer_ = std::move(writer).value();

  FrameLimits limits;
  limits.max_payload_bytes = options_.config.max_frame_bytes;
  Result<std::unique_ptr<transport::Listener>> listener = transport::Listener::Listen(
      io_, self.cluster_address, limits, [this](std::shared_ptr<transport::Connection> c) {
        OnConnection(std::move(c), auth::Handshake::Role::kListener, -1);
      });
  if (!listener.ok()) return Status::IoError("cluster port " + listener.status().message());
  listener_ = std::move(listener).value();

  admin::AdminHandlers handlers;
  handlers.status = [this] { return StatusJson(Snapshot(NowUnixMs())); };
  handlers.metrics = [this] { return MetricsText(Snapshot(NowUnixMs())); };
  handlers.set_draining = [this](const std::string& id, bool draining) {
    return SetDraining(id, draining);
  };
  handlers.deploy = [this](admin::DeployRequest request, admin::AdminReply reply) {
    const std::string author = request.author.empty() ? request.user : request.author;
    deploy_->Deploy(
        deploy::DeployOrder{request.webapp, request.stage, request.host, request.version,
                            request.message, author, std::move(request.archive)},
        [reply = std::move(reply)](deploy::DeployAnswer answer) { reply(JsonResponse(answer)); });
  };
  handlers.rollback = [this](admin::RollbackRequest request, admin::AdminReply reply) {
    const std::string author = request.author.empty() ? request.user : request.author;
    deploy_->Rollback(
        deploy::RollbackOrder{request.webapp, request.stage, request.host, request.to, author},
        [reply = std::move(reply)](deploy::DeployAnswer answer) { reply(JsonResponse(answer)); });
  };
  handlers.deployments = [this](const std::string& webapp) -> Result<nlohmann::json> {
    return deploy_->Deployments(webapp).body;
  };
  handlers.history = [this] { return History(); };
  admin::AdminServerOptions admin_options;
  admin_options.upload_limit = options_.config.deploy.max_bytes + (1u << 20);
  admin_options.remote_deploy = options_.config.deploy.remote;
  if (!self.node.admin_tls_certificate.empty()) {
    Result<std::shared_ptr<boost::asio::ssl::context>> tls =
        admin::MakeAdminTlsContext(options_.config.ResolvePath(self.node.admin_tls_certificate),
                                   options_.config.ResolvePath(self.node.admin_tls_key));
    if (!tls.ok()) return Status::IoError("admin TLS: " + tls.status().message());
    admin_options.tls = std::move(tls).value();
  }
  if (!self.node.admin_users.empty()) {
    Result<std::unique_ptr<admin::Authenticator>> users =
        admin::Authenticator::FromUsersFile(options_.config.ResolvePath(self.node.admin_users));
    if (!users.ok()) return Status::IoError("admin users: " + users.status().message());
    admin_options.authenticator = std::move(users).value();
  }
  Result<std::unique_ptr<admin::AdminServer>> admin = admin::AdminServer::Start(
      io_, self.node.admin_listen, std::move(handlers), std::move(admin_options));
  if (!admin.ok()) return admin.status();
  admin_ = std::move(admin).value();

  memcache::MemcacheServerOptions memcache_options;
  uint64_t largest_entry = 0;
  for (const CacheConfig& cache : options_.config.caches) {
    largest_entry = std::max(largest_entry, cache.max_entry_bytes);
  }
  memcache_options.parser_limits.max_value_bytes = static_cast<std::size_t>(largest_entry);
  memcache_options.parser_limits.max_retrieval_line_bytes =
      static_cast<std::size_t>(self.node.memcached_max_line_bytes);
  Result<std::unique_ptr<memcache::MemcacheServer>> memcache =
      memcache::MemcacheServer::Start(io_, self.node.memcached_listen, *cache_, memcache_options);
  if (!memcache.ok()) return memcache.status();
  memcache_ = std::move(memcache).value();
  spdlog::info("{} (index {}, {}) listening on {}, admin on {}, memcached on {}, view {}", self.id,
               self.index,
               self.is_triad() ? "triad" : (options_.dynamic ? "dynamic spoke" : "spoke"),
               self.cluster_address.ToString(), self.node.admin_listen.ToString(),
               self.node.memcached_listen.ToString(), options_.view_path);
  return Status::Ok();
}

void Sidecar::StartDialers() {
  transport::DialerOptions dialer_options;
  dialer_options.max_backoff = options_.config.reconnect_cap();
  dialer_options.initial_backoff =
      std::min(dialer_options.initial_backoff, dialer_options.max_backoff);
  dialers_.Dial(options_.config, membership_.PeersToDial(), dialer_options,
                [this](std::shared_ptr<transport::Connection> connection, int index) {
                  OnConnection(std::move(connection), auth::Handshake::Role::kDialer, index);
                });
}

void Sidecar::OnConnection(std::shared_ptr<transport::Connection> connection,
                           auth::Handshake::Role role, int dialed_index) {
  if (stopped_) {
    connection->Close();
    return;
  }
  PeerSession::Handlers handlers;
  handlers.on_authenticated = [this](const PeerSession::Ptr& session) { OnAuthenticated(session); };
  handlers.on_message = [this](const PeerSession::Ptr& session, protocol::Message message) {
    OnSessionMessage(session, message);
  };
  handlers.on_refused = [this](const PeerSession::Ptr& session, const std::string& reason,
                               bool by_peer) { OnHandshakeRefused(session, reason, by_peer); };
  handlers.on_closed = [this](const PeerSession::Ptr& session, const Status& why) {
    OnSessionClosed(session, why);
  };
  const protocol::PeerIdentity self = MakePeerIdentity(
      options_.config, options_.self.id, options_.self.index, membership_.self_incarnation());
  sessions_.push_back(PeerSession::Open(std::move(connection),
                                        auth::Handshake(role, self, options_.key), dialed_index,
                                        std::move(handlers)));
}

void Sidecar::OnHandshakeRefused(const PeerSession::Ptr& session, const std::string& reason,
                                 bool by_peer) {
  if (!by_peer) {
    LogRefusal(*session, reason);
    return;
  }
  // The peer refused us: its reason, logged here too.
  spdlog::warn("{} at {}: {}",
               session->peer().server_id.empty() ? std::string("peer") : session->peer().server_id,
               session->connection().remote_endpoint(), reason);
  CountRefusal(reason);
}

void Sidecar::Refuse(const PeerSession::Ptr& session, const std::string& reason) {
  LogRefusal(*session, reason);
  session->Refuse(reason);
}

void Sidecar::LogRefusal(const PeerSession& session, const std::string& reason) {
  const std::string who =
      session.peer().server_id.empty()
          ? session.connection().remote_endpoint()
          : "\"" + session.peer().server_id + "\" at " + session.connection().remote_endpoint();
  spdlog::warn("refused {}: {}", who, reason);
  CountRefusal(reason);
}

void Sidecar::CountRefusal(const std::string& reason) {
  ++counters_.refusals[RefusalCategory(reason)];
}

void Sidecar::OnSessionMessage(const PeerSession::Ptr& session, const protocol::Message& message) {
  if (session->bound_index() >= 0) {
    OnPeerMessage(session->bound_index(), message);
  } else if (session->joining()) {
    OnJoinMessage(session, message);
  }
  // Else it is closing (refused, displaced or replaced): nothing more is read.
}

void Sidecar::OnAuthenticated(const PeerSession::Ptr& session) {
  const protocol::PeerIdentity& peer = session->peer();
  const int index = peer.index;
  std::string problem;
  const bool from_dynamic_server = session->dialed_index() < 0 &&
                                   (index < 0 || membership_.is_dynamic_index(index)) &&
                                   index != options_.self.index;
  if (from_dynamic_server) {
    if (membership_.is_triad(options_.self.index)) {
      session->set_joining(true);  // its JoinRequest comes next
      return;
    }
    problem = "only triad servers admit dynamic servers, and spokes do not connect to each other";
  } else if (index < 0 || index >= kMaxServers || !membership_.Known(index) ||
             membership_.record(index).id != peer.server_id) {
    problem = "server \"" + peer.server_id + "\" does not hold index " + std::to_string(index) +
              " in this cluster file";
  } else if (session->dialed_index() >= 0 && index != session->dialed_index()) {
    problem = "dialed index " + std::to_string(session->dialed_index()) + " but \"" +
              peer.server_id + "\" answered";
  } else if (!membership_.MayConnect(index)) {
    problem = "spokes do not connect to each other";
  }
  if (!problem.empty()) {
    // Authenticated, so the peer has the key: tell it why before closing.
    Refuse(session, problem);
    return;
  }
  if (options_.dynamic) {
    // Claim our index from this triad server before anything else.
    session->set_joining(true);
    (void)session->connection().Send(
        membership::MakeJoinRequest(options_.self, options_.self.index));
    return;
  }
  BindPeer(session, index);
}

void Sidecar::BindPeer(const PeerSession::Ptr& session, int index) {
  const protocol::PeerIdentity& peer = session->peer();
  session->set_joining(false);
  if (const auto& old = peers_[static_cast<std::size_t>(index)]; old && old != session) {
    // The peer restarted or reconnected: the new connection replaces the old.
    old->set_bound_index(-1);
    old->connection().Close(Status::Ok());
    cache_->OnPeerDown(index);  // what was asked on the old one is answered no more
  }
  session->set_bound_index(index);
  peers_[static_cast<std::size_t>(index)] = session;
  dialers_.MarkHealthy(index);
  spdlog::info("connected to {} (index {}, incarnation {}) at {}", peer.server_id, index,
               peer.incarnation, session->connection().remote_endpoint());
  const protocol::ServerRecord& known = membership_.record(index);
  if (membership_.is_triad(options_.self.index) && !known.alive &&
      known.incarnation >= peer.incarnation) {
    // We declared it down at this incarnation and told everyone; marking it up at
    // the same incarnation would not undo that elsewhere (at equal incarnations
    // "down" wins). Show it the rumour first: it refutes with a higher incarnation
    // in its next heartbeat, and that "up" wins everywhere.
    (void)session->connection().Send(membership_.FullUpdate());
  }
  const bool changed = membership_.OnPeerAuthenticated(index, peer.incarnation, NowUnixMs());
  vitals_.OnPeerDown(index);  // a new connection: a new round trip
  SendHeartbeat(index, MakeHeartbeat(NowUnixMs()));
  cache_->OnPeerUp(index);
  if (membership_.is_triad(options_.self.index)) {
    (void)session->connection().Send(membership_.FullUpdate());
  }
  Publish(changed);
  deploy_->OnTargetsChanged();  // a triad server to fetch from
}

void Sidecar::OnSessionClosed(const PeerSession::Ptr& session, const Status& why) {
  std::erase(sessions_, session);
  const int index = session->bound_index();
  if (index < 0 || peers_[static_cast<std::size_t>(index)] != session) return;
  peers_[static_cast<std::size_t>(index)].reset();
  if (!why.ok()) ++counters_.connection_resets;
  spdlog::info("lost {} (index {}): {}", membership_.record(index).id, index,
               why.ok() ? "closed" : why.message());
  cache_->OnPeerDown(index);
  deploy_->OnPeerDown(index);
  vitals_.OnPeerDown(index);
  Publish(membership_.OnPeerClosed(index, NowUnixMs()));
}

void Sidecar::OnPeerMessage(int index, const protocol::Message& message) {
  const int64_t now = NowUnixMs();
  if (const auto* heartbeat = std::get_if<protocol::Heartbeat>(&message)) {
    ++counters_.heartbeats_received;
    vitals_.OnHeartbeat(index, *heartbeat, SteadyMicros(),
                        /*from_ready_triad=*/membership_.is_triad(index) && heartbeat->store_ready);
    cache_->OnPeerStoreState(index, *heartbeat);
    Publish(membership_.OnHeartbeat(index, *heartbeat, now));
  } else if (const auto* update = std::get_if<protocol::ViewUpdate>(&message)) {
    const bool changed = membership_.OnViewUpdate(index, *update, now);
    DropDisplacedPeers();
    (void)SaveDynamicIdentities();  // logged; retried at the next change or tick
    Publish(changed);
    if (changed) deploy_->OnTargetsChanged();
  } else if (const auto* request = std::get_if<protocol::StateRequest>(&message)) {
    if (Status applied = SetDraining(request->server_id, request->draining); !applied.ok()) {
      spdlog::warn("drain/enable of {} from {}: {}", request->server_id,
                   membership_.record(index).id, applied.message());
    }
  } else if (protocol::IsStoreMessage(message)) {
    cache_->OnPeerMessage(index, message);
  } else if (protocol::IsDeployMessage(message)) {
    deploy_->OnPeerMessage(index, message);
  } else if (const auto* refusal = std::get_if<protocol::Refusal>(&message)) {
    // E.g. our dynamic index went to another server: its reason, then we reconnect
    // and claim it again.
    spdlog::warn("{} (index {}) closes our connection: {}", membership_.record(index).id, index,
                 auth::SanitizedReason(refusal->reason));
    CountRefusal(refusal->reason);
    peers_[static_cast<std::size_t>(index)]->connection().Close(
        Status::InvalidArgument(refusal->reason));
  } else {
    // A handshake message after the handshake, or a reply nobody asked for: the
    // peer is confused; drop this connection only.
    const std::string why = std::string("out-of-order ") +
                            std::string(protocol::MessageName(message)) + " after the handshake";
    spdlog::warn("{} (index {}): {}; closing the connection", membership_.record(index).id, index,
                 why);
    peers_[static_cast<std::size_t>(index)]->connection().Close(Status::InvalidArgument(why));
  }
}

protocol::Heartbeat Sidecar::MakeHeartbeat(int64_t now_unix_ms) {
  protocol::Heartbeat heartbeat = membership_.MakeHeartbeat(now_unix_ms);
  cache_->StampHeartbeat(heartbeat);
  if (store_) {
    vitals_.SetOwnSessionCounts(CountOwnSessions(now_unix_ms));
    if (const auto& own = vitals_.own_session_counts()) heartbeat.live_sessions = *own;
  }
  return heartbeat;
}

void Sidecar::SendHeartbeat(int index, protocol::Heartbeat heartbeat) {
  const auto& peer = peers_[static_cast<std::size_t>(index)];
  if (!peer) return;
  vitals_.StampEcho(index, heartbeat, SteadyMicros());
  if (peer->connection().Send(heartbeat).ok()) ++counters_.heartbeats_sent;
}

void Sidecar::AnnounceStoreState() {
  if (stopped_) return;
  const protocol::Heartbeat heartbeat = MakeHeartbeat(NowUnixMs());
  for (int index = 0; index < kMaxServers; ++index) SendHeartbeat(index, heartbeat);
}

std::optional<std::vector<uint64_t>> Sidecar::CountOwnSessions(int64_t now_unix_ms) {
  if (!store_ || !cache_->store_ready()) return std::nullopt;
  const store::LiveKeyCounter::Counts by_byte = store_->LiveKeysByFirstByte(now_unix_ms);
  std::vector<uint64_t> by_index(kMaxServers);
  for (int index = 0; index < kMaxServers; ++index) {
    by_index[static_cast<std::size_t>(index)] =
        by_byte[static_cast<unsigned char>(RouteCharForIndex(index))];
  }
  return by_index;
}

void Sidecar::OnVitalsTimer() {
  if (stopped_) return;
  const int64_t now = NowUnixMs();
  if (store_) {
    vitals_.SetOwnSessionCounts(CountOwnSessions(now));
    std::vector<uint64_t> draining(kMaxServers);
    const ClusterView view = membership_.ToView(now);
    for (int index = 0; index < kMaxServers; ++index) {
      if (view.state(index) == ServerState::kDraining) {
        draining[static_cast<std::size_t>(index)] = vitals_.Sessions(index).value_or(0);
      }
    }
    if (draining != draining_sessions_sent_) {
      draining_sessions_sent_ = std::move(draining);
      AnnounceStoreState();
    }
  }
  if (history_.Due(now)) {
    std::map<std::string, StatusHistory::Point> points;
    for (int index = 0; index < kMaxServers; ++index) {
      if (!membership_.Known(index)) continue;
      points[membership_.record(index).id] =
          StatusHistory::Point{vitals_.Sessions(index), vitals_.RoundTripMs(index)};
    }
    history_.Record(now, points);
  }
  vitals_timer_.expires_after(kVitalsInterval);
  vitals_timer_.async_wait([this](const boost::system::error_code& error) {
    if (!error) OnVitalsTimer();
  });
}

bool Sidecar::Send(int index, const protocol::Message& message) {
  if (index < 0 || index >= kMaxServers) return false;
  const auto& peer = peers_[static_cast<std::size_t>(index)];
  return peer && peer->connection().Send(message).ok();
}

Status Sidecar::SetDraining(const std::string& server_id, bool draining) {
  if (membership_.IndexOf(server_id) < 0) {
    return Status::NotFound("unknown server \"" + server_id + "\"");
  }
  if (membership_.is_triad(options_.self.index)) {
    if (Status applied = membership_.SetDraining(server_id, draining); !applied.ok()) {
      return applied;
    }
    spdlog::info("{} {}", server_id, draining ? "draining" : "enabled");
    Publish(true);
    return Status::Ok();
  }
  // A spoke forwards to every triad server it reaches; they agree by admin_version.
  bool forwarded = false;
  membership_.PeersToDial().ForEach([&](int triad) {
    if (const auto& peer = peers_[static_cast<std::size_t>(triad)]) {
      forwarded =
          peer->connection().Send(protocol::StateRequest{server_id, draining}).ok() || forwarded;
    }
  });
  return forwarded ? Status::Ok() : Status::IoError("no triad server is reachable");
}

void Sidecar::OnHeartbeatTimer() {
  if (stopped_) return;
  const int64_t now = NowUnixMs();
  const protocol::Heartbeat heartbeat = MakeHeartbeat(now);
  for (int index = 0; index < kMaxServers; ++index) SendHeartbeat(index, heartbeat);
  const uint64_t generation = membership_.generation();
  const std::vector<int> silent = membership_.Tick(now);
  for (int index : silent) {
    ++counters_.heartbeats_missed;
    if (membership_.record(index).alive) {
      spdlog::warn(
          "{} (index {}) silent for over {} ms, as is every triad server: this spoke is cut "
          "off from the triad and keeps its view as it was (stale) until one returns",
          membership_.record(index).id, index, options_.config.heartbeat_timeout.count());
    } else {
      spdlog::warn("{} (index {}) silent for over {} ms: marked down", membership_.record(index).id,
                   index, options_.config.heartbeat_timeout.count());
    }
    if (auto& peer = peers_[static_cast<std::size_t>(index)]) {
      peer->connection().Close(Status::IoError("heartbeat timeout"));
      peer->set_bound_index(-1);
      peer.reset();
      cache_->OnPeerDown(index);
      vitals_.OnPeerDown(index);
    }
  }
  // A peer that accepted the TCP connection but never finishes the handshake (a
  // stopped process, a black hole) must not hold the dialer's one connection.
  const auto too_long_ago = std::chrono::steady_clock::now() - options_.config.heartbeat_timeout;
  for (const auto& session : std::vector<PeerSession::Ptr>(sessions_)) {
    if (session->bound_index() < 0 && !session->connection().closed() &&
        session->waiting_since() < too_long_ago) {
      spdlog::warn("{}: no handshake within {} ms; closing",
                   session->connection().remote_endpoint(),
                   options_.config.heartbeat_timeout.count());
      session->connection().Close(Status::IoError("handshake timeout"));
    }
  }
  const std::vector<std::string> freed = membership_.FreeLongDownDynamicServers(now);
  for (const std::string& id : freed) {
    spdlog::info("dynamic server {} down for over {} ms: its index is free again", id,
                 options_.config.dynamic_server_timeout.count());
  }
  (void)SaveDynamicIdentities();  // logged; retried at the next tick
  Publish(membership_.generation() != generation);
  deploy_->Tick();
  heartbeat_timer_.expires_after(options_.config.heartbeat_interval);
  heartbeat_timer_.async_wait([this](const boost::system::error_code& error) {
    if (!error) OnHeartbeatTimer();
  });
}

void Sidecar::Publish(bool changed) {
  if (changed) {
    ++counters_.view_changes;
    if (membership_.is_triad(options_.self.index)) PushView();
  }
  // Until the view is founded, readers keep the file's previous content (or
  // their fallback): this sidecar knows too little to say who is down.
  vitals_.ObserveStates(membership_.ToView(NowUnixMs()), NowUnixMs());
  if (!membership_.founded()) return;
  if (!view_published_) {
    view_published_ = true;
    spdlog::info("publishing the view to {} (founded after {} ms)", options_.view_path,
                 NowUnixMs() - started_unix_ms_);
  }
  // Also unchanged: the publish time tells readers the sidecar is alive.
  if (Status published = view_writer_->Publish(membership_.ToView(NowUnixMs())); !published.ok()) {
    spdlog::error("publishing the view: {}", published.message());
  }
}

void Sidecar::PushView() {
  const protocol::ViewUpdate update = membership_.FullUpdate();
  for (const auto& peer : peers_) {
    if (peer) (void)peer->connection().Send(update);
  }
}

void Sidecar::Stop() {
  if (stopped_) return;
  stopped_ = true;
  heartbeat_timer_.cancel();
  vitals_timer_.cancel();
  dialers_.Stop();
  if (listener_) listener_->Stop();
  if (admin_) admin_->Stop();
  if (memcache_) memcache_->Stop();
  if (deploy_) deploy_->Stop();
  cache_->Stop();
  for (const auto& session : std::vector<PeerSession::Ptr>(sessions_)) {
    session->connection().Close(Status::Ok());
  }
  sessions_.clear();
  for (auto& peer : peers_) peer.reset();
  spdlog::info("stopped");
}

StatusSnapshot Sidecar::Snapshot(int64_t now_unix_ms) const {
  StatusSnapshot snapshot;
  snapshot.now_unix_ms = now_unix_ms;
  snapshot.cluster_name = options_.config.name;
  snapshot.generation = membership_.generation();
  snapshot.view_stale_since_unix_ms = membership_.view_stale_since_unix_ms();
  snapshot.self_index = options_.self.index;
  snapshot.self_id = membership_.record(options_.self.index).id;
  snapshot.self_incarnation = membership_.record(options_.self.index).incarnation;
  const ClusterView view = membership_.ToView(now_unix_ms);
  for (int index = 0; index < kMaxServers; ++index) {
    if (!membership_.Known(index)) continue;
    ServerStatus& server = snapshot.servers.emplace_back();
    server.record = membership_.record(index);
    server.record.index = index;
    server.state = view.state(index);
    server.up_since_unix_ms = view.server(index).up_since_unix_ms;
    server.connected = membership_.connected(index);
    if (server.connected) {
      server.heartbeat_age_ms = now_unix_ms - membership_.last_heard_unix_ms(index);
    }
    server.state_since_unix_ms = vitals_.StateSinceUnixMs(index);
    server.round_trip_ms = vitals_.RoundTripMs(index);
    server.sessions = vitals_.Sessions(index);
    if (server.state == ServerState::kUp) {
      const int64_t slow_start_ms = options_.config.slow_start.count();
      const int64_t up_ms = now_unix_ms - server.up_since_unix_ms;
      server.warmup = slow_start_ms <= 0 || server.up_since_unix_ms == 0
                          ? 1.0
                          : std::clamp(static_cast<double>(up_ms) / slow_start_ms, 0.0, 1.0);
    }
  }
  snapshot.counters = counters_;
  if (deploy_) {
    snapshot.counters.deploy_bytes_sent = deploy_->counters().pack_bytes_sent;
    snapshot.counters.deploy_bytes_received = deploy_->counters().pack_bytes_received;
  }
  for (const auto& [name, target] : membership_.deployments()) {
    snapshot.deployments.push_back(target);
  }

  StoreStatus& store = snapshot.store;
  store.stores_records = store_ != nullptr;
  store.ready = cache_->store_ready();
  store.synced = cache_->synced();
  store.owning = cache_->owning();
  store.quorum = cache_->quorum();
  store.voters_reached = cache_->voters_reached();
  store.durability =
      options_.config.durability == ClusterConfig::Durability::kFsync ? "fsync" : "replicated";
  store.ready_triad = cache_->ReadyTriad();
  store.node = cache_->stats();
  for (const CacheConfig& cache : options_.config.caches) {
    CacheStatus& status = store.caches.emplace_back();
    status.name = cache.name;
    if (store_) status.stored = store_->Stats(cache.name);
    if (const auto answered = store.node.per_cache.find(cache.name);
        answered != store.node.per_cache.end()) {
      status.answered = answered->second;
    }
  }
  store.replication_lag_ms = cache_->OldestReplicationMs();
  store.applied_forgotten_early = cache_->applied_forgotten_early();
  if (memcache_) snapshot.memcached = memcache_->stats();
  return snapshot;
}

}  // namespace cb::daemon
