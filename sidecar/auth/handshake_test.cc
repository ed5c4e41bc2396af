#include "sidecar/auth/handshake.h"

#include <gtest/gtest.h>

#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "shared/config_digest.h"
#include "shared/frame_codec.h"
#include "sidecar/protocol/messages.h"

namespace cb::auth {
namespace {

using protocol::Hello;
using protocol::HelloReply;
using protocol::Message;
using protocol::PeerIdentity;
using protocol::Proof;
using protocol::Refusal;
using Role = Handshake::Role;

constexpr char kKey[] = "the-cluster-key-of-the-tests";
constexpr char kOtherKey[] = "another-cluster-key-entirely";
constexpr char kAuthFailed[] = "authentication failed: the peer does not have the cluster key";

ConfigDigest BaseDigest() {
  ConfigDigest digest;
  digest.cluster = {1, 2};
  digest.node = {3, 4};
  digest.servers = {5, 6};
  digest.server_set = {7, 8};
  digest.caches = {9, 10};
  digest.deploy = {11, 12};
  return digest;
}

PeerIdentity Identity(std::string id, int32_t index, ConfigDigest digest = BaseDigest()) {
  PeerIdentity identity;
  identity.cluster_name = "alpha";
  identity.server_id = std::move(id);
  identity.index = index;
  identity.incarnation = 1000 + static_cast<uint64_t>(index);
  identity.digest = ToDigestSections(digest);
  return identity;
}

// Deterministic nonces: kNonceBytes bytes of `seed`, then a counter in the last byte.
NonceSource Nonces(char seed) {
  return [seed, count = 0]() mutable -> Result<std::string> {
    std::string nonce(protocol::kNonceBytes, seed);
    nonce.back() = static_cast<char>(count++);
    return nonce;
  };
}

Handshake Dialer(std::string key = kKey, PeerIdentity self = Identity("a", 0), char seed = 'd') {
  return Handshake(Role::kDialer, std::move(self), ClusterKey(std::move(key)), Nonces(seed));
}

Handshake Listener(std::string key = kKey, PeerIdentity self = Identity("b", 1), char seed = 'l') {
  return Handshake(Role::kListener, std::move(self), ClusterKey(std::move(key)), Nonces(seed));
}

// `message` after the trip over the wire: framed, decoded, parsed back.
Message Wire(const Message& message) {
  std::string bytes;
  const Status appended = protocol::AppendMessage(bytes, message, FrameLimits{});
  EXPECT_TRUE(appended.ok()) << appended.ToString();
  FrameDecoder decoder;
  decoder.Append(bytes);
  Result<std::optional<msgpack::object_handle>> frame = decoder.Next();
  EXPECT_TRUE(frame.ok() && frame->has_value()) << frame.status().ToString();
  if (!frame.ok() || !frame->has_value()) return protocol::Refusal{"lost on the wire"};
  Result<Message> decoded = protocol::DecodeMessage((*frame)->get());
  EXPECT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
  return decoded.ok() ? *std::move(decoded) : protocol::Refusal{"lost on the wire"};
}

struct Outcome {
  std::vector<Message> messages;  // everything sent, in order, as received
  bool dialer_done = false;
  bool listener_done = false;
  std::optional<std::string> dialer_refused;
  std::optional<std::string> listener_refused;

  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    for (const Message& message : messages) names.emplace_back(protocol::MessageName(message));
    return names;
  }
};

// Runs a handshake to its end, every message crossing the wire.
Outcome Pump(Handshake& dialer, Handshake& listener) {
  Outcome outcome;
  std::deque<std::pair<bool, Message>> in_flight;  // (to the listener?, message)
  auto take = [&](Handshake::Step step, bool from_dialer) {
    (from_dialer ? outcome.dialer_done : outcome.listener_done) |= step.done;
    if (step.refused)
      (from_dialer ? outcome.dialer_refused : outcome.listener_refused) = step.refused;
    for (const Message& message : step.send) in_flight.emplace_back(from_dialer, Wire(message));
  };
  take(listener.Start(), false);
  take(dialer.Start(), true);
  while (!in_flight.empty() && outcome.messages.size() < 10) {
    auto [to_listener, message] = std::move(in_flight.front());
    in_flight.pop_front();
    outcome.messages.push_back(message);
    take((to_listener ? listener : dialer).OnMessage(message), !to_listener);
  }
  return outcome;
}

// One message from a Step that must send exactly that and nothing else.
template <typename T>
T Sent(const Handshake::Step& step) {
  EXPECT_FALSE(step.refused) << *step.refused;
  EXPECT_EQ(step.send.size(), 1u);
  if (step.send.size() != 1 || !std::holds_alternative<T>(step.send[0])) {
    ADD_FAILURE() << "unexpected step";
    return T{};
  }
  return std::get<T>(Wire(step.send[0]));
}

// Checks that `step` refuses for `reason`, sending it to the peer.
void ExpectRefusal(const Handshake::Step& step, const std::string& reason) {
  EXPECT_FALSE(step.done);
  ASSERT_TRUE(step.refused.has_value());
  EXPECT_EQ(*step.refused, reason);
  ASSERT_EQ(step.send.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<Refusal>(step.send[0]));
  EXPECT_EQ(std::get<Refusal>(Wire(step.send[0])).reason, reason);
}

// Both sides refused: `refuser` for `reason`, the other because the peer refused.
void ExpectRefusedOnBothSides(const Outcome& outcome, bool dialer_refuses,
                              const std::string& reason) {
  EXPECT_FALSE(outcome.dialer_done);
  EXPECT_FALSE(outcome.listener_done);
  const std::optional<std::string>& refuser =
      dialer_refuses ? outcome.dialer_refused : outcome.listener_refused;
  const std::optional<std::string>& other =
      dialer_refuses ? outcome.listener_refused : outcome.dialer_refused;
  EXPECT_EQ(refuser, reason);
  EXPECT_EQ(other, "peer refused: " + reason);
}

TEST(HandshakeTest, SuccessfulExchange) {
  Handshake dialer = Dialer();
  Handshake listener = Listener();
  const Outcome outcome = Pump(dialer, listener);
  EXPECT_EQ(outcome.Names(), (std::vector<std::string>{"Hello", "HelloReply", "Proof", "Welcome"}));
  EXPECT_TRUE(outcome.dialer_done);
  EXPECT_TRUE(outcome.listener_done);
  EXPECT_FALSE(outcome.dialer_refused);
  EXPECT_FALSE(outcome.listener_refused);
  EXPECT_TRUE(dialer.done());
  EXPECT_TRUE(listener.done());
  EXPECT_EQ(dialer.peer().server_id, "b");
  EXPECT_EQ(dialer.peer().index, 1);
  EXPECT_EQ(dialer.peer().incarnation, 1001u);
  EXPECT_EQ(listener.peer().server_id, "a");
  EXPECT_EQ(listener.peer().index, 0);
  EXPECT_EQ(listener.peer().digest, ToDigestSections(BaseDigest()));

  // The messages carry what the protocol says, intact after the wire.
  const Hello& hello = std::get<Hello>(outcome.messages[0]);
  EXPECT_EQ(hello.nonce.size(), protocol::kNonceBytes);
  EXPECT_EQ(hello.identity.server_id, "a");
  const HelloReply& reply = std::get<HelloReply>(outcome.messages[1]);
  EXPECT_EQ(reply.nonce.size(), protocol::kNonceBytes);
  EXPECT_NE(reply.nonce, hello.nonce);
  EXPECT_EQ(reply.proof.size(), protocol::kProofBytes);
  const Proof& proof = std::get<Proof>(outcome.messages[2]);
  EXPECT_EQ(proof.proof.size(), protocol::kProofBytes);
  EXPECT_NE(proof.proof, reply.proof);  // the role label tells them apart
}

TEST(HandshakeTest, DynamicServerNotYetAdmittedCanConnect) {
  Handshake dialer = Dialer(kKey, Identity("dyn", -1));
  Handshake listener = Listener();
  EXPECT_TRUE(Pump(dialer, listener).listener_done);
  EXPECT_EQ(listener.peer().index, -1);
}

TEST(HandshakeTest, RealRandomNonces) {
  Handshake dialer(Role::kDialer, Identity("a", 0), ClusterKey(kKey));
  Handshake listener(Role::kListener, Identity("b", 1), ClusterKey(kKey));
  const Outcome outcome = Pump(dialer, listener);
  EXPECT_TRUE(outcome.dialer_done && outcome.listener_done);

  const Result<std::string> first = RandomNonce();
  const Result<std::string> second = RandomNonce();
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->size(), protocol::kNonceBytes);
  EXPECT_NE(*first, *second);
}

