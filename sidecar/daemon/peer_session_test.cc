// Loopback TCP tests of PeerSession and PeerDialers: a session dialed by
// PeerDialers meets one accepted by a Listener. The io_context runs in the test
// thread, in bounded steps, never with sleeps.
#include "sidecar/daemon/peer_session.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sidecar/daemon/peer_dialers.h"
#include "sidecar/testing/run_until.h"
#include "sidecar/transport/listener.h"

namespace cb::daemon {
namespace {

using ::testing::HasSubstr;

constexpr char kKey[] = "the-cluster-key-of-the-tests";
constexpr auto kDeadline = std::chrono::seconds(10);

// What one side's handlers saw.
struct Seen {
  int authenticated = 0;
  std::vector<protocol::Message> messages;
  std::vector<std::string> refusals;  // "by peer: <reason>" or "by us: <reason>"
  std::vector<Status> closes;
};

class PeerSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.name = "alpha";
    for (int index = 0; index < 2; ++index) {
      ServerConfig server;
      server.index = index;
      server.id = index == 0 ? "app-a" : "app-b";
      server.cluster_address = HostPort{"127.0.0.1", 0};
      config_.servers.push_back(server);
    }
  }

  bool RunUntil(const std::function<bool()>& done) {
    return testing_support::RunUntil(io_, done, kDeadline);
  }

  static PeerSession::Handlers Record(Seen& seen) {
    PeerSession::Handlers handlers;
    handlers.on_authenticated = [&seen](const PeerSession::Ptr&) { ++seen.authenticated; };
    handlers.on_message = [&seen](const PeerSession::Ptr&, protocol::Message message) {
      seen.messages.push_back(std::move(message));
    };
    handlers.on_refused = [&seen](const PeerSession::Ptr&, const std::string& reason,
                                  bool by_peer) {
      seen.refusals.push_back((by_peer ? "by peer: " : "by us: ") + reason);
    };
    handlers.on_closed = [&seen](const PeerSession::Ptr&, const Status& why) {
      seen.closes.push_back(why);
    };
    return handlers;
  }

  // app-b listens (with `listener_key`); app-a dials it through PeerDialers.
  void Connect(const std::string& listener_key = kKey) {
    Result<std::unique_ptr<transport::Listener>> listener = transport::Listener::Listen(
        io_, config_.servers[1].cluster_address, FrameLimits{},
        [this, listener_key](std::shared_ptr<transport::Connection> connection) {
          accepted_ = PeerSession::Open(std::move(connection),
                                        auth::Handshake(auth::Handshake::Role::kListener,
                                                        MakePeerIdentity(config_, "app-b", 1, 20),
                                                        auth::ClusterKey(listener_key)),
                                        -1, Record(listener_seen_));
        });
    ASSERT_TRUE(listener.ok()) << listener.status().ToString();
    listener_ = std::move(listener).value();
    config_.servers[1].cluster_address.port = listener_->bound_port();
    transport::DialerOptions options;
    options.initial_backoff = std::chrono::milliseconds(5);
    options.max_backoff = std::chrono::milliseconds(20);
    dialers_.Dial(config_, ServerSet::FromBits(0b10), options,
                  [this](std::shared_ptr<transport::Connection> connection, int index) {
                    dialed_ =
                        PeerSession::Open(std::move(connection),
                                          auth::Handshake(auth::Handshake::Role::kDialer,
                                                          MakePeerIdentity(config_, "app-a", 0, 10),
                                                          auth::ClusterKey(kKey)),
                                          index, Record(dialer_seen_));
                  });
  }

  ClusterConfig config_;
  boost::asio::io_context io_;
  std::unique_ptr<transport::Listener> listener_;
  PeerDialers dialers_{io_};
  PeerSession::Ptr dialed_;
  PeerSession::Ptr accepted_;
  Seen dialer_seen_;
  Seen listener_seen_;
};

TEST(MakePeerIdentityTest, NamesTheClusterServerIndexIncarnationAndDigest) {
  ClusterConfig config;
  config.name = "alpha";
  const protocol::PeerIdentity identity = MakePeerIdentity(config, "dyn-a", -1, 42);
  EXPECT_EQ(identity.cluster_name, "alpha");
  EXPECT_EQ(identity.server_id, "dyn-a");
  EXPECT_EQ(identity.index, -1);
  EXPECT_EQ(identity.incarnation, 42u);
  EXPECT_EQ(identity.digest, auth::ToDigestSections(DigestConfig(config)));
}

