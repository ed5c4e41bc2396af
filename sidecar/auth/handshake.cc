#include "sidecar/auth/handshake.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstdint>
#include <cstdio>
#include <string_view>
#include <utility>

namespace cb::auth {
namespace {

constexpr std::string_view kListenerLabel = "cluster-balance listener v1";
constexpr std::string_view kDialerLabel = "cluster-balance dialer v1";
constexpr std::size_t kMaxQuotedBytes = 128;   // of a name the peer sent
constexpr std::size_t kMaxReasonBytes = 1024;  // of a refusal reason the peer sent

std::string OpenSslError() {
  char text[256];
  ERR_error_string_n(ERR_get_error(), text, sizeof(text));
  return text;
}

// `text` from the peer, fit for a one-line log: control and non-ASCII bytes (and
// `quote`, if given) escaped as \xNN, cut after `max_bytes`.
std::string Sanitized(std::string_view text, std::size_t max_bytes, char quote = '\\') {
  std::string out;
  for (std::size_t i = 0; i < text.size() && i < max_bytes; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != quote) {
      out += static_cast<char>(c);
    } else {
      char escaped[5];
      std::snprintf(escaped, sizeof(escaped), "\\x%02x", c);
      out += escaped;
    }
  }
  if (text.size() > max_bytes) out += "...";
  return out;
}

std::string Quoted(std::string_view text) {
  return "\"" + Sanitized(text, kMaxQuotedBytes, '"') + "\"";
}

// The HMAC input: every part as an 8-byte big-endian length, then its bytes.
class Transcript {
 public:
  Transcript& Bytes(std::string_view bytes) {
    AppendBigEndian(bytes.size());
    text_.append(bytes);
    return *this;
  }
  Transcript& Number(uint64_t value) {
    AppendBigEndian(8);
    AppendBigEndian(value);
    return *this;
  }
  Transcript& Identity(const protocol::PeerIdentity& identity) {
    Number(identity.protocol_version)
        .Bytes(identity.cluster_name)
        .Bytes(identity.server_id)
        .Number(static_cast<uint64_t>(static_cast<int64_t>(identity.index)))
        .Number(identity.incarnation);
    const protocol::DigestSections& digest = identity.digest;
    for (const std::string* section : {&digest.cluster, &digest.node, &digest.servers,
                                       &digest.server_set, &digest.caches, &digest.deploy}) {
      Bytes(*section);
    }
    return *this;
  }
  const std::string& text() const { return text_; }

 private:
  void AppendBigEndian(uint64_t value) {
    for (int shift = 56; shift >= 0; shift -= 8) {
      text_ += static_cast<char>((value >> shift) & 0xff);
    }
  }

  std::string text_;
};

}  // namespace

std::string SanitizedReason(std::string_view reason) { return Sanitized(reason, kMaxReasonBytes); }

Result<std::string> RandomNonce() {
  std::string nonce(protocol::kNonceBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()), static_cast<int>(nonce.size())) !=
      1) {
    return Status::IoError("cannot draw a nonce: RAND_bytes: " + OpenSslError());
  }
  return nonce;
}

protocol::DigestSections ToDigestSections(const ConfigDigest& digest) {
  return protocol::DigestSections{digest.cluster.Hex(), digest.node.Hex(),
                                  digest.servers.Hex(), digest.server_set.Hex(),
                                  digest.caches.Hex(),  digest.deploy.Hex()};
}

Result<ConfigDigest> FromDigestSections(const protocol::DigestSections& sections) {
  const std::pair<const char*, const std::string*> parts[] = {
      {"cluster", &sections.cluster}, {"node", &sections.node},
      {"servers", &sections.servers}, {"server_set", &sections.server_set},
      {"caches", &sections.caches},   {"deploy", &sections.deploy}};
  Digest128 ConfigDigest::*const fields[] = {&ConfigDigest::cluster, &ConfigDigest::node,
                                             &ConfigDigest::servers, &ConfigDigest::server_set,
                                             &ConfigDigest::caches,  &ConfigDigest::deploy};
  ConfigDigest digest;
  for (std::size_t i = 0; i < std::size(parts); ++i) {
    Result<Digest128> part = Digest128::FromHex(*parts[i].second);
    if (!part.ok()) {
      return Status::InvalidArgument(std::string("config digest section ") + parts[i].first + ": " +
                                     part.status().message());
    }
    digest.*fields[i] = *part;
  }
  return digest;
}

