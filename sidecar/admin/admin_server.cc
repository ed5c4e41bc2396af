// First: before any other Boost.Asio header.
#include "sidecar/admin/asio_coroutines.h"

#include "sidecar/admin/admin_server.h"

#include <cctype>
#include <exception>
#include <map>
#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

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
using tcp = asio::ip::tcp;

namespace detail {

// Everything the coroutines need; they each hold a shared_ptr, so it outlives
// the AdminServer when they are still pending.
struct AdminServerState {
  AdminServerState(asio::io_context& io, AdminHandlers h, AdminServerOptions o)
      : acceptor(io), retry_timer(io), handlers(std::move(h)), options(o) {}
  AdminServerState(const AdminServerState&) = delete;
  AdminServerState& operator=(const AdminServerState&) = delete;

  tcp::acceptor acceptor;
  asio::steady_timer retry_timer;  // pause after a failed accept (EMFILE)
  AdminHandlers handlers;
  AdminServerOptions options;
  bool stopped = false;
  size_t connections = 0;  // accepted and not yet finished
  uint64_t next_session_id = 0;
  std::map<uint64_t, beast::tcp_stream*> sessions;  // for Stop() to close
};

}  // namespace detail

namespace {

using detail::AdminServerState;

constexpr char kServerName[] = "cluster-sidecar";

// Counts a connection from its accept to its end, and lets Stop() reach its stream.
class SessionRegistration {
 public:
  SessionRegistration(AdminServerState& state, beast::tcp_stream* stream)
      : state_(state), id_(state.next_session_id++) {
    state_.sessions.emplace(id_, stream);
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

http::response<http::string_body> MakeResponse(const AdminResponse& routed, unsigned version,
                                               bool keep_alive) {
  http::response<http::string_body> response;
  response.version(version);
  response.result(routed.status);
  response.set(http::field::server, kServerName);
  response.set(http::field::content_type, routed.content_type);
  response.set(http::field::cache_control, "no-store");
  if (!routed.allow.empty()) response.set(http::field::allow, routed.allow);
  response.keep_alive(keep_alive);
  response.body() = routed.body;
  response.prepare_payload();
  return response;
}

asio::awaitable<void> Serve(std::shared_ptr<AdminServerState> state, tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  SessionRegistration registration(*state, &stream);
  if (state->stopped) co_return;
  const AdminServerOptions& options = state->options;
  try {
    // Bounds what a pipelining client can make us buffer.
    beast::flat_buffer buffer(options.header_limit + options.body_limit + 4096);
    beast::error_code ec;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(options.header_limit));
      parser.body_limit(options.body_limit);
      stream.expires_after(options.io_timeout);
      co_await http::async_read(stream, buffer, parser,
                                asio::redirect_error(asio::use_awaitable, ec));
      if (state->stopped) co_return;
      if (ec) {
        unsigned status = StatusForReadError(ec);
        if (status != 0) {
          AdminResponse routed{
              status, "application/json", "{\"error\":\"" + ReasonForStatus(status) + "\"}\n", {}};
          auto response = MakeResponse(routed, 11, /*keep_alive=*/false);
          stream.expires_after(options.io_timeout);
          co_await http::async_write(stream, response,
                                     asio::redirect_error(asio::use_awaitable, ec));
        }
        break;
      }

      http::request<http::string_body> request = parser.release();
      bool keep_alive = request.keep_alive();
      AdminRequest admin{std::string(request.method_string()), std::string(request.target()),
                         std::move(request.body())};
      AdminResponse routed = RouteAdminRequest(state->handlers, admin);
      auto response = MakeResponse(routed, request.version(), keep_alive);
      stream.expires_after(options.io_timeout);
      co_await http::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
      if (ec || state->stopped || !keep_alive) break;
    }
    if (!state->stopped) {
      stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    }
  } catch (...) {
    // Closing the connection (below, with the stream) is all there is to do.
  }
  stream.close();
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

}  // namespace

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
  try {
    auto state = std::make_shared<detail::AdminServerState>(io, std::move(handlers), options);
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
  for (auto& [id, stream] : state.sessions) {
    stream->socket().close(ec);
    stream->cancel();
  }
}

}  // namespace cb::admin
