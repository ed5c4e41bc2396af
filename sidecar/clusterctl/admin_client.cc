#include "sidecar/clusterctl/admin_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <utility>  // before Asio: Boost 1.74 under g++ 12 needs it

namespace cb {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

Result<AdminReply> CallAdmin(const HostPort& address, const std::string& method,
                             const std::string& target, std::chrono::milliseconds timeout) {
  const std::string where = "admin " + address.ToString();
  try {
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.expires_after(timeout);
    stream.connect(resolver.resolve(address.host, std::to_string(address.port)));

    http::request<http::string_body> request(http::string_to_verb(method), target, 11);
    request.set(http::field::host, address.ToString());
    request.set(http::field::user_agent, "clusterctl");
    request.prepare_payload();
    http::write(stream, request);

    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    return AdminReply{response.result_int(), std::move(response.body())};
  } catch (const std::exception& error) {
    return Status::IoError(where + ": " + error.what() + " (is the sidecar running?)");
  }
}

}  // namespace cb
