#include "sidecar/memcache/memcache_server.h"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cctype>
#include <deque>
#include <exception>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "sidecar/transport/listen_on.h"

namespace cb::memcache {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {

// How long a connection the server closes may keep discarding the client's
// bytes after its last reply (see the header).
constexpr auto kLingerTimeout = std::chrono::seconds(1);
// Pause after a failed accept (out of descriptors and the like).
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(100);
// Bytes fed to the parser at a time: what it yields at once (requests not yet
// handed to the service) stays small even when a read brings thousands of
// tiny requests.
constexpr std::size_t kFeedBytes = 512;
// memcached's answer to a connection over its limit.
constexpr std::string_view kTooManyConnections = "ERROR Too many open connections\r\n";

// Whether a reply to a part of a retrieval line (Request::more_keys) is an
// error line rather than VALUE blocks (commands.h ValueLines).
bool IsErrorLine(std::string_view reply) { return !reply.empty() && !reply.starts_with("VALUE "); }

std::string PeerText(const tcp::socket& socket) {
  error_code ec;
  tcp::endpoint peer = socket.remote_endpoint(ec);
  if (ec) return "?";
  std::string host = peer.address().to_string(ec);
  if (ec) return "?";
  if (peer.address().is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(peer.port());
}

}  // namespace

namespace detail {

class Connection;

// Everything the handlers need; they hold a shared_ptr, so it outlives the
// MemcacheServer when they are still pending.
struct MemcacheServerState {
  MemcacheServerState(asio::io_context& io, CacheService& s, MemcacheServerOptions o, std::string w)
      : acceptor(io), retry_timer(io), service(&s), options(o), where(std::move(w)) {
    options.max_requests_in_flight = std::max<std::size_t>(options.max_requests_in_flight, 1);
    options.read_buffer_bytes = std::max<std::size_t>(options.read_buffer_bytes, 1);
  }
  MemcacheServerState(const MemcacheServerState&) = delete;
  MemcacheServerState& operator=(const MemcacheServerState&) = delete;

  tcp::acceptor acceptor;
  asio::steady_timer retry_timer;
  CacheService* service;  // not used after Stop
  MemcacheServerOptions options;
  std::string where;  // "127.0.0.1:11211", for the log
  bool stopped = false;
  MemcacheServerStats stats;  // connections_current is connections.size()
  uint64_t next_connection_id = 0;
  // Open connections (and ones lingering before their close); owns them while
  // no handler of theirs is pending (e.g. waiting only for the service).
  std::map<uint64_t, std::shared_ptr<Connection>> connections;
};

// One client. Every entry point (handler, `done`) holds a shared_ptr to it, so
// Close() may drop the registry's reference from anywhere.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<MemcacheServerState> server, tcp::socket socket, uint64_t id)
      : server_(std::move(server)),
        socket_(std::move(socket)),
        idle_timer_(socket_.get_executor()),
        linger_timer_(socket_.get_executor()),
        id_(id),
        peer_(PeerText(socket_)),
        max_in_flight_(server_->options.max_requests_in_flight),
        parser_(server_->options.parser_limits),
        read_buffer_(server_->options.read_buffer_bytes) {}
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void Start() {
    Guarded("start", [&] {
      error_code ec;
      socket_.set_option(tcp::no_delay(true), ec);  // replies are batched already
      last_activity_ = Clock::now();
      if (server_->options.idle_timeout > Clock::duration::zero()) {
        ArmIdleTimer(server_->options.idle_timeout);
      }
      Pump();
    });
  }

  // Closes the socket at once, dropping what is not written; later handlers and
  // `done` calls do nothing. Idempotent.
  void Close() noexcept {
    if (closed_) return;
    closed_ = true;
    error_code ec;
    socket_.close(ec);
    try {
      idle_timer_.cancel();
      linger_timer_.cancel();
    } catch (...) {
      // Cannot fail in practice; the handlers check closed_ anyway.
    }
    parsed_.clear();
    unfed_ = {};
    slots_.clear();
    queue_.clear();  // not writing_: the write in flight still refers to it
    server_->connections.erase(id_);
  }

 private:
  // A request's place in the reply order.
  struct Slot {
    bool ready = false;
    std::string reply;
    bool more_keys = false;  // Request::more_keys
  };

  // Runs `body`; an exception is logged and closes this connection only.
  template <typename Body>
  void Guarded(const char* what, Body&& body) noexcept {
    try {
      body();
    } catch (const std::exception& e) {
      spdlog::error("memcached {}: client {}: {}: {}; closing the connection", server_->where,
                    peer_, what, e.what());
      Close();
    } catch (...) {
      spdlog::error("memcached {}: client {}: {}: unknown exception; closing the connection",
                    server_->where, peer_, what);
      Close();
    }
  }

