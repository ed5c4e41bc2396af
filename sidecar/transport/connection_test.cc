// Loopback TCP tests of Connection, Listener and PeerDialer. The io_context runs
// in the test thread, in bounded steps (RunUntil), never with sleeps.
#include "sidecar/transport/connection.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/write.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sidecar/testing/run_until.h"
#include "sidecar/transport/listener.h"
#include "sidecar/transport/peer_dialer.h"

namespace cb::transport {
namespace {

using asio::ip::tcp;
using std::chrono::milliseconds;
using std::chrono::steady_clock;
using ::testing::HasSubstr;

constexpr auto kDeadline = std::chrono::seconds(10);

HostPort Loopback(uint16_t port) { return HostPort{"127.0.0.1", port}; }

DialerOptions FastDialer() {
  DialerOptions options;
  options.connect_timeout = std::chrono::seconds(2);
  options.initial_backoff = milliseconds(5);
  options.max_backoff = milliseconds(20);
  options.seed = 7;
  return options;
}

protocol::Message Beat(uint64_t generation) {
  return protocol::Heartbeat{.incarnation = 1, .view_generation = generation, .sent_unix_ms = 0};
}

class TransportTest : public ::testing::Test {
 protected:
  struct Side {
    std::shared_ptr<Connection> connection;
    std::vector<protocol::Message> received;
    std::vector<Status> closes;
  };

  bool RunUntil(const std::function<bool()>& done) {
    return testing_support::RunUntil(io_, done, kDeadline);
  }

  // Runs every handler that is ready, and those they make ready.
  void RunReady() {
    for (int round = 0; round < 10; ++round) {
      if (io_.stopped()) io_.restart();
      if (io_.poll() == 0) return;
    }
  }

  // Starts `connection`, recording what it receives and how it closes.
  Side* Adopt(std::shared_ptr<Connection> connection) {
    sides_.push_back(std::make_unique<Side>());
    Side* side = sides_.back().get();
    side->connection = connection;
    connection->Start(
        [side](protocol::Message message) { side->received.push_back(std::move(message)); },
        [side](const Status& status) { side->closes.push_back(status); });
    return side;
  }

  // A listener on 127.0.0.1 whose connections are adopted into accepted_.
  std::unique_ptr<Listener> StartListener(FrameLimits limits = {}, uint16_t port = 0) {
    Result<std::unique_ptr<Listener>> listener = Listener::Listen(
        io_, Loopback(port), limits, [this](std::shared_ptr<Connection> connection) {
          accepted_.push_back(Adopt(std::move(connection)));
        });
    EXPECT_TRUE(listener.ok()) << listener.status().ToString();
    return listener.ok() ? std::move(listener).value() : nullptr;
  }

  // A raw socket connected to `port`, for sending bytes no sidecar would send.
  tcp::socket RawConnect(uint16_t port) {
    tcp::socket raw(io_);
    raw.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    return raw;
  }