Handshake::Handshake(Role role, protocol::PeerIdentity self, ClusterKey key, NonceSource nonces)
    : role_(role),
      self_(std::move(self)),
      key_(std::move(key)),
      nonces_(std::move(nonces)),
      state_(role == Role::kDialer ? State::kNotStarted : State::kAwaitHello) {}

Handshake::Step Handshake::Start() {
  if (role_ == Role::kListener && state_ == State::kAwaitHello) return Step{};
  if (state_ != State::kNotStarted) return Refuse("handshake already started");
  Result<std::string> nonce = DrawNonce();
  if (!nonce.ok()) return Refuse(nonce.status().message());
  dialer_nonce_ = *std::move(nonce);
  state_ = State::kAwaitHelloReply;
  Step step;
  step.send.emplace_back(protocol::Hello{self_, dialer_nonce_});
  return step;
}

Handshake::Step Handshake::OnMessage(const protocol::Message& message) {
  const std::string got(protocol::MessageName(message));
  if (state_ == State::kDone || state_ == State::kRefused) {
    return Refuse("handshake already finished, got " + got);
  }
  if (const auto* refusal = std::get_if<protocol::Refusal>(&message)) {
    state_ = State::kRefused;
    Step step;
    step.refused = "peer refused: " + Sanitized(refusal->reason, kMaxReasonBytes);
    return step;
  }
  if (state_ == State::kAwaitHello) {
    if (const auto* hello = std::get_if<protocol::Hello>(&message)) return OnHello(*hello);
  } else if (state_ == State::kAwaitHelloReply) {
    if (const auto* reply = std::get_if<protocol::HelloReply>(&message))
      return OnHelloReply(*reply);
  } else if (state_ == State::kAwaitProof) {
    if (const auto* proof = std::get_if<protocol::Proof>(&message)) return OnProof(*proof);
  } else if (state_ == State::kAwaitWelcome) {
    if (std::holds_alternative<protocol::Welcome>(message)) {
      state_ = State::kDone;
      Step step;
      step.done = true;
      return step;
    }
  } else {  // kNotStarted
    return Refuse("got " + got + " before the handshake started");
  }
  return Refuse(std::string("expected ") + Expected() + ", got " + got);
}

Handshake::Step Handshake::OnHello(const protocol::Hello& hello) {
  peer_ = hello.identity;
  if (std::string reason = CheckPeer(hello.identity, hello.nonce); !reason.empty()) {
    return Refuse(std::move(reason));
  }
  Result<std::string> nonce = DrawNonce();
  if (!nonce.ok()) return Refuse(nonce.status().message());
  dialer_nonce_ = hello.nonce;
  listener_nonce_ = *std::move(nonce);
  Result<std::string> proof = ProofBy(Role::kListener);
  if (!proof.ok()) return Refuse(proof.status().message());
  state_ = State::kAwaitProof;
  Step step;
  step.send.emplace_back(protocol::HelloReply{self_, listener_nonce_, *std::move(proof)});
  return step;
}

Handshake::Step Handshake::OnHelloReply(const protocol::HelloReply& reply) {
  peer_ = reply.identity;
  if (std::string reason = CheckPeer(reply.identity, reply.nonce); !reason.empty()) {
    return Refuse(std::move(reason));
  }
  listener_nonce_ = reply.nonce;
  Result<std::string> expected = ProofBy(Role::kListener);
  if (!expected.ok()) return Refuse(expected.status().message());
  if (reply.proof.size() != expected->size() ||
      CRYPTO_memcmp(reply.proof.data(), expected->data(), expected->size()) != 0) {
    return Refuse("authentication failed: the peer does not have the cluster key");
  }
  Result<std::string> proof = ProofBy(Role::kDialer);
  if (!proof.ok()) return Refuse(proof.status().message());
  state_ = State::kAwaitWelcome;
  Step step;
  step.send.emplace_back(protocol::Proof{*std::move(proof)});
  return step;
}

