#include "sidecar/clusterctl/admin_client.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sidecar/clusterctl/fake_admin_server.h"

namespace cb {
namespace {

using testing_support::FakeAdminServer;
namespace http = boost::beast::http;

AdminEndpoint Plain(const FakeAdminServer& server) {
  return AdminEndpoint{server.address(), false};
}

TEST(AdminEndpointTest, AcceptsPlainHttpAndHttps) {
  Result<AdminEndpoint> bare = ParseAdminEndpoint("10.0.0.1:6880");
  ASSERT_TRUE(bare.ok()) << bare.status().ToString();
  EXPECT_FALSE(bare->tls);
  EXPECT_EQ(bare->address, (HostPort{"10.0.0.1", 6880}));
  Result<AdminEndpoint> http = ParseAdminEndpoint("http://app-a.example:6880/");
  ASSERT_TRUE(http.ok()) << http.status().ToString();
  EXPECT_FALSE(http->tls);
  EXPECT_EQ(http->address, (HostPort{"app-a.example", 6880}));
  Result<AdminEndpoint> https = ParseAdminEndpoint("https://[::1]:6443");
  ASSERT_TRUE(https.ok()) << https.status().ToString();
  EXPECT_TRUE(https->tls);
  EXPECT_EQ(https->address, (HostPort{"::1", 6443}));
  EXPECT_EQ(https->ToString(), "https://[::1]:6443");
  EXPECT_EQ(bare->ToString(), "10.0.0.1:6880");
}

TEST(AdminEndpointTest, RefusesOtherSchemesAndMissingPorts) {
  Result<AdminEndpoint> ftp = ParseAdminEndpoint("ftp://a:1");
  ASSERT_FALSE(ftp.ok());
  EXPECT_NE(ftp.status().message().find("only http:// and https://"), std::string::npos);
  EXPECT_FALSE(ParseAdminEndpoint("https://a").ok());
  EXPECT_FALSE(ParseAdminEndpoint("").ok());
}

TEST(AdminClientTest, UploadArrivesExactlyWithProgressInChunks) {
  FakeAdminServer server([](const FakeAdminServer::Request&) {
    return FakeAdminServer::Json(200, R"({"commit":"abc"})");
  });
  std::string body(300 * 1024 + 7, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 131 % 251);
  std::vector<std::pair<uint64_t, uint64_t>> progress;
  AdminCallOptions options;
  options.body = body;
  options.on_body_progress = [&](uint64_t sent, uint64_t total) {
    progress.emplace_back(sent, total);
  };
  Result<AdminReply> reply = CallAdmin(Plain(server), "POST", "/deploy?webapp=shop", options);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->status, 200u);
  EXPECT_EQ(reply->body, R"({"commit":"abc"})");

  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method(), http::verb::post);
  EXPECT_EQ(requests[0].target(), "/deploy?webapp=shop");
  EXPECT_EQ(requests[0][http::field::content_type], "application/octet-stream");
  EXPECT_EQ(requests[0].body(), body);
  EXPECT_EQ(requests[0].count(http::field::authorization), 0u);

  ASSERT_EQ(progress.size(), 5u);  // four chunks of 64 KiB and the rest
  uint64_t previous = 0;
  for (const auto& [sent, total] : progress) {
    EXPECT_EQ(total, body.size());
    EXPECT_GT(sent, previous);
    EXPECT_LE(sent - previous, 64u * 1024);
    previous = sent;
  }
  EXPECT_EQ(progress.back().first, body.size());
}

TEST(AdminClientTest, PostsCarryTheCsrfTokenAndGetsDoNotAskForIt) {
  FakeAdminServer server(
      [](const FakeAdminServer::Request&) { return FakeAdminServer::Json(200, "{}"); });
  Result<AdminReply> status = CallAdmin(Plain(server), "GET", "/status", AdminCallOptions{});
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_EQ(server.csrf_token_requests(), 0);
  Result<AdminReply> drain =
      CallAdmin(Plain(server), "POST", "/servers/app-b/drain", AdminCallOptions{});
  ASSERT_TRUE(drain.ok()) << drain.status().ToString();
  EXPECT_EQ(drain->status, 200u);
  EXPECT_EQ(server.csrf_token_requests(), 1);
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].count("X-CSRF-Token"), 0u);
  EXPECT_EQ(requests[1]["X-CSRF-Token"], FakeAdminServer::kCsrfToken);
}

