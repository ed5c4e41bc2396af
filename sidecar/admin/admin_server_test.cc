// Tests of AdminServer's uploads, asynchronous replies, TLS, credentials and
// remote-deploy refusal, over real sockets with a Beast client on the same
// io_context. (The plain routes over sockets are tested in admin_router_test.cc.)

// First: before any other Boost.Asio header.
#include "sidecar/admin/asio_coroutines.h"

#include "sidecar/admin/admin_server.h"

#include <ifaddrs.h>
#include <netinet/in.h>
#include <sodium.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "sidecar/testing/run_until.h"
#include "sidecar/testing/temp_dir.h"

// See admin_server.cc: g++ 12 and Asio 1.74's coroutine frames.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace cb::admin {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using nlohmann::json;
using testing_support::RunUntil;
using testing_support::TempDir;
using tcp = asio::ip::tcp;

// ---------------------------------------------------------------- client

// MakeHandlers' token, which Request sends with every request.
constexpr char kToken[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

// What the client sends, in order: Beast requests or raw bytes; after each, it
// reads one response.
struct Message {
  std::optional<http::request<http::string_body>> request;
  std::string raw;
};

struct Exchange {
  std::vector<Message> messages;
  std::shared_ptr<ssl::context> tls;  // a TLS client when set

  std::vector<http::response<http::string_body>> responses;
  beast::error_code error;  // the first error, if any
  bool done = false;
};

Message Request(http::verb verb, std::string target, std::string body = "",
                std::string authorization = "") {
  http::request<http::string_body> request(verb, target, 11);
  request.set(http::field::host, "localhost");
  request.set("X-CSRF-Token", kToken);
  if (!authorization.empty()) request.set(http::field::authorization, authorization);
  request.body() = std::move(body);
  request.prepare_payload();
  return Message{std::move(request), {}};
}

Message Raw(std::string bytes) { return Message{std::nullopt, std::move(bytes)}; }

template <typename Stream>
asio::awaitable<void> Talk(Stream& stream, std::shared_ptr<Exchange> x) {
  beast::error_code& ec = x->error;
  beast::flat_buffer buffer;
  for (Message& message : x->messages) {
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(20));
    if (message.request) {
      co_await http::async_write(stream, *message.request,
                                 asio::redirect_error(asio::use_awaitable, ec));
    } else {
      co_await asio::async_write(stream, asio::buffer(message.raw),
                                 asio::redirect_error(asio::use_awaitable, ec));
    }
    if (ec) co_return;
    http::response<http::string_body> response;
    co_await http::async_read(stream, buffer, response,
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    x->responses.push_back(std::move(response));
  }
}

asio::awaitable<void> Converse(tcp::endpoint endpoint, std::shared_ptr<Exchange> x) {
  beast::tcp_stream tcp_stream(co_await asio::this_coro::executor);
  beast::error_code& ec = x->error;
  tcp_stream.expires_after(std::chrono::seconds(10));
  co_await tcp_stream.async_connect(endpoint, asio::redirect_error(asio::use_awaitable, ec));
  if (!ec && x->tls) {
    beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp_stream), *x->tls);
    stream.set_verify_mode(ssl::verify_peer);
    stream.set_verify_callback(ssl::host_name_verification("localhost"));
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
    co_await stream.async_handshake(ssl::stream_base::client,
                                    asio::redirect_error(asio::use_awaitable, ec));
    if (!ec) co_await Talk(stream, x);
  } else if (!ec) {
    co_await Talk(tcp_stream, x);
  }
  x->done = true;
}

