// The Sidecar's part of the join exchange (membership/admission.h): a triad
// server admits a dynamic server, or confirms its index, before the connection
// counts as that server's; a dynamic server learns whether it keeps its index.
// Also what follows from admissions: saving the dynamic servers, and dropping the
// connection of a server whose index went to another.
#include "sidecar/daemon/sidecar.h"

#include <spdlog/spdlog.h>

#include <string>

#include "shared/route_codec.h"
#include "sidecar/daemon/daemon_clock.h"
#include "sidecar/daemon/node_state.h"

namespace cb::daemon {

void Sidecar::OnJoinMessage(const PeerSession::Ptr& session, const protocol::Message& message) {
  const auto* request = std::get_if<protocol::JoinRequest>(&message);
  const auto* reply = std::get_if<protocol::JoinReply>(&message);
  if (request != nullptr && session->dialed_index() < 0) {
    OnJoinRequest(session, *request);
  } else if (reply != nullptr && session->dialed_index() >= 0) {
    OnJoinReply(session, *reply);
  } else if (const auto* refusal = std::get_if<protocol::Refusal>(&message)) {
    spdlog::warn("{} at {}: {}", session->peer().server_id, session->connection().remote_endpoint(),
                 auth::SanitizedReason(refusal->reason));
    CountRefusal(refusal->reason);
    session->connection().Close(Status::InvalidArgument(refusal->reason));
  } else {
    const std::string why = std::string("out-of-order ") +
                            std::string(protocol::MessageName(message)) + " while joining";
    spdlog::warn("{} at {}: {}; closing the connection", session->peer().server_id,
                 session->connection().remote_endpoint(), why);
    session->connection().Close(Status::InvalidArgument(why));
  }
}

void Sidecar::OnJoinRequest(const PeerSession::Ptr& session, const protocol::JoinRequest& request) {
  const protocol::PeerIdentity& peer = session->peer();
  if (request.server_id != peer.server_id) {
    const std::string problem = "join request for \"" + request.server_id +
                                "\" on a connection authenticated as \"" + peer.server_id + "\"";
    Refuse(session, problem);
    return;
  }
  const uint64_t identities_before = membership_.identity_generation();
  Result<int> admitted = membership_.Admit(request, NowUnixMs());
  if (!admitted.ok()) {
    spdlog::warn("did not admit {} at {}: {}", request.server_id,
                 session->connection().remote_endpoint(), admitted.status().message());
    ++counters_.refusals["join"];
    (void)session->connection().Send(protocol::JoinReply{-1, admitted.status().message()});
    session->connection().CloseAfterFlush(admitted.status());
    return;
  }
  const int index = *admitted;
  const bool changed = membership_.identity_generation() != identities_before;
  if (changed || peer.index != index) {
    spdlog::info("admitted dynamic server {} at index {} (route {}), {} {}", request.server_id,
                 index, RouteCharForIndex(index), request.cluster_address,
                 peer.index == index ? "with new addresses or weight"
                 : peer.index < 0    ? "on its first start"
                                     : "in place of index " + std::to_string(peer.index));
  }
  // Durable before the answer: a restarted triad server must not hand the index out
  // again.
  if (Status saved = SaveDynamicIdentities(); !saved.ok()) {
    const std::string reason =
        "this triad server cannot save its dynamic servers (" + saved.message() + "); ask another";
    (void)session->connection().Send(protocol::JoinReply{-1, reason});
    session->connection().CloseAfterFlush(Status::IoError(reason));
    return;
  }
  (void)session->connection().Send(protocol::JoinReply{index, ""});
  if (peer.index == index) {
    BindPeer(session, index);
    if (changed) Publish(true);
    return;
  }
  // A first start, or a server whose index went elsewhere: it reconnects as `index`.
  session->connection().CloseAfterFlush(Status::Ok());
  if (changed) Publish(true);
}

void Sidecar::OnJoinReply(const PeerSession::Ptr& session, const protocol::JoinReply& reply) {
  const std::string& triad = session->peer().server_id;
  if (reply.index < 0) {
    spdlog::warn("{} did not confirm index {}: {}", triad, options_.self.index,
                 auth::SanitizedReason(reply.reason));
    session->connection().Close(Status::InvalidArgument(reply.reason));
    return;
  }
  if (!membership_.is_dynamic_index(reply.index)) {
    spdlog::warn("{} answered index {}, which no dynamic server can hold; closing", triad,
                 reply.index);
    session->connection().Close(Status::InvalidArgument("impossible index in JoinReply"));
    return;
  }
  if (reply.index != options_.self.index) {
    spdlog::warn("{} moved {} from index {} to {}: the old one was given to another server", triad,
                 options_.self.id, options_.self.index, reply.index);
    session->connection().Close(Status::Ok());
    if (options_.on_index_moved) options_.on_index_moved(reply.index);
    return;
  }
  BindPeer(session, session->dialed_index());
}

void Sidecar::DropDisplacedPeers() {
  for (int index = membership_.first_dynamic_index(); index < kMaxServers; ++index) {
    const PeerSession::Ptr session = peers_[static_cast<std::size_t>(index)];
    if (!session || membership_.record(index).id == session->peer().server_id) continue;
    const std::string problem =
        "index " + std::to_string(index) + " now belongs to " +
        (membership_.Known(index) ? "\"" + membership_.record(index).id + "\"" : "nobody (freed)");
    peers_[static_cast<std::size_t>(index)].reset();
    session->set_bound_index(-1);
    cache_->OnPeerDown(index);
    Refuse(session, problem);
  }
}

Status Sidecar::SaveDynamicIdentities() {
  if (!membership_.is_triad(options_.self.index) ||
      membership_.identity_generation() == saved_identity_generation_) {
    return Status::Ok();
  }
  if (Status saved =
          daemon::SaveDynamicIdentities(options_.data_dir, membership_.DynamicIdentities());
      !saved.ok()) {
    spdlog::error("saving the dynamic servers: {}", saved.message());
    return saved;
  }
  saved_identity_generation_ = membership_.identity_generation();
  return Status::Ok();
}

}  // namespace cb::daemon