TEST(AdminClientTest, TheTokenRequestCarriesTheCredentialsButNotTheBody) {
  // An empty token: the fake leaves /csrf-token to this handler.
  FakeAdminServer server(
      [](const FakeAdminServer::Request& request) {
        if (request.target() == "/csrf-token") {
          return FakeAdminServer::Json(200, R"({"csrf_token":"abc123"})");
        }
        return FakeAdminServer::Json(200, "{}");
      },
      "");
  AdminCallOptions options;
  options.user = "ops";
  options.password = "pw";
  options.body = "archive bytes";
  int progress_calls = 0;
  options.on_body_progress = [&](uint64_t, uint64_t) { ++progress_calls; };
  Result<AdminReply> reply = CallAdmin(Plain(server), "POST", "/deploy?webapp=shop", options);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].method(), http::verb::get);
  EXPECT_EQ(requests[0].target(), "/csrf-token");
  EXPECT_EQ(requests[0][http::field::authorization], "Basic " + Base64Encode("ops:pw"));
  EXPECT_EQ(requests[0].body(), "");
  EXPECT_EQ(requests[1].target(), "/deploy?webapp=shop");
  EXPECT_EQ(requests[1]["X-CSRF-Token"], "abc123");
  EXPECT_EQ(requests[1].body(), "archive bytes");
  EXPECT_EQ(progress_calls, 1);
}

TEST(AdminClientTest, AnOldSidecarWithoutTheTokenGetsThePostWithoutIt) {
  FakeAdminServer server(
      [](const FakeAdminServer::Request& request) {
        if (request.target() == "/csrf-token") {
          return FakeAdminServer::Json(404, R"({"error":"no such path: /csrf-token"})");
        }
        return FakeAdminServer::Json(200, R"({"server":"app-b","state":"draining"})");
      },
      "");
  Result<AdminReply> reply =
      CallAdmin(Plain(server), "POST", "/servers/app-b/drain", AdminCallOptions{});
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->status, 200u);
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1].target(), "/servers/app-b/drain");
  EXPECT_EQ(requests[1].count("X-CSRF-Token"), 0u);
}

TEST(AdminClientTest, ARefusedOrBrokenTokenRequestStopsThePost) {
  FakeAdminServer unauthorized(
      [](const FakeAdminServer::Request&) { return FakeAdminServer::Json(401, "{}"); }, "");
  Result<AdminReply> reply =
      CallAdmin(Plain(unauthorized), "POST", "/servers/a/drain", AdminCallOptions{});
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->status, 401u);
  EXPECT_EQ(unauthorized.requests().size(), 1u);  // the GET only

  FakeAdminServer broken(
      [](const FakeAdminServer::Request&) { return FakeAdminServer::Json(200, R"({"x":1})"); }, "");
  Result<AdminReply> refused =
      CallAdmin(Plain(broken), "POST", "/servers/a/drain", AdminCallOptions{});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("GET /csrf-token did not answer"), std::string::npos)
      << refused.status().ToString();
  EXPECT_EQ(broken.requests().size(), 1u);
}

TEST(AdminClientTest, SendsBasicCredentialsWhenAUserIsGiven) {
  FakeAdminServer server(
      [](const FakeAdminServer::Request&) { return FakeAdminServer::Json(200, "{}"); });
  AdminCallOptions options;
  options.user = "ops";
  options.password = "s3cret:with colon";
  Result<AdminReply> reply = CallAdmin(Plain(server), "GET", "/status", options);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0][http::field::authorization],
            "Basic " + Base64Encode("ops:s3cret:with colon"));
  EXPECT_EQ(Base64Encode("ops:s3cret"), "b3BzOnMzY3JldA==");
  EXPECT_EQ(Base64Encode("a"), "YQ==");
  EXPECT_EQ(Base64Encode("ab"), "YWI=");
  EXPECT_EQ(Base64Encode(""), "");
}