  // Requests parsed and dispatched whose replies are not yet written.
  std::size_t InFlight() const { return slots_.size() + queued_requests_ + writing_requests_; }

  bool WaitingForService() const {
    return std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return !s.ready; });
  }

  // Moves the connection forward: dispatches parsed requests while fewer than
  // the limit are in flight, writes the replies that are ready in order,
  // finishes the connection once all is answered after quit, a closing error or
  // the client's end of stream, and reads more when there is room.
  void Pump() {
    if (closed_ || pumping_) return;  // pumping_: a `done` called inside Handle
    pumping_ = true;
    for (;;) {
      while (!closed_ && !parsed_.empty() && InFlight() < max_in_flight_) {
        ParseResult result = std::move(parsed_.front());
        parsed_.pop_front();
        Dispatch(std::move(result));
      }
      if (closed_) break;
      // Answered requests leave their slots here: a silent (noreply) one frees
      // its place at once, and no write will come back to pump again for it.
      QueueReadyReplies();
      if (!parsed_.empty() && InFlight() < max_in_flight_) continue;
      if (close_requested_ || !parsed_.empty() || InFlight() >= max_in_flight_ || unfed_.empty()) {
        break;
      }
      const std::size_t n = std::min(unfed_.size(), kFeedBytes);
      std::vector<ParseResult> results = parser_.Feed(unfed_.substr(0, n));
      unfed_.remove_prefix(n);
      for (ParseResult& result : results) parsed_.push_back(std::move(result));
    }
    pumping_ = false;
    if (closed_) return;
    StartWrite();
    if (closed_ || lingering_) return;
    if ((close_requested_ || eof_) && parsed_.empty() && unfed_.empty() && slots_.empty() &&
        queue_.empty() && !write_in_flight_) {
      Finish();
      return;
    }
    if (!reading_ && !close_requested_ && !eof_ && parsed_.empty() && unfed_.empty() &&
        InFlight() < max_in_flight_) {
      StartRead();
    }
  }

  void Dispatch(ParseResult result) {
    if (auto* error = std::get_if<ProtocolError>(&result)) {
      ++server_->stats.protocol_errors;
      if (!error->reply.empty()) slots_.push_back(Slot{true, std::move(error->reply)});
      if (error->close) {
        close_requested_ = true;
        parsed_.clear();  // the parser yields nothing after it anyway
        unfed_ = {};
      }
      return;
    }
    Request& request = std::get<Request>(result);
    ++server_->stats.requests;
    if (request.command == Command::kQuit) {
      close_requested_ = true;
      parsed_.clear();
      unfed_ = {};
      return;
    }
    slots_.push_back(Slot{false, {}, request.more_keys});
    const uint64_t sequence = first_sequence_ + slots_.size() - 1;
    std::weak_ptr<Connection> weak = weak_from_this();
    try {
      server_->service->Handle(std::move(request), [weak, sequence](std::string reply) {
        if (std::shared_ptr<Connection> self = weak.lock()) {
          self->OnDone(sequence, std::move(reply));
        }
      });
    } catch (const std::exception& e) {
      spdlog::error("memcached {}: client {}: the cache service failed: {}; closing the connection",
                    server_->where, peer_, e.what());
      Close();
    } catch (...) {
      spdlog::error("memcached {}: client {}: the cache service failed; closing the connection",
                    server_->where, peer_);
      Close();
    }
  }

  void OnDone(uint64_t sequence, std::string reply) noexcept {
    Guarded("answer", [&] {
      if (closed_) return;
      // A second call for one request, or one for a slot already gone, is ignored.
      if (sequence < first_sequence_ || sequence - first_sequence_ >= slots_.size()) return;
      Slot& slot = slots_[sequence - first_sequence_];
      if (slot.ready) return;
      slot.ready = true;
      slot.reply = std::move(reply);
      last_activity_ = Clock::now();
      Pump();
    });
  }

  // Moves the replies of the leading ready slots to the write queue.
  void QueueReadyReplies() {
    while (!slots_.empty() && slots_.front().ready) {
      std::string reply = std::move(slots_.front().reply);
      const bool more_keys = slots_.front().more_keys;
      slots_.pop_front();
      ++first_sequence_;
      // A retrieval line answered in parts: an error line ends the client's
      // answer, so the later parts of that line must not be sent.
      if (skipping_rest_of_line_) {
        if (!more_keys) skipping_rest_of_line_ = false;
        continue;
      }
      if (more_keys && IsErrorLine(reply)) skipping_rest_of_line_ = true;
      if (!reply.empty()) {
        queue_.push_back(std::move(reply));
        ++queued_requests_;
      }
    }
  }