TEST(HandshakeTest, ListenerWithoutTheKeyIsRefusedOnBothSides) {
  Handshake dialer = Dialer();
  Handshake listener = Listener(kOtherKey);
  const Outcome outcome = Pump(dialer, listener);
  EXPECT_EQ(outcome.Names(), (std::vector<std::string>{"Hello", "HelloReply", "Refusal"}));
  ExpectRefusedOnBothSides(outcome, /*dialer_refuses=*/true, kAuthFailed);
}

TEST(HandshakeTest, DialerWithoutTheKeyIsRefusedOnBothSides) {
  // With the pump, the dialer is first to see that keys differ.
  Handshake dialer = Dialer(kOtherKey);
  Handshake listener = Listener();
  ExpectRefusedOnBothSides(Pump(dialer, listener), /*dialer_refuses=*/true, kAuthFailed);
}

TEST(HandshakeTest, ListenerRefusesAProofMadeWithAnotherKey) {
  // An impostor with another key, talking to a twin of the real listener (same
  // identity and nonces) that shares its key, learns the Proof it would send.
  Handshake impostor = Dialer(kOtherKey);
  Handshake twin = Listener(kOtherKey);
  const Outcome rehearsal = Pump(impostor, twin);
  ASSERT_TRUE(rehearsal.listener_done);
  const Hello hello = std::get<Hello>(rehearsal.messages[0]);
  const Proof proof = std::get<Proof>(rehearsal.messages[2]);

  Handshake listener = Listener();
  const HelloReply reply = Sent<HelloReply>(listener.OnMessage(hello));
  EXPECT_EQ(reply.nonce, std::get<HelloReply>(rehearsal.messages[1]).nonce);
  ExpectRefusal(listener.OnMessage(Wire(proof)), kAuthFailed);
  EXPECT_FALSE(listener.done());
}

