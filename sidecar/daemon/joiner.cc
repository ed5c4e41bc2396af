#include "sidecar/daemon/joiner.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "shared/cluster_view.h"
#include "shared/config_digest.h"
#include "sidecar/membership/admission.h"

namespace cb::daemon {

protocol::JoinRequest MakeJoinRequest(const ServerConfig& self, int previous_index) {
  protocol::JoinRequest request;
  request.server_id = self.id;
  request.cluster_address = self.cluster_address.ToString();
  request.http_address = self.http_address.ToString();
  request.weight = self.weight;
  request.previous_index = previous_index;
  return request;
}

struct Joiner::Attempt {
  std::shared_ptr<transport::Connection> connection;
  auth::Handshake handshake;
  std::string triad_id;
  // When it connected, then when the request was sent: the timeout runs from there.
  std::chrono::steady_clock::time_point since = std::chrono::steady_clock::now();
};

Joiner::Joiner(boost::asio::io_context& io, ClusterConfig config, ServerConfig self,
               auth::ClusterKey key, uint64_t incarnation, AdmittedHandler on_admitted)
    : io_(io),
      config_(std::move(config)),
      self_(std::move(self)),
      key_(std::move(key)),
      incarnation_(incarnation),
      on_admitted_(std::move(on_admitted)),
      timer_(io) {}

Joiner::~Joiner() { Stop(); }

void Joiner::Start() {
  transport::DialerOptions options;
  options.limits.max_payload_bytes = config_.max_frame_bytes;
  const int triad_size = std::min<int>(3, static_cast<int>(config_.servers.size()));
  for (int index = 0; index < triad_size; ++index) {
    const ServerConfig& triad = config_.servers[static_cast<std::size_t>(index)];
    auto dialer = std::make_unique<transport::PeerDialer>(
        io_, triad.cluster_address, options,
        [this, index](std::shared_ptr<transport::Connection> connection) {
          OnConnection(std::move(connection), index);
        },
        [id = triad.id](const Status& why, std::chrono::milliseconds delay) {
          spdlog::debug("{}: {}; retrying in {} ms", id, why.message(), delay.count());
        });
    dialer->Start();
    dialers_[index] = std::move(dialer);
  }
  spdlog::info("{} asks the triad for an index", self_.id);
  OnTimer();
}

void Joiner::OnTimer() {
  if (stopped_) return;
  const auto now = std::chrono::steady_clock::now();
  for (const auto& attempt : std::vector<std::shared_ptr<Attempt>>(attempts_)) {
    const bool waiting = !attempt->handshake.done() || attempt == asking_;
    if (waiting && now - attempt->since > config_.heartbeat_timeout) {
      spdlog::warn("{} at {}: no answer within {} ms; closing", attempt->triad_id,
                   attempt->connection->remote_endpoint(), config_.heartbeat_timeout.count());
      attempt->connection->Close(Status::IoError("timeout"));
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
  protocol::PeerIdentity identity;
  identity.cluster_name = config_.name;
  identity.server_id = self_.id;
  identity.index = -1;
  identity.incarnation = incarnation_;
  identity.digest = auth::ToDigestSections(DigestConfig(config_));
  auto attempt = std::make_shared<Attempt>(
      Attempt{connection, auth::Handshake(auth::Handshake::Role::kDialer, identity, key_),
              config_.servers[static_cast<std::size_t>(triad_index)].id});
  attempts_.push_back(attempt);
  std::weak_ptr<Attempt> weak = attempt;
  connection->Start(
      [this, weak](protocol::Message message) {
        if (auto a = weak.lock()) OnMessage(a, message);
      },
      [this, weak](const Status&) {
        if (auto a = weak.lock()) OnClosed(a);
      });
  const auth::Handshake::Step step = attempt->handshake.Start();
  for (const protocol::Message& message : step.send) (void)connection->Send(message);
  if (step.refused) connection->Close(Status::InvalidArgument(*step.refused));
}

void Joiner::OnMessage(const std::shared_ptr<Attempt>& attempt, const protocol::Message& message) {
  if (!attempt->handshake.done()) {
    const auth::Handshake::Step step = attempt->handshake.OnMessage(message);
    for (const protocol::Message& reply : step.send) (void)attempt->connection->Send(reply);
    if (step.refused) {
      spdlog::warn("{} at {}: {}", attempt->triad_id, attempt->connection->remote_endpoint(),
                   *step.refused);
      attempt->connection->CloseAfterFlush(Status::InvalidArgument(*step.refused));
    } else if (step.done) {
      AskNext();
    }
    return;
  }
  const auto* reply = std::get_if<protocol::JoinReply>(&message);
  if (reply == nullptr || attempt != asking_) {
    if (const auto* refusal = std::get_if<protocol::Refusal>(&message)) {
      spdlog::warn("{} refused {}: {}", attempt->triad_id, self_.id,
                   auth::SanitizedReason(refusal->reason));
    }
    attempt->connection->Close(Status::InvalidArgument("unexpected message"));
    return;
  }
  if (reply->index < membership::FirstDynamicIndex(static_cast<int>(config_.servers.size())) ||
      reply->index >= kMaxServers) {
    spdlog::warn("{} did not admit {}: {}", attempt->triad_id, self_.id,
                 reply->index < 0 ? auth::SanitizedReason(reply->reason)
                                  : "it answered index " + std::to_string(reply->index) +
                                        ", which no dynamic server can hold");
    asking_.reset();
    attempt->connection->Close(Status::InvalidArgument(reply->reason));
    AskNext();
    return;
  }
  spdlog::info("{} admitted {} at index {} (route {})", attempt->triad_id, self_.id, reply->index,
               RouteCharForIndex(reply->index));
  const int index = reply->index;
  AdmittedHandler on_admitted = std::move(on_admitted_);
  Stop();
  on_admitted(index);
}

void Joiner::OnClosed(const std::shared_ptr<Attempt>& attempt) {
  std::erase(attempts_, attempt);
  if (attempt == asking_) {
    asking_.reset();
    AskNext();
  }
}

void Joiner::AskNext() {
  if (stopped_ || asking_) return;
  for (const std::shared_ptr<Attempt>& attempt : attempts_) {
    if (!attempt->handshake.done() || attempt->connection->closed()) continue;
    if (attempt->connection->Send(MakeJoinRequest(self_, -1)).ok()) {
      asking_ = attempt;
      attempt->since = std::chrono::steady_clock::now();
      return;
    }
  }
}

void Joiner::Stop() {
  if (stopped_) return;
  stopped_ = true;
  timer_.cancel();
  for (auto& [index, dialer] : dialers_) dialer->Stop();
  for (const auto& attempt : std::vector<std::shared_ptr<Attempt>>(attempts_)) {
    attempt->connection->Close(Status::Ok());
  }
  attempts_.clear();
  asking_.reset();
}

}  // namespace cb::daemon