TEST_F(PeerSessionTest, HandshakeThenMessagesBothWays) {
  Connect();
  ASSERT_TRUE(RunUntil(
      [&] { return dialer_seen_.authenticated == 1 && listener_seen_.authenticated == 1; }));
  EXPECT_EQ(dialed_->dialed_index(), 1);
  EXPECT_EQ(accepted_->dialed_index(), -1);
  EXPECT_TRUE(dialed_->authenticated());
  EXPECT_EQ(dialed_->peer().server_id, "app-b");
  EXPECT_EQ(accepted_->peer().server_id, "app-a");
  EXPECT_EQ(accepted_->peer().incarnation, 10u);
  dialers_.MarkHealthy(1);
  dialers_.MarkHealthy(7);  // not dialed: ignored

  ASSERT_TRUE(dialed_->connection().Send(protocol::StateRequest{"app-b", true}).ok());
  ASSERT_TRUE(RunUntil([&] { return listener_seen_.messages.size() == 1; }));
  ASSERT_TRUE(std::holds_alternative<protocol::StateRequest>(listener_seen_.messages[0]));
  EXPECT_TRUE(dialer_seen_.messages.empty());  // the handshake's messages are its own
  EXPECT_TRUE(dialer_seen_.refusals.empty());
  EXPECT_TRUE(listener_seen_.refusals.empty());
}

TEST_F(PeerSessionTest, AWrongKeyIsRefusedOnBothSidesAndCloses) {
  Connect("another-cluster-key-entirely");
  ASSERT_TRUE(
      RunUntil([&] { return !dialer_seen_.closes.empty() && !listener_seen_.closes.empty(); }));
  // The listener proves itself first: the dialer finds the proof wrong.
  ASSERT_EQ(dialer_seen_.refusals.size(), 1u);
  EXPECT_THAT(dialer_seen_.refusals[0], HasSubstr("by us: authentication failed"));
  ASSERT_EQ(listener_seen_.refusals.size(), 1u);
  EXPECT_THAT(listener_seen_.refusals[0], HasSubstr("by peer: peer refused: authentication"));
  EXPECT_EQ(dialer_seen_.authenticated + listener_seen_.authenticated, 0);
  EXPECT_EQ(dialer_seen_.closes[0].code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(listener_seen_.closes[0].code(), Status::Code::kInvalidArgument);
}

TEST_F(PeerSessionTest, RefuseAfterTheHandshakeTellsThePeerWhyThenCloses) {
  Connect();
  ASSERT_TRUE(RunUntil([&] { return listener_seen_.authenticated == 1; }));
  accepted_->Refuse("spokes do not connect to each other");
  ASSERT_TRUE(RunUntil([&] { return !listener_seen_.closes.empty(); }));
  EXPECT_EQ(listener_seen_.closes[0].code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(listener_seen_.closes[0].message(), "spokes do not connect to each other");
  ASSERT_TRUE(RunUntil([&] { return !dialer_seen_.messages.empty(); }));
  ASSERT_TRUE(std::holds_alternative<protocol::Refusal>(dialer_seen_.messages[0]));
  EXPECT_EQ(std::get<protocol::Refusal>(dialer_seen_.messages[0]).reason,
            "spokes do not connect to each other");
}

TEST_F(PeerSessionTest, ASessionItsOwnerDroppedCallsNoHandler) {
  Connect();
  ASSERT_TRUE(RunUntil([&] { return listener_seen_.authenticated == 1; }));
  std::weak_ptr<PeerSession> weak = accepted_;
  accepted_.reset();
  EXPECT_TRUE(weak.expired());
  dialed_->connection().Close();
  ASSERT_TRUE(RunUntil([&] { return !dialer_seen_.closes.empty(); }));
  for (int round = 0; round < 20; ++round) io_.poll();
  EXPECT_TRUE(listener_seen_.closes.empty());
}

TEST_F(PeerSessionTest, TheWaitClockStartsAtOpenAndRestarts) {
  const auto before = std::chrono::steady_clock::now();
  Connect();
  ASSERT_TRUE(RunUntil([&] { return dialed_ != nullptr; }));
  const auto opened = dialed_->waiting_since();
  EXPECT_GE(opened, before);
  dialed_->RestartWaitClock();
  EXPECT_GE(dialed_->waiting_since(), opened);
}

TEST_F(PeerSessionTest, StoppedDialersDialNoMore) {
  Connect();
  ASSERT_TRUE(RunUntil([&] { return dialed_ != nullptr; }));
  dialers_.Stop();
  dialers_.Stop();  // idempotent
  ASSERT_TRUE(RunUntil([&] { return !dialer_seen_.closes.empty(); }));
  EXPECT_TRUE(dialer_seen_.closes[0].ok());  // closed by this side
}

}  // namespace
}  // namespace cb::daemon