  asio::io_context io_;
  std::vector<std::unique_ptr<Side>> sides_;
  std::vector<Side*> accepted_;
};

TEST_F(TransportTest, ExchangesMessagesBothWays) {
  std::unique_ptr<Listener> listener = StartListener();
  ASSERT_TRUE(listener);
  Side* client = nullptr;
  PeerDialer dialer(io_, Loopback(listener->bound_port()), FastDialer(),
                    [&](std::shared_ptr<Connection> connection) { client = Adopt(connection); });
  dialer.Start();
  ASSERT_TRUE(RunUntil([&] { return client != nullptr && accepted_.size() == 1; }));
  Side* server = accepted_[0];
  EXPECT_EQ(dialer.connection(), client->connection);
  EXPECT_EQ(client->connection->remote_endpoint(),
            "127.0.0.1:" + std::to_string(listener->bound_port()));
  EXPECT_THAT(server->connection->remote_endpoint(), HasSubstr("127.0.0.1:"));

  protocol::Hello hello;
  hello.identity.server_id = "app-a";
  hello.nonce = std::string(protocol::kNonceBytes, 'n');
  ASSERT_TRUE(client->connection->Send(hello).ok());
  ASSERT_TRUE(server->connection->Send(protocol::Welcome{}).ok());
  ASSERT_TRUE(server->connection->Send(Beat(5)).ok());
  ASSERT_TRUE(
      RunUntil([&] { return server->received.size() == 1 && client->received.size() == 2; }));

  ASSERT_TRUE(std::holds_alternative<protocol::Hello>(server->received[0]));
  EXPECT_EQ(std::get<protocol::Hello>(server->received[0]).identity.server_id, "app-a");
  EXPECT_EQ(std::get<protocol::Hello>(server->received[0]).nonce, hello.nonce);
  EXPECT_TRUE(std::holds_alternative<protocol::Welcome>(client->received[0]));
  ASSERT_TRUE(std::holds_alternative<protocol::Heartbeat>(client->received[1]));
  EXPECT_EQ(std::get<protocol::Heartbeat>(client->received[1]).view_generation, 5u);
  EXPECT_TRUE(client->closes.empty());
  EXPECT_TRUE(server->closes.empty());
}

TEST_F(TransportTest, ThousandMessagesBackToBackKeepTheirOrder) {
  std::unique_ptr<Listener> listener = StartListener();
  ASSERT_TRUE(listener);
  Side* client = nullptr;
  PeerDialer dialer(io_, Loopback(listener->bound_port()), FastDialer(),
                    [&](std::shared_ptr<Connection> connection) { client = Adopt(connection); });
  dialer.Start();
  ASSERT_TRUE(RunUntil([&] { return client != nullptr && accepted_.size() == 1; }));
  Side* server = accepted_[0];

  constexpr uint64_t kCount = 1000;
  for (uint64_t i = 0; i < kCount; ++i) {
    ASSERT_TRUE(client->connection->Send(Beat(i)).ok());
    ASSERT_TRUE(server->connection->Send(Beat(kCount + i)).ok());
    if (i % 100 == 50) RunReady();  // let some writes complete in between
  }
  ASSERT_TRUE(RunUntil([&] {
    return server->received.size() == kCount && client->received.size() == kCount &&
           client->connection->queued_bytes() == 0 && server->connection->queued_bytes() == 0;
  }));
  for (uint64_t i = 0; i < kCount; ++i) {
    ASSERT_EQ(std::get<protocol::Heartbeat>(server->received[i]).view_generation, i);
    ASSERT_EQ(std::get<protocol::Heartbeat>(client->received[i]).view_generation, kCount + i);
  }
  // One write in flight: frames queued meanwhile share the next write.
  const Connection::Stats& sent = client->connection->stats();
  EXPECT_EQ(sent.messages_sent, kCount);
  EXPECT_GE(sent.writes, 1u);
  EXPECT_LT(sent.writes, kCount);
  EXPECT_EQ(client->connection->queued_bytes(), 0u);
  EXPECT_EQ(sent.bytes_written, server->connection->stats().bytes_received);
  EXPECT_EQ(server->connection->stats().messages_received, kCount);
}

TEST_F(TransportTest, GarbageClosesOnlyThatConnection) {
  std::unique_ptr<Listener> listener = StartListener();
  ASSERT_TRUE(listener);
  Side* client = nullptr;
  PeerDialer dialer(io_, Loopback(listener->bound_port()), FastDialer(),
                    [&](std::shared_ptr<Connection> connection) { client = Adopt(connection); });
  dialer.Start();
  ASSERT_TRUE(RunUntil([&] { return client != nullptr && accepted_.size() == 1; }));

  tcp::socket raw = RawConnect(listener->bound_port());
  const unsigned char garbage[] = {0, 0, 0, 4, 0xc1, 0xc1, 0xc1, 0xc1};  // 0xc1: never used
  asio::write(raw, asio::buffer(garbage));
  ASSERT_TRUE(RunUntil([&] { return accepted_.size() == 2 && !accepted_[1]->closes.empty(); }));
  const Status& status = accepted_[1]->closes[0];
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument) << status.ToString();
  EXPECT_THAT(status.message(), HasSubstr("frame: undecodable message"));
  EXPECT_TRUE(accepted_[1]->received.empty());

