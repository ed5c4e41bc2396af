// The memcached text-protocol listener of the sidecar: accepts TCP clients on one
// address, parses their requests (parser.h) and has a CacheService carry them
// out, writing the replies back in request order however the service orders its
// answers (doc/store.md "The memcached listener").
//
// Bounded: a connection holds at most `max_requests_in_flight` requests and
// their replies (it stops reading meanwhile), one read buffer and the parser's
// bounded buffer; connections beyond `max_connections` are refused with
// memcached's "ERROR Too many open connections"; an idle one is closed after
// `idle_timeout`. No exception leaves the server: one thrown while serving a
// connection is logged and closes that connection only.
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

#include <utility>

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
  // A connection that has received and written nothing for this long, and waits
  // for no answer of the service, is closed. Zero: connections may stay idle
  // forever.
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
