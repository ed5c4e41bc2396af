// Loopback TCP tests of MemcacheServer with a fake CacheService. The io_context
// runs in the test thread, in bounded steps (RunUntil), never with sleeps; the
// clients are asynchronous sockets on the same io_context.
#include "sidecar/memcache/memcache_server.h"
#include "sidecar/testing/run_until.h"

#include <gtest/gtest.h>

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace cb::memcache {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr auto kDeadline = std::chrono::seconds(10);

// A map-backed service. kNow answers inside Handle; kDelayed answers from a
// timer (`delays` by first key, 0 otherwise), so requests may be answered out of
// order; kNever keeps the `done` callbacks in `held`; kThrow throws.
class FakeService : public CacheService {
 public:
  enum class Mode { kNow, kDelayed, kNever, kThrow };

  explicit FakeService(asio::io_context& io) : io_(io) {}

  void Handle(Request request, Done done) override {
    ++handled;
    if (mode == Mode::kThrow) throw std::runtime_error("the fake service fails");
    const std::string key = request.keys.empty() ? std::string() : request.keys.front();
    std::string reply = Execute(request);
    switch (mode) {
      case Mode::kNow:
        answered.push_back(key);
        done(std::move(reply));
        return;
      case Mode::kNever:
        held.push_back(std::move(done));
        return;
      case Mode::kDelayed: {
        auto found = delays.find(key);
        auto timer = std::make_shared<asio::steady_timer>(
            io_, found == delays.end() ? milliseconds(0) : found->second);
        timer->async_wait([this, timer, key, reply = std::move(reply),
                           done = std::move(done)](const error_code&) {
          answered.push_back(key);
          done(reply);
        });
        return;
      }
      case Mode::kThrow:
        return;
    }
  }

  Mode mode = Mode::kNow;
  std::map<std::string, milliseconds> delays;
  std::map<std::string, std::pair<uint32_t, std::string>> data;
  int handled = 0;
  std::vector<std::string> answered;  // first keys, in the order answered
  std::vector<Done> held;

 private:
  std::string Execute(const Request& request) {
    std::string reply;
    switch (request.command) {
      case Command::kSet:
        if (request.value_too_large) {
          reply = "SERVER_ERROR object too large for cache\r\n";
        } else {
          data[request.keys.front()] = {request.flags, request.data};
          reply = "STORED\r\n";
        }
        break;
      case Command::kGet:
      case Command::kGets:
        for (const std::string& key : request.keys) {
          if (key == "unreachable") return "SERVER_ERROR the fake cannot reach it\r\n";
          auto found = data.find(key);
          if (found == data.end()) continue;
          reply += "VALUE " + key + " " + std::to_string(found->second.first) + " " +
                   std::to_string(found->second.second.size()) + "\r\n" + found->second.second +
                   "\r\n";
        }
        if (!request.more_keys) reply += "END\r\n";
        break;
      case Command::kVersion:
        reply = "VERSION fake\r\n";
        break;
      default:
        reply = "SERVER_ERROR not in the fake\r\n";
        break;
    }
    return request.noreply ? std::string() : reply;
  }

  asio::io_context& io_;
};

// A client socket on the test's io_context that records everything it reads.
// Its handlers share its state, so it may be destroyed with operations pending.
class Client {
 public:
  struct State {
    explicit State(asio::io_context& io) : socket(io) {}
    tcp::socket socket;
    std::array<char, 64 * 1024> buffer{};
    std::string received;
    bool eof = false;
    error_code read_error;
    int writes_pending = 0;
    std::size_t written = 0;
  };

  Client(asio::io_context& io, uint16_t port) : state_(std::make_shared<State>(io)) {
    state_->socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    Read(state_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client() { Close(); }

  void Send(std::string bytes) {
    auto data = std::make_shared<std::string>(std::move(bytes));
    ++state_->writes_pending;
    asio::async_write(state_->socket, asio::buffer(*data),
                      [state = state_, data](const error_code&, std::size_t n) {
                        --state->writes_pending;
                        state->written += n;
                      });
  }
  void ShutdownSend() { state_->socket.shutdown(tcp::socket::shutdown_send); }
  void Close() {
    error_code ec;
    state_->socket.close(ec);
  }
  // Closes with a reset (SO_LINGER 0) rather than a FIN.
  void Reset() {
    error_code ec;
    state_->socket.set_option(asio::socket_base::linger(true, 0), ec);
    state_->socket.close(ec);
  }

  const std::string& received() const { return state_->received; }
  // The server closed the connection (end of stream or reset).
  bool closed() const { return state_->eof || state_->read_error; }
  bool eof() const { return state_->eof; }
  int writes_pending() const { return state_->writes_pending; }

 private:
  static void Read(const std::shared_ptr<State>& state) {
    state->socket.async_read_some(asio::buffer(state->buffer),
                                  [state](const error_code& ec, std::size_t n) {
                                    if (ec == asio::error::operation_aborted) return;
                                    if (ec == asio::error::eof) {
                                      state->eof = true;
                                      error_code ignored;
                                      state->socket.close(ignored);  // as clients do
                                    } else if (ec) {
                                      state->read_error = ec;
                                    } else {
                                      state->received.append(state->buffer.data(), n);
                                      Read(state);
                                    }
                                  });
  }

  std::shared_ptr<State> state_;
};

class MemcacheServerTest : public ::testing::Test {
 protected:
  void StartServer(MemcacheServerOptions options = {}) {
    auto started = MemcacheServer::Start(io_, HostPort{"127.0.0.1", 0}, service_, options);
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    server_ = std::move(started).value();
    ASSERT_NE(server_->bound_port(), 0);
  }

  std::unique_ptr<Client> Connect() { return std::make_unique<Client>(io_, server_->bound_port()); }

  bool RunUntil(const std::function<bool()>& done) {
    return testing_support::RunUntil(io_, done, kDeadline);
  }

  bool Receives(const Client& client, const std::string& expected) {
    return RunUntil([&] { return client.received().size() >= expected.size() || client.closed(); });
  }

  // Sends `request` and waits for exactly `expected` in reply.
  void RoundTrip(Client& client, const std::string& request, const std::string& expected) {
    const std::size_t before = client.received().size();
    client.Send(request);
    const bool received = RunUntil(
        [&] { return client.received().size() >= before + expected.size() || client.closed(); });
    EXPECT_EQ(client.received().substr(before), expected);
    ASSERT_TRUE(received);
  }

  // A new client sends `requests` at once and must get exactly `expected`.
  std::unique_ptr<Client> SendAndExpect(std::string requests, const std::string& expected) {
    auto client = Connect();
    client->Send(std::move(requests));
    EXPECT_TRUE(Receives(*client, expected));
    EXPECT_EQ(client->received(), expected);
    return client;
  }

  // Runs `body` twice, each time on a new server with no data: the fake
  // answering inside Handle, then from a timer (later, and out of order).
  void InBothAnswerModes(const MemcacheServerOptions& options, const std::function<void()>& body) {
    for (FakeService::Mode mode : {FakeService::Mode::kNow, FakeService::Mode::kDelayed}) {
      SCOPED_TRACE(mode == FakeService::Mode::kNow ? "answered at once" : "answered later");
      service_.mode = mode;
      service_.data.clear();
      StartServer(options);
      body();
      server_.reset();
    }
  }

  asio::io_context io_;
  FakeService service_{io_};
  std::unique_ptr<MemcacheServer> server_;
};

TEST_F(MemcacheServerTest, SetThenGetRoundTripWithBinaryBytes) {
  StartServer();
  auto client = Connect();
  const std::string value("a\0b\r\nc\xff\x01", 8);
  RoundTrip(*client, "set k 5 0 8\r\n" + value + "\r\n", "STORED\r\n");
  RoundTrip(*client, "get k\r\n", "VALUE k 5 8\r\n" + value + "\r\nEND\r\n");

  // A value larger than one read and than one socket buffer.
  std::string big(300 * 1024, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + 3);
  RoundTrip(*client, "set big 0 0 " + std::to_string(big.size()) + "\r\n" + big + "\r\n",
            "STORED\r\n");
  RoundTrip(*client, "get big\r\n",
            "VALUE big 0 " + std::to_string(big.size()) + "\r\n" + big + "\r\nEND\r\n");

  MemcacheServerStats stats = server_->stats();
  EXPECT_EQ(stats.connections_total, 1u);
  EXPECT_EQ(stats.connections_current, 1u);
  EXPECT_EQ(stats.requests, 4u);
  EXPECT_EQ(stats.protocol_errors, 0u);
}

TEST_F(MemcacheServerTest, PipelinedRepliesInRequestOrderWhenAnsweredOutOfOrder) {
  StartServer();
  service_.mode = FakeService::Mode::kDelayed;
  service_.delays["slow"] = milliseconds(50);
  service_.data["slow"] = {0, "1"};
  service_.data["fast"] = {0, "2"};
  auto client = Connect();
  const std::string expected =
      "VALUE slow 0 1\r\n1\r\nEND\r\nVALUE fast 0 1\r\n2\r\nEND\r\nSTORED\r\n";
  client->Send("get slow\r\nget fast\r\nset x 0 0 1 noreply\r\ny\r\nset z 0 0 1\r\nw\r\n");
  ASSERT_TRUE(Receives(*client, expected));
  EXPECT_EQ(client->received(), expected);
  ASSERT_EQ(service_.answered.size(), 4u);
  EXPECT_EQ(service_.answered.back(), "slow");  // answered last, replied first
  EXPECT_FALSE(client->closed());
}

TEST_F(MemcacheServerTest, PipelineLongerThanTheInFlightLimitIsAnsweredInOrder) {
  MemcacheServerOptions options;
  options.max_requests_in_flight = 8;
  options.read_buffer_bytes = 1000;
  StartServer(options);
  std::string requests;
  std::string expected;
  for (int i = 0; i < 5000; ++i) {
    const std::string key = "k" + std::to_string(i);
    const std::string value = std::to_string(i * 31);
    service_.data[key] = {0, value};
    requests += "get " + key + "\r\n";
    expected +=
        "VALUE " + key + " 0 " + std::to_string(value.size()) + "\r\n" + value + "\r\nEND\r\n";
  }
  SendAndExpect(requests, expected);
  EXPECT_EQ(server_->stats().requests, 5000u);
}

// pymemcache's set_many: a long run of noreply writes, then a read. Silent
// requests must free their in-flight places as they are answered (they once
// filled them for good: the first 128 were stored and the connection hung).
TEST_F(MemcacheServerTest, NoreplyPipelineLongerThanTheInFlightLimitIsStoredAndAnswered) {
  InBothAnswerModes({}, [&] {
    std::string requests;
    for (int i = 0; i < 10000; ++i)
      requests += "set p" + std::to_string(i) + " 0 0 1 noreply\r\nx\r\n";
    requests += "get p9999\r\n";
    auto client = SendAndExpect(requests, "VALUE p9999 0 1\r\nx\r\nEND\r\n");
    EXPECT_EQ(service_.data.size(), 10000u);
    EXPECT_FALSE(client->closed());
  });
}

TEST_F(MemcacheServerTest, PipelinedMixOfSilentAndAnsweredRequestsIsAnsweredInOrder) {
  MemcacheServerOptions options;
  options.max_requests_in_flight = 8;
  options.read_buffer_bytes = 1000;
  InBothAnswerModes(options, [&] {
    std::string requests;
    std::string expected;
    for (int i = 0; i < 10000; ++i) {
      const std::string n = std::to_string(i);
      requests += "set q" + n + " 0 0 " + std::to_string(n.size()) + " noreply\r\n" + n + "\r\n";
      requests += "set r" + n + " 0 0 1\r\ny\r\n";
      requests += "get q" + n + "\r\n";
      expected +=
          "STORED\r\nVALUE q" + n + " 0 " + std::to_string(n.size()) + "\r\n" + n + "\r\nEND\r\n";
    }
    SendAndExpect(requests, expected);
    EXPECT_EQ(service_.data.size(), 20000u);
    EXPECT_EQ(server_->stats().requests, 30000u);
  });
}

// php-memcached's getMulti of 20,000 keys: one line of 140 KB, answered as one
// get (the listener receives it in requests of at most max_keys_per_request).
TEST_F(MemcacheServerTest, GetOfTwentyThousandKeysIsAnsweredWithOneEnd) {
  MemcacheServerOptions options;
  options.max_requests_in_flight = 8;
  InBothAnswerModes(options, [&] {
    std::string line = "get";
    std::string expected;
    for (int i = 0; i < 20000; ++i) {
      const std::string key = "k" + std::to_string(i);
      line += " " + key;
      if (i % 3 == 0) continue;  // a miss
      service_.data[key] = {0, std::to_string(i)};
      expected += "VALUE " + key + " 0 " + std::to_string(std::to_string(i).size()) + "\r\n" +
                  std::to_string(i) + "\r\n";
    }
    expected += "END\r\nVERSION fake\r\n";
    auto client = SendAndExpect(line + "\r\nversion\r\n", expected);
    EXPECT_FALSE(client->closed());
    EXPECT_EQ(server_->stats().requests, 200u + 1);
  });
}

// A part of a long get that fails ends the answer with its error line; the
// parts after it are not sent, so the next command's answer is in step.
TEST_F(MemcacheServerTest, FailedPartOfALongGetEndsItsAnswer) {
  MemcacheServerOptions options;
  options.parser_limits.max_keys_per_request = 2;
  StartServer(options);
  service_.data["a"] = {0, "1"};
  service_.data["d"] = {0, "4"};
  auto client = Connect();
  RoundTrip(*client, "get a b unreachable c d e\r\nget d\r\n",
            "VALUE a 0 1\r\n1\r\nSERVER_ERROR the fake cannot reach it\r\n"
            "VALUE d 0 1\r\n4\r\nEND\r\n");
  // The same when the failing part is the last one.
  RoundTrip(*client, "get a b unreachable\r\nget d\r\n",
            "VALUE a 0 1\r\n1\r\nSERVER_ERROR the fake cannot reach it\r\n"
            "VALUE d 0 1\r\n4\r\nEND\r\n");
  // A bad key after a part: its values, then the client error.
  RoundTrip(*client, "get a b c d\x01 e\r\nget d\r\n",
            "VALUE a 0 1\r\n1\r\nCLIENT_ERROR bad command line format\r\n"
            "VALUE d 0 1\r\n4\r\nEND\r\n");
  EXPECT_FALSE(client->closed());
}

TEST_F(MemcacheServerTest, QuitClosesAfterEarlierReplies) {
  StartServer();
  service_.mode = FakeService::Mode::kDelayed;
  service_.delays["a"] = milliseconds(30);
  auto client = Connect();
  client->Send("set a 0 0 1\r\nx\r\nget a\r\nquit\r\nget a\r\n");
  ASSERT_TRUE(RunUntil([&] { return client->closed(); }));
  EXPECT_TRUE(client->eof());
  EXPECT_EQ(client->received(), "STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n");
  EXPECT_EQ(service_.handled, 2);  // nothing after quit
  EXPECT_EQ(server_->stats().requests, 3u);
  ASSERT_TRUE(RunUntil([&] { return server_->stats().connections_current == 0; }));
}

TEST_F(MemcacheServerTest, GarbageGetsErrorAndTheConnectionSurvives) {
  StartServer();
  auto client = Connect();
  RoundTrip(*client, "bogus command\r\nget k\r\n", "ERROR\r\nEND\r\n");
  RoundTrip(*client, "GET k\r\nversion\r\n", "ERROR\r\nVERSION fake\r\n");
  EXPECT_FALSE(client->closed());
  EXPECT_EQ(server_->stats().protocol_errors, 2u);
  EXPECT_EQ(server_->stats().requests, 2u);
}

TEST_F(MemcacheServerTest, NoreplyErrorsAndRepliesAreSilent) {
  StartServer();
  auto client = Connect();
  RoundTrip(*client, "set k 0 0 1 noreply\r\nx\r\nincr k abc noreply\r\nget k\r\n",
            "VALUE k 0 1\r\nx\r\nEND\r\n");
  EXPECT_EQ(server_->stats().protocol_errors, 1u);
}

TEST_F(MemcacheServerTest, ValueOverTheConfiguredLimitIsRefusedAndTheStreamStaysInStep) {
  MemcacheServerOptions options;
  options.parser_limits.max_value_bytes = 16;
  StartServer(options);
  auto client = Connect();
  RoundTrip(*client, "set k 0 0 32\r\n" + std::string(32, 'v') + "\r\nget k\r\n",
            "SERVER_ERROR object too large for cache\r\nEND\r\n");
  RoundTrip(*client, "set k 0 0 16\r\n" + std::string(16, 'v') + "\r\n", "STORED\r\n");
}

TEST_F(MemcacheServerTest, OverlongLineGetsTheErrorAndClosesOnlyThatConnection) {
  StartServer();
  auto other = Connect();
  RoundTrip(*other, "version\r\n", "VERSION fake\r\n");

  auto client = Connect();
  client->Send(std::string(5000, 'x'));
  ASSERT_TRUE(RunUntil([&] { return client->closed(); }));
  EXPECT_EQ(client->received(), "CLIENT_ERROR line too long\r\n");
  EXPECT_EQ(server_->stats().protocol_errors, 1u);

  RoundTrip(*other, "version\r\n", "VERSION fake\r\n");
  EXPECT_FALSE(other->closed());
  ASSERT_TRUE(RunUntil([&] { return server_->stats().connections_current == 1; }));
}

TEST_F(MemcacheServerTest, HalfClosedClientStillGetsItsReplies) {
  StartServer();
  service_.mode = FakeService::Mode::kDelayed;
  service_.delays["slow"] = milliseconds(30);
  auto client = Connect();
  client->Send("get slow\r\nversion\r\n");
  ASSERT_TRUE(RunUntil([&] { return service_.handled == 2; }));
  client->ShutdownSend();
  ASSERT_TRUE(RunUntil([&] { return client->closed(); }));
  EXPECT_TRUE(client->eof());
  EXPECT_EQ(client->received(), "END\r\nVERSION fake\r\n");
}

TEST_F(MemcacheServerTest, ClientGoneWithRequestsPendingIsHarmless) {
  StartServer();
  service_.mode = FakeService::Mode::kDelayed;
  service_.delays["slow"] = milliseconds(50);

  auto closing = Connect();
  closing->Send("get slow\r\nget slow\r\n");
  auto resetting = Connect();
  resetting->Send("get slow\r\nget slow\r\n");
  ASSERT_TRUE(RunUntil([&] { return service_.handled == 4; }));
  closing->Close();
  resetting->Reset();
  closing.reset();
  resetting.reset();

  // The late answers find the connections gone (or going) and are dropped.
  ASSERT_TRUE(RunUntil(
      [&] { return service_.answered.size() == 4 && server_->stats().connections_current == 0; }));

  auto client = Connect();
  RoundTrip(*client, "version\r\n", "VERSION fake\r\n");
}

TEST_F(MemcacheServerTest, StopWithPendingRequestsLetsTheIoContextReturn) {
  StartServer();
  service_.mode = FakeService::Mode::kNever;
  auto waiting = Connect();
  waiting->Send("get a\r\nget b\r\n");
  auto partial = Connect();
  partial->Send("set x 0 0 10\r\nabc");
  auto idle = Connect();
  ASSERT_TRUE(
      RunUntil([&] { return service_.handled == 2 && server_->stats().connections_current == 3; }));

  server_->Stop();
  server_->Stop();  // idempotent
  EXPECT_EQ(server_->stats().connections_current, 0u);

  // Nothing is left for the io_context once the clients have seen their close.
  io_.restart();
  io_.run_for(kDeadline);
  EXPECT_TRUE(io_.stopped());
  EXPECT_TRUE(waiting->closed());
  EXPECT_TRUE(partial->closed());
  EXPECT_TRUE(idle->closed());
  EXPECT_EQ(waiting->received(), "");

  // Late answers, after Stop and after the server is gone, do nothing.
  ASSERT_EQ(service_.held.size(), 2u);
  service_.held[0]("END\r\n");
  server_.reset();
  service_.held[1]("END\r\n");
  io_.restart();
  io_.run_for(kDeadline);
  EXPECT_TRUE(io_.stopped());
}

TEST_F(MemcacheServerTest, DestroyingTheServerWithDelayedAnswersPendingIsHarmless) {
  StartServer();
  service_.mode = FakeService::Mode::kDelayed;
  service_.delays["slow"] = milliseconds(20);
  auto client = Connect();
  client->Send("get slow\r\nget slow\r\n");
  ASSERT_TRUE(RunUntil([&] { return service_.handled == 2; }));
  server_.reset();
  ASSERT_TRUE(RunUntil([&] { return service_.answered.size() == 2 && client->closed(); }));
  EXPECT_EQ(client->received(), "");
}

TEST_F(MemcacheServerTest, BackpressureBoundsTheRequestsInFlight) {
  MemcacheServerOptions options;
  options.max_requests_in_flight = 8;
  StartServer(options);
  service_.mode = FakeService::Mode::kNever;
  auto client = Connect();
  // Far more than the kernel buffers on both sides hold.
  std::string stream;
  for (int i = 0; i < 4 * 1024 * 1024; ++i) stream += "get k\r\n";
  client->Send(std::move(stream));
  ASSERT_TRUE(RunUntil([&] { return service_.handled >= 8; }));

  // Let the server run for a while: it must not take more.
  const auto until = steady_clock::now() + milliseconds(200);
  while (steady_clock::now() < until) {
    if (io_.stopped()) io_.restart();
    io_.run_one_for(milliseconds(10));
  }
  EXPECT_EQ(service_.handled, 8);
  EXPECT_EQ(client->writes_pending(), 1);  // the client is blocked: the server stopped reading

  // Answering frees the slots and the server reads on.
  std::vector<CacheService::Done> held = std::move(service_.held);
  service_.held.clear();
  for (auto& done : held) done("END\r\n");
  ASSERT_TRUE(RunUntil([&] { return service_.handled >= 16; }));
  EXPECT_EQ(service_.handled, 16);
  std::string ends;
  for (int i = 0; i < 8; ++i) ends += "END\r\n";
  ASSERT_TRUE(Receives(*client, ends));
  EXPECT_EQ(client->received(), ends);
}

TEST_F(MemcacheServerTest, PortInUseIsReportedWithTheAddress) {
  StartServer();
  const uint16_t port = server_->bound_port();
  auto second = MemcacheServer::Start(io_, HostPort{"127.0.0.1", port}, service_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kIoError);
  EXPECT_EQ(second.status().message(),
            "memcached 127.0.0.1:" + std::to_string(port) + ": address already in use");
}

TEST_F(MemcacheServerTest, ConnectionsBeyondTheLimitAreClosedAndCounted) {
  MemcacheServerOptions options;
  options.max_connections = 2;
  StartServer(options);
  auto a = Connect();
  auto b = Connect();
  RoundTrip(*a, "version\r\n", "VERSION fake\r\n");
  RoundTrip(*b, "version\r\n", "VERSION fake\r\n");

  auto c = Connect();
  ASSERT_TRUE(RunUntil([&] { return c->closed(); }));
  EXPECT_EQ(c->received(), "ERROR Too many open connections\r\n");
  EXPECT_EQ(server_->stats().connections_rejected, 1u);
  EXPECT_EQ(server_->stats().connections_current, 2u);

  a->Send("quit\r\n");
  ASSERT_TRUE(RunUntil([&] { return server_->stats().connections_current == 1; }));
  auto d = Connect();
  RoundTrip(*d, "version\r\n", "VERSION fake\r\n");
  EXPECT_EQ(server_->stats().connections_total, 3u);
  EXPECT_EQ(server_->stats().connections_rejected, 1u);
}

TEST_F(MemcacheServerTest, IdleTimeoutClosesIdleConnectionsOnly) {
  MemcacheServerOptions options;
  options.idle_timeout = milliseconds(50);
  StartServer(options);
  service_.mode = FakeService::Mode::kDelayed;
  service_.delays["slow"] = milliseconds(200);
  auto idle = Connect();
  auto waiting = Connect();
  waiting->Send("get slow\r\n");
  ASSERT_TRUE(RunUntil([&] { return idle->closed(); }));
  EXPECT_FALSE(waiting->closed());
  // Waiting for the service is not idleness; once answered, it is.
  ASSERT_TRUE(RunUntil([&] { return waiting->closed(); }));
  EXPECT_EQ(waiting->received(), "END\r\n");
}

TEST_F(MemcacheServerTest, ServiceExceptionClosesOnlyThatConnection) {
  StartServer();
  auto other = Connect();
  RoundTrip(*other, "version\r\n", "VERSION fake\r\n");
  service_.mode = FakeService::Mode::kThrow;
  auto client = Connect();
  client->Send("get k\r\n");
  ASSERT_TRUE(RunUntil([&] { return client->closed(); }));
  service_.mode = FakeService::Mode::kNow;
  RoundTrip(*other, "version\r\n", "VERSION fake\r\n");
}

TEST_F(MemcacheServerTest, EmptyHostMeansLoopback) {
  auto started = MemcacheServer::Start(io_, HostPort{"", 0}, service_);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  Client client(io_, started.value()->bound_port());
  RoundTrip(client, "version\r\n", "VERSION fake\r\n");
}

}  // namespace
}  // namespace cb::memcache
