// First: before any other Boost.Asio header.
#include "sidecar/admin/asio_coroutines.h"

#include "sidecar/admin/admin_server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <openssl/ssl.h>
#include <sodium.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "sidecar/transport/listen_on.h"

// g++ 12 wrongly reports -Wmismatched-new-delete for Asio 1.74's coroutine frames
// (awaitable_frame_base pairs its own operator new and sized operator delete).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace cb::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace detail {

// Everything the coroutines need; they each hold a shared_ptr, so it outlives
// the AdminServer when they are still pending.
struct AdminServerState {
  AdminServerState(asio::io_context& io, AdminHandlers h, AdminServerOptions o)
      : acceptor(io), retry_timer(io), handlers(std::move(h)), options(std::move(o)) {}
  AdminServerState(const AdminServerState&) = delete;
  AdminServerState& operator=(const AdminServerState&) = delete;

  tcp::acceptor acceptor;
  asio::steady_timer retry_timer;  // pause after a failed accept (EMFILE)
  AdminHandlers handlers;
  AdminServerOptions options;
  bool stopped = false;
  size_t connections = 0;  // accepted and not yet finished
  uint64_t next_session_id = 0;
  // For Stop(): closes a connection's socket and wakes it from any wait.
  std::map<uint64_t, std::function<void()>> sessions;
};

}  // namespace detail

namespace {

using detail::AdminServerState;

constexpr char kServerName[] = "cluster-sidecar";
constexpr char kRealm[] = "Basic realm=\"cluster-sidecar\"";

// Counts a connection from its accept to its end, and lets Stop() close it.
class SessionRegistration {
 public:
  SessionRegistration(AdminServerState& state, std::function<void()> close)
      : state_(state), id_(state.next_session_id++) {
    state_.sessions.emplace(id_, std::move(close));
  }
  SessionRegistration(const SessionRegistration&) = delete;
  SessionRegistration& operator=(const SessionRegistration&) = delete;
  ~SessionRegistration() {
    state_.sessions.erase(id_);
    --state_.connections;
  }

 private:
  AdminServerState& state_;
  uint64_t id_;
};

// Where an asynchronous handler's reply lands. Holds no Asio object, so that a
// reply arriving after the connection (or the io_context) is gone is harmless.
struct ReplySlot {
  std::optional<AdminResponse> response;
  std::function<void()> wake;  // set while the connection waits

  void Deliver(AdminResponse answer) {
    if (response.has_value()) return;
    response = std::move(answer);
    if (wake) wake();
  }
};

// Clears ReplySlot::wake when the waiting coroutine ends or is destroyed.
class WakeGuard {
 public:
  WakeGuard(std::shared_ptr<ReplySlot> slot, std::function<void()> wake) : slot_(std::move(slot)) {
    slot_->wake = std::move(wake);
  }
  WakeGuard(const WakeGuard&) = delete;
  WakeGuard& operator=(const WakeGuard&) = delete;
  ~WakeGuard() { slot_->wake = nullptr; }