std::string Base64(std::string_view in) {
  std::string out(sodium_base64_encoded_len(in.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(in.data()),
                    in.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

std::string BasicAuth(std::string_view user, std::string_view password) {
  return "Basic " + Base64(std::string(user) + ":" + std::string(password));
}

// Captures the default logger's lines while alive.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(lines_);
    auto logger = std::make_shared<spdlog::logger>("capture", sink);
    logger->set_level(spdlog::level::debug);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::string text() const { return lines_.str(); }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::ostringstream lines_;
};

// ---------------------------------------------------------------- fixture

// Records deploys; replies at once unless `hold` (then the test replies).
struct Deployer {
  std::vector<DeployRequest> deploys;
  std::vector<AdminReply> held;
  bool hold = false;
  unsigned answered = 0;
};

AdminHandlers MakeHandlers(Deployer* d) {
  AdminHandlers handlers;
  handlers.csrf_token = kToken;
  handlers.status = [] { return json{{"server", {{"id", "app-a"}}}}; };
  handlers.deploy = [d](DeployRequest request, AdminReply reply) {
    size_t size = request.archive.size();
    std::string user = request.user;
    d->deploys.push_back(std::move(request));
    if (d->hold) {
      d->held.push_back(std::move(reply));
      return;
    }
    ++d->answered;
    reply(AdminResponse{
        200, "application/json", json{{"bytes", size}, {"user", user}}.dump() + "\n", {}});
  };
  handlers.rollback = [](RollbackRequest, AdminReply reply) {
    reply(AdminResponse{200, "application/json", "{}\n", {}});
  };
  return handlers;
}

class AdminServerSocketTest : public ::testing::Test {
 protected:
  void StartServer(AdminServerOptions options = {}, HostPort address = {"127.0.0.1", 0}) {
    auto started = AdminServer::Start(io_, address, MakeHandlers(&deployer_), std::move(options));
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    server_ = std::move(started).value();
  }

  tcp::endpoint Endpoint(std::string_view address = "127.0.0.1") const {
    return tcp::endpoint(asio::ip::make_address(address), server_->bound_port());
  }

  std::shared_ptr<Exchange> Run(std::vector<Message> messages,
                                std::shared_ptr<ssl::context> tls = nullptr,
                                std::string_view address = "127.0.0.1") {
    auto x = std::make_shared<Exchange>();
    x->messages = std::move(messages);
    x->tls = std::move(tls);
    Spawn(x, address);
    EXPECT_TRUE(RunUntil(
        io_, [x] { return x->done; }, std::chrono::seconds(30)))
        << "exchange did not finish";
    return x;
  }

  void Spawn(const std::shared_ptr<Exchange>& x, std::string_view address = "127.0.0.1") {
    asio::co_spawn(io_, Converse(Endpoint(address), x), [](const std::exception_ptr&) {});
  }

  void TearDown() override {
    if (server_ == nullptr) return;
    server_->Stop();
    io_.restart();
    io_.run_for(std::chrono::seconds(10));
    EXPECT_TRUE(io_.stopped()) << "work left after Stop()";
  }

  asio::io_context io_;
  Deployer deployer_;
  std::unique_ptr<AdminServer> server_;
};

// ---------------------------------------------------------------- uploads

TEST_F(AdminServerSocketTest, TenMegabyteUploadReachesTheHandlerByteExact) {
  StartServer();
  std::string archive(10 * 1024 * 1024, '\0');
  std::mt19937 random(13);
  for (char& c : archive) c = static_cast<char>(random());
  auto x = Run({Request(http::verb::post, "/deploy?webapp=shop&version=1.0", archive)});
  ASSERT_EQ(x->responses.size(), 1u) << x->error.message();
  EXPECT_EQ(x->responses[0].result_int(), 200u) << x->responses[0].body();
  EXPECT_EQ(json::parse(x->responses[0].body())["bytes"], archive.size());
  ASSERT_EQ(deployer_.deploys.size(), 1u);
  EXPECT_EQ(deployer_.deploys[0].webapp, "shop");
  EXPECT_EQ(deployer_.deploys[0].version, "1.0");
  EXPECT_EQ(deployer_.deploys[0].user, "");
  EXPECT_EQ(deployer_.deploys[0].client, "127.0.0.1");
  EXPECT_TRUE(deployer_.deploys[0].archive == archive) << "the archive's bytes differ";
}

// ---------------------------------------------------------------- page and CSRF

// `request` without its X-CSRF-Token header, or with `token` instead.
Message WithToken(Message message, std::string_view token) {
  if (token.empty()) {
    message.request->erase("X-CSRF-Token");
  } else {
    message.request->set("X-CSRF-Token", std::string(token));
  }
  return message;
}

TEST_F(AdminServerSocketTest, PostsNeedTheTokenFromTheHeader) {
  StartServer();
  auto x = Run({WithToken(Request(http::verb::post, "/deploy?webapp=shop", "tree"), ""),
                WithToken(Request(http::verb::post, "/rollback?webapp=shop&to=v1"),
                          std::string(kToken).substr(0, 63) + "0"),
                Request(http::verb::post, "/deploy?webapp=shop", "tree")});
  ASSERT_EQ(x->responses.size(), 3u) << x->error.message();
  for (int i : {0, 1}) {
    EXPECT_EQ(x->responses[i].result_int(), 403u) << i;
    EXPECT_EQ(json::parse(x->responses[i].body()),
              (json{{"error", "missing or wrong X-CSRF-Token (GET /csrf-token)"}}));
  }
  EXPECT_EQ(x->responses[2].result_int(), 200u);
  EXPECT_EQ(deployer_.deploys.size(), 1u);
}

TEST_F(AdminServerSocketTest, ServerWithoutATokenMakesOneAndServesIt) {
  AdminHandlers handlers = MakeHandlers(&deployer_);
  handlers.csrf_token.clear();
  auto started = AdminServer::Start(io_, HostPort{"127.0.0.1", 0}, std::move(handlers));
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  server_ = std::move(started).value();
  auto token = Run({WithToken(Request(http::verb::get, "/csrf-token"), "")});
  ASSERT_EQ(token->responses.size(), 1u) << token->error.message();
  EXPECT_EQ(token->responses[0].result_int(), 200u);
  std::string value = json::parse(token->responses[0].body())["csrf_token"].get<std::string>();
  EXPECT_EQ(value.size(), 64u);
  EXPECT_EQ(value.find_first_not_of("0123456789abcdef"), std::string::npos) << value;
  EXPECT_NE(value, kToken);

  auto x = Run({Request(http::verb::post, "/deploy?webapp=shop", "tree"),
                WithToken(Request(http::verb::post, "/deploy?webapp=shop", "tree"), value),
                Request(http::verb::get, "/")});
  ASSERT_EQ(x->responses.size(), 3u) << x->error.message();
  EXPECT_EQ(x->responses[0].result_int(), 403u);
  EXPECT_EQ(x->responses[1].result_int(), 200u);
  EXPECT_NE(x->responses[2].body().find("<meta name=\"csrf-token\" content=\"" + value + "\">"),
            std::string::npos);

  // Another server, another token.
  Result<std::string> other = NewCsrfToken();
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*other, value);
}

TEST_F(AdminServerSocketTest, PageFilesCarryTheSecurityHeaders) {
  StartServer();
  auto x = Run({Request(http::verb::get, "/"), Request(http::verb::get, "/admin.js"),
                Request(http::verb::get, "/admin.css"), Request(http::verb::get, "/status")});
  ASSERT_EQ(x->responses.size(), 4u) << x->error.message();
  const char* types[] = {"text/html; charset=utf-8", "text/javascript; charset=utf-8",
                         "text/css; charset=utf-8"};
  for (int i : {0, 1, 2}) {
    const auto& response = x->responses[i];
    EXPECT_EQ(response.result_int(), 200u) << i;
    EXPECT_EQ(response[http::field::content_type], types[i]);
    EXPECT_EQ(response["Content-Security-Policy"],
              "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
              "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
        << i;
    EXPECT_EQ(response["X-Content-Type-Options"], "nosniff") << i;
    EXPECT_EQ(response["Referrer-Policy"], "no-referrer") << i;
    EXPECT_EQ(response[http::field::cache_control], "no-cache") << i;
    // One Cache-Control only: the page's replaces the server's default.
    EXPECT_EQ(response.count(http::field::cache_control), 1u) << i;
    EXPECT_EQ(response.count("Access-Control-Allow-Origin"), 0u);
  }
  EXPECT_EQ(x->responses[3][http::field::cache_control], "no-store");
  EXPECT_EQ(x->responses[3].count("Content-Security-Policy"), 0u);
}

TEST_F(AdminServerSocketTest, ContentLengthOverTheLimitIs413BeforeTheBody) {
  AdminServerOptions options;
  options.upload_limit = 1000;
  options.body_limit = 100;
  StartServer(options);
  // Only the header is sent: the answer must not wait for the body.
  auto upload =
      Run({Raw("POST /deploy?webapp=shop HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1001\r\n"
               "\r\n")});
  ASSERT_EQ(upload->responses.size(), 1u) << upload->error.message();
  EXPECT_EQ(upload->responses[0].result_int(), 413u);
  EXPECT_FALSE(upload->responses[0].keep_alive());
  EXPECT_NE(upload->responses[0].body().find("1001 bytes, the limit is 1000"), std::string::npos)
      << upload->responses[0].body();

  // The upload limit is for POST /deploy only.
  auto other =
      Run({Raw("POST /rollback?webapp=shop&to=v1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "Content-Length: 101\r\n\r\n")});
  ASSERT_EQ(other->responses.size(), 1u) << other->error.message();
  EXPECT_EQ(other->responses[0].result_int(), 413u);

  auto fits = Run({Request(http::verb::post, "/deploy?webapp=shop", std::string(1000, 'z'))});
  ASSERT_EQ(fits->responses.size(), 1u) << fits->error.message();
  EXPECT_EQ(fits->responses[0].result_int(), 200u);
  ASSERT_EQ(deployer_.deploys.size(), 1u);
  EXPECT_EQ(deployer_.deploys[0].archive, std::string(1000, 'z'));
}

TEST_F(AdminServerSocketTest, ExpectContinueGets100BeforeTheBody) {
  StartServer();
  auto x = std::make_shared<Exchange>();
  // The interim response is read as the first message's answer; the body then
  // gets the final one.
  x->messages.push_back(
      Raw("POST /deploy?webapp=shop HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n"
          "X-CSRF-Token: " +
          std::string(kToken) + "\r\nExpect: 100-continue\r\n\r\n"));
  x->messages.push_back(Raw("hello"));
  Spawn(x);
  ASSERT_TRUE(RunUntil(io_, [x] { return x->done; }));
  ASSERT_EQ(x->responses.size(), 2u) << x->error.message();
  EXPECT_EQ(x->responses[0].result_int(), 100u);
  EXPECT_EQ(x->responses[1].result_int(), 200u);
  ASSERT_EQ(deployer_.deploys.size(), 1u);
  EXPECT_EQ(deployer_.deploys[0].archive, "hello");
}

// ---------------------------------------------------------------- asynchronous replies

TEST_F(AdminServerSocketTest, AsyncReplyArrivesLaterAndOtherRequestsGoOn) {
  StartServer();
  deployer_.hold = true;
  auto deploy = std::make_shared<Exchange>();
  deploy->messages.push_back(Request(http::verb::post, "/deploy?webapp=shop", "tree"));
  Spawn(deploy);
  ASSERT_TRUE(RunUntil(io_, [this] { return deployer_.held.size() == 1; }));

  // The io thread is free while the deploy waits.
  auto status = Run({Request(http::verb::get, "/status")});
  ASSERT_EQ(status->responses.size(), 1u) << status->error.message();
  EXPECT_EQ(status->responses[0].result_int(), 200u);
  EXPECT_FALSE(deploy->done);

  // The reply comes from a timer, as the daemon's comes from a posted completion.
  asio::steady_timer timer(io_, std::chrono::milliseconds(50));
  AdminReply reply = deployer_.held[0];
  timer.async_wait([reply](const boost::system::error_code&) {
    reply(AdminResponse{202, "application/json", "{\"commit\":\"c0ffee\"}\n", {}});
  });
  ASSERT_TRUE(RunUntil(io_, [deploy] { return deploy->done; }));
  ASSERT_EQ(deploy->responses.size(), 1u) << deploy->error.message();
  EXPECT_EQ(deploy->responses[0].result_int(), 202u);
  EXPECT_EQ(deploy->responses[0].body(), "{\"commit\":\"c0ffee\"}\n");
  EXPECT_TRUE(deploy->responses[0].keep_alive());
}

TEST(AdminServerAsyncLifetimeTest, ReplyAfterStopAndAfterTheIoContextIsHarmless) {
  Deployer deployer;
  deployer.hold = true;
  auto x = std::make_shared<Exchange>();
  {
    asio::io_context io;
    auto started = AdminServer::Start(io, HostPort{"127.0.0.1", 0}, MakeHandlers(&deployer));
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    std::unique_ptr<AdminServer> server = std::move(started).value();
    x->messages.push_back(Request(http::verb::post, "/deploy?webapp=shop", "tree"));
    asio::co_spawn(
        io, Converse(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server->bound_port()), x),
        [](const std::exception_ptr&) {});
    ASSERT_TRUE(RunUntil(io, [&deployer] { return deployer.held.size() == 1; }));
    server->Stop();
    ASSERT_TRUE(RunUntil(io, [x] { return x->done; }));
    EXPECT_TRUE(x->responses.empty());
    EXPECT_TRUE(x->error);
    deployer.held[0](AdminResponse{200, "application/json", "{}\n", {}});  // after Stop
    server.reset();
    io.run_for(std::chrono::seconds(10));
    EXPECT_TRUE(io.stopped()) << "work left after Stop()";
  }
  // The daemon's worker may finish after everything is gone.
  deployer.held[0](AdminResponse{200, "application/json", "{}\n", {}});
}

TEST(AdminServerAsyncLifetimeTest, IoContextDestroyedWhileADeployWaits) {
  Deployer deployer;
  deployer.hold = true;
  auto x = std::make_shared<Exchange>();
  {
    asio::io_context io;
    auto started = AdminServer::Start(io, HostPort{"127.0.0.1", 0}, MakeHandlers(&deployer));
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    std::unique_ptr<AdminServer> server = std::move(started).value();
    x->messages.push_back(Request(http::verb::post, "/deploy?webapp=shop", "tree"));
    asio::co_spawn(
        io, Converse(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server->bound_port()), x),
        [](const std::exception_ptr&) {});
    ASSERT_TRUE(RunUntil(io, [&deployer] { return deployer.held.size() == 1; }));
    server.reset();  // not run again: the io_context's destructor drops the coroutines
  }
  deployer.held[0](AdminResponse{200, "application/json", "{}\n", {}});
}

// ---------------------------------------------------------------- TLS

class AdminServerTlsTest : public AdminServerSocketTest {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("admin_tls");
    cert_ = dir_->path() + "/cert.pem";
    key_ = dir_->path() + "/key.pem";
    std::string command =
        "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 "
        "-keyout '" +
        key_ + "' -out '" + cert_ + "' >/dev/null 2>&1";
    generated_ = std::system(command.c_str()) == 0;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override { ASSERT_TRUE(generated_) << "openssl req failed"; }

  void StartTlsServer(AdminServerOptions options = {}) {
    Result<std::shared_ptr<ssl::context>> context = MakeAdminTlsContext(cert_, key_);
    ASSERT_TRUE(context.ok()) << context.status().ToString();
    options.tls = *context;
    StartServer(std::move(options));
  }

  // A client that trusts the test's certificate only.
  static std::shared_ptr<ssl::context> Client() {
    auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
    context->load_verify_file(cert_);
    return context;
  }

  static TempDir* dir_;
  static std::string cert_;
  static std::string key_;
  static bool generated_;
};

TempDir* AdminServerTlsTest::dir_ = nullptr;
std::string AdminServerTlsTest::cert_;
std::string AdminServerTlsTest::key_;
bool AdminServerTlsTest::generated_ = false;

TEST_F(AdminServerTlsTest, HttpsClientGets200) {
  StartTlsServer();
  auto x = Run({Request(http::verb::get, "/status"),
                Request(http::verb::post, "/deploy?webapp=shop", std::string(200000, 'q'))},
               Client());
  ASSERT_EQ(x->responses.size(), 2u) << x->error.message();
  EXPECT_EQ(x->responses[0].result_int(), 200u);
  EXPECT_EQ(json::parse(x->responses[0].body())["server"]["id"], "app-a");
  EXPECT_EQ(x->responses[1].result_int(), 200u);
  ASSERT_EQ(deployer_.deploys.size(), 1u);
  EXPECT_EQ(deployer_.deploys[0].archive, std::string(200000, 'q'));
}

TEST_F(AdminServerTlsTest, PlainHttpToTheTlsPortFailsAndTheServerGoesOn) {
  StartTlsServer();
  auto plain = Run({Request(http::verb::get, "/status")});
  EXPECT_TRUE(plain->responses.empty());
  EXPECT_TRUE(plain->error);

  auto garbage = Run({Raw(std::string("\x16\x03\x01\x00\x05hello", 10))});
  EXPECT_TRUE(garbage->responses.empty());
  EXPECT_TRUE(garbage->error);

  auto tls = Run({Request(http::verb::get, "/status")}, Client());
  ASSERT_EQ(tls->responses.size(), 1u) << tls->error.message();
  EXPECT_EQ(tls->responses[0].result_int(), 200u);
}

TEST_F(AdminServerTlsTest, ClientThatDistrustsTheCertificateFails) {
  StartTlsServer();
  auto x = Run({Request(http::verb::get, "/status")},
               std::make_shared<ssl::context>(ssl::context::tls_client));
  EXPECT_TRUE(x->responses.empty());
  EXPECT_TRUE(x->error);
}

TEST_F(AdminServerTlsTest, ContextErrorsNameTheFile) {
  Result<std::shared_ptr<ssl::context>> missing =
      MakeAdminTlsContext(dir_->path() + "/nope.pem", key_);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(missing.status().message(),
            "admin TLS certificate " + dir_->path() + "/nope.pem: No such file or directory");

  std::string garbage = dir_->path() + "/garbage.pem";
  std::ofstream(garbage) << "not a certificate\n";
  Result<std::shared_ptr<ssl::context>> bad_cert = MakeAdminTlsContext(garbage, key_);
  ASSERT_FALSE(bad_cert.ok());
  EXPECT_TRUE(bad_cert.status().message().starts_with("admin TLS certificate " + garbage + ": "))
      << bad_cert.status().message();

  Result<std::shared_ptr<ssl::context>> bad_key = MakeAdminTlsContext(cert_, garbage);
  ASSERT_FALSE(bad_key.ok());
  EXPECT_TRUE(bad_key.status().message().starts_with("admin TLS key " + garbage + ": "))
      << bad_key.status().message();

  // The certificate given as the key: a readable PEM file, but not the key.
  Result<std::shared_ptr<ssl::context>> swapped = MakeAdminTlsContext(cert_, cert_);
  ASSERT_FALSE(swapped.ok());
  EXPECT_NE(swapped.status().message().find(cert_), std::string::npos);
}

// ---------------------------------------------------------------- credentials

class AdminServerAuthTest : public AdminServerSocketTest {
 protected:
  static constexpr char kUser[] = "shop-deployer";
  static constexpr char kPassword[] = "s3cret-Passw0rd-Xy";

  void StartAuthServer() {
    ASSERT_GE(sodium_init(), 0);
    char hash[crypto_pwhash_STRBYTES];
    ASSERT_EQ(
        crypto_pwhash_str(hash, kPassword, sizeof kPassword - 1, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE),
        0);
    auto authenticator = Authenticator::FromText(
        "# users\n" + std::string(kUser) + ":" + std::string(hash) + "\n", "test users");
    ASSERT_TRUE(authenticator.ok()) << authenticator.status().ToString();
    AdminServerOptions options;
    options.authenticator = std::move(authenticator).value();
    StartServer(std::move(options));
  }
};

TEST_F(AdminServerAuthTest, NoCredentialsIs401AndGoodOnesReachTheHandler) {
  StartAuthServer();
  LogCapture log;
  auto none = Run({Request(http::verb::get, "/status?secret=query")});
  ASSERT_EQ(none->responses.size(), 1u) << none->error.message();
  EXPECT_EQ(none->responses[0].result_int(), 401u);
  EXPECT_EQ(none->responses[0][http::field::www_authenticate], "Basic realm=\"cluster-sidecar\"");
  EXPECT_EQ(json::parse(none->responses[0].body()), (json{{"error", "authentication required"}}));
  EXPECT_NE(log.text().find("/status"), std::string::npos) << log.text();
  EXPECT_EQ(log.text().find("secret=query"), std::string::npos) << log.text();
  EXPECT_NE(log.text().find("127.0.0.1"), std::string::npos) << log.text();

  auto good =
      Run({Request(http::verb::get, "/status", "", BasicAuth(kUser, kPassword)),
           Request(http::verb::post, "/deploy?webapp=shop", "tree", BasicAuth(kUser, kPassword))});
  ASSERT_EQ(good->responses.size(), 2u) << good->error.message();
  EXPECT_EQ(good->responses[0].result_int(), 200u);
  EXPECT_EQ(good->responses[1].result_int(), 200u);
  ASSERT_EQ(deployer_.deploys.size(), 1u);
  EXPECT_EQ(deployer_.deploys[0].user, kUser);
}

TEST_F(AdminServerAuthTest, RepeatedFailuresAreRateLimitedAndNeverLogThePassword) {
  StartAuthServer();
  LogCapture log;
  const std::string wrong = "wrong-Pa55word-Zq";
  std::vector<unsigned> statuses;
  std::string retry_after;
  for (int i = 0; i < 12 && retry_after.empty(); ++i) {
    auto x =
        Run({Request(http::verb::post, "/deploy?webapp=shop", "tree", BasicAuth(kUser, wrong))});
    ASSERT_EQ(x->responses.size(), 1u) << x->error.message();
    statuses.push_back(x->responses[0].result_int());
    if (statuses.back() == 429) {
      retry_after = std::string(x->responses[0][http::field::retry_after]);
    } else {
      EXPECT_EQ(statuses.back(), 401u);
    }
  }
  ASSERT_EQ(statuses.back(), 429u) << "never rate limited after " << statuses.size();
  EXPECT_GT(statuses.size(), 1u);
  EXPECT_GE(std::stoi(retry_after), 1) << retry_after;
  // Even the right password is refused while the client is limited.
  auto right = Run({Request(http::verb::get, "/status", "", BasicAuth(kUser, kPassword))});
  ASSERT_EQ(right->responses.size(), 1u) << right->error.message();
  EXPECT_EQ(right->responses[0].result_int(), 429u);
  EXPECT_TRUE(deployer_.deploys.empty());

  std::string text = log.text();
  EXPECT_NE(text.find(kUser), std::string::npos) << text;
  EXPECT_NE(text.find("POST /deploy"), std::string::npos) << text;
  EXPECT_EQ(text.find(wrong), std::string::npos) << text;
  EXPECT_EQ(text.find(kPassword), std::string::npos) << text;
  EXPECT_EQ(text.find(Base64(std::string(kUser) + ":" + wrong)), std::string::npos) << text;
  EXPECT_EQ(text.find("Basic "), std::string::npos) << text;
}

// ---------------------------------------------------------------- remote deploys

// A local address that is not loopback, if the machine has one.
std::optional<asio::ip::address> NonLoopbackAddress() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return std::nullopt;
  std::optional<asio::ip::address> found;
  for (ifaddrs* a = list; a != nullptr && !found; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
    auto* in = reinterpret_cast<sockaddr_in*>(a->ifa_addr);
    asio::ip::address_v4 address(ntohl(in->sin_addr.s_addr));
    if (!address.is_loopback() && !address.is_unspecified()) found = address;
  }
  freeifaddrs(list);
  return found;
}

TEST_F(AdminServerSocketTest, RemoteDeploysAreRefusedUnlessAllowed) {
  std::optional<asio::ip::address> remote = NonLoopbackAddress();
  if (!remote) GTEST_SKIP() << "no non-loopback IPv4 address";
  StartServer(AdminServerOptions{}, HostPort{"0.0.0.0", 0});
  std::string address = remote->to_string();
  auto x = Run({Request(http::verb::post, "/deploy?webapp=shop", "tree")}, nullptr, address);
  ASSERT_EQ(x->responses.size(), 1u) << x->error.message();
  EXPECT_EQ(x->responses[0].result_int(), 403u);
  EXPECT_EQ(json::parse(x->responses[0].body()),
            (json{{"error", "remote deploys are off ([deploy] remote = false)"}}));
  auto rollback = Run({Request(http::verb::post, "/rollback?webapp=shop&to=v1")}, nullptr, address);
  ASSERT_EQ(rollback->responses.size(), 1u) << rollback->error.message();
  EXPECT_EQ(rollback->responses[0].result_int(), 403u);
  auto status = Run({Request(http::verb::get, "/status")}, nullptr, address);
  ASSERT_EQ(status->responses.size(), 1u) << status->error.message();
  EXPECT_EQ(status->responses[0].result_int(), 200u);
  auto local = Run({Request(http::verb::post, "/deploy?webapp=shop", "tree")});
  ASSERT_EQ(local->responses.size(), 1u) << local->error.message();
  EXPECT_EQ(local->responses[0].result_int(), 200u);
  ASSERT_EQ(deployer_.deploys.size(), 1u);
  EXPECT_EQ(deployer_.deploys[0].client, "127.0.0.1");

  server_->Stop();
  io_.restart();
  io_.run_for(std::chrono::seconds(10));
  io_.restart();
  AdminServerOptions options;
  options.remote_deploy = true;
  StartServer(options, HostPort{"0.0.0.0", 0});
  auto allowed = Run({Request(http::verb::post, "/deploy?webapp=shop", "tree")}, nullptr, address);
  ASSERT_EQ(allowed->responses.size(), 1u) << allowed->error.message();
  EXPECT_EQ(allowed->responses[0].result_int(), 200u);
  ASSERT_EQ(deployer_.deploys.size(), 2u);
  EXPECT_EQ(deployer_.deploys[1].client, address);
}

}  // namespace
}  // namespace cb::admin