TEST(HandshakeTest, ProofReplayedFromAnotherSessionIsRefused) {
  Handshake first_dialer = Dialer();
  Handshake first_listener = Listener();
  const Outcome recorded = Pump(first_dialer, first_listener);
  ASSERT_TRUE(recorded.listener_done);
  const Hello hello = std::get<Hello>(recorded.messages[0]);
  const HelloReply reply = std::get<HelloReply>(recorded.messages[1]);
  const Proof proof = std::get<Proof>(recorded.messages[2]);

  // To a listener: same Hello, but the listener draws a fresh nonce.
  Handshake listener = Listener(kKey, Identity("b", 1), 'm');
  const HelloReply fresh = Sent<HelloReply>(listener.OnMessage(hello));
  EXPECT_NE(fresh.nonce, reply.nonce);
  ExpectRefusal(listener.OnMessage(proof), kAuthFailed);

  // To a dialer: the recorded HelloReply answers another nonce.
  Handshake dialer = Dialer(kKey, Identity("a", 0), 'e');
  EXPECT_NE(Sent<Hello>(dialer.Start()).nonce, hello.nonce);
  ExpectRefusal(dialer.OnMessage(reply), kAuthFailed);
}

TEST(HandshakeTest, ListenersProofReflectedAsTheDialersIsRefused) {
  Handshake listener = Listener();
  const HelloReply reply = Sent<HelloReply>(
      listener.OnMessage(Hello{Identity("a", 0), std::string(protocol::kNonceBytes, 'x')}));
  ExpectRefusal(listener.OnMessage(Proof{reply.proof}), kAuthFailed);
}

TEST(HandshakeTest, DialersProofReflectedAsTheListenersIsRefused) {
  // A dialer's proof over the same nonces and identities, presented as a listener's.
  Handshake dialer = Dialer();
  Handshake listener = Listener();
  const Outcome outcome = Pump(dialer, listener);
  ASSERT_TRUE(outcome.dialer_done);
  HelloReply reply = std::get<HelloReply>(outcome.messages[1]);
  reply.proof = std::get<Proof>(outcome.messages[2]).proof;

  Handshake replayed = Dialer();  // same nonces as `dialer`
  Sent<Hello>(replayed.Start());
  ExpectRefusal(replayed.OnMessage(reply), kAuthFailed);
}