 private:
  std::shared_ptr<ReplySlot> slot_;
};

// The status to answer a failed read with, or 0 to close without answering
// (the peer went away, timed out, or the socket failed).
unsigned StatusForReadError(const beast::error_code& ec) {
  if (ec == http::error::end_of_stream || ec == http::error::partial_message) return 0;
  if (ec == http::error::header_limit || ec == http::error::buffer_overflow) return 431;
  if (ec == http::error::body_limit) return 413;
  if (ec.category() == beast::error_code(http::error::bad_method).category()) return 400;
  return 0;
}

std::string ReasonForStatus(unsigned status) {
  switch (status) {
    case 431:
      return "request header too large";
    case 413:
      return "request body too large";
    default:
      return "malformed HTTP request";
  }
}

AdminResponse JsonError(unsigned status, std::string_view message) {
  nlohmann::json body = {{"error", message}};
  return AdminResponse{status,
                       "application/json",
                       body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                       {}};
}

http::response<http::string_body> MakeResponse(const AdminResponse& routed, unsigned version,
                                               bool keep_alive) {
  http::response<http::string_body> response;
  response.version(version);
  response.result(routed.status);
  response.set(http::field::server, kServerName);
  response.set(http::field::content_type, routed.content_type);
  response.set(http::field::cache_control, "no-store");
  if (!routed.allow.empty()) response.set(http::field::allow, routed.allow);
  for (const auto& [name, value] : routed.headers) response.set(name, value);
  response.keep_alive(keep_alive);
  response.body() = routed.body;
  response.prepare_payload();
  return response;
}

// A request's text for a log line: printable ASCII only, bounded.
std::string Printable(std::string_view text, size_t limit = 200) {
  std::string out;
  for (char c : text.substr(0, limit)) {
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  if (text.size() > limit) out += "...";
  return out;
}

void LogRefusal(const std::string& client, std::string_view method, std::string_view target,
                std::string_view user, unsigned status, std::string_view why) {
  std::string_view path = target.substr(0, target.find('?'));
  spdlog::warn("admin: refused {} {} from {}{} ({}): {}", Printable(method, 16), Printable(path),
               client.empty() ? "?" : client,
               user.empty() ? std::string() : " user \"" + Printable(user, 64) + "\"", status,
               Printable(why));
}

// The peer's address ("" when unknown) and whether it is loopback; an
// IPv4-mapped IPv6 address counts as the IPv4 address it maps.
std::pair<std::string, bool> PeerOf(const tcp::socket& socket) {
  beast::error_code ec;
  tcp::endpoint peer = socket.remote_endpoint(ec);
  if (ec) return {"", false};
  asio::ip::address address = peer.address();
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  }
  return {address.to_string(), address.is_loopback()};
}

template <typename Stream>
asio::awaitable<void> Write(Stream& stream, const AdminResponse& routed, unsigned version,
                            bool keep_alive, std::chrono::steady_clock::duration timeout,
                            beast::error_code& ec) {
  auto response = MakeResponse(routed, version, keep_alive);
  beast::get_lowest_layer(stream).expires_after(timeout);
  co_await http::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
}

// The refusal of a request before its body is read, or nullopt to go on.
// Sets `user` to the authenticated user.
std::optional<AdminResponse> Judge(AdminServerState& state, const std::string& client,
                                   bool loopback,
                                   const http::request_parser<http::string_body>& parser,
                                   std::string& user) {
  const auto& header = parser.get();
  std::string_view method(header.method_string().data(), header.method_string().size());
  std::string_view target(header.target().data(), header.target().size());
  const AdminServerOptions& options = state.options;
  if (options.tls == nullptr) {
    auto host = header[http::field::host];
    if (!IsLoopbackAdminHost(std::string_view(host.data(), host.size()))) {
      LogRefusal(client, method, target, user, 403, "Host is a name, not this address");
      return JsonError(403, "Host \"" + std::string(host.data(), host.size()) +
                                "\" refused: open the admin endpoint by its address (e.g. "
                                "http://127.0.0.1:PORT/) or as localhost");
    }
  }
  if (options.authenticator != nullptr) {
    auto authorization = header[http::field::authorization];
    AuthDecision decision = options.authenticator->Check(
        client, std::string_view(authorization.data(), authorization.size()),
        Authenticator::Clock::now());
    if (decision.kind == AuthDecision::Kind::kAllowed) {
      user = decision.user;
    } else if (decision.kind == AuthDecision::Kind::kRateLimited) {
      LogRefusal(client, method, target, decision.user, 429, decision.why);
      AdminResponse response = JsonError(429, "too many failed attempts; retry later");
      long long seconds = std::max<long long>(1, decision.retry_after.count());
      response.headers.emplace_back("Retry-After", std::to_string(seconds));
      return response;
    } else {
      LogRefusal(client, method, target, decision.user, 401, decision.why);
      AdminResponse response = JsonError(401, "authentication required");
      response.headers.emplace_back("WWW-Authenticate", kRealm);
      return response;
    }
  }
  if (!options.remote_deploy && !loopback && IsDeployRequest(method, target)) {
    LogRefusal(client, method, target, user, 403, "remote deploys are off");
    return JsonError(403, "remote deploys are off ([deploy] remote = false)");
  }
  size_t limit = IsUploadRequest(method, target) ? options.upload_limit : options.body_limit;
  if (auto length = parser.content_length(); length && *length > limit) {
    return JsonError(413, "request body too large: " + std::to_string(*length) +
                              " bytes, the limit is " + std::to_string(limit));
  }
  return std::nullopt;
}

// Answers requests on `stream` until the client or the server ends it.
template <typename Stream>
asio::awaitable<void> ServeRequests(std::shared_ptr<AdminServerState> state, Stream& stream,
                                    const std::string& client, bool loopback,
                                    asio::steady_timer& reply_timer) {
  const AdminServerOptions& options = state->options;
  auto& lowest = beast::get_lowest_layer(stream);
  // Bounds what a pipelining client can make us buffer (the body itself goes
  // into the request, not this buffer).
  beast::flat_buffer buffer(options.header_limit + options.body_limit + 4096);
  beast::error_code ec;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options.header_limit));
    // Beast would check a Content-Length against this with the header, before
    // Judge checks the credentials and knows the route's limit (set below).
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    lowest.expires_after(options.io_timeout);
    co_await http::async_read_header(stream, buffer, parser,
                                     asio::redirect_error(asio::use_awaitable, ec));
    if (state->stopped) co_return;
    if (!ec) {
      std::string user;
      if (std::optional<AdminResponse> refusal = Judge(*state, client, loopback, parser, user)) {
        co_await Write(stream, *refusal, parser.get().version(), /*keep_alive=*/false,
                       options.io_timeout, ec);
        co_return;
      }
      const auto& header = parser.get();
      AdminRequest admin{std::string(header.method_string()),
                         std::string(header.target()),
                         {},
                         std::move(user),
                         client,
                         std::string(header["X-CSRF-Token"])};
      parser.body_limit(IsUploadRequest(admin.method, admin.target) ? options.upload_limit
                                                                    : options.body_limit);
      if (!parser.is_done() && beast::iequals(header[http::field::expect], "100-continue")) {
        http::response<http::empty_body> proceed(http::status::continue_, header.version());
        lowest.expires_after(options.io_timeout);
        co_await http::async_write(stream, proceed, asio::redirect_error(asio::use_awaitable, ec));
      }
      // A timeout per read: a large upload may take long, but must not stall.
      while (!ec && !parser.is_done()) {
        lowest.expires_after(options.io_timeout);
        co_await http::async_read_some(stream, buffer, parser,
                                       asio::redirect_error(asio::use_awaitable, ec));
        if (state->stopped) co_return;
      }
      if (!ec) {
        http::request<http::string_body> request = parser.release();
        bool keep_alive = request.keep_alive();
        admin.body = std::move(request.body());

        auto slot = std::make_shared<ReplySlot>();
        WakeGuard guard(slot, [&reply_timer] { reply_timer.cancel(); });
        DispatchAdminRequest(state->handlers, std::move(admin), [slot](AdminResponse response) {
          slot->Deliver(std::move(response));
        });
        while (!slot->response.has_value() && !state->stopped) {
          reply_timer.expires_at(asio::steady_timer::time_point::max());
          co_await reply_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
        if (state->stopped) co_return;
        co_await Write(stream, *slot->response, request.version(), keep_alive, options.io_timeout,
                       ec);
        if (ec || state->stopped || !keep_alive) co_return;
        continue;
      }
    }
    unsigned status = StatusForReadError(ec);
    if (status != 0) {
      co_await Write(stream, JsonError(status, ReasonForStatus(status)), 11,
                     /*keep_alive=*/false, options.io_timeout, ec);
    }
    co_return;
  }
}

