#include "sidecar/transport/listener.h"

#include "sidecar/transport/listen_on.h"

#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <exception>

namespace cb::transport {

using asio::ip::tcp;

struct Listener::State : std::enable_shared_from_this<Listener::State> {
  State(asio::io_context& io, FrameLimits frame_limits, std::size_t max_queued,
        AcceptHandler handler)
      : acceptor(io),
        retry_timer(io),
        limits(frame_limits),
        max_queued_bytes(max_queued),
        on_accept(std::move(handler)) {}

  void Accept() {
    acceptor.async_accept(
        [self = shared_from_this()](const boost::system::error_code& error, tcp::socket socket) {
          self->OnAccepted(error, std::move(socket));
        });
  }

  void OnAccepted(const boost::system::error_code& error, tcp::socket socket) {
    if (stopped) return;
    if (error) {
      // EMFILE, ENOBUFS, ECONNABORTED...: pause rather than spin, then go on.
      retry_timer.expires_after(std::chrono::milliseconds(100));
      retry_timer.async_wait([self = shared_from_this()](const boost::system::error_code& e) {
        if (!e && !self->stopped) self->Accept();
      });
      return;
    }
    std::shared_ptr<Connection> connection =
        Connection::Create(std::move(socket), limits, max_queued_bytes);
    try {
      on_accept(std::move(connection));
    } catch (...) {
      // The handler must not throw; the connection is dropped (closed).
    }
    if (!stopped) Accept();
  }

  void Stop() {
    if (stopped) return;
    stopped = true;
    boost::system::error_code error;
    acceptor.close(error);
    retry_timer.cancel();
    // on_accept stays until the state goes: Stop() may run inside it.
  }

  tcp::acceptor acceptor;
  asio::steady_timer retry_timer;
  FrameLimits limits;
  std::size_t max_queued_bytes;
  AcceptHandler on_accept;
  bool stopped = false;
  uint16_t port = 0;
  std::string local_endpoint;
};

Result<std::unique_ptr<Listener>> Listener::Listen(asio::io_context& io, const HostPort& address,
                                                   FrameLimits limits, AcceptHandler on_accept,
                                                   std::size_t max_queued_bytes) {
  auto state = std::make_shared<State>(io, limits, max_queued_bytes, std::move(on_accept));
  Result<uint16_t> port = ListenOn(io, state->acceptor, address, "");
  if (!port.ok()) return port.status();
  boost::system::error_code error;
  const tcp::endpoint bound = state->acceptor.local_endpoint(error);
  state->port = *port;
  state->local_endpoint = EndpointText(bound);
  state->Accept();
  return std::unique_ptr<Listener>(new Listener(std::move(state)));
}

Listener::Listener(std::shared_ptr<State> state) : state_(std::move(state)) {}

Listener::~Listener() { Stop(); }

uint16_t Listener::bound_port() const { return state_->port; }

const std::string& Listener::local_endpoint() const { return state_->local_endpoint; }

void Listener::Stop() { state_->Stop(); }

}  // namespace cb::transport
