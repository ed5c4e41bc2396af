#include "sidecar/transport/listen_on.h"

#include <cctype>

namespace cb::transport {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

std::string DescribeError(const boost::system::error_code& error) {
  std::string message = error.message();
  if (!message.empty()) {
    message[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(message[0])));
  }
  return message;
}

Result<uint16_t> ListenOn(asio::io_context& io, tcp::acceptor& acceptor, const HostPort& address,
                          std::string_view what) {
  HostPort where = address;
  if (where.host.empty()) where.host = "127.0.0.1";
  const std::string prefix =
      (what.empty() ? std::string() : std::string(what) + " ") + where.ToString() + ": ";
  boost::system::error_code error;
  tcp::endpoint endpoint;
  const asio::ip::address ip = asio::ip::make_address(where.host, error);
  if (!error) {
    endpoint = tcp::endpoint(ip, where.port);
  } else {
    tcp::resolver resolver(io);
    const auto results =
        resolver.resolve(where.host, std::to_string(where.port),
                         tcp::resolver::passive | tcp::resolver::numeric_service, error);
    if (error || results.empty()) {
      return Status::IoError(prefix + "cannot resolve " + where.host + ": " +
                             (error ? DescribeError(error) : std::string("no address")));
    }
    endpoint = results.begin()->endpoint();
  }
  if (acceptor.open(endpoint.protocol(), error)) {
    return Status::IoError(prefix + "cannot open a socket: " + DescribeError(error));
  }
  if (acceptor.set_option(tcp::acceptor::reuse_address(true), error)) {
    return Status::IoError(prefix + "cannot set SO_REUSEADDR: " + DescribeError(error));
  }
  if (acceptor.bind(endpoint, error)) return Status::IoError(prefix + DescribeError(error));
  if (acceptor.listen(asio::socket_base::max_listen_connections, error)) {
    return Status::IoError(prefix + "listen: " + DescribeError(error));
  }
  const tcp::endpoint bound = acceptor.local_endpoint(error);
  if (error) return Status::IoError(prefix + DescribeError(error));
  return bound.port();
}

}  // namespace cb::transport
