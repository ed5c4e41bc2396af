// The admin HTTP endpoint's sockets: an HTTP/1.1 server (Boost.Beast) on one
// address, answering every request through RouteAdminRequest.
//
// Per connection: requests are read with a header limit and a body limit and a
// read timeout (which also closes an idle keep-alive connection); keep-alive is
// honoured; every response carries "Server: cluster-sidecar". A request that is
// not valid HTTP gets 400 (431 when the header is too large, 413 when the body
// is) and the connection is closed. No exception leaves the server: I/O errors
// close the one connection, and a handler's exception is a 500 (see the router).
//
// Threading: the io_context must be run by one thread at a time, and Start,
// Stop, bound_port and the destructor must be called on that thread or while
// the io_context is not running. Handlers run on that thread.
//
// Lifetime: the AdminServer must be destroyed before its io_context. After
// Stop() (or the destructor) no handler is called again (they are destroyed
// with the last connection's coroutine); the connections' remaining work
// finishes at the io_context's next run, so that run returns once nothing else
// is pending.
#ifndef CLUSTER_BALANCE_SIDECAR_ADMIN_ADMIN_SERVER_H_
#define CLUSTER_BALANCE_SIDECAR_ADMIN_ADMIN_SERVER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

#include <boost/asio/io_context.hpp>

#include "shared/config_values.h"
#include "shared/status.h"
#include "sidecar/admin/admin_router.h"

namespace cb::admin {

namespace detail {
struct AdminServerState;
}  // namespace detail

struct AdminServerOptions {
  size_t header_limit = 8 * 1024;
  size_t body_limit = 64 * 1024;
  // For a whole request (and for waiting on the next one), and for a response.
  std::chrono::steady_clock::duration io_timeout = std::chrono::seconds(10);
  // Connections beyond this are closed as soon as they are accepted.
  size_t max_connections = 64;
};

class AdminServer {
 public:
  // Listens on `address`; an empty host means 127.0.0.1, port 0 picks a free
  // port (see bound_port). The host is an IP literal or a name resolved now.
  // Errors are IoError with one line for the operator, e.g.
  // "admin 127.0.0.1:6880: address already in use".
  static Result<std::unique_ptr<AdminServer>> Start(boost::asio::io_context& io,
                                                    const HostPort& address, AdminHandlers handlers,
                                                    AdminServerOptions options = {});

  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;
  ~AdminServer();  // Stop()

  // The port actually listened on (the one asked for, or the one chosen for 0).
  uint16_t bound_port() const { return bound_port_; }

  // Closes the listening socket and every connection, even one in the middle of
  // a request. Idempotent.
  void Stop();

 private:
  AdminServer(std::shared_ptr<detail::AdminServerState> state, uint16_t bound_port);

  std::shared_ptr<detail::AdminServerState> state_;  // shared with the coroutines still in flight
  uint16_t bound_port_;
};

}  // namespace cb::admin

#endif  // CLUSTER_BALANCE_SIDECAR_ADMIN_ADMIN_SERVER_H_
