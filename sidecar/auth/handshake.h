// The handshake that opens every sidecar connection: a mutual HMAC-SHA256
// challenge over fresh nonces from both sides, and a check that both sides run
// the same protocol, cluster and cluster file. Pure: no sockets, no clock, no
// logging; the connection feeds it messages and sends what it returns.
//
//   dialer                                   listener
//   Hello{identity_d, nonce_d}          -->
//                                       <--  HelloReply{identity_l, nonce_l, proof_l}
//   Proof{proof_d}                      -->
//                                       <--  Welcome
//
// Either side may answer with a Refusal{reason} instead, at any step, and closes.
//
// proof_x = HMAC-SHA256(key, label_x || nonce_d || nonce_l || identity_d ||
// identity_l), every part length-prefixed, label_x being "cluster-balance
// listener v1" or "cluster-balance dialer v1". Each side draws its own nonce, so
// a proof is bound to one connection (no replay from another session), to one
// direction (no reflection of the listener's proof as the dialer's) and to both
// identities as sent (a man in the middle cannot alter them).
//
// A side refuses a peer whose protocol version, cluster name or config digest
// differs from its own (the digest reason names the part that differs), that
// claims this side's own server id, that sends a nonce or proof of the wrong
// length, a proof that does not verify, or a message out of order. Each reason
// is one line, fit for a log line on both sides; bytes the peer chose are
// sanitized in it.
//
// Thread-safety: not thread-safe; one Handshake per connection, used by one strand.
#ifndef CLUSTER_BALANCE_SIDECAR_AUTH_HANDSHAKE_H_
#define CLUSTER_BALANCE_SIDECAR_AUTH_HANDSHAKE_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "shared/config_digest.h"
#include "shared/status.h"
#include "sidecar/auth/cluster_key.h"
#include "sidecar/protocol/messages.h"

namespace cb::auth {

// Yields protocol::kNonceBytes fresh unpredictable bytes per call, or an error.
using NonceSource = std::function<Result<std::string>()>;

// The production NonceSource: OpenSSL's RAND_bytes. IoError when it fails.
Result<std::string> RandomNonce();

// A reason (or any text) a peer sent, fit for one log line: control and
// non-ASCII bytes escaped, cut after 1 KiB.
std::string SanitizedReason(std::string_view reason);

// ConfigDigest <-> its wire form, the hex strings of protocol::DigestSections.
// FromDigestSections fails with InvalidArgument naming the malformed section.
protocol::DigestSections ToDigestSections(const ConfigDigest& digest);
Result<ConfigDigest> FromDigestSections(const protocol::DigestSections& sections);

class Handshake {
 public:
  enum class Role { kDialer, kListener };

  // What to do after a call: send `send` in order (possibly nothing); then, if
  // `refused`, close the connection (it holds the reason to log: this side's own
  // reason, which `send` carries to the peer as a Refusal, or "peer refused: ..."
  // when the peer refused); if `done`, the peer is authenticated and the
  // connection is open for the other messages. Never both done and refused.
  struct Step {
    std::vector<protocol::Message> send;
    bool done = false;
    std::optional<std::string> refused;
  };

  // `self` is what this side sends about itself, `key` the cluster key, `nonces`
  // where this side's nonce comes from (injectable for tests).
  Handshake(Role role, protocol::PeerIdentity self, ClusterKey key,
            NonceSource nonces = RandomNonce);

  Handshake(const Handshake&) = delete;
  Handshake& operator=(const Handshake&) = delete;
  Handshake(Handshake&&) = default;
  Handshake& operator=(Handshake&&) = default;

  // Call once, before OnMessage. The dialer's Step sends Hello (or refuses when no
  // nonce can be drawn); the listener's is empty (it waits for Hello, and calling
  // Start is optional for it). A second call on a dialer refuses.
  Step Start();

  // Feeds the next message from the peer. After the handshake has finished (done
  // or refused), every message is refused ("handshake already finished").
  Step OnMessage(const protocol::Message& message);

  // True once the peer is authenticated.
  bool done() const { return state_ == State::kDone; }

  // The identity the peer sent; default-constructed before it did. Authenticated
  // only when done(); before that, use it for log lines only.
  const protocol::PeerIdentity& peer() const { return peer_; }

 private:
  enum class State {
    kNotStarted,
    kAwaitHello,
    kAwaitHelloReply,
    kAwaitProof,
    kAwaitWelcome,
    kDone,
    kRefused
  };

  Step OnHello(const protocol::Hello& hello);
  Step OnHelloReply(const protocol::HelloReply& reply);
  Step OnProof(const protocol::Proof& proof);
  // Empty when the peer's identity is acceptable, else the reason to refuse it.
  std::string CheckPeer(const protocol::PeerIdentity& peer, const std::string& nonce) const;
  // The proof the side of `role` gives for this connection's transcript.
  Result<std::string> ProofBy(Role role) const;
  // This side's nonce: kNonceBytes from `nonces_`, else an error.
  Result<std::string> DrawNonce();
  Step Refuse(std::string reason);
  const char* Expected() const;

  Role role_;
  protocol::PeerIdentity self_;
  ClusterKey key_;
  NonceSource nonces_;
  State state_;
  protocol::PeerIdentity peer_;
  std::string dialer_nonce_;
  std::string listener_nonce_;
};

}  // namespace cb::auth

#endif  // CLUSTER_BALANCE_SIDECAR_AUTH_HANDSHAKE_H_
