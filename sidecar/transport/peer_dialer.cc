#include "sidecar/transport/peer_dialer.h"

#include "sidecar/transport/listen_on.h"

#include <boost/asio/steady_timer.hpp>
#include <string>
#include <vector>

namespace cb::transport {

using asio::ip::tcp;
using std::chrono::steady_clock;

struct PeerDialer::State : std::enable_shared_from_this<PeerDialer::State> {
  State(asio::io_context& io_context, HostPort peer_address, DialerOptions dialer_options,
        ConnectedHandler connected, RetryHandler retry)
      : io(io_context),
        peer(std::move(peer_address)),
        peer_text(peer.ToString()),
        options(dialer_options),
        on_connected(std::move(connected)),
        on_retry(std::move(retry)),
        resolver(io),
        socket(io),
        connect_timer(io),
        retry_timer(io),
        backoff(options.initial_backoff, options.max_backoff, options.seed) {}

  void StartAttempt() {
    ++attempt;
    connecting = true;
    timed_out = false;
    endpoints.clear();
    next_endpoint = 0;
    last_error = Status::IoError(peer_text + ": no address to connect to");

    connect_timer.expires_after(options.connect_timeout);
    connect_timer.async_wait([self = shared_from_this(),
                              current_attempt = attempt](const boost::system::error_code& error) {
      if (error || self->stopped || self->attempt != current_attempt || !self->connecting) return;
      // Abort whatever is pending; its handler sees timed_out and fails the attempt.
      self->timed_out = true;
      self->resolver.cancel();
      boost::system::error_code ignored;
      self->socket.close(ignored);
    });

    boost::system::error_code error;
    const asio::ip::address address = asio::ip::make_address(peer.host, error);
    if (!error) {
      endpoints.emplace_back(address, peer.port);
      ConnectNext();
      return;
    }
    resolver.async_resolve(
        peer.host, std::to_string(peer.port), tcp::resolver::numeric_service,
        [self = shared_from_this(), current_attempt = attempt](
            const boost::system::error_code& resolve_error, tcp::resolver::results_type results) {
          self->OnResolved(current_attempt, resolve_error, std::move(results));
        });
  }

  void OnResolved(uint64_t for_attempt, const boost::system::error_code& error,
                  const tcp::resolver::results_type& results) {
    if (stopped || for_attempt != attempt) return;
    if (timed_out) return Fail(TimedOut());
    if (error)
      return Fail(Status::IoError(peer_text + ": cannot resolve: " + DescribeError(error)));
    for (const auto& entry : results) endpoints.push_back(entry.endpoint());
    ConnectNext();
  }

  void ConnectNext() {
    if (next_endpoint >= endpoints.size()) return Fail(last_error);
    const tcp::endpoint endpoint = endpoints[next_endpoint++];
    boost::system::error_code error;
    socket.close(error);
    if (socket.open(endpoint.protocol(), error)) {
      last_error = Status::IoError(EndpointText(endpoint) + ": " + DescribeError(error));
      return ConnectNext();
    }
    socket.async_connect(endpoint, [self = shared_from_this(), current_attempt = attempt,
                                    endpoint](const boost::system::error_code& connect_error) {
      self->OnConnected(current_attempt, endpoint, connect_error);
    });
  }