  // The other connection is untouched and still carries messages both ways.
  ASSERT_TRUE(client->connection->Send(Beat(1)).ok());
  ASSERT_TRUE(accepted_[0]->connection->Send(Beat(2)).ok());
  ASSERT_TRUE(
      RunUntil([&] { return accepted_[0]->received.size() == 1 && client->received.size() == 1; }));
  EXPECT_TRUE(accepted_[0]->closes.empty());
  EXPECT_TRUE(client->closes.empty());
  RunReady();
  EXPECT_EQ(accepted_[1]->closes.size(), 1u);
}

TEST_F(TransportTest, UnknownMessageTypeClosesTheConnection) {
  std::unique_ptr<Listener> listener = StartListener();
  ASSERT_TRUE(listener);
  tcp::socket raw = RawConnect(listener->bound_port());
  const unsigned char frame[] = {0, 0, 0, 3, 0x92, 0x63, 0x90};  // [99, []]
  asio::write(raw, asio::buffer(frame));
  ASSERT_TRUE(RunUntil([&] { return accepted_.size() == 1 && !accepted_[0]->closes.empty(); }));
  EXPECT_EQ(accepted_[0]->closes[0].code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(accepted_[0]->closes[0].message(), HasSubstr("unknown type 99"));
}

TEST_F(TransportTest, OversizedFrameHeaderClosesBeforeThePayload) {
  FrameLimits limits;
  limits.max_payload_bytes = 1024;
  std::unique_ptr<Listener> listener = StartListener(limits);
  ASSERT_TRUE(listener);
  tcp::socket raw = RawConnect(listener->bound_port());
  const unsigned char header[] = {0xff, 0xff, 0xff, 0xff};  // 4 GiB declared, nothing sent
  asio::write(raw, asio::buffer(header));
  ASSERT_TRUE(RunUntil([&] { return accepted_.size() == 1 && !accepted_[0]->closes.empty(); }));
  EXPECT_EQ(accepted_[0]->closes[0].code(), Status::Code::kTooLarge)
      << accepted_[0]->closes[0].ToString();
  EXPECT_THAT(accepted_[0]->closes[0].message(),
              HasSubstr("declared size 4294967295 is over the limit of 1024"));

  // The raw peer sees the close.
  std::array<char, 16> buffer{};
  boost::system::error_code error;
  raw.read_some(asio::buffer(buffer), error);
  EXPECT_TRUE(error == asio::error::eof || error == asio::error::connection_reset)
      << error.message();
}

TEST_F(TransportTest, CloseCallsOnClosedExactlyOnceOnEachSide) {
  std::unique_ptr<Listener> listener = StartListener();
  ASSERT_TRUE(listener);
  Side* client = nullptr;
  PeerDialer dialer(io_, Loopback(listener->bound_port()), FastDialer(),
                    [&](std::shared_ptr<Connection> connection) { client = Adopt(connection); });
  dialer.Start();
  ASSERT_TRUE(RunUntil([&] { return client != nullptr && accepted_.size() == 1; }));
  Side* server = accepted_[0];

  client->connection->Close();
  client->connection->Close();
  EXPECT_TRUE(client->closes.empty()) << "on_closed is posted, never called from Close()";
  ASSERT_TRUE(RunUntil([&] { return !server->closes.empty() && !client->closes.empty(); }));
  dialer.Stop();  // no reconnect while we watch
  RunReady();
  ASSERT_EQ(client->closes.size(), 1u);
  ASSERT_EQ(server->closes.size(), 1u);
  EXPECT_TRUE(client->closes[0].ok()) << "closed by this side";
  EXPECT_EQ(server->closes[0].code(), Status::Code::kIoError);
  EXPECT_EQ(server->closes[0].message(), "peer closed the connection");
  EXPECT_TRUE(client->connection->closed());
  EXPECT_FALSE(client->connection->Send(Beat(1)).ok());
  server->connection->Close();  // already closed: nothing more
  RunReady();
  EXPECT_EQ(server->closes.size(), 1u);
}

TEST_F(TransportTest, CloseInsideOnMessageStopsDelivery) {
  std::vector<uint64_t> delivered;
  std::vector<Status> closes;
  std::shared_ptr<Connection> server;
  Result<std::unique_ptr<Listener>> listener = Listener::Listen(
      io_, Loopback(0), FrameLimits{}, [&](std::shared_ptr<Connection> connection) {
        server = connection;
        Connection* raw = connection.get();
        connection->Start(
            [&, raw](protocol::Message message) {
              delivered.push_back(std::get<protocol::Heartbeat>(message).view_generation);
              raw->Close(Status::InvalidArgument("out of order"));
            },
            [&](const Status& status) { closes.push_back(status); });
      });
  ASSERT_TRUE(listener.ok()) << listener.status().ToString();
  Side* client = nullptr;
  PeerDialer dialer(io_, Loopback((*listener)->bound_port()), FastDialer(),
                    [&](std::shared_ptr<Connection> connection) { client = Adopt(connection); });
  dialer.Start();
  ASSERT_TRUE(RunUntil([&] { return client != nullptr; }));
  for (uint64_t i = 0; i < 5; ++i) ASSERT_TRUE(client->connection->Send(Beat(i)).ok());
  ASSERT_TRUE(RunUntil([&] { return !closes.empty(); }));
  dialer.Stop();
  RunReady();
  EXPECT_EQ(delivered, std::vector<uint64_t>{0});
  ASSERT_EQ(closes.size(), 1u);
  EXPECT_EQ(closes[0].message(), "out of order");
}

TEST_F(TransportTest, CloseAfterFlushDeliversTheLastMessage) {
  std::unique_ptr<Listener> listener = StartListener();
  ASSERT_TRUE(listener);
  Side* client = nullptr;
  PeerDialer dialer(io_, Loopback(listener->bound_port()), FastDialer(),
                    [&](std::shared_ptr<Connection> connection) { client = Adopt(connection); });
  dialer.Start();
  ASSERT_TRUE(RunUntil([&] { return client != nullptr && accepted_.size() == 1; }));
  Side* server = accepted_[0];

  ASSERT_TRUE(server->connection->Send(protocol::Refusal{"wrong cluster key"}).ok());
  server->connection->CloseAfterFlush(Status::InvalidArgument("refused: wrong cluster key"));
  EXPECT_FALSE(server->connection->Send(Beat(1)).ok()) << "closing: nothing more is queued";
  ASSERT_TRUE(RunUntil([&] { return !client->closes.empty() && !server->closes.empty(); }));
  ASSERT_EQ(client->received.size(), 1u);
  EXPECT_EQ(std::get<protocol::Refusal>(client->received[0]).reason, "wrong cluster key");
  EXPECT_EQ(client->closes[0].message(), "peer closed the connection");
  EXPECT_EQ(server->closes[0].message(), "refused: wrong cluster key");
}

TEST_F(TransportTest, StuckPeerOverflowsTheQueueAndIsClosed) {
  // The accepted connection is never started, so nothing reads from it.
  std::vector<std::shared_ptr<Connection>> unread;
  Result<std::unique_ptr<Listener>> listener = Listener::Listen(
      io_, Loopback(0), FrameLimits{},
      [&](std::shared_ptr<Connection> connection) { unread.push_back(connection); });
  ASSERT_TRUE(listener.ok()) << listener.status().ToString();
  DialerOptions options = FastDialer();
  options.limits.max_payload_bytes = 256 * 1024;
  options.max_queued_bytes = 1024 * 1024;
  Side* client = nullptr;
  PeerDialer dialer(io_, Loopback((*listener)->bound_port()), options,
                    [&](std::shared_ptr<Connection> connection) { client = Adopt(connection); });
  dialer.Start();
  ASSERT_TRUE(RunUntil([&] { return client != nullptr && unread.size() == 1; }));

  protocol::ViewUpdate update;
  update.servers.resize(4);
  for (protocol::ServerRecord& record : update.servers) record.id = std::string(32 * 1024, 'x');
  Status sent;
  int sends = 0;
  for (; sends < 20000 && sent.ok(); ++sends) {
    sent = client->connection->Send(update);
    RunReady();  // writes complete while the kernel's buffers have room
  }
  EXPECT_THAT(sent.message(), HasSubstr("peer is not reading"));
  EXPECT_GE(sends, 2);
  ASSERT_TRUE(RunUntil([&] { return !client->closes.empty(); }));
  EXPECT_THAT(client->closes[0].message(), HasSubstr("peer is not reading"));
}

TEST_F(TransportTest, DialerReconnectsWhenTheListenerSideCloses) {
  int accepted = 0;
  Result<std::unique_ptr<Listener>> listener = Listener::Listen(
      io_, Loopback(0), FrameLimits{}, [&](std::shared_ptr<Connection> connection) {
        ++accepted;
        connection->Close();  // e.g. a refused handshake
      });
  ASSERT_TRUE(listener.ok()) << listener.status().ToString();
  std::vector<Side*> clients;
  std::vector<std::string> retries;
  PeerDialer dialer(
      io_, Loopback((*listener)->bound_port()), FastDialer(),
      [&](std::shared_ptr<Connection> connection) { clients.push_back(Adopt(connection)); },
      [&](const Status& why, milliseconds delay) {
        retries.push_back(why.message());
        EXPECT_LE(delay, milliseconds(20));
      });
  dialer.Start();
  ASSERT_TRUE(RunUntil([&] { return clients.size() >= 3 && accepted >= 3; }));
  dialer.Stop();
  RunReady();
  for (Side* client : clients) {
    EXPECT_EQ(client->closes.size(), 1u);
  }
  ASSERT_FALSE(retries.empty());
  EXPECT_THAT(retries[0], HasSubstr("peer closed the connection"));
}

// Every connection is closed at once by the listener side; the retry delays
// stay at the first step when the backoff is reset after each connection.
TEST_F(TransportTest, BackoffStartsOverAfterAHealthyConnection) {
  for (const bool mark_healthy : {false, true}) {
    SCOPED_TRACE(mark_healthy ? "MarkHealthy()" : "healthy_after = 0");
    Result<std::unique_ptr<Listener>> listener =
        Listener::Listen(io_, Loopback(0), FrameLimits{},
                         [&](std::shared_ptr<Connection> connection) { connection->Close(); });
    ASSERT_TRUE(listener.ok()) << listener.status().ToString();
    DialerOptions options = FastDialer();
    options.initial_backoff = milliseconds(4);
    options.max_backoff = milliseconds(1000);
    options.healthy_after = mark_healthy ? std::chrono::hours(1) : milliseconds(0);
    std::vector<milliseconds> delays;
    PeerDialer* dialer_pointer = nullptr;
    PeerDialer dialer(
        io_, Loopback((*listener)->bound_port()), options,
        [&](std::shared_ptr<Connection> connection) {
          Adopt(connection);
          if (mark_healthy) dialer_pointer->MarkHealthy();
        },
        [&](const Status&, milliseconds delay) { delays.push_back(delay); });
    dialer_pointer = &dialer;
    dialer.Start();
    ASSERT_TRUE(RunUntil([&] { return delays.size() >= 6; }));
    for (const milliseconds delay : delays) EXPECT_LE(delay, milliseconds(4));
    dialer.Stop();
    (*listener)->Stop();
  }
}

TEST_F(TransportTest, DialerRetriesUntilAListenerAppears) {
  uint16_t port = 0;
  {
    std::unique_ptr<Listener> probe = StartListener();  // find a free port
    ASSERT_TRUE(probe);
    port = probe->bound_port();
  }
  Side* client = nullptr;
  std::vector<std::string> retries;
  PeerDialer dialer(
      io_, Loopback(port), FastDialer(),
      [&](std::shared_ptr<Connection> connection) { client = Adopt(connection); },
      [&](const Status& why, milliseconds) { retries.push_back(why.message()); });
  dialer.Start();
  ASSERT_TRUE(RunUntil([&] { return retries.size() >= 3; }));
  EXPECT_EQ(client, nullptr);
  EXPECT_THAT(retries[0], HasSubstr("connection refused"));
  EXPECT_GE(dialer.attempts(), 3u);

  std::unique_ptr<Listener> listener = StartListener(FrameLimits{}, port);
  ASSERT_TRUE(listener);
  ASSERT_TRUE(RunUntil([&] { return client != nullptr && accepted_.size() == 1; }));
  ASSERT_TRUE(client->connection->Send(Beat(3)).ok());
  ASSERT_TRUE(RunUntil([&] { return accepted_[0]->received.size() == 1; }));
}

TEST_F(TransportTest, ListeningOnAPortInUseSaysSo) {
  std::unique_ptr<Listener> first = StartListener();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->local_endpoint(), "127.0.0.1:" + std::to_string(first->bound_port()));
  Result<std::unique_ptr<Listener>> second = Listener::Listen(
      io_, Loopback(first->bound_port()), FrameLimits{}, [](std::shared_ptr<Connection>) {});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kIoError);
  EXPECT_EQ(second.status().message(),
            "127.0.0.1:" + std::to_string(first->bound_port()) + ": address already in use");
}