TEST(AdminClientTest, UnauthorizedAndRateLimitedRepliesSayWhatToDo) {
  FakeAdminServer server([](const FakeAdminServer::Request& request) {
    if (request.target() == "/status") return FakeAdminServer::Json(401, R"({"error":"no"})");
    FakeAdminServer::Response limited = FakeAdminServer::Json(429, R"({"error":"slow down"})");
    limited.set(http::field::retry_after, "30");
    return limited;
  });
  const AdminEndpoint endpoint = Plain(server);
  Result<AdminReply> unauthorized = CallAdmin(endpoint, "GET", "/status", AdminCallOptions{});
  ASSERT_TRUE(unauthorized.ok()) << unauthorized.status().ToString();
  EXPECT_EQ(unauthorized->status, 401u);
  EXPECT_EQ(AdminReplyError(endpoint, "GET", "/status", *unauthorized).message(),
            endpoint.ToString() + ": authentication required (--user)");

  Result<AdminReply> limited = CallAdmin(endpoint, "GET", "/deployments", AdminCallOptions{});
  ASSERT_TRUE(limited.ok()) << limited.status().ToString();
  EXPECT_EQ(AdminReplyError(endpoint, "GET", "/deployments", *limited).message(),
            endpoint.ToString() + ": too many failed attempts, retry after 30 s");
}

TEST(AdminClientTest, ErrorRepliesCarryTheSidecarsMessage) {
  FakeAdminServer server([](const FakeAdminServer::Request& request) {
    if (request.target() == "/deploy") {
      return FakeAdminServer::Json(400, R"({"error":"../x: '..' component"})");
    }
    return FakeAdminServer::Json(500, "not json");
  });
  const AdminEndpoint endpoint = Plain(server);
  Result<AdminReply> refused = CallAdmin(endpoint, "POST", "/deploy", AdminCallOptions{});
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(AdminReplyError(endpoint, "POST", "/deploy", *refused).message(),
            "../x: '..' component");
  Result<AdminReply> broken = CallAdmin(endpoint, "GET", "/x", AdminCallOptions{});
  ASSERT_TRUE(broken.ok());
  EXPECT_EQ(AdminReplyError(endpoint, "GET", "/x", *broken).message(),
            endpoint.ToString() + ": GET /x answered HTTP 500");
}

TEST(AdminClientTest, HttpsToAPlainServerFailsInTheHandshake) {
  FakeAdminServer server(
      [](const FakeAdminServer::Request&) { return FakeAdminServer::Json(200, "{}"); });
  const AdminEndpoint endpoint{server.address(), true};
  AdminCallOptions options;
  options.timeout = std::chrono::seconds(5);
  Result<AdminReply> reply = CallAdmin(endpoint, "GET", "/status", options);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().message().rfind("admin " + endpoint.ToString() + ": TLS handshake: ", 0),
            0u)
      << reply.status().message();
}

TEST(AdminClientTest, MissingCaFileIsNamed) {
  FakeAdminServer server(
      [](const FakeAdminServer::Request&) { return FakeAdminServer::Json(200, "{}"); });
  AdminCallOptions options;
  options.ca_file = "/nonexistent/ca.pem";
  Result<AdminReply> reply = CallAdmin(AdminEndpoint{server.address(), true}, "GET", "/", options);
  ASSERT_FALSE(reply.ok());
  EXPECT_NE(reply.status().message().find("--ca-file /nonexistent/ca.pem"), std::string::npos)
      << reply.status().message();
}

TEST(PercentEncodeTest, KeepsUnreservedAndEncodesTheRest) {
  EXPECT_EQ(PercentEncode("shop-1.2_x~"), "shop-1.2_x~");
  EXPECT_EQ(PercentEncode("fix: a&b=c d/é"), "fix%3A%20a%26b%3Dc%20d%2F%C3%A9");
}

}  // namespace
}  // namespace cb