  void StartWrite() {
    if (write_in_flight_ || queue_.empty()) return;
    writing_.swap(queue_);
    queue_.clear();
    writing_requests_ = queued_requests_;
    queued_requests_ = 0;
    buffers_.clear();
    buffers_.reserve(writing_.size());
    for (const std::string& reply : writing_) buffers_.push_back(asio::buffer(reply));
    write_in_flight_ = true;
    asio::async_write(socket_, buffers_,
                      [self = shared_from_this()](const error_code& ec, std::size_t) {
                        self->Guarded("write", [&] { self->OnWritten(ec); });
                      });
  }

  void OnWritten(const error_code& ec) {
    write_in_flight_ = false;
    writing_.clear();
    writing_requests_ = 0;
    if (closed_) return;
    if (ec) {
      spdlog::debug("memcached {}: client {}: write: {}", server_->where, peer_,
                    transport::DescribeError(ec));
      Close();
      return;
    }
    last_activity_ = Clock::now();
    Pump();
  }

  void StartRead() {
    reading_ = true;
    socket_.async_read_some(asio::buffer(read_buffer_),
                            [self = shared_from_this()](const error_code& ec, std::size_t n) {
                              self->Guarded("read", [&] { self->OnRead(ec, n); });
                            });
  }

  void OnRead(const error_code& ec, std::size_t n) {
    reading_ = false;
    if (closed_) return;
    if (lingering_) {
      if (ec) {
        Close();
      } else {
        StartRead();  // discarded
      }
      return;
    }
    if (ec == asio::error::eof) {
      // Answer what was received, then close (a client may shut down its
      // sending side and still wait for its replies).
      eof_ = true;
      Pump();
      return;
    }
    if (ec) {
      spdlog::debug("memcached {}: client {}: read: {}", server_->where, peer_,
                    transport::DescribeError(ec));
      Close();
      return;
    }
    last_activity_ = Clock::now();
    unfed_ = std::string_view(read_buffer_.data(), n);
    Pump();
  }

  // Everything asked is answered and written; no more requests will come.
  void Finish() {
    if (eof_) {
      Close();  // the client sends nothing more: nothing to wait for
      return;
    }
    lingering_ = true;
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    if (ec) {
      Close();
      return;
    }
    linger_timer_.expires_after(kLingerTimeout);
    linger_timer_.async_wait([self = shared_from_this()](const error_code& e) {
      if (e != asio::error::operation_aborted) self->Close();
    });
    if (!reading_) StartRead();
  }

  void ArmIdleTimer(Clock::duration delay) {
    idle_timer_.expires_after(delay);
    idle_timer_.async_wait([self = shared_from_this()](const error_code& ec) {
      self->Guarded("idle timer", [&] { self->OnIdleTimer(ec); });
    });
  }

  void OnIdleTimer(const error_code& ec) {
    if (closed_ || lingering_ || ec == asio::error::operation_aborted) return;
    const Clock::duration timeout = server_->options.idle_timeout;
    if (WaitingForService()) {
      ArmIdleTimer(timeout);
      return;
    }
    const Clock::duration idle = Clock::now() - last_activity_;
    if (idle >= timeout) {
      spdlog::debug("memcached {}: client {}: idle; closing the connection", server_->where, peer_);
      Close();
      return;
    }
    ArmIdleTimer(timeout - idle);
  }

  std::shared_ptr<MemcacheServerState> server_;
  tcp::socket socket_;
  asio::steady_timer idle_timer_;
  asio::steady_timer linger_timer_;
  const uint64_t id_;
  const std::string peer_;
  const std::size_t max_in_flight_;
  RequestParser parser_;
  std::vector<char> read_buffer_;
  std::string_view unfed_;  // read into read_buffer_, not yet fed to the parser

  std::deque<ParseResult> parsed_;  // parsed, not yet dispatched (backpressure)
  std::deque<Slot> slots_;          // dispatched, reply not yet queued; in order
  uint64_t first_sequence_ = 0;     // the sequence number of slots_.front()
  std::vector<std::string> queue_;  // replies to write after the write in flight
  std::size_t queued_requests_ = 0;
  std::vector<std::string> writing_;  // the write in flight (buffers_ point into it)
  std::vector<asio::const_buffer> buffers_;
  std::size_t writing_requests_ = 0;