asio::awaitable<void> ServePlain(std::shared_ptr<AdminServerState> state, tcp::socket socket,
                                 std::string client, bool loopback) {
  beast::tcp_stream stream(std::move(socket));
  asio::steady_timer reply_timer(stream.get_executor());
  SessionRegistration registration(*state, [&stream, &reply_timer] {
    beast::error_code ec;
    stream.socket().close(ec);
    stream.cancel();
    reply_timer.cancel();
  });
  if (state->stopped) co_return;
  co_await ServeRequests(state, stream, client, loopback, reply_timer);
  if (!state->stopped) {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }
  stream.close();
}

asio::awaitable<void> ServeTls(std::shared_ptr<AdminServerState> state, tcp::socket socket,
                               std::string client, bool loopback) {
  beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)),
                                              *state->options.tls);
  auto& lowest = beast::get_lowest_layer(stream);
  asio::steady_timer reply_timer(lowest.get_executor());
  SessionRegistration registration(*state, [&lowest, &reply_timer] {
    beast::error_code ec;
    lowest.socket().close(ec);
    lowest.cancel();
    reply_timer.cancel();
  });
  if (state->stopped) co_return;
  beast::error_code ec;
  lowest.expires_after(state->options.io_timeout);
  co_await stream.async_handshake(ssl::stream_base::server,
                                  asio::redirect_error(asio::use_awaitable, ec));
  if (state->stopped) co_return;
  if (ec) {
    spdlog::debug("admin: TLS handshake with {} failed: {}", client, ec.message());
  } else {
    co_await ServeRequests(state, stream, client, loopback, reply_timer);
    if (!state->stopped) {
      lowest.expires_after(state->options.io_timeout);
      co_await stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
    }
  }
  lowest.close();
}

