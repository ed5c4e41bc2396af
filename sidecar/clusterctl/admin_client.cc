#include "sidecar/clusterctl/admin_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <utility>

namespace cb {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

Result<AdminReply> CallAdmin(const HostPort& address, const std::string& method,
                             const std::string& target, std::chrono::milliseconds timeout) {
  const std::string where = "admin " + address.ToString();
  asio::io_context io;
  beast::tcp_stream stream(io);
  http::request<http::string_body> request(http::string_to_verb(method), target, 11);
  request.set(http::field::host, address.ToString());
  request.set(http::field::user_agent, "clusterctl");
  request.prepare_payload();
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  beast::error_code failure;
  try {
    asio::ip::tcp::resolver resolver(io);
    const auto endpoints = resolver.resolve(address.host, std::to_string(address.port));
    // Asynchronous, because the stream's deadline bounds only asynchronous
    // operations: one deadline for connect, write and read together, so a
    // stopped sidecar cannot hang clusterctl.
    stream.expires_after(timeout);
    stream.async_connect(endpoints, [&](const beast::error_code& connected, const auto&) {
      if (connected) {
        failure = connected;
        return;
      }
      http::async_write(stream, request, [&](const beast::error_code& written, std::size_t) {
        if (written) {
          failure = written;
          return;
        }
        http::async_read(
            stream, buffer, response,
            [&](const beast::error_code& received, std::size_t) { failure = received; });
      });
    });
    io.run();
  } catch (const std::exception& error) {
    return Status::IoError(where + ": " + error.what() + " (is the sidecar running?)");
  }
  if (failure == beast::error::timeout) {
    return Status::IoError(where + ": no answer within " + std::to_string(timeout.count()) + " ms");
  }
  if (failure) {
    return Status::IoError(where + ": " + failure.message() + " (is the sidecar running?)");
  }
  beast::error_code ignored;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  return AdminReply{response.result_int(), std::move(response.body())};
}

}  // namespace cb
