// The one way the sidecar's servers (cluster port, admin HTTP, memcached) start
// listening, so that they report errors alike: synchronously, before the daemon
// says it is ready, as one line naming the address ("admin 127.0.0.1:6880:
// address already in use").
#ifndef CLUSTER_BALANCE_SIDECAR_TRANSPORT_LISTEN_ON_H_
#define CLUSTER_BALANCE_SIDECAR_TRANSPORT_LISTEN_ON_H_

#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "shared/config_values.h"
#include "shared/status.h"

namespace cb::transport {

// An error code's message for a log line: lower-case first letter.
std::string DescribeError(const boost::system::error_code& error);

// Opens `acceptor` (not yet open) on `address` with SO_REUSEADDR (a restart may
// bind while old connections linger in TIME_WAIT; a port somebody listens on is
// still refused) and listens. An empty host means 127.0.0.1; a name is resolved
// now (first address); port 0 picks a free port. Returns the bound port, or an
// IoError "<what> <host:port>: <cause>" (`what` may be empty).
Result<uint16_t> ListenOn(boost::asio::io_context& io, boost::asio::ip::tcp::acceptor& acceptor,
                          const HostPort& address, std::string_view what);

}  // namespace cb::transport

#endif  // CLUSTER_BALANCE_SIDECAR_TRANSPORT_LISTEN_ON_H_
