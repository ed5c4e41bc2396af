#include "sidecar/daemon/joiner.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "shared/cluster_view.h"
#include "shared/server_set.h"
#include "sidecar/membership/admission.h"

namespace cb::daemon {

Joiner::Joiner(boost::asio::io_context& io, ClusterConfig config, ServerConfig self,
               auth::ClusterKey key, uint64_t incarnation, AdmittedHandler on_admitted)
    : config_(std::move(config)),
      self_(std::move(self)),
      key_(std::move(key)),
      incarnation_(incarnation),
      on_admitted_(std::move(on_admitted)),
      dialers_(io),
      timer_(io) {}

Joiner::~Joiner() { Stop(); }

void Joiner::Start() {
  const int triad_size = std::min<int>(kTriadSize, static_cast<int>(config_.servers.size()));
  dialers_.Dial(config_, ServerSet::FirstN(triad_size), transport::DialerOptions{},
                [this](std::shared_ptr<transport::Connection> connection, int index) {
                  OnConnection(std::move(connection), index);
                });
  spdlog::info("{} asks the triad for an index", self_.id);
  OnTimer();
}

void Joiner::OnTimer() {
  if (stopped_) return;
  const auto too_long_ago = std::chrono::steady_clock::now() - config_.heartbeat_timeout;
  for (const auto& attempt : std::vector<PeerSession::Ptr>(attempts_)) {
    const bool waiting = !attempt->authenticated() || attempt == asking_;
    if (waiting && attempt->waiting_since() < too_long_ago) {
      spdlog::warn("{} at {}: no answer within {} ms; closing", TriadId(*attempt),
                   attempt->connection().remote_endpoint(), config_.heartbeat_timeout.count());
      attempt->connection().Close(Status::IoError("timeout"));
    }
  }
  timer_.expires_after(config_.heartbeat_interval);
  timer_.async_wait([this](const boost::system::error_code& error) {
    if (!error) OnTimer();
  });
}

void Joiner::OnConnection(std::shared_ptr<transport::Connection> connection, int triad_index) {
  if (stopped_) {
    connection->Close();
    return;
  }
  PeerSession::Handlers handlers;
  handlers.on_authenticated = [this](const PeerSession::Ptr&) { AskNext(); };
  handlers.on_message = [this](const PeerSession::Ptr& attempt, protocol::Message message) {
    OnMessage(attempt, message);
  };
  handlers.on_refused = [this](const PeerSession::Ptr& attempt, const std::string& reason, bool) {
    spdlog::warn("{} at {}: {}", TriadId(*attempt), attempt->connection().remote_endpoint(),
                 reason);
  };
  handlers.on_closed = [this](const PeerSession::Ptr& attempt, const Status&) {
    OnClosed(attempt);
  };
  auth::Handshake handshake(auth::Handshake::Role::kDialer,
                            MakePeerIdentity(config_, self_.id, -1, incarnation_), key_);
  attempts_.push_back(PeerSession::Open(std::move(connection), std::move(handshake), triad_index,
                                        std::move(handlers)));
}

const std::string& Joiner::TriadId(const PeerSession& attempt) const {
  return config_.servers[static_cast<std::size_t>(attempt.dialed_index())].id;
}

void Joiner::OnMessage(const PeerSession::Ptr& attempt, const protocol::Message& message) {
  const auto* reply = std::get_if<protocol::JoinReply>(&message);
  if (reply == nullptr || attempt != asking_) {
    if (const auto* refusal = std::get_if<protocol::Refusal>(&message)) {
      spdlog::warn("{} refused {}: {}", TriadId(*attempt), self_.id,
                   auth::SanitizedReason(refusal->reason));
    }
    attempt->connection().Close(Status::InvalidArgument("unexpected message"));
    return;
  }
  if (reply->index < membership::FirstDynamicIndex(static_cast<int>(config_.servers.size())) ||
      reply->index >= kMaxServers) {
    spdlog::warn("{} did not admit {}: {}", TriadId(*attempt), self_.id,
                 reply->index < 0 ? auth::SanitizedReason(reply->reason)
                                  : "it answered index " + std::to_string(reply->index) +
                                        ", which no dynamic server can hold");
    asking_.reset();
    attempt->connection().Close(Status::InvalidArgument(reply->reason));
    AskNext();
    return;
  }
  spdlog::info("{} admitted {} at index {} (route {})", TriadId(*attempt), self_.id, reply->index,
               RouteCharForIndex(reply->index));
  const int index = reply->index;
  AdmittedHandler on_admitted = std::move(on_admitted_);
  Stop();
  on_admitted(index);
}

void Joiner::OnClosed(const PeerSession::Ptr& attempt) {
  std::erase(attempts_, attempt);
  if (attempt == asking_) {
    asking_.reset();
    AskNext();
  }
}

void Joiner::AskNext() {
  if (stopped_ || asking_) return;
  for (const PeerSession::Ptr& attempt : attempts_) {
    if (!attempt->authenticated() || attempt->connection().closed()) continue;
    if (attempt->connection().Send(membership::MakeJoinRequest(self_, -1)).ok()) {
      asking_ = attempt;
      attempt->RestartWaitClock();
      return;
    }
  }
}

void Joiner::Stop() {
  if (stopped_) return;
  stopped_ = true;
  timer_.cancel();
  dialers_.Stop();
  for (const auto& attempt : std::vector<PeerSession::Ptr>(attempts_)) {
    attempt->connection().Close(Status::Ok());
  }
  attempts_.clear();
  asking_.reset();
}

}  // namespace cb::daemon