Handshake::Step Handshake::OnProof(const protocol::Proof& proof) {
  Result<std::string> expected = ProofBy(Role::kDialer);
  if (!expected.ok()) return Refuse(expected.status().message());
  if (proof.proof.size() != expected->size() ||
      CRYPTO_memcmp(proof.proof.data(), expected->data(), expected->size()) != 0) {
    return Refuse("authentication failed: the peer does not have the cluster key");
  }
  state_ = State::kDone;
  Step step;
  step.send.emplace_back(protocol::Welcome{});
  step.done = true;
  return step;
}

std::string Handshake::CheckPeer(const protocol::PeerIdentity& peer,
                                 const std::string& nonce) const {
  if (peer.protocol_version != self_.protocol_version) {
    return "protocol version " + std::to_string(peer.protocol_version) + ", this sidecar speaks " +
           std::to_string(self_.protocol_version);
  }
  if (nonce.size() != protocol::kNonceBytes) {
    return "nonce of " + std::to_string(nonce.size()) + " bytes, expected " +
           std::to_string(protocol::kNonceBytes);
  }
  if (peer.cluster_name != self_.cluster_name) {
    return "cluster " + Quoted(peer.cluster_name) + ", this sidecar is in " +
           Quoted(self_.cluster_name);
  }
  if (peer.server_id == self_.server_id) {
    return "peer claims this sidecar's own server id " + Quoted(self_.server_id) +
           " (a connection to itself, or two sidecars started with the same id)";
  }
  if (!(peer.digest == self_.digest)) {
    const Result<ConfigDigest> remote = FromDigestSections(peer.digest);
    if (!remote.ok()) return "malformed " + remote.status().message();
    const Result<ConfigDigest> local = FromDigestSections(self_.digest);
    if (!local.ok()) return "this sidecar's own " + local.status().message();
    const std::string difference = DescribeConfigDifference(*local, *remote);
    // Equal digests spelled differently (upper-case hex) describe no difference.
    if (!difference.empty()) return "cluster file differs: " + difference;
  }
  return "";
}

Result<std::string> Handshake::ProofBy(Role role) const {
  const bool self_dials = role_ == Role::kDialer;
  Transcript transcript;
  transcript.Bytes(role == Role::kDialer ? kDialerLabel : kListenerLabel)
      .Bytes(dialer_nonce_)
      .Bytes(listener_nonce_)
      .Identity(self_dials ? self_ : peer_)
      .Identity(self_dials ? peer_ : self_);
  std::string proof(EVP_MAX_MD_SIZE, '\0');
  unsigned int size = 0;
  const std::string_view key = key_.material();
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(transcript.text().data()),
           transcript.text().size(), reinterpret_cast<unsigned char*>(proof.data()),
           &size) == nullptr) {
    return Status::IoError("cannot compute a proof: HMAC: " + OpenSslError());
  }
  proof.resize(size);
  return proof;
}

Result<std::string> Handshake::DrawNonce() {
  Result<std::string> nonce = nonces_();
  if (nonce.ok() && nonce->size() != protocol::kNonceBytes) {
    return Status::InvalidArgument("nonce source gave " + std::to_string(nonce->size()) +
                                   " bytes, expected " + std::to_string(protocol::kNonceBytes));
  }
  return nonce;
}

Handshake::Step Handshake::Refuse(std::string reason) {
  state_ = State::kRefused;
  Step step;
  step.send.emplace_back(protocol::Refusal{reason});
  step.refused = std::move(reason);
  return step;
}

const char* Handshake::Expected() const {
  switch (state_) {
    case State::kAwaitHello:
      return "Hello";
    case State::kAwaitHelloReply:
      return "HelloReply";
    case State::kAwaitProof:
      return "Proof";
    case State::kAwaitWelcome:
      return "Welcome";
    default:
      return "nothing";
  }
}

}  // namespace cb::auth
