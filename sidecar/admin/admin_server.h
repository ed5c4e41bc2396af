// The admin HTTP endpoint's sockets: an HTTP/1.1 server (Boost.Beast) on one
// address, over TLS when given a context, answering every request through
// DispatchAdminRequest.
//
// Per connection: with TLS, the handshake must finish within io_timeout (a
// client speaking plain HTTP is simply closed). Then each request's header is
// read first, within io_timeout (which also closes an idle keep-alive
// connection), and judged before its body is read:
//   - with an Authenticator, credentials (HTTP Basic) are checked: 401 with
//     WWW-Authenticate, or 429 with Retry-After once the client is rate
//     limited; each refusal is one warning in the log (client, method, path
//     without query, user, reason), never the credentials;
//   - POST /deploy and /rollback from a non-loopback client are refused (403)
//     unless remote_deploy;
//   - a Content-Length over the route's limit (upload_limit for POST /deploy,
//     body_limit for the rest) is refused (413);
// all of these close the connection without reading the body. A client may send
// "Expect: 100-continue" to learn this before it sends a large body. The body
// is then read with io_timeout per read, so a slow upload lives as long as data
// keeps coming. Keep-alive is honoured; every response carries "Server:
// cluster-sidecar". A request that is not valid HTTP gets 400 (431 when the
// header is too large, 413 when the body is) and the connection is closed. No
// exception leaves the server: I/O errors close the one connection, and a
// handler's exception is a 500 (see the router).
//
// Threading: the io_context must be run by one thread at a time, and Start,
// Stop, bound_port and the destructor must be called on that thread or while
// the io_context is not running. Handlers run on that thread, and an
// asynchronous handler's reply must be called on it too (post it there); the
// connection waits for the reply without blocking the thread.
//
// Lifetime: the AdminServer must be destroyed before its io_context. After
// Stop() (or the destructor) no handler is called again (they are destroyed
// with the last connection's coroutine), and a reply still to come is accepted
// and dropped, even after the io_context is gone; the connections' remaining
// work finishes at the io_context's next run, so that run returns once nothing
// else is pending.
#ifndef CLUSTER_BALANCE_SIDECAR_ADMIN_ADMIN_SERVER_H_
#define CLUSTER_BALANCE_SIDECAR_ADMIN_ADMIN_SERVER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "shared/config_values.h"
#include "shared/status.h"
#include "sidecar/admin/admin_auth.h"
#include "sidecar/admin/admin_router.h"

namespace boost::asio::ssl {
class context;
}  // namespace boost::asio::ssl

namespace cb::admin {

namespace detail {
struct AdminServerState;
}  // namespace detail

struct AdminServerOptions {
  size_t header_limit = 8 * 1024;
  size_t body_limit = 64 * 1024;
  // The body of POST /deploy (an archive): the daemon sets it from [deploy]
  // max_size, with room for the archive's own overhead.
  size_t upload_limit = size_t{513} * 1024 * 1024;
  // For a TLS handshake, a request's header (and waiting for the next one),
  // each read of a body, and a response.
  std::chrono::steady_clock::duration io_timeout = std::chrono::seconds(10);
  // Connections beyond this are closed as soon as they are accepted.
  size_t max_connections = 64;
  // HTTPS when set (see MakeAdminTlsContext), plain HTTP when not.
  std::shared_ptr<boost::asio::ssl::context> tls;
  // Every request needs valid credentials when set; AdminRequest::user is then
  // the user's name. Used on the io thread only.
  std::shared_ptr<Authenticator> authenticator;
  // Whether POST /deploy and /rollback are accepted from a client that is not
  // on loopback ([deploy] remote).
  bool remote_deploy = false;
};

// A TLS server context (TLS 1.2 and later) with the PEM certificate chain and
// private key of these files. InvalidArgument naming the file that cannot be
// read or used, or the pair when the key does not match the certificate.
Result<std::shared_ptr<boost::asio::ssl::context>> MakeAdminTlsContext(const std::string& cert_path,
                                                                       const std::string& key_path);

// A CSRF token for AdminHandlers::csrf_token: 32 random bytes (libsodium) as 64
// lowercase hex digits. An error only when libsodium cannot be initialised.
Result<std::string> NewCsrfToken();

class AdminServer {
 public:
  // Listens on `address`; an empty host means 127.0.0.1, port 0 picks a free
  // port (see bound_port). The host is an IP literal or a name resolved now.
  // Errors are IoError with one line for the operator, e.g.
  // "admin 127.0.0.1:6880: address already in use". An empty
  // handlers.csrf_token is replaced by NewCsrfToken(), once per server.
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