TEST_F(TransportTest, StopEndsEverythingAndRunReturns) {
  std::unique_ptr<Listener> listener = StartListener();
  ASSERT_TRUE(listener);
  Side* client = nullptr;
  PeerDialer dialer(io_, Loopback(listener->bound_port()), FastDialer(),
                    [&](std::shared_ptr<Connection> connection) { client = Adopt(connection); });
  dialer.Start();
  uint16_t dead_port = 0;
  {
    std::unique_ptr<Listener> probe = StartListener();
    ASSERT_TRUE(probe);
    dead_port = probe->bound_port();
  }
  int retries = 0;
  PeerDialer retrying(
      io_, Loopback(dead_port), FastDialer(), [](std::shared_ptr<Connection>) {},
      [&](const Status&, milliseconds) { ++retries; });
  retrying.Start();
  ASSERT_TRUE(RunUntil([&] { return client != nullptr && accepted_.size() == 1 && retries > 0; }));

  listener->Stop();
  dialer.Stop();
  retrying.Stop();
  if (io_.stopped()) io_.restart();
  const auto started = steady_clock::now();
  io_.run_for(kDeadline);  // returns as soon as no work is left
  EXPECT_TRUE(io_.stopped());
  EXPECT_LT(steady_clock::now() - started, kDeadline);
  ASSERT_EQ(client->closes.size(), 1u);
  EXPECT_TRUE(client->closes[0].ok());
  ASSERT_EQ(accepted_[0]->closes.size(), 1u);
  EXPECT_EQ(accepted_[0]->closes[0].message(), "peer closed the connection");
}

TEST(EndpointTextTest, BracketsIPv6) {
  EXPECT_EQ(EndpointText(tcp::endpoint(asio::ip::make_address("10.0.0.1"), 6800)), "10.0.0.1:6800");
  EXPECT_EQ(EndpointText(tcp::endpoint(asio::ip::make_address("::1"), 6800)), "[::1]:6800");
}

}  // namespace
}  // namespace cb::transport
