// One connection with another sidecar, from the moment it is dialed or accepted
// until it closes: the mutual handshake (auth/handshake.h) first, then the
// peer's framed messages. The Sidecar holds one per peer connection, the Joiner
// one per triad server it asks for an index; what follows the handshake is
// theirs.
//
// Contract:
//  - Open() starts the connection's read loop and the handshake. Until the
//    handshake is done every message goes to it, and what it answers is sent.
//  - A refusal is reported to on_refused with its reason (for the owner's log
//    line and counters), then the connection closes: after the Refusal this side
//    sends has gone out, or at once when the peer refused (by_peer).
//  - Once the peer is authenticated, on_authenticated is called; every later
//    message goes to on_message, in order.
//  - on_closed is called once, when the connection closes, with its reason
//    (transport/connection.h); never from inside a call into the session.
//  - The connection's callbacks do not keep the session alive: a session its
//    owner dropped calls no handler again.
//
// Thread-safety: none; use it on the io_context thread of its connection, where
// every handler runs.
#ifndef CLUSTER_BALANCE_SIDECAR_DAEMON_PEER_SESSION_H_
#define CLUSTER_BALANCE_SIDECAR_DAEMON_PEER_SESSION_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "shared/cluster_config.h"
#include "shared/status.h"
#include "sidecar/auth/handshake.h"
#include "sidecar/protocol/messages.h"
#include "sidecar/transport/connection.h"

namespace cb::daemon {

// What this side tells a peer about itself in the handshake: `server_id` at
// `index` (-1: a dynamic server not admitted yet) in this start, `incarnation`.
protocol::PeerIdentity MakePeerIdentity(const ClusterConfig& config, const std::string& server_id,
                                        int index, uint64_t incarnation);

class PeerSession : public std::enable_shared_from_this<PeerSession> {
 public:
  using Ptr = std::shared_ptr<PeerSession>;
  struct Handlers {
    std::function<void(const Ptr&)> on_authenticated;
    std::function<void(const Ptr&, protocol::Message)> on_message;
    // `by_peer`: the peer refused this side ("peer refused: ..."), else this side
    // refused the peer.
    std::function<void(const Ptr&, const std::string& reason, bool by_peer)> on_refused;
    std::function<void(const Ptr&, const Status& why)> on_closed;
  };

  // `connection`: not started yet, from a PeerDialer (`dialed_index`: the server
  // dialed) or a Listener (-1). Every handler must be set.
  static Ptr Open(std::shared_ptr<transport::Connection> connection, auth::Handshake handshake,
                  int dialed_index, Handlers handlers);

  PeerSession(const PeerSession&) = delete;
  PeerSession& operator=(const PeerSession&) = delete;

  int dialed_index() const { return dialed_index_; }
  bool authenticated() const { return handshake_.done(); }
  // The identity the peer sent: authenticated once authenticated(), before that
  // for log lines only.
  const protocol::PeerIdentity& peer() const { return handshake_.peer(); }
  transport::Connection& connection() { return *connection_; }
  const transport::Connection& connection() const { return *connection_; }

  // After the handshake: tells the peer why in a Refusal and closes once that is
  // sent (on_closed gets InvalidArgument(reason)).
  void Refuse(const std::string& reason);

  // When the session began to wait for the peer: when it opened, or at the last
  // RestartWaitClock() (e.g. a request sent). Its owner closes a session that
  // waits too long for the handshake or an answer.
  std::chrono::steady_clock::time_point waiting_since() const { return waiting_since_; }
  void RestartWaitClock() { waiting_since_ = std::chrono::steady_clock::now(); }

  // The owner's marks, which the session itself does not read: the index it
  // serves as that peer's connection (-1: none, or no longer), and whether the
  // join exchange (membership/admission.h) is under way on it.
  int bound_index() const { return bound_index_; }
  void set_bound_index(int index) { bound_index_ = index; }
  bool joining() const { return joining_; }
  void set_joining(bool joining) { joining_ = joining; }

 private:
  PeerSession(std::shared_ptr<transport::Connection> connection, auth::Handshake handshake,
              int dialed_index, Handlers handlers);

  void OnMessage(protocol::Message message);
  // Sends what the handshake answered and acts on where it stands.
  void Follow(const auth::Handshake::Step& step);

  std::shared_ptr<transport::Connection> connection_;
  auth::Handshake handshake_;
  int dialed_index_;
  Handlers handlers_;
  std::chrono::steady_clock::time_point waiting_since_;
  int bound_index_ = -1;
  bool joining_ = false;
};

}  // namespace cb::daemon

#endif  // CLUSTER_BALANCE_SIDECAR_DAEMON_PEER_SESSION_H_
