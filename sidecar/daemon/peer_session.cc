#include "sidecar/daemon/peer_session.h"

#include <utility>

#include "shared/config_digest.h"

namespace cb::daemon {

protocol::PeerIdentity MakePeerIdentity(const ClusterConfig& config, const std::string& server_id,
                                        int index, uint64_t incarnation) {
  protocol::PeerIdentity identity;
  identity.cluster_name = config.name;
  identity.server_id = server_id;
  identity.index = index;
  identity.incarnation = incarnation;
  identity.digest = auth::ToDigestSections(DigestConfig(config));
  return identity;
}

PeerSession::PeerSession(std::shared_ptr<transport::Connection> connection,
                         auth::Handshake handshake, int dialed_index, Handlers handlers)
    : connection_(std::move(connection)),
      handshake_(std::move(handshake)),
      dialed_index_(dialed_index),
      handlers_(std::move(handlers)),
      waiting_since_(std::chrono::steady_clock::now()) {}

PeerSession::Ptr PeerSession::Open(std::shared_ptr<transport::Connection> connection,
                                   auth::Handshake handshake, int dialed_index, Handlers handlers) {
  Ptr session(new PeerSession(std::move(connection), std::move(handshake), dialed_index,
                              std::move(handlers)));
  std::weak_ptr<PeerSession> weak = session;
  session->connection_->Start(
      [weak](protocol::Message message) {
        if (Ptr alive = weak.lock()) alive->OnMessage(std::move(message));
      },
      [weak](const Status& why) {
        if (Ptr alive = weak.lock()) alive->handlers_.on_closed(alive, why);
      });
  session->Follow(session->handshake_.Start());
  return session;
}

void PeerSession::OnMessage(protocol::Message message) {
  if (handshake_.done()) {
    handlers_.on_message(shared_from_this(), std::move(message));
    return;
  }
  Follow(handshake_.OnMessage(message));
}

void PeerSession::Follow(const auth::Handshake::Step& step) {
  for (const protocol::Message& message : step.send) (void)connection_->Send(message);
  if (step.refused) {
    const std::string& reason = *step.refused;
    const bool by_peer = step.send.empty();  // else the Refusal is on its way
    handlers_.on_refused(shared_from_this(), reason, by_peer);
    if (by_peer) {
      connection_->Close(Status::InvalidArgument(reason));
    } else {
      connection_->CloseAfterFlush(Status::InvalidArgument(reason));
    }
  } else if (step.done) {
    handlers_.on_authenticated(shared_from_this());
  }
}

void PeerSession::Refuse(const std::string& reason) {
  (void)connection_->Send(protocol::Refusal{reason});
  connection_->CloseAfterFlush(Status::InvalidArgument(reason));
}

}  // namespace cb::daemon