TEST(HandshakeTest, TamperedIdentitiesAreRefused) {
  {  // The listener's identity altered on its way to the dialer.
    Handshake dialer = Dialer();
    Handshake listener = Listener();
    HelloReply reply = Sent<HelloReply>(listener.OnMessage(Sent<Hello>(dialer.Start())));
    reply.identity.incarnation += 1;
    ExpectRefusal(dialer.OnMessage(reply), kAuthFailed);
  }
  {  // The dialer's identity altered on its way to the listener.
    Handshake dialer = Dialer();
    Handshake listener = Listener();
    Hello hello = Sent<Hello>(dialer.Start());
    hello.identity.index = 7;
    ExpectRefusal(dialer.OnMessage(Sent<HelloReply>(listener.OnMessage(hello))), kAuthFailed);
  }
}

TEST(HandshakeTest, OtherClusterNameIsRefusedOnBothSides) {
  PeerIdentity other = Identity("a", 0);
  other.cluster_name = "beta";
  Handshake dialer = Dialer(kKey, other);
  Handshake listener = Listener();
  const Outcome outcome = Pump(dialer, listener);
  EXPECT_EQ(outcome.Names(), (std::vector<std::string>{"Hello", "Refusal"}));
  ExpectRefusedOnBothSides(outcome, /*dialer_refuses=*/false,
                           "cluster \"beta\", this sidecar is in \"alpha\"");
  EXPECT_EQ(listener.peer().cluster_name, "beta");  // for the log line
}

TEST(HandshakeTest, OtherProtocolVersionIsRefusedOnBothSides) {
  PeerIdentity newer = Identity("a", 0);
  newer.protocol_version = protocol::kProtocolVersion + 1;
  Handshake dialer = Dialer(kKey, newer);
  Handshake listener = Listener();
  ExpectRefusedOnBothSides(Pump(dialer, listener), /*dialer_refuses=*/false,
                           "protocol version " + std::to_string(protocol::kProtocolVersion + 1) +
                               ", this sidecar speaks " +
                               std::to_string(protocol::kProtocolVersion));
}

TEST(HandshakeTest, DialerChecksTheListenersIdentity) {
  PeerIdentity other = Identity("b", 1);
  other.cluster_name = "beta";
  Handshake dialer = Dialer();
  Sent<Hello>(dialer.Start());
  ExpectRefusal(dialer.OnMessage(HelloReply{other, std::string(protocol::kNonceBytes, 'n'),
                                            std::string(protocol::kProofBytes, 'p')}),
                "cluster \"beta\", this sidecar is in \"alpha\"");
  EXPECT_EQ(dialer.peer().cluster_name, "beta");
}

