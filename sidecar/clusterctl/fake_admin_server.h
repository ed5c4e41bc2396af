// Test support: a tiny admin endpoint on a free loopback port, served by its own
// thread, answering each request with what the test's handler returns and
// remembering the requests it was sent.
//
// Like a sidecar, it guards POSTs with a CSRF token unless constructed with an
// empty one (an old sidecar): it answers GET /csrf-token itself (counted by
// csrf_token_requests, not in requests()) and refuses a POST without the token
// with 403 {"error": "missing or wrong X-CSRF-Token (GET /csrf-token)"} before
// the handler sees it (the refused request is still in requests()).
#ifndef CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_FAKE_ADMIN_SERVER_H_
#define CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_FAKE_ADMIN_SERVER_H_

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "shared/config_values.h"

namespace cb::testing_support {

class FakeAdminServer {
 public:
  using Request = boost::beast::http::request<boost::beast::http::string_body>;
  using Response = boost::beast::http::response<boost::beast::http::string_body>;
  using Handler = std::function<Response(const Request&)>;

  static constexpr const char* kCsrfToken = "fake-csrf-token";

  explicit FakeAdminServer(Handler handler, std::string csrf_token = kCsrfToken);
  ~FakeAdminServer();
  FakeAdminServer(const FakeAdminServer&) = delete;
  FakeAdminServer& operator=(const FakeAdminServer&) = delete;

  HostPort address() const { return HostPort{"127.0.0.1", port_}; }
  // The requests answered so far, in order.
  std::vector<Request> requests() const;
  // How many GET /csrf-token the fake answered itself.
  int csrf_token_requests() const;

  // A response with `status`, a JSON body and the headers a sidecar sends.
  static Response Json(unsigned status, std::string body);

 private:
  void Serve();

  Response Answer(const Request& request);

  Handler handler_;
  std::string csrf_token_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::vector<Request> requests_;
  int csrf_token_requests_ = 0;
  std::thread thread_;
};

}  // namespace cb::testing_support

#endif  // CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_FAKE_ADMIN_SERVER_H_