asio::awaitable<void> Serve(std::shared_ptr<AdminServerState> state, tcp::socket socket) {
  auto [client, loopback] = PeerOf(socket);
  try {
    if (state->options.tls != nullptr) {
      co_await ServeTls(state, std::move(socket), std::move(client), loopback);
    } else {
      co_await ServePlain(state, std::move(socket), std::move(client), loopback);
    }
  } catch (...) {
    // Closing the connection (with its stream) is all there is to do.
  }
}

asio::awaitable<void> Accept(std::shared_ptr<AdminServerState> state) {
  for (;;) {
    beast::error_code ec;
    tcp::socket socket =
        co_await state->acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (state->stopped || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Out of descriptors and the like: pause rather than spin.
      state->retry_timer.expires_after(std::chrono::milliseconds(100));
      co_await state->retry_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (state->stopped) co_return;
      continue;
    }
    if (state->connections >= state->options.max_connections) {
      socket.close(ec);
      continue;
    }
    ++state->connections;
    asio::co_spawn(state->acceptor.get_executor(), Serve(state, std::move(socket)),
                   [](const std::exception_ptr&) {});
  }
}

// An error naming `path` when it cannot be opened for reading.
Status CheckReadable(const std::string& what, const std::string& path) {
  std::ifstream file(path);
  if (!file) {
    return Status::InvalidArgument("admin TLS " + what + " " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

std::string DescribeTlsError(const boost::system::error_code& ec) {
  std::string message = ec.message();
  return message.empty() ? "unusable" : message;
}

}  // namespace

Result<std::string> NewCsrfToken() {
  if (sodium_init() < 0) return Status::IoError("admin: libsodium cannot be initialised");
  unsigned char bytes[32];
  randombytes_buf(bytes, sizeof bytes);
  char hex[2 * sizeof bytes + 1];
  sodium_bin2hex(hex, sizeof hex, bytes, sizeof bytes);
  return std::string(hex);
}

Result<std::shared_ptr<ssl::context>> MakeAdminTlsContext(const std::string& cert_path,
                                                          const std::string& key_path) {
  if (Status s = CheckReadable("certificate", cert_path); !s.ok()) return s;
  if (Status s = CheckReadable("key", key_path); !s.ok()) return s;
  try {
    auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
    context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                         ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                         ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
    boost::system::error_code ec;
    context->use_certificate_chain_file(cert_path, ec);
    if (ec) {
      return Status::InvalidArgument("admin TLS certificate " + cert_path + ": " +
                                     DescribeTlsError(ec));
    }
    context->use_private_key_file(key_path, ssl::context::pem, ec);
    if (ec) {
      return Status::InvalidArgument("admin TLS key " + key_path + ": " + DescribeTlsError(ec));
    }
    if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
      return Status::InvalidArgument("admin TLS key " + key_path +
                                     " does not match the certificate " + cert_path);
    }
    return context;
  } catch (const std::exception& e) {
    return Status::InvalidArgument("admin TLS context: " + std::string(e.what()));
  }
}

AdminServer::AdminServer(std::shared_ptr<detail::AdminServerState> state, uint16_t bound_port)
    : state_(std::move(state)), bound_port_(bound_port) {}

AdminServer::~AdminServer() { Stop(); }

Result<std::unique_ptr<AdminServer>> AdminServer::Start(asio::io_context& io,
                                                        const HostPort& address,
                                                        AdminHandlers handlers,
                                                        AdminServerOptions options) {
  const std::string prefix =
      "admin " +
      HostPort{address.host.empty() ? "127.0.0.1" : address.host, address.port}.ToString() + ": ";
  if (handlers.csrf_token.empty()) {
    Result<std::string> token = NewCsrfToken();
    if (!token.ok()) return token.status();
    handlers.csrf_token = std::move(token).value();
  }
  try {
    auto state =
        std::make_shared<detail::AdminServerState>(io, std::move(handlers), std::move(options));
    Result<uint16_t> port = transport::ListenOn(io, state->acceptor, address, "admin");
    if (!port.ok()) return port.status();

    asio::co_spawn(io, Accept(state), [](const std::exception_ptr&) {});
    return std::unique_ptr<AdminServer>(new AdminServer(std::move(state), *port));
  } catch (const std::exception& e) {
    return Status::IoError(prefix + e.what());
  }
}

void AdminServer::Stop() {
  detail::AdminServerState& state = *state_;
  if (state.stopped) return;
  state.stopped = true;
  beast::error_code ec;
  state.acceptor.close(ec);
  state.retry_timer.cancel();
  // A closer may end its session's registration only later, on the io thread.
  for (auto& [id, close] : state.sessions) close();
}

}  // namespace cb::admin