  Clock::time_point last_activity_;
  bool pumping_ = false;
  bool reading_ = false;
  bool write_in_flight_ = false;
  bool close_requested_ = false;        // quit, or an error that closes
  bool eof_ = false;                    // the client sends nothing more
  bool skipping_rest_of_line_ = false;  // a part of a retrieval line was an error
  bool lingering_ = false;              // all written; discarding input until closed
  bool closed_ = false;
};

}  // namespace detail

namespace {

using detail::Connection;
using detail::MemcacheServerState;

void Accept(const std::shared_ptr<MemcacheServerState>& state);

void RetryAcceptLater(const std::shared_ptr<MemcacheServerState>& state) {
  state->retry_timer.expires_after(kAcceptRetryDelay);
  state->retry_timer.async_wait([state](const error_code& ec) {
    if (!ec && !state->stopped) Accept(state);
  });
}

void Reject(tcp::socket& socket) {
  error_code ec;
  // A fresh socket's send buffer is empty: this short write does not block.
  socket.non_blocking(true, ec);
  if (!ec) socket.write_some(asio::buffer(kTooManyConnections), ec);
  socket.close(ec);
}

// Returns whether to accept the next connection now (else later, or never once
// stopped).
bool OnAccepted(const std::shared_ptr<MemcacheServerState>& state, const error_code& ec,
                tcp::socket& socket) {
  if (ec) {
    spdlog::warn("memcached {}: accept: {}; retrying in {} ms", state->where,
                 transport::DescribeError(ec), kAcceptRetryDelay.count());
    return false;
  }
  if (state->connections.size() >= state->options.max_connections) {
    ++state->stats.connections_rejected;
    spdlog::debug("memcached {}: over {} connections; closing a new one", state->where,
                  state->options.max_connections);
    Reject(socket);
    return true;
  }
  const uint64_t id = state->next_connection_id++;
  auto connection = std::make_shared<Connection>(state, std::move(socket), id);
  state->connections.emplace(id, connection);
  ++state->stats.connections_total;
  connection->Start();
  return true;
}

void Accept(const std::shared_ptr<MemcacheServerState>& state) {
  state->acceptor.async_accept([state](const error_code& ec, tcp::socket socket) {
    if (state->stopped || ec == asio::error::operation_aborted) return;
    bool now = false;
    try {
      now = OnAccepted(state, ec, socket);
    } catch (const std::exception& e) {
      spdlog::error("memcached {}: accept: {}", state->where, e.what());
    } catch (...) {
      spdlog::error("memcached {}: accept: unknown exception", state->where);
    }
    if (state->stopped) return;
    try {
      if (now) {
        Accept(state);
      } else {
        RetryAcceptLater(state);
      }
    } catch (...) {
      spdlog::critical("memcached {}: cannot accept any more connections", state->where);
    }
  });
}

}  // namespace

MemcacheServer::MemcacheServer(std::shared_ptr<detail::MemcacheServerState> state,
                               uint16_t bound_port)
    : state_(std::move(state)), bound_port_(bound_port) {}

MemcacheServer::~MemcacheServer() { Stop(); }

Result<std::unique_ptr<MemcacheServer>> MemcacheServer::Start(asio::io_context& io,
                                                              const HostPort& address,
                                                              CacheService& service,
                                                              MemcacheServerOptions options) {
  HostPort where = address;
  if (where.host.empty()) where.host = "127.0.0.1";
  const std::string prefix = "memcached " + where.ToString() + ": ";
  try {
    auto state =
        std::make_shared<detail::MemcacheServerState>(io, service, options, where.ToString());
    Result<uint16_t> bound = transport::ListenOn(io, state->acceptor, where, "memcached");
    if (!bound.ok()) return bound.status();
    const uint16_t port = *bound;
    state->where = HostPort{where.host, port}.ToString();  // with the port chosen for 0

    Accept(state);
    return std::unique_ptr<MemcacheServer>(new MemcacheServer(std::move(state), port));
  } catch (const std::exception& e) {
    return Status::IoError(prefix + e.what());
  }
}

MemcacheServerStats MemcacheServer::stats() const {
  MemcacheServerStats stats = state_->stats;
  stats.connections_current = state_->connections.size();
  return stats;
}

void MemcacheServer::Stop() {
  detail::MemcacheServerState& state = *state_;
  if (state.stopped) return;
  state.stopped = true;
  error_code ec;
  state.acceptor.close(ec);
  try {
    state.retry_timer.cancel();
  } catch (...) {
    // Cannot fail in practice; its handler checks `stopped` anyway.
  }
  // Close() erases from the registry: take it out first.
  std::map<uint64_t, std::shared_ptr<Connection>> connections;
  connections.swap(state.connections);
  for (auto& [id, connection] : connections) connection->Close();
}

}  // namespace cb::memcache