  void OnConnected(uint64_t for_attempt, const tcp::endpoint& endpoint,
                   const boost::system::error_code& error) {
    if (stopped || for_attempt != attempt) return;
    if (timed_out) return Fail(TimedOut());
    if (error) {
      last_error = Status::IoError(EndpointText(endpoint) + ": " + DescribeError(error));
      return ConnectNext();
    }
    boost::system::error_code local_error;
    boost::system::error_code remote_error;
    const tcp::endpoint local = socket.local_endpoint(local_error);
    const tcp::endpoint remote = socket.remote_endpoint(remote_error);
    if (local_error || remote_error) {
      last_error = Status::IoError(EndpointText(endpoint) + ": " +
                                   DescribeError(local_error ? local_error : remote_error));
      return ConnectNext();
    }
    if (local == remote) {
      last_error =
          Status::IoError(EndpointText(endpoint) + ": connected to itself (nothing listens there)");
      return ConnectNext();
    }

    connecting = false;
    connect_timer.cancel();
    std::shared_ptr<Connection> connection =
        Connection::Create(std::move(socket), options.limits, options.max_queued_bytes);
    socket = tcp::socket(io);
    current = connection;
    connected_at = steady_clock::now();
    std::weak_ptr<State> weak = shared_from_this();
    connection->AddCloseObserver([weak, raw = connection.get()](const Status& why) {
      if (std::shared_ptr<State> self = weak.lock()) self->OnConnectionClosed(raw, why);
    });
    try {
      on_connected(std::move(connection));
    } catch (...) {
      // The handler must not throw; if it did, the connection is up to the observer.
    }
  }

  void OnConnectionClosed(const Connection* connection, const Status& why) {
    if (stopped) return;
    if (current.get() == connection) current.reset();
    if (steady_clock::now() - connected_at >= options.healthy_after) backoff.Reset();
    ScheduleRetry(why.ok() ? Status::IoError(peer_text + ": connection closed by this side")
                           : Status::IoError(peer_text + ": " + why.message()));
  }

  Status TimedOut() const {
    return Status::IoError(peer_text + ": connect timed out after " +
                           std::to_string(options.connect_timeout.count()) + " ms");
  }

  void Fail(const Status& why) {
    connecting = false;
    connect_timer.cancel();
    boost::system::error_code ignored;
    socket.close(ignored);
    ScheduleRetry(why);
  }

  void ScheduleRetry(const Status& why) {
    if (stopped) return;
    const std::chrono::milliseconds delay = backoff.Next();
    if (on_retry) {
      try {
        on_retry(why, delay);
      } catch (...) {
        // The handler must not throw.
      }
      if (stopped) return;  // the handler may have stopped the dialer
    }
    retry_timer.expires_after(delay);
    retry_timer.async_wait([self = shared_from_this()](const boost::system::error_code& error) {
      if (!error && !self->stopped) self->StartAttempt();
    });
  }

  void Stop() {
    if (stopped) return;
    stopped = true;
    connecting = false;
    resolver.cancel();
    boost::system::error_code ignored;
    socket.close(ignored);
    connect_timer.cancel();
    retry_timer.cancel();
    if (std::shared_ptr<Connection> connection = std::move(current)) connection->Close();
  }

  asio::io_context& io;
  const HostPort peer;
  const std::string peer_text;
  const DialerOptions options;
  ConnectedHandler on_connected;
  RetryHandler on_retry;
  tcp::resolver resolver;
  tcp::socket socket;
  asio::steady_timer connect_timer;
  asio::steady_timer retry_timer;
  Backoff backoff;
  bool started = false;
  bool stopped = false;
  bool connecting = false;
  bool timed_out = false;
  uint64_t attempt = 0;  // tags handlers, so a stale one does nothing
  std::vector<tcp::endpoint> endpoints;
  std::size_t next_endpoint = 0;
  Status last_error;
  std::shared_ptr<Connection> current;
  steady_clock::time_point connected_at;
};

PeerDialer::PeerDialer(asio::io_context& io, HostPort peer, DialerOptions options,
                       ConnectedHandler on_connected, RetryHandler on_retry)
    : state_(std::make_shared<State>(io, std::move(peer), options, std::move(on_connected),
                                     std::move(on_retry))) {}

PeerDialer::~PeerDialer() { Stop(); }

void PeerDialer::Start() {
  if (state_->started || state_->stopped) return;
  state_->started = true;
  state_->StartAttempt();
}

void PeerDialer::MarkHealthy() { state_->backoff.Reset(); }

void PeerDialer::Stop() { state_->Stop(); }

const HostPort& PeerDialer::peer() const { return state_->peer; }

std::shared_ptr<Connection> PeerDialer::connection() const { return state_->current; }

uint64_t PeerDialer::attempts() const { return state_->attempt; }

}  // namespace cb::transport