TEST(HandshakeTest, ConfigDigestDifferenceNamesThePart) {
  struct Case {
    const char* what;
    void (*change)(ConfigDigest&);
    const char* reason;
  };
  const Case cases[] = {
      {"reordered servers", [](ConfigDigest& d) { d.servers.low ^= 1; },
       "cluster file differs: server list order differs (same servers)"},
      {"other servers",
       [](ConfigDigest& d) {
         d.servers.low ^= 1;
         d.server_set.low ^= 1;
       },
       "cluster file differs: server list differs"},
      {"caches", [](ConfigDigest& d) { d.caches.high ^= 1; },
       "cluster file differs: caches differ"},
      {"cluster and deploy",
       [](ConfigDigest& d) {
         d.cluster.high ^= 1;
         d.deploy.low ^= 1;
       },
       "cluster file differs: [cluster] differs; [deploy] differs"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    ConfigDigest digest = BaseDigest();
    c.change(digest);
    Handshake dialer = Dialer(kKey, Identity("a", 0, digest));
    Handshake listener = Listener();
    ExpectRefusedOnBothSides(Pump(dialer, listener), /*dialer_refuses=*/false, c.reason);
  }
}

TEST(HandshakeTest, DigestInUpperCaseHexIsTheSameDigest) {
  PeerIdentity upper = Identity("a", 0);
  upper.digest.caches = "000000000000000900000000000000AA";
  ConfigDigest digest = BaseDigest();
  digest.caches = {9, 0xaa};
  Handshake dialer = Dialer(kKey, upper);
  Handshake listener = Listener(kKey, Identity("b", 1, digest));
  EXPECT_TRUE(Pump(dialer, listener).listener_done);
}

TEST(HandshakeTest, MalformedDigestIsRefused) {
  PeerIdentity malformed = Identity("a", 0);
  malformed.digest.server_set = "not hex";
  Handshake dialer = Dialer(kKey, malformed);
  Handshake listener = Listener();
  ExpectRefusedOnBothSides(
      Pump(dialer, listener), /*dialer_refuses=*/false,
      "malformed config digest section server_set: digest: expected 32 hex digits, got 7 "
      "characters");
}

TEST(HandshakeTest, PeerWithThisSidecarsOwnIdIsRefused) {
  Handshake dialer = Dialer(kKey, Identity("b", 1));
  Handshake listener = Listener(kKey, Identity("b", 1));
  ExpectRefusedOnBothSides(Pump(dialer, listener), /*dialer_refuses=*/false,
                           "peer claims this sidecar's own server id \"b\" (a connection to "
                           "itself, or two sidecars started with the same id)");
}

TEST(HandshakeTest, PeerChosenTextIsSanitized) {
  PeerIdentity other = Identity("a", 0);
  other.cluster_name = "be\"ta\n" + std::string(200, 'x');
  Handshake listener = Listener();
  const Handshake::Step step =
      listener.OnMessage(Hello{other, std::string(protocol::kNonceBytes, 'x')});
  ASSERT_TRUE(step.refused);
  EXPECT_EQ(*step.refused, "cluster \"be\\x22ta\\x0a" + std::string(122, 'x') +
                               "...\", this sidecar is in \"alpha\"");

  Handshake dialer = Dialer();
  Sent<Hello>(dialer.Start());
  const Handshake::Step refused = dialer.OnMessage(Refusal{"no\r\nFAKE LOG LINE"});
  EXPECT_EQ(refused.refused, "peer refused: no\\x0d\\x0aFAKE LOG LINE");
  EXPECT_TRUE(refused.send.empty());
}

TEST(HandshakeTest, OutOfOrderMessagesAreRefused) {
  {
    Handshake listener = Listener();
    ExpectRefusal(listener.OnMessage(Proof{std::string(protocol::kProofBytes, 'p')}),
                  "expected Hello, got Proof");
  }
  {
    Handshake dialer = Dialer();
    Sent<Hello>(dialer.Start());
    ExpectRefusal(dialer.OnMessage(protocol::Heartbeat{}), "expected HelloReply, got Heartbeat");
  }
  {
    Handshake dialer = Dialer();
    Sent<Hello>(dialer.Start());
    ExpectRefusal(dialer.OnMessage(protocol::Welcome{}), "expected HelloReply, got Welcome");
  }
  {
    Handshake dialer = Dialer();
    ExpectRefusal(dialer.OnMessage(protocol::Welcome{}),
                  "got Welcome before the handshake started");
  }
  {
    Handshake dialer = Dialer();
    Handshake listener = Listener();
    const Hello hello = Sent<Hello>(dialer.Start());
    Sent<HelloReply>(listener.OnMessage(hello));
    ExpectRefusal(listener.OnMessage(hello), "expected Proof, got Hello");
  }
  {
    Handshake dialer = Dialer();
    Handshake listener = Listener();
    const HelloReply reply = Sent<HelloReply>(listener.OnMessage(Sent<Hello>(dialer.Start())));
    Sent<Proof>(dialer.OnMessage(reply));
    ExpectRefusal(dialer.OnMessage(protocol::ViewUpdate{}), "expected Welcome, got ViewUpdate");
  }
}

TEST(HandshakeTest, MessagesAfterTheEndAreRefused) {
  Handshake dialer = Dialer();
  Handshake listener = Listener();
  ASSERT_TRUE(Pump(dialer, listener).dialer_done);
  ExpectRefusal(dialer.OnMessage(protocol::Heartbeat{}),
                "handshake already finished, got Heartbeat");
  EXPECT_FALSE(dialer.done());
  ExpectRefusal(listener.OnMessage(protocol::Welcome{}), "handshake already finished, got Welcome");

  Handshake refused = Listener();
  ASSERT_TRUE(refused.OnMessage(protocol::Heartbeat{}).refused);
  ExpectRefusal(refused.OnMessage(Hello{Identity("a", 0), std::string(protocol::kNonceBytes, 'x')}),
                "handshake already finished, got Hello");

  Handshake peer_refused = Dialer();
  Sent<Hello>(peer_refused.Start());
  EXPECT_EQ(peer_refused.OnMessage(Refusal{"go away"}).refused, "peer refused: go away");
  ExpectRefusal(peer_refused.OnMessage(Refusal{"again"}),
                "handshake already finished, got Refusal");
}

TEST(HandshakeTest, NonceOfTheWrongLengthIsRefused) {
  for (std::size_t size : {std::size_t{0}, protocol::kNonceBytes - 1, protocol::kNonceBytes + 1}) {
    SCOPED_TRACE(size);
    const std::string reason = "nonce of " + std::to_string(size) + " bytes, expected 32";
    Handshake listener = Listener();
    ExpectRefusal(listener.OnMessage(Wire(Hello{Identity("a", 0), std::string(size, 'n')})),
                  reason);

    Handshake dialer = Dialer();
    Handshake honest = Listener();
    HelloReply reply = Sent<HelloReply>(honest.OnMessage(Sent<Hello>(dialer.Start())));
    reply.nonce.resize(size, 'n');
    ExpectRefusal(dialer.OnMessage(Wire(reply)), reason);
  }
}

TEST(HandshakeTest, ProofOfTheWrongLengthIsRefused) {
  Handshake dialer = Dialer();
  Handshake listener = Listener();
  HelloReply reply = Sent<HelloReply>(listener.OnMessage(Sent<Hello>(dialer.Start())));
  Proof proof = Sent<Proof>(dialer.OnMessage(reply));
  proof.proof.pop_back();
  ExpectRefusal(listener.OnMessage(proof), kAuthFailed);

  Handshake truncated = Dialer();
  Sent<Hello>(truncated.Start());
  reply.proof += "x";
  ExpectRefusal(truncated.OnMessage(reply), kAuthFailed);
}

TEST(HandshakeTest, StartContract) {
  Handshake listener = Listener();
  const Handshake::Step step = listener.Start();
  EXPECT_TRUE(step.send.empty());
  EXPECT_FALSE(step.refused);
  EXPECT_FALSE(step.done);

  Handshake dialer = Dialer();
  Sent<Hello>(dialer.Start());
  ExpectRefusal(dialer.Start(), "handshake already started");
}

TEST(HandshakeTest, FailingNonceSourceRefuses) {
  Handshake dialer(Role::kDialer, Identity("a", 0), ClusterKey(kKey),
                   []() -> Result<std::string> { return Status::IoError("no entropy"); });
  ExpectRefusal(dialer.Start(), "no entropy");

  Handshake listener(Role::kListener, Identity("b", 1), ClusterKey(kKey),
                     []() -> Result<std::string> { return std::string(8, 'n'); });
  ExpectRefusal(
      listener.OnMessage(Hello{Identity("a", 0), std::string(protocol::kNonceBytes, 'x')}),
      "nonce source gave 8 bytes, expected 32");
}

TEST(HandshakeTest, EveryHandshakeMessageSurvivesTheWire) {
  PeerIdentity identity = Identity("app-\xc3\xa9", 63);
  identity.incarnation = ~uint64_t{0};
  const std::string binary("\0\x01\xff\x80 nonce", 10);
  const Hello hello = std::get<Hello>(Wire(Hello{identity, binary}));
  EXPECT_EQ(hello.nonce, binary);
  EXPECT_EQ(hello.identity.server_id, identity.server_id);
  EXPECT_EQ(hello.identity.incarnation, identity.incarnation);
  EXPECT_EQ(hello.identity.index, 63);
  EXPECT_EQ(hello.identity.digest, identity.digest);
  const HelloReply reply = std::get<HelloReply>(Wire(HelloReply{identity, binary, binary + "p"}));
  EXPECT_EQ(reply.proof, binary + "p");
  EXPECT_EQ(std::get<Proof>(Wire(Proof{binary})).proof, binary);
  EXPECT_TRUE(std::holds_alternative<protocol::Welcome>(Wire(protocol::Welcome{})));
  EXPECT_EQ(std::get<Refusal>(Wire(Refusal{"why"})).reason, "why");
}

TEST(DigestSectionsTest, RoundTrip) {
  const ConfigDigest digest = BaseDigest();
  const protocol::DigestSections sections = ToDigestSections(digest);
  EXPECT_EQ(sections.cluster, digest.cluster.Hex());
  EXPECT_EQ(sections.server_set, digest.server_set.Hex());
  EXPECT_EQ(sections.deploy, digest.deploy.Hex());
  const Result<ConfigDigest> back = FromDigestSections(sections);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, digest);
}

TEST(DigestSectionsTest, MalformedSectionIsNamed) {
  protocol::DigestSections sections = ToDigestSections(BaseDigest());
  sections.node = std::string(31, '0') + "z";
  const Result<ConfigDigest> back = FromDigestSections(sections);
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(back.status().message(),
            "config digest section node: digest: not a hex digit at position 31");
}

}  // namespace
}  // namespace cb::auth
