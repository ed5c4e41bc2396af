// The memcached text-protocol listener of the sidecar: accepts TCP clients on one
// address, parses their requests (parser.h) and has a CacheService carry them
// out, writing the replies back in request order.
//
// Per connection:
//  - Bytes read are fed to a RequestParser (options.parser_limits). A protocol
//    error's reply is sent in its turn; an error that closes, and "quit", close
//    the connection once every earlier reply has been written. Every other
//    request goes to CacheService::Handle.
//  - Pipelining: a client may send many requests without waiting. Each request
//    takes a slot; replies go out in request order even when the service answers
//    out of order (a reply waits for every earlier one). At most one write is in
//    flight; replies that become ready meanwhile go out together in the next. A
//    silent request (noreply) leaves its slot as soon as it is answered.
//  - A get line of many keys reaches the service as several requests
//    (Request::more_keys); when one of them is answered with an error line, that
//    line ends the client's answer and the replies to the rest of the line are
//    not sent.
//  - Backpressure: a request counts as in flight from the time it is parsed
//    until its reply has been written to the socket. While
//    `max_requests_in_flight` are, the connection stops handing requests to the
//    service and stops reading (the client's sends then block in TCP), so a
//    connection holds at most that many requests and their replies, one read
//    buffer, the parser's bounded buffer, and what the parser made of the last
//    few hundred bytes fed to it (a read is fed to it in small pieces).
//  - End of stream from the client (it closed, or shut down its sending side):
//    the requests already received are still answered, then the connection is
//    closed. A socket error (reset, broken pipe) closes it at once; requests the
//    service has not answered yet are forgotten (their `done` does nothing).
//  - After its last reply, a connection being closed by the server shuts down
//    its sending side and discards what the client still sends, until the
//    client closes or for at most a second, so that the client reads that last
//    reply rather than a reset.
//  - Idle timeout (0 = none, as memcached's default): a connection that has
//    received nothing and written nothing for that long, and waits for no
//    answer of the service, is closed. A client that does not read its replies
//    for that long is idle too.
//  - Connections beyond `max_connections` are accepted, sent memcached's
//    "ERROR Too many open connections\r\n" and closed at once (counted in
//    connections_rejected).
//  - No exception leaves the server: one thrown by the service (or while
//    serving a connection) is logged and closes that connection only.
//
// Threading: everything runs on the io_context's thread. The io_context must be
// run by one thread at a time (the daemon's is single-threaded); Start, Stop,
// stats, bound_port and the destructor must be called on that thread or while
// the io_context is not running. CacheService::Handle is called on that thread,
// and `done` must be called there too.
//
// Lifetime: the CacheService must outlive the server's Stop() (or destructor);
// Handle is never called after it. `done` callbacks hold no more than a
// weak_ptr to their connection: one called after its connection closed, after
// Stop, or after the server is destroyed does nothing, and may be called or
// dropped at any time. The MemcacheServer must be destroyed before its
// io_context; after Stop the connections' remaining handlers (aborted reads and
// writes) run at the io_context's next run, which then returns once nothing
// else is pending.
#ifndef CLUSTER_BALANCE_SIDECAR_MEMCACHE_MEMCACHE_SERVER_H_
#define CLUSTER_BALANCE_SIDECAR_MEMCACHE_MEMCACHE_SERVER_H_

#include <utility>  // before Asio: Boost 1.74's headers miss it under g++ 12

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "shared/config_values.h"
#include "shared/status.h"
#include "sidecar/memcache/cache_service.h"
#include "sidecar/memcache/parser.h"

namespace cb::memcache {

namespace detail {
struct MemcacheServerState;
}  // namespace detail

struct MemcacheServerOptions {
  // Set max_value_bytes to the largest cache's max entry size (plus slack).
  ParserLimits parser_limits;
  // Connections beyond this are closed as soon as they are accepted.
  std::size_t max_connections = 1024;
  // Requests of one connection parsed and not yet answered on the socket;
  // reading stops while this many are (at least 1).
  std::size_t max_requests_in_flight = 128;
  // Zero: connections may stay idle forever.
  std::chrono::steady_clock::duration idle_timeout{};
  // Bytes asked of the socket per read.
  std::size_t read_buffer_bytes = 16 * 1024;
};

// Counters since Start, for /metrics.
struct MemcacheServerStats {
  uint64_t connections_total = 0;     // accepted and served
  uint64_t connections_current = 0;   // served now (including ones closing)
  uint64_t connections_rejected = 0;  // closed at once: over max_connections
  uint64_t requests = 0;              // requests parsed, quit included
  uint64_t protocol_errors = 0;       // protocol errors, silenced ones included

  bool operator==(const MemcacheServerStats&) const = default;
};

class MemcacheServer {
 public:
  // Listens on `address` (bound before returning, then accepting on `io`); an
  // empty host means 127.0.0.1, port 0 picks a free port (see bound_port). The
  // host is an IP literal or a name resolved now. Errors are IoError with one
  // line for the operator, e.g. "memcached 127.0.0.1:11211: address already in
  // use".
  static Result<std::unique_ptr<MemcacheServer>> Start(boost::asio::io_context& io,
                                                       const HostPort& address,
                                                       CacheService& service,
                                                       MemcacheServerOptions options = {});

  MemcacheServer(const MemcacheServer&) = delete;
  MemcacheServer& operator=(const MemcacheServer&) = delete;
  ~MemcacheServer();  // Stop()

  // The port actually listened on (the one asked for, or the one chosen for 0).
  uint16_t bound_port() const { return bound_port_; }

  MemcacheServerStats stats() const;

  // Closes the listening socket and every connection at once, dropping replies
  // not yet written. Idempotent.
  void Stop();

 private:
  MemcacheServer(std::shared_ptr<detail::MemcacheServerState> state, uint16_t bound_port);

  std::shared_ptr<detail::MemcacheServerState> state_;  // shared with pending handlers
  uint16_t bound_port_;
};

}  // namespace cb::memcache

#endif  // CLUSTER_BALANCE_SIDECAR_MEMCACHE_MEMCACHE_SERVER_H_
