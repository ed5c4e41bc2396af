#include "sidecar/clusterctl/fake_admin_server.h"

#include <boost/asio/connect.hpp>
#include <boost/beast/core.hpp>
#include <utility>

namespace cb::testing_support {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

FakeAdminServer::FakeAdminServer(Handler handler, std::string csrf_token)
    : handler_(std::move(handler)),
      csrf_token_(std::move(csrf_token)),
      acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
  port_ = acceptor_.local_endpoint().port();
  thread_ = std::thread([this] { Serve(); });
}

FakeAdminServer::~FakeAdminServer() {
  stopping_ = true;
  // Wakes the blocking accept; the serving thread then sees stopping_.
  beast::error_code ignored;
  tcp::socket waker(io_);
  waker.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ignored);
  thread_.join();
}

std::vector<FakeAdminServer::Request> FakeAdminServer::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

int FakeAdminServer::csrf_token_requests() const {
  std::lock_guard lock(mutex_);
  return csrf_token_requests_;
}

FakeAdminServer::Response FakeAdminServer::Answer(const Request& request) {
  if (!csrf_token_.empty() && request.method() == http::verb::post &&
      request["X-CSRF-Token"] != csrf_token_) {
    return Json(403, R"json({"error":"missing or wrong X-CSRF-Token (GET /csrf-token)"})json");
  }
  return handler_(request);
}

FakeAdminServer::Response FakeAdminServer::Json(unsigned status, std::string body) {
  Response response(static_cast<http::status>(status), 11);
  response.set(http::field::content_type, "application/json");
  response.body() = std::move(body);
  response.keep_alive(false);
  response.prepare_payload();
  return response;
}

void FakeAdminServer::Serve() {
  while (!stopping_) {
    tcp::socket socket(io_);
    beast::error_code error;
    acceptor_.accept(socket, error);
    if (error || stopping_) continue;
    beast::flat_buffer buffer;
    http::request_parser<http::string_body> parser;
    parser.body_limit(1024 * 1024 * 1024);
    http::read(socket, buffer, parser, error);
    if (error) continue;
    Request request = parser.release();
    if (!csrf_token_.empty() && request.method() == http::verb::get &&
        request.target() == "/csrf-token") {
      Response token = Json(200, R"({"csrf_token":")" + csrf_token_ + R"("})");
      {
        std::lock_guard lock(mutex_);
        ++csrf_token_requests_;
      }
      http::write(socket, token, error);
      socket.shutdown(tcp::socket::shutdown_both, error);
      continue;
    }
    Response response = Answer(request);
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(std::move(request));
    }
    http::write(socket, response, error);
    socket.shutdown(tcp::socket::shutdown_both, error);
  }
}

}  // namespace cb::testing_support
