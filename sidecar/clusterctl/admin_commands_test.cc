#include "sidecar/clusterctl/admin_commands.h"

#include <gtest/gtest.h>

#include <atomic>
#include <sstream>
#include <string>
#include <vector>

#include "sidecar/clusterctl/fake_admin_server.h"

namespace cb {
namespace {

using nlohmann::json;
using testing_support::FakeAdminServer;
namespace http = boost::beast::http;

const std::string kShop = "production/webapp/default/shop";
const std::string kNew = "1111111111222222222233333333334444444444";
const std::string kOld = "aaaaaaaaaabbbbbbbbbbccccccccccdddddddddd";

std::string StatusBody(const std::string& b_commit, const std::string& b_error) {
  json status = {{"id", "app-a"},
                 {"servers",
                  {{{"id", "app-a"}, {"state", "up"}, {"deployed", {{kShop, {{"commit", kNew}}}}}},
                   {{"id", "app-b"},
                    {"state", "up"},
                    {"deployed", {{kShop, {{"commit", b_commit}, {"error", b_error}}}}}},
                   {{"id", "app-c"}, {"state", "down"}}}}};
  return status.dump();
}

std::vector<json> EventLines(const std::string& text) {
  std::vector<json> events;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) events.push_back(json::parse(line));
  return events;
}

AdminAccess Access(const FakeAdminServer& server) {
  AdminAccess access;
  access.endpoint = AdminEndpoint{server.address(), false};
  access.user = "ops";
  access.password = "pw";
  return access;
}

TEST(RollbackCommandTest, FollowsTheNewCommitUntilEveryUpServerRunsIt) {
  std::atomic<int> polls{0};
  FakeAdminServer server([&](const FakeAdminServer::Request& request) {
    if (request.target().starts_with("/rollback")) {
      return FakeAdminServer::Json(
          200, json{{"deployment", kShop}, {"commit", kNew}, {"to", kOld}, {"tree", "t"}}.dump());
    }
    // Before the rollback and at the first poll app-b is behind; then current.
    return FakeAdminServer::Json(200, ++polls <= 2 ? StatusBody(kOld, "") : StatusBody(kNew, ""));
  });
  RollbackArguments arguments;
  arguments.webapp = "shop";
  arguments.to = "1.2 beta";
  arguments.author = "ann@h";
  arguments.follow.timeout = std::chrono::seconds(30);
  std::ostringstream out, err;
  EXPECT_EQ(RunRollback(Access(server), arguments, out, err), 0) << err.str();

  const auto requests = server.requests();
  ASSERT_GE(requests.size(), 4u);
  EXPECT_EQ(requests[1].method(), http::verb::post);
  EXPECT_EQ(requests[1].target(), "/rollback?webapp=shop&to=1.2%20beta&author=ann%40h");
  EXPECT_EQ(requests[1][http::field::authorization], "Basic " + Base64Encode("ops:pw"));

  const auto events = EventLines(out.str());
  ASSERT_EQ(events.size(), 6u) << out.str();
  EXPECT_EQ(events[0]["event"], "stored");
  EXPECT_EQ(events[0]["commit"], kNew);
  EXPECT_EQ(events[1], (json{{"event", "server"},
                             {"id", "app-a"},
                             {"commit", kNew},
                             {"state", "current"},
                             {"server_state", "up"},
                             {"error", ""}}));
  EXPECT_EQ(events[2]["id"], "app-b");
  EXPECT_EQ(events[2]["state"], "behind");
  EXPECT_EQ(events[3]["event"], "server");  // app-c, down: reported, not waited for
  EXPECT_EQ(events[3]["id"], "app-c");
  // app-b's change to current comes at the next poll, then the end.
  EXPECT_EQ(events[4]["id"], "app-b");
  EXPECT_EQ(events[4]["state"], "current");
  EXPECT_EQ(
      events[5],
      (json{
          {"event", "done"}, {"converged", 2}, {"total", 2}, {"ok", true}, {"timed_out", false}}));
}

TEST(RollbackCommandTest, AServerThatFailsEndsTheWaitWithExitTwo) {
  FakeAdminServer server([&](const FakeAdminServer::Request& request) {
    if (request.target().starts_with("/rollback")) {
      return FakeAdminServer::Json(
          200, json{{"deployment", kShop}, {"commit", kNew}, {"to", kOld}}.dump());
    }
    return FakeAdminServer::Json(200, StatusBody(kOld, "checkout: no space"));
  });
  RollbackArguments arguments;
  arguments.webapp = "shop";
  arguments.to = kOld;
  arguments.follow.live = true;
  std::ostringstream out, err;
  // The error is there before the rollback too: it is not this rollback's, so the
  // wait lasts until the (short) timeout.
  arguments.follow.timeout = std::chrono::milliseconds(500);
  EXPECT_EQ(RunRollback(Access(server), arguments, out, err), 2) << err.str();
  EXPECT_NE(out.str().find("rolled back " + kShop + " to aaaaaaaaaa as 1111111111"),
            std::string::npos)
      << out.str();
  EXPECT_NE(out.str().find("converged 1/2: app-a \u2713 app-b \u2026"), std::string::npos)
      << out.str();
  EXPECT_NE(out.str().find("not converged (timed out): app-b"), std::string::npos) << out.str();
}

TEST(RollbackCommandTest, RefusalsAndMissingCredentialsAreExitOne) {
  FakeAdminServer server([&](const FakeAdminServer::Request& request) {
    if (request.target().starts_with("/rollback?webapp=nope")) {
      return FakeAdminServer::Json(404, R"({"error":"nope: no such webapp"})");
    }
    if (request.target().starts_with("/rollback")) return FakeAdminServer::Json(401, "{}");
    return FakeAdminServer::Json(200, StatusBody(kOld, ""));
  });
  RollbackArguments arguments;
  arguments.webapp = "nope";
  arguments.to = "1.0";
  std::ostringstream out, err;
  EXPECT_EQ(RunRollback(Access(server), arguments, out, err), 1);
  EXPECT_EQ(err.str(), "clusterctl: nope: no such webapp\n");
  arguments.webapp = "shop";
  std::ostringstream out2, err2;
  EXPECT_EQ(RunRollback(Access(server), arguments, out2, err2), 1);
  EXPECT_EQ(err2.str(), "clusterctl: " + Access(server).endpoint.ToString() +
                            ": authentication required (--user)\n");
}

TEST(DeploymentsCommandTest, PrintsTheTableOrTheJson) {
  const std::string body =
      json{{"deployments",
            {{{"name", kShop},
              {"current", kNew},
              {"versions", {{{"commit", kNew}, {"version", "1.3"}, {"time_unix_s", 0}}}}}}}}
          .dump();
  FakeAdminServer server(
      [&](const FakeAdminServer::Request&) { return FakeAdminServer::Json(200, body); });
  std::ostringstream out, err;
  EXPECT_EQ(ShowDeployments(Access(server), "shop", false, out, err), 0) << err.str();
  EXPECT_EQ(out.str().rfind(kShop + "  (current 1111111111)\n", 0), 0u) << out.str();
  EXPECT_EQ(server.requests().at(0).target(), "/deployments?webapp=shop");
  std::ostringstream json_out;
  EXPECT_EQ(ShowDeployments(Access(server), "", true, json_out, err), 0);
  EXPECT_EQ(json::parse(json_out.str()), json::parse(body));
  EXPECT_EQ(server.requests().at(1).target(), "/deployments");
}

}  // namespace
}  // namespace cb
