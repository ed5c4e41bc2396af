// Tests of the admin router and MetricsText (pure), and of AdminServer over
// loopback with a Beast client running on the same io_context.

// First: before any other Boost.Asio header->
#include "sidecar/admin/asio_coroutines.h"

#include "sidecar/admin/admin_router.h"

#include <chrono>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include "sidecar/admin/admin_page.h"
#include "sidecar/admin/admin_server.h"
#include "sidecar/testing/run_until.h"

namespace cb::admin {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------- router

// Every handler set in these tests carries this token, and every request
// (Call, Req, Request) sends it, unless a test says otherwise.
constexpr char kToken[] = "5f0c1e2d3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9012a3b4c5d6";

struct Recorder {
  std::vector<std::pair<std::string, bool>> draining_calls;
  Status draining_result;
};

AdminHandlers MakeHandlers(Recorder* recorder) {
  AdminHandlers handlers;
  handlers.csrf_token = kToken;
  handlers.status = [] {
    return json{{"server", {{"id", "app-a"}}},
                {"servers",
                 {{{"id", "app-a"}, {"state", "up"}, {"heartbeat_age_ms", nullptr}},
                  {{"id", "app-b"}, {"state", "draining"}, {"heartbeat_age_ms", 250}},
                  {{"id", "app-c"}, {"state", "down"}, {"heartbeat_age_ms", 4200}}}}};
  };
  handlers.metrics = [] { return std::string("# TYPE x counter\nx 1\n"); };
  handlers.set_draining = [recorder](const std::string& id, bool draining) {
    recorder->draining_calls.emplace_back(id, draining);
    return recorder->draining_result;
  };
  return handlers;
}

AdminResponse Call(const AdminHandlers& handlers, std::string method, std::string target,
                   std::string body = "", std::string token = kToken) {
  AdminRequest request{std::move(method), std::move(target), std::move(body)};
  request.csrf_token = std::move(token);
  return RouteAdminRequest(handlers, request);
}

std::string ErrorOf(const AdminResponse& response) {
  json body = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object() || !body.contains("error") || !body["error"].is_string()) {
    return "<no error member in: " + response.body + ">";
  }
  return body["error"].get<std::string>();
}

TEST(AdminRouterTest, StatusIsTheHandlersJson) {
  Recorder recorder;
  AdminHandlers handlers = MakeHandlers(&recorder);
  AdminResponse response = Call(handlers, "GET", "/status");
  EXPECT_EQ(response.status, 200u);
  EXPECT_EQ(response.content_type, "application/json");
  EXPECT_EQ(json::parse(response.body), handlers.status());
  EXPECT_TRUE(response.allow.empty());
}

TEST(AdminRouterTest, QueryStringIsIgnored) {
  Recorder recorder;
  AdminHandlers handlers = MakeHandlers(&recorder);
  EXPECT_EQ(Call(handlers, "GET", "/status?pretty=1&x").status, 200u);
  EXPECT_EQ(Call(handlers, "GET", "/metrics?").status, 200u);
  EXPECT_EQ(Call(handlers, "POST", "/servers/app-b/drain?now=1").status, 200u);
  ASSERT_EQ(recorder.draining_calls.size(), 1u);
  EXPECT_EQ(recorder.draining_calls[0].first, "app-b");
}

TEST(AdminRouterTest, MetricsIsPrometheusText) {
  Recorder recorder;
  AdminResponse response = Call(MakeHandlers(&recorder), "GET", "/metrics");
  EXPECT_EQ(response.status, 200u);
  EXPECT_EQ(response.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(response.body, "# TYPE x counter\nx 1\n");
}

TEST(AdminRouterTest, DrainAndEnableCallTheHandler) {
  Recorder recorder;
  AdminHandlers handlers = MakeHandlers(&recorder);
  AdminResponse drain = Call(handlers, "POST", "/servers/app-b/drain");
  EXPECT_EQ(drain.status, 200u);
  EXPECT_EQ(drain.content_type, "application/json");
  EXPECT_EQ(json::parse(drain.body), (json{{"server", "app-b"}, {"state", "draining"}}));
  AdminResponse enable = Call(handlers, "POST", "/servers/app-b/enable");
  EXPECT_EQ(enable.status, 200u);
  EXPECT_EQ(json::parse(enable.body), (json{{"server", "app-b"}, {"state", "up"}}));
  ASSERT_EQ(recorder.draining_calls.size(), 2u);
  EXPECT_EQ(recorder.draining_calls[0], std::make_pair(std::string("app-b"), true));
  EXPECT_EQ(recorder.draining_calls[1], std::make_pair(std::string("app-b"), false));
}

TEST(AdminRouterTest, DrainErrorsMapToStatusCodes) {
  Recorder recorder;
  AdminHandlers handlers = MakeHandlers(&recorder);

  recorder.draining_result = Status::NotFound("unknown server \"app-x\"");
  AdminResponse not_found = Call(handlers, "POST", "/servers/app-x/drain");
  EXPECT_EQ(not_found.status, 404u);
  EXPECT_EQ(ErrorOf(not_found), "unknown server \"app-x\"");

  recorder.draining_result = Status::NotFound("");
  EXPECT_EQ(ErrorOf(Call(handlers, "POST", "/servers/app-x/drain")), "unknown server app-x");

  recorder.draining_result = Status::InvalidArgument("cannot drain the last server");
  AdminResponse invalid = Call(handlers, "POST", "/servers/app-a/drain");
  EXPECT_EQ(invalid.status, 400u);
  EXPECT_EQ(ErrorOf(invalid), "cannot drain the last server");

  recorder.draining_result = Status::IoError("no triad server reachable");
  AdminResponse unavailable = Call(handlers, "POST", "/servers/app-a/enable");
  EXPECT_EQ(unavailable.status, 503u);
  EXPECT_EQ(ErrorOf(unavailable), "no triad server reachable");
}

TEST(AdminRouterTest, UnknownPathIs404Json) {
  Recorder recorder;
  AdminHandlers handlers = MakeHandlers(&recorder);
  for (const char* target :
       {"/nope", "/status/", "/servers", "/servers/", "/servers/app-a", "/servers/app-a/reboot",
        "/servers/a/b/drain", "status", "", "/admin.html", "/admin.js/", "/page/admin.css"}) {
    AdminResponse response = Call(handlers, "GET", target);
    EXPECT_EQ(response.status, 404u) << target;
    EXPECT_EQ(response.content_type, "application/json") << target;
    EXPECT_NE(ErrorOf(response).find("no such path"), std::string::npos) << target;
  }
  EXPECT_TRUE(recorder.draining_calls.empty());
}

TEST(AdminRouterTest, WrongMethodIs405WithAllow) {
  Recorder recorder;
  AdminHandlers handlers = MakeHandlers(&recorder);
  for (const char* target :
       {"/", "/status", "/metrics", "/history", "/csrf-token", "/admin.js", "/admin.css"}) {
    for (const char* method : {"POST", "PUT", "DELETE", "get", "HEAD"}) {
      AdminResponse response = Call(handlers, method, target);
      EXPECT_EQ(response.status, 405u) << method << " " << target;
      EXPECT_EQ(response.allow, "GET") << method << " " << target;
      EXPECT_EQ(response.content_type, "application/json");
    }
  }
  AdminResponse response = Call(handlers, "GET", "/servers/app-a/drain");
  EXPECT_EQ(response.status, 405u);
  EXPECT_EQ(response.allow, "POST");
  EXPECT_EQ(Call(handlers, "PUT", "/servers/app-a/enable").allow, "POST");
  EXPECT_TRUE(recorder.draining_calls.empty());
}

TEST(AdminRouterTest, ServerIdMustMatchTheCharset) {
  Recorder recorder;
  AdminHandlers handlers = MakeHandlers(&recorder);
  std::string longest(63, 'a');
  EXPECT_EQ(Call(handlers, "POST", "/servers/" + longest + "/drain").status, 200u);
  EXPECT_EQ(Call(handlers, "POST", "/servers/A-z_0.9/drain").status, 200u);
  for (const std::string& id :
       {std::string(), std::string(64, 'a'), std::string("app%2Da"), std::string("app a"),
        std::string("app\"a"), std::string("\xc3\xa4pp"), std::string("a:b"), std::string("a+b")}) {
    AdminResponse response = Call(handlers, "POST", "/servers/" + id + "/drain");
    EXPECT_EQ(response.status, 400u) << id;
    EXPECT_NE(ErrorOf(response).find("invalid server id"), std::string::npos) << response.body;
  }
  EXPECT_EQ(recorder.draining_calls.size(), 2u);
  EXPECT_TRUE(IsValidServerId("app-a"));
  EXPECT_FALSE(IsValidServerId("app/a"));
}

TEST(AdminRouterTest, ThrowingHandlerIs500) {
  AdminHandlers handlers;
  handlers.csrf_token = kToken;
  handlers.status = []() -> json { throw std::runtime_error("view lock poisoned"); };
  handlers.metrics = []() -> std::string { throw 42; };
  handlers.set_draining = [](const std::string&, bool) -> Status {
    throw std::logic_error("boom");
  };
  AdminResponse status = Call(handlers, "GET", "/status");
  EXPECT_EQ(status.status, 500u);
  EXPECT_EQ(status.content_type, "application/json");
  EXPECT_EQ(ErrorOf(status), "internal error: view lock poisoned");
  EXPECT_EQ(Call(handlers, "GET", "/").status, 200u);  // the page does not call the handler
  AdminResponse metrics = Call(handlers, "GET", "/metrics");
  EXPECT_EQ(metrics.status, 500u);
  EXPECT_EQ(ErrorOf(metrics), "internal error");
  EXPECT_EQ(Call(handlers, "POST", "/servers/a/drain").status, 500u);
}

TEST(AdminRouterTest, MissingHandlerIs503) {
  AdminHandlers handlers;
  handlers.csrf_token = kToken;
  EXPECT_EQ(Call(handlers, "GET", "/status").status, 503u);
  EXPECT_EQ(Call(handlers, "GET", "/metrics").status, 503u);
  EXPECT_EQ(Call(handlers, "GET", "/history").status, 503u);
  EXPECT_EQ(Call(handlers, "POST", "/servers/a/enable").status, 503u);
}

TEST(AdminRouterTest, InvalidUtf8InAMessageDoesNotThrow) {
  AdminHandlers handlers;
  handlers.csrf_token = kToken;
  handlers.set_draining = [](const std::string&, bool) {
    return Status::IoError("bad \xff\xfe bytes");
  };
  AdminResponse response = Call(handlers, "POST", "/servers/a/drain");
  EXPECT_EQ(response.status, 503u);
  EXPECT_NE(ErrorOf(response).find("bad "), std::string::npos);
}

std::string HeaderOf(const AdminResponse& response, std::string_view name) {
  for (const auto& [key, value] : response.headers) {
    if (key == name) return value;
  }
  return "<no " + std::string(name) + " header>";
}

TEST(AdminRouterTest, PageFilesCarryTheirTypeAndTheSecurityHeaders) {
  Recorder recorder;
  AdminHandlers handlers = MakeHandlers(&recorder);
  struct Case {
    const char* target;
    const char* content_type;
    const char* marker;  // something only that file holds
  };
  for (const Case& c : {Case{"/", "text/html; charset=utf-8", "<table id=\"servers\">"},
                        Case{"/?refresh=1", "text/html; charset=utf-8", "<dialog id=\"confirm\">"},
                        Case{"/admin.js", "text/javascript; charset=utf-8", "fetchJson('/status')"},
                        Case{"/admin.css", "text/css; charset=utf-8", ".version-bad"}}) {
    AdminResponse response = Call(handlers, "GET", c.target);
    EXPECT_EQ(response.status, 200u) << c.target;
    EXPECT_EQ(response.content_type, c.content_type) << c.target;
    EXPECT_NE(response.body.find(c.marker), std::string::npos) << c.target;
    EXPECT_EQ(HeaderOf(response, "Content-Security-Policy"),
              "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
              "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
        << c.target;
    EXPECT_EQ(HeaderOf(response, "X-Content-Type-Options"), "nosniff") << c.target;
    EXPECT_EQ(HeaderOf(response, "Referrer-Policy"), "no-referrer") << c.target;
    EXPECT_EQ(HeaderOf(response, "Cache-Control"), "no-cache") << c.target;
  }
  // JSON answers need none of it (and get none: no CORS header anywhere either).
  EXPECT_TRUE(Call(handlers, "GET", "/status").headers.empty());
}

TEST(AdminRouterTest, PageHasNoInlineScriptOrStyle) {
  Recorder recorder;
  std::string html = Call(MakeHandlers(&recorder), "GET", "/").body;
  EXPECT_NE(html.find("<script src=\"/admin.js\" defer></script>"), std::string::npos) << html;
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_EQ(html.find("<style"), std::string::npos);
  EXPECT_EQ(html.find("style=\""), std::string::npos);
  EXPECT_EQ(html.find(" on"), std::string::npos) << "an inline event handler";
  EXPECT_EQ(html.find("{{"), std::string::npos) << "a placeholder left over";
  for (const char* id :
       {"chart-sessions", "chart-rtt", "updated", "error", "confirm-yes", "confirm-no"}) {
    EXPECT_NE(html.find("id=\"" + std::string(id) + "\""), std::string::npos) << id;
  }
}

TEST(AdminRouterTest, PageCarriesTheTokenEscaped) {
  Recorder recorder;
  AdminHandlers handlers = MakeHandlers(&recorder);
  std::string html = Call(handlers, "GET", "/").body;
  EXPECT_NE(html.find("<meta name=\"csrf-token\" content=\"" + std::string(kToken) + "\">"),
            std::string::npos)
      << html;
  handlers.csrf_token = "a\"><script>x</script>&'";
  html = Call(handlers, "GET", "/").body;
  EXPECT_NE(html.find("<meta name=\"csrf-token\" "
                      "content=\"a&quot;&gt;&lt;script&gt;x&lt;/script&gt;&amp;&#39;\">"),
            std::string::npos)
      << html;
  EXPECT_EQ(html.find("<script>x"), std::string::npos);
}

TEST(AdminRouterTest, CsrfTokenRoute) {
  Recorder recorder;
  AdminHandlers handlers = MakeHandlers(&recorder);
  // A GET needs no token of its own: that is how a client learns it.
  AdminResponse response = Call(handlers, "GET", "/csrf-token", "", "");
  EXPECT_EQ(response.status, 200u);
  EXPECT_EQ(response.content_type, "application/json");
  EXPECT_EQ(json::parse(response.body), (json{{"csrf_token", kToken}}));
  handlers.csrf_token.clear();
  EXPECT_EQ(Call(handlers, "GET", "/csrf-token").status, 503u);
}

TEST(AdminRouterTest, HistoryIsTheHandlersJson) {
  Recorder recorder;
  AdminHandlers handlers = MakeHandlers(&recorder);
  json history = {{"interval_ms", 1000},
                  {"end_unix_ms", 1700000000000},
                  {"servers", {{"app-a", {{"sessions", {1, nullptr, 3}}, {"rtt_ms", {0.25}}}}}}};
  handlers.history = [history] { return history; };
  AdminResponse response = Call(handlers, "GET", "/history?x=1");
  EXPECT_EQ(response.status, 200u);
  EXPECT_EQ(response.content_type, "application/json");
  EXPECT_EQ(json::parse(response.body), history);
  handlers.history = []() -> json { throw std::runtime_error("ring torn"); };
  EXPECT_EQ(ErrorOf(Call(handlers, "GET", "/history")), "internal error: ring torn");
}

TEST(AdminRouterTest, EmbeddedFilesAreTheThreeListed) {
  std::vector<std::string> names;
  for (const EmbeddedFile& file : AdminPageFiles()) {
    names.emplace_back(file.name);
    EXPECT_FALSE(file.data.empty()) << file.name;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"admin.html", "admin.js", "admin.css"}));
}

// ---------------------------------------------------------------- deploy routes

// Records the asynchronous handlers' requests and keeps their replies for later.
struct DeployRecorder {
  std::vector<DeployRequest> deploys;
  std::vector<RollbackRequest> rollbacks;
  std::vector<AdminReply> replies;
  std::vector<std::string> deployments_calls;
  Result<json> deployments_result = json::array();
};

AdminHandlers MakeDeployHandlers(DeployRecorder* r) {
  AdminHandlers handlers;
  handlers.csrf_token = kToken;
  handlers.deploy = [r](DeployRequest request, AdminReply reply) {
    r->deploys.push_back(std::move(request));
    r->replies.push_back(std::move(reply));
  };
  handlers.rollback = [r](RollbackRequest request, AdminReply reply) {
    r->rollbacks.push_back(std::move(request));
    r->replies.push_back(std::move(reply));
  };
  handlers.deployments = [r](const std::string& webapp) -> Result<json> {
    r->deployments_calls.push_back(webapp);
    return r->deployments_result;
  };
  return handlers;
}

// Dispatches and collects every reply, now or later.
struct Replies {
  std::vector<AdminResponse> got;
  AdminReply Sink() {
    return [this](AdminResponse response) { got.push_back(std::move(response)); };
  }
};

AdminRequest Req(std::string method, std::string target, std::string body = "") {
  AdminRequest request;
  request.method = std::move(method);
  request.target = std::move(target);
  request.body = std::move(body);
  request.user = "shop-deployer";
  request.client = "192.0.2.7";
  request.csrf_token = kToken;
  return request;
}

TEST(AdminRouterTest, EveryPostNeedsTheToken) {
  Recorder recorder;
  AdminHandlers handlers = MakeHandlers(&recorder);
  DeployRecorder deployer;
  AdminHandlers deploy = MakeDeployHandlers(&deployer);
  handlers.deploy = deploy.deploy;
  handlers.rollback = deploy.rollback;
  const std::string wrong_same_length = std::string(kToken).substr(1) + "0";
  for (const char* target :
       {"/servers/app-b/drain", "/servers/app-b/enable", "/deploy?webapp=a",
        "/rollback?webapp=a&to=b", "/servers/bad%20id/drain", "/deploy?unknown=1"}) {
    for (const std::string& token :
         {std::string(), wrong_same_length, std::string(kToken) + "0", std::string("x")}) {
      AdminResponse response = Call(handlers, "POST", target, "", token);
      EXPECT_EQ(response.status, 403u) << target << " token " << token;
      EXPECT_EQ(ErrorOf(response), "missing or wrong X-CSRF-Token (GET /csrf-token)");
    }
  }
  EXPECT_TRUE(recorder.draining_calls.empty());
  EXPECT_TRUE(deployer.deploys.empty());
  EXPECT_TRUE(deployer.rollbacks.empty());
  EXPECT_EQ(Call(handlers, "POST", "/servers/app-b/drain").status, 200u);
  EXPECT_EQ(recorder.draining_calls.size(), 1u);

  // The method is judged first: a GET of a POST route is a 405 with or without it.
  EXPECT_EQ(Call(handlers, "GET", "/servers/app-b/drain", "", "").status, 405u);
  // With no token set, nothing can be posted at all.
  handlers.csrf_token.clear();
  EXPECT_EQ(Call(handlers, "POST", "/servers/app-b/drain", "", "").status, 403u);
  EXPECT_EQ(recorder.draining_calls.size(), 1u);
}

TEST(AdminDeployRouteTest, DeployPassesDecodedQueryAndArchiveAndRepliesLater) {
  DeployRecorder r;
  AdminHandlers handlers = MakeDeployHandlers(&r);
  Replies replies;
  const std::string archive("PK\x03\x04\x00\xff binary", sizeof("PK\x03\x04\x00\xff binary") - 1);
  DispatchAdminRequest(handlers,
                       Req("POST",
                           "/deploy?webapp=shop&stage=production&host=default&version=1.2%2B3"
                           "&message=fix%20login%20%26%20cart+now&author=J%C3%BCrgen",
                           archive),
                       replies.Sink());
  ASSERT_EQ(r.deploys.size(), 1u);
  EXPECT_TRUE(replies.got.empty()) << "the handler has not replied yet";
  const DeployRequest& d = r.deploys[0];
  EXPECT_EQ(d.webapp, "shop");
  EXPECT_EQ(d.stage, "production");
  EXPECT_EQ(d.host, "default");
  EXPECT_EQ(d.version, "1.2+3");
  EXPECT_EQ(d.message, "fix login & cart+now");  // '+' is not a space
  EXPECT_EQ(d.author, "J\xc3\xbcrgen");
  EXPECT_EQ(d.user, "shop-deployer");
  EXPECT_EQ(d.client, "192.0.2.7");
  EXPECT_EQ(d.archive, archive);

  r.replies[0](AdminResponse{201, "application/json", "{\"commit\":\"abc\"}\n", {}});
  ASSERT_EQ(replies.got.size(), 1u);
  EXPECT_EQ(replies.got[0].status, 201u);
  EXPECT_EQ(replies.got[0].body, "{\"commit\":\"abc\"}\n");
  r.replies[0](AdminResponse{500, "application/json", "{}", {}});  // a second reply is ignored
  EXPECT_EQ(replies.got.size(), 1u);
}

TEST(AdminDeployRouteTest, OnlyWebappIsRequired) {
  DeployRecorder r;
  AdminHandlers handlers = MakeDeployHandlers(&r);
  Replies replies;
  DispatchAdminRequest(handlers, Req("POST", "/deploy?webapp=shop"), replies.Sink());
  ASSERT_EQ(r.deploys.size(), 1u);
  EXPECT_EQ(r.deploys[0].webapp, "shop");
  EXPECT_EQ(r.deploys[0].stage, "");
  EXPECT_EQ(r.deploys[0].version, "");
  EXPECT_EQ(r.deploys[0].archive, "");
}

TEST(AdminDeployRouteTest, QueryErrorsAre400NamingTheProblem) {
  DeployRecorder r;
  AdminHandlers handlers = MakeDeployHandlers(&r);
  struct Case {
    std::string target;
    std::string error_part;
  };
  for (const Case& c : std::vector<Case>{
           {"/deploy", "missing query parameter webapp"},
           {"/deploy?webapp=", "missing query parameter webapp"},
           {"/deploy?stage=production", "missing query parameter webapp"},
           {"/deploy?webapp=shop&colour=red&x", "unknown query parameter \"colour\", \"x\""},
           {"/deploy?webapp=shop&webapp=cart", "query parameter webapp given twice"},
           {"/deploy?webapp=shop&message=100%", "bad percent-escape \"%\""},
           {"/deploy?webapp=shop&message=%zz", "bad percent-escape \"%zz\""},
           {"/deploy?webapp=sh%4", "query \"webapp=sh%4\": bad percent-escape \"%4\""},
           {"/rollback?webapp=shop", "missing query parameter to"},
           {"/rollback?to=v1", "missing query parameter webapp"},
           {"/rollback?webapp=shop&to=v1&message=x", "unknown query parameter \"message\""},
           {"/deployments?app=shop", "unknown query parameter \"app\" (known: webapp)"},
       }) {
    std::string method = c.target.starts_with("/deployments") ? "GET" : "POST";
    AdminResponse response = RouteAdminRequest(handlers, Req(method, c.target));
    EXPECT_EQ(response.status, 400u) << c.target;
    EXPECT_EQ(response.content_type, "application/json");
    EXPECT_NE(ErrorOf(response).find(c.error_part), std::string::npos)
        << c.target << ": " << ErrorOf(response);
  }
  EXPECT_TRUE(r.deploys.empty());
  EXPECT_TRUE(r.rollbacks.empty());
  EXPECT_TRUE(r.deployments_calls.empty());
}

TEST(AdminDeployRouteTest, RollbackPassesItsFields) {
  DeployRecorder r;
  AdminHandlers handlers = MakeDeployHandlers(&r);
  Replies replies;
  DispatchAdminRequest(
      handlers, Req("POST", "/rollback?to=v1.0&webapp=shop&stage=staging&host=h1&author=ops"),
      replies.Sink());
  ASSERT_EQ(r.rollbacks.size(), 1u);
  const RollbackRequest& rb = r.rollbacks[0];
  EXPECT_EQ(rb.webapp, "shop");
  EXPECT_EQ(rb.to, "v1.0");
  EXPECT_EQ(rb.stage, "staging");
  EXPECT_EQ(rb.host, "h1");
  EXPECT_EQ(rb.author, "ops");
  EXPECT_EQ(rb.user, "shop-deployer");
  EXPECT_EQ(rb.client, "192.0.2.7");
  r.replies[0](AdminResponse{200, "application/json", "{}\n", {}});
  ASSERT_EQ(replies.got.size(), 1u);
  EXPECT_EQ(replies.got[0].status, 200u);
}

TEST(AdminDeployRouteTest, DeploymentsIsTheHandlersJsonOrItsError) {
  DeployRecorder r;
  AdminHandlers handlers = MakeDeployHandlers(&r);
  r.deployments_result = json{{{"tag", "production/webapp/default/shop-1.0"}}};
  AdminResponse all = RouteAdminRequest(handlers, Req("GET", "/deployments"));
  EXPECT_EQ(all.status, 200u);
  EXPECT_EQ(all.content_type, "application/json");
  EXPECT_EQ(json::parse(all.body), *r.deployments_result);
  EXPECT_EQ(RouteAdminRequest(handlers, Req("GET", "/deployments?webapp=my%20shop")).status, 200u);
  EXPECT_EQ(r.deployments_calls, (std::vector<std::string>{"", "my shop"}));

  struct Case {
    Status status;
    unsigned http;
  };
  for (const Case& c : std::vector<Case>{{Status::NotFound("no webapp \"x\""), 404},
                                         {Status::InvalidArgument("bad name"), 400},
                                         {Status::Unsupported("old repository"), 400},
                                         {Status::TooLarge("too many"), 413},
                                         {Status::IoError("repository locked"), 503}}) {
    r.deployments_result = c.status;
    AdminResponse response = RouteAdminRequest(handlers, Req("GET", "/deployments?webapp=x"));
    EXPECT_EQ(response.status, c.http) << c.status.ToString();
    EXPECT_EQ(ErrorOf(response), c.status.message());
  }
}

TEST(AdminDeployRouteTest, WrongMethodIs405) {
  DeployRecorder r;
  AdminHandlers handlers = MakeDeployHandlers(&r);
  for (const char* target : {"/deploy?webapp=shop", "/rollback?webapp=shop&to=v1"}) {
    for (const char* method : {"GET", "PUT", "post"}) {
      AdminResponse response = RouteAdminRequest(handlers, Req(method, target));
      EXPECT_EQ(response.status, 405u) << method << " " << target;
      EXPECT_EQ(response.allow, "POST");
    }
  }
  AdminResponse response = RouteAdminRequest(handlers, Req("POST", "/deployments"));
  EXPECT_EQ(response.status, 405u);
  EXPECT_EQ(response.allow, "GET");
  EXPECT_EQ(RouteAdminRequest(handlers, Req("POST", "/deploy/")).status, 404u);
  EXPECT_TRUE(r.deploys.empty());
  EXPECT_TRUE(r.rollbacks.empty());
}

TEST(AdminDeployRouteTest, MissingHandlersAre503) {
  AdminHandlers handlers;
  handlers.csrf_token = kToken;
  EXPECT_EQ(RouteAdminRequest(handlers, Req("POST", "/deploy?webapp=a")).status, 503u);
  EXPECT_EQ(RouteAdminRequest(handlers, Req("POST", "/rollback?webapp=a&to=b")).status, 503u);
  EXPECT_EQ(RouteAdminRequest(handlers, Req("GET", "/deployments")).status, 503u);
}

TEST(AdminDeployRouteTest, AsyncHandlerThatThrowsOrNeverAnswersNow) {
  AdminHandlers handlers;
  handlers.csrf_token = kToken;
  AdminReply kept;
  handlers.deploy = [](DeployRequest, AdminReply) { throw std::runtime_error("disk full"); };
  handlers.rollback = [](RollbackRequest, AdminReply reply) {
    reply(AdminResponse{200, "application/json", "{}\n", {}});
    throw std::runtime_error("after the reply");
  };
  Replies replies;
  DispatchAdminRequest(handlers, Req("POST", "/deploy?webapp=a"), replies.Sink());
  ASSERT_EQ(replies.got.size(), 1u);
  EXPECT_EQ(replies.got[0].status, 500u);
  EXPECT_EQ(ErrorOf(replies.got[0]), "internal error: disk full");
  DispatchAdminRequest(handlers, Req("POST", "/rollback?webapp=a&to=b"), replies.Sink());
  ASSERT_EQ(replies.got.size(), 2u);
  EXPECT_EQ(replies.got[1].status, 200u) << "the reply before the exception stands";

  // The synchronous entry point cannot wait.
  handlers.deploy = [&kept](DeployRequest, AdminReply reply) { kept = std::move(reply); };
  AdminResponse response = RouteAdminRequest(handlers, Req("POST", "/deploy?webapp=a"));
  EXPECT_EQ(response.status, 500u);
  kept(AdminResponse{});  // harmless after the fact
}

TEST(AdminDeployRouteTest, ParseQuery) {
  auto pairs = ParseQuery("a=1&&b=%41%2f%2F&c&=d&e=x=y&");
  ASSERT_TRUE(pairs.ok()) << pairs.status().ToString();
  EXPECT_EQ(*pairs, (std::vector<std::pair<std::string, std::string>>{
                        {"a", "1"}, {"b", "A//"}, {"c", ""}, {"", "d"}, {"e", "x=y"}}));
  EXPECT_TRUE(ParseQuery("").ok());
  EXPECT_TRUE(ParseQuery("").value().empty());
  EXPECT_EQ(ParseQuery("k%00=v").value()[0].first, std::string("k\0", 2));
  Result<std::vector<std::pair<std::string, std::string>>> bad = ParseQuery("ok=1&k%g1=v");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "query \"k%g1=v\": bad percent-escape \"%g1\"");
}

TEST(AdminDeployRouteTest, UploadAndDeployRequests) {
  EXPECT_TRUE(IsUploadRequest("POST", "/deploy"));
  EXPECT_TRUE(IsUploadRequest("POST", "/deploy?webapp=a"));
  EXPECT_FALSE(IsUploadRequest("GET", "/deploy"));
  EXPECT_FALSE(IsUploadRequest("POST", "/rollback?webapp=a"));
  EXPECT_FALSE(IsUploadRequest("POST", "/deployx"));
  EXPECT_TRUE(IsDeployRequest("POST", "/deploy?webapp=a"));
  EXPECT_TRUE(IsDeployRequest("POST", "/rollback"));
  EXPECT_FALSE(IsDeployRequest("GET", "/deployments"));
  EXPECT_FALSE(IsDeployRequest("POST", "/servers/a/drain"));
}

// ---------------------------------------------------------------- MetricsText

TEST(MetricsTextTest, EmptyIsEmpty) { EXPECT_EQ(MetricsText().str(), ""); }

TEST(MetricsTextTest, HelpAndTypeOncePerNameAndSamplesGrouped) {
  MetricsText m;
  m.Gauge("cb_peers_up", "Peers currently up.", 2);
  m.Counter("cb_heartbeats_sent_total", "Heartbeats sent.", 10, {{"peer", "app-b"}});
  m.Counter("cb_heartbeats_sent_total", "ignored help", 12, {{"peer", "app-c"}});
  m.Gauge("cb_peers_up", "ignored", 3, {{"role", "triad"}});
  EXPECT_EQ(m.str(),
            "# HELP cb_peers_up Peers currently up.\n"
            "# TYPE cb_peers_up gauge\n"
            "cb_peers_up 2\n"
            "cb_peers_up{role=\"triad\"} 3\n"
            "# HELP cb_heartbeats_sent_total Heartbeats sent.\n"
            "# TYPE cb_heartbeats_sent_total counter\n"
            "cb_heartbeats_sent_total{peer=\"app-b\"} 10\n"
            "cb_heartbeats_sent_total{peer=\"app-c\"} 12\n");
}

TEST(MetricsTextTest, EscapesLabelValuesAndHelp) {
  MetricsText m;
  m.Counter("cb_refusals_total", "Refusals \\ by\nreason.", 1,
            {{"reason", "say \"no\"\\\nnow"}, {"peer", "a"}});
  EXPECT_EQ(m.str(),
            "# HELP cb_refusals_total Refusals \\\\ by\\nreason.\n"
            "# TYPE cb_refusals_total counter\n"
            "cb_refusals_total{reason=\"say \\\"no\\\"\\\\\\nnow\",peer=\"a\"} 1\n");
}

TEST(MetricsTextTest, InvalidNameCharactersBecomeUnderscores) {
  MetricsText m;
  m.Gauge("9cb-peers up", "h", 1, {{"2bad-label", "v"}, {"ok:no", "w"}});
  m.Gauge("ns:sub_metric", "h", 1);
  m.Gauge("", "h", 1);
  EXPECT_EQ(m.str(),
            "# HELP _cb_peers_up h\n# TYPE _cb_peers_up gauge\n"
            "_cb_peers_up{_bad_label=\"v\",ok_no=\"w\"} 1\n"
            "# HELP ns:sub_metric h\n# TYPE ns:sub_metric gauge\nns:sub_metric 1\n"
            "# HELP _ h\n# TYPE _ gauge\n_ 1\n");
}

TEST(MetricsTextTest, ConflictingTypeIsDropped) {
  MetricsText m;
  m.Counter("cb_x", "h", 1);
  m.Gauge("cb_x", "h", 2);
  EXPECT_EQ(m.str(), "# HELP cb_x h\n# TYPE cb_x counter\ncb_x 1\n");
}

TEST(MetricsTextTest, FormatsValues) {
  MetricsText m;
  m.Gauge("a", "h", 0);
  m.Gauge("b", "h", 0.25);
  m.Gauge("c", "h", -3);
  m.Gauge("d", "h", std::numeric_limits<double>::quiet_NaN());
  m.Gauge("e", "h", std::numeric_limits<double>::infinity());
  m.Gauge("f", "h", -std::numeric_limits<double>::infinity());
  m.Counter("g", "h", 123456789012.0);
  m.Counter("i", "h", 1e300);
  std::string text = m.str();
  EXPECT_NE(text.find("\na 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nb 0.25\n"), std::string::npos);
  EXPECT_NE(text.find("\nc -3\n"), std::string::npos);
  EXPECT_NE(text.find("\nd NaN\n"), std::string::npos);
  EXPECT_NE(text.find("\ne +Inf\n"), std::string::npos);
  EXPECT_NE(text.find("\nf -Inf\n"), std::string::npos);
  EXPECT_NE(text.find("\ng 123456789012\n"), std::string::npos);
  EXPECT_NE(text.find("\ni 1e+300\n"), std::string::npos);
}

// ---------------------------------------------------------------- server

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// What a test client sends: a Beast request, or raw bytes.
struct Step {
  std::optional<http::request<http::string_body>> request;
  std::string raw;
};

struct Conversation {
  std::vector<Step> steps;
  bool wait_for_close = false;  // after the last response, read until the server closes

  std::vector<http::response<http::string_body>> responses;
  beast::error_code error;  // the first error, if any
  bool closed_by_server = false;
  bool done = false;
};

Step Request(http::verb verb, std::string target, bool keep_alive = true, unsigned version = 11) {
  http::request<http::string_body> request(verb, target, version);
  request.set(http::field::host, "127.0.0.1");
  request.set("X-CSRF-Token", kToken);
  request.keep_alive(keep_alive);
  request.prepare_payload();
  return Step{std::move(request), {}};
}

Step Raw(std::string bytes) { return Step{std::nullopt, std::move(bytes)}; }

asio::awaitable<void> Converse(tcp::endpoint endpoint, std::shared_ptr<Conversation> c) {
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  beast::error_code& ec = c->error;
  stream.expires_after(std::chrono::seconds(10));
  co_await stream.async_connect(endpoint, asio::redirect_error(asio::use_awaitable, ec));
  beast::flat_buffer buffer;
  for (size_t i = 0; !ec && i < c->steps.size(); ++i) {
    Step& step = c->steps[i];
    stream.expires_after(std::chrono::seconds(10));
    if (step.request) {
      co_await http::async_write(stream, *step.request,
                                 asio::redirect_error(asio::use_awaitable, ec));
    } else {
      co_await asio::async_write(stream, asio::buffer(step.raw),
                                 asio::redirect_error(asio::use_awaitable, ec));
    }
    if (ec) break;
    http::response<http::string_body> response;
    co_await http::async_read(stream, buffer, response,
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    c->responses.push_back(std::move(response));
  }
  if (!ec && c->wait_for_close) {
    char byte;
    stream.expires_after(std::chrono::seconds(10));
    co_await stream.async_read_some(asio::buffer(&byte, 1),
                                    asio::redirect_error(asio::use_awaitable, ec));
    c->closed_by_server = ec == asio::error::eof || ec == asio::error::connection_reset;
  }
  c->done = true;
}

using testing_support::RunUntil;

class AdminServerTest : public ::testing::Test {
 protected:
  void StartServer(AdminServerOptions options = {}) {
    auto started =
        AdminServer::Start(io_, HostPort{"127.0.0.1", 0}, MakeHandlers(&recorder_), options);
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    server_ = std::move(started).value();
    ASSERT_NE(server_->bound_port(), 0);
  }

  tcp::endpoint Endpoint() const {
    return tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->bound_port());
  }

  // Runs the conversation to its end.
  void Run(const std::shared_ptr<Conversation>& c) {
    asio::co_spawn(io_, Converse(Endpoint(), c), [](const std::exception_ptr&) {});
    ASSERT_TRUE(RunUntil(io_, [c] { return c->done; })) << "conversation did not finish";
  }

  // Stops the server; the io_context must then run out of work.
  void StopAndDrain() {
    server_->Stop();
    io_.run_for(std::chrono::seconds(10));
    EXPECT_TRUE(io_.stopped()) << "work left after Stop()";
  }

  void TearDown() override {
    if (server_ != nullptr && !io_.stopped()) StopAndDrain();
  }

  asio::io_context io_;
  Recorder recorder_;
  std::unique_ptr<AdminServer> server_;
};

TEST_F(AdminServerTest, GetStatus) {
  StartServer();
  auto c = std::make_shared<Conversation>();
  c->steps.push_back(Request(http::verb::get, "/status"));
  Run(c);
  ASSERT_FALSE(c->error) << c->error.message();
  ASSERT_EQ(c->responses.size(), 1u);
  const auto& response = c->responses[0];
  EXPECT_EQ(response.result_int(), 200u);
  EXPECT_EQ(response[http::field::server], "cluster-sidecar");
  EXPECT_EQ(response[http::field::content_type], "application/json");
  EXPECT_EQ(json::parse(response.body())["server"]["id"], "app-a");
  EXPECT_TRUE(response.keep_alive());
}

TEST_F(AdminServerTest, PostDrainReachesTheHandler) {
  StartServer();
  auto c = std::make_shared<Conversation>();
  c->steps.push_back(Request(http::verb::post, "/servers/app-b/drain"));
  Run(c);
  ASSERT_EQ(c->responses.size(), 1u) << c->error.message();
  EXPECT_EQ(c->responses[0].result_int(), 200u);
  EXPECT_EQ(json::parse(c->responses[0].body())["state"], "draining");
  ASSERT_EQ(recorder_.draining_calls.size(), 1u);
  EXPECT_EQ(recorder_.draining_calls[0], std::make_pair(std::string("app-b"), true));
}

TEST_F(AdminServerTest, NotFoundAndMethodNotAllowed) {
  StartServer();
  auto c = std::make_shared<Conversation>();
  c->steps.push_back(Request(http::verb::get, "/nope"));
  c->steps.push_back(Request(http::verb::delete_, "/status"));
  c->steps.push_back(Request(http::verb::get, "/servers/app-b/enable"));
  Run(c);
  ASSERT_EQ(c->responses.size(), 3u) << c->error.message();
  EXPECT_EQ(c->responses[0].result_int(), 404u);
  EXPECT_EQ(c->responses[0][http::field::content_type], "application/json");
  EXPECT_EQ(c->responses[1].result_int(), 405u);
  EXPECT_EQ(c->responses[1][http::field::allow], "GET");
  EXPECT_EQ(c->responses[2].result_int(), 405u);
  EXPECT_EQ(c->responses[2][http::field::allow], "POST");
  EXPECT_TRUE(recorder_.draining_calls.empty());
}

TEST_F(AdminServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  StartServer();
  auto c = std::make_shared<Conversation>();
  c->steps.push_back(Request(http::verb::get, "/metrics"));
  c->steps.push_back(Request(http::verb::get, "/status", /*keep_alive=*/false));
  c->wait_for_close = true;
  Run(c);
  ASSERT_EQ(c->responses.size(), 2u) << c->error.message();
  EXPECT_EQ(c->responses[0].result_int(), 200u);
  EXPECT_EQ(c->responses[0][http::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_TRUE(c->responses[0].keep_alive());
  EXPECT_EQ(c->responses[1].result_int(), 200u);
  EXPECT_FALSE(c->responses[1].keep_alive());
  EXPECT_TRUE(c->closed_by_server) << c->error.message();
}

TEST(AdminHostTest, OnlyAddressesAndLocalhostPassOverPlainHttp) {
  for (const char* host : {"", "127.0.0.1", "127.0.0.1:6880", "[::1]:6880", "[::1]", "10.1.2.3:80",
                           "localhost", "LocalHost:6880", "localhost.", "app.localhost:1"}) {
    EXPECT_TRUE(IsLoopbackAdminHost(host)) << host;
  }
  for (const char* host : {"evil.example", "evil.example:6880", "127.0.0.1.nip.io:6880",
                           "localhost.evil.example", "[::1", "[::1]x", "x"}) {
    EXPECT_FALSE(IsLoopbackAdminHost(host)) << host;
  }
}

TEST_F(AdminServerTest, ARequestForAnotherHostNameIsRefused) {
  StartServer();
  auto c = std::make_shared<Conversation>();
  c->steps.push_back(Raw("GET /csrf-token HTTP/1.1\r\nHost: rebound.example:6880\r\n\r\n"));
  Run(c);
  ASSERT_EQ(c->responses.size(), 1u);
  EXPECT_EQ(c->responses[0].result_int(), 403);
  EXPECT_NE(c->responses[0].body().find("open the admin endpoint by its address"),
            std::string::npos);
  EXPECT_EQ(c->responses[0].body().find(kToken), std::string::npos);
}

TEST_F(AdminServerTest, PipelinedRequestsAreAnsweredInOrder) {
  StartServer();
  auto c = std::make_shared<Conversation>();
  c->steps.push_back(Raw(
      "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nPOST /servers/app-c/drain HTTP/1.1\r\nHost: "
      "127.0.0.1\r\nX-CSRF-Token: " +
      std::string(kToken) + "\r\nContent-Length: 0\r\n\r\n"));
  c->steps.push_back(Request(http::verb::get, "/nope"));
  Run(c);
  // The first step's read gets the first response; the second response is
  // buffered and read as the answer to the next step.
  ASSERT_GE(c->responses.size(), 2u) << c->error.message();
  EXPECT_EQ(c->responses[0].result_int(), 200u);
  EXPECT_EQ(c->responses[1].result_int(), 200u);
  EXPECT_EQ(recorder_.draining_calls.size(), 1u);
}

TEST_F(AdminServerTest, Http10ClosesAfterTheResponse) {
  StartServer();
  auto c = std::make_shared<Conversation>();
  c->steps.push_back(Request(http::verb::get, "/status", /*keep_alive=*/false, /*version=*/10));
  c->wait_for_close = true;
  Run(c);
  ASSERT_EQ(c->responses.size(), 1u) << c->error.message();
  EXPECT_EQ(c->responses[0].version(), 10u);
  EXPECT_EQ(c->responses[0].result_int(), 200u);
  EXPECT_TRUE(c->closed_by_server);
}

TEST_F(AdminServerTest, GarbageGets400AndClose) {
  StartServer();
  auto c = std::make_shared<Conversation>();
  c->steps.push_back(Raw("NOT HTTP AT ALL\r\n\r\n"));
  c->wait_for_close = true;
  Run(c);
  ASSERT_EQ(c->responses.size(), 1u) << c->error.message();
  EXPECT_EQ(c->responses[0].result_int(), 400u);
  EXPECT_EQ(c->responses[0][http::field::server], "cluster-sidecar");
  EXPECT_FALSE(c->responses[0].keep_alive());
  EXPECT_TRUE(c->closed_by_server);

  // Binary noise: answered with 400 or simply closed, and the server lives on.
  auto noise = std::make_shared<Conversation>();
  noise->steps.push_back(Raw(std::string("\x00\xff\x16\x03\x01\r\n\r\n", 9)));
  Run(noise);
  if (!noise->responses.empty()) {
    EXPECT_EQ(noise->responses[0].result_int(), 400u);
  }

  auto after = std::make_shared<Conversation>();
  after->steps.push_back(Request(http::verb::get, "/status"));
  Run(after);
  ASSERT_EQ(after->responses.size(), 1u) << after->error.message();
  EXPECT_EQ(after->responses[0].result_int(), 200u);
}

TEST_F(AdminServerTest, OversizedHeaderAndBodyAreRefused) {
  AdminServerOptions options;
  options.header_limit = 1024;
  options.body_limit = 16;
  StartServer(options);
  auto header = std::make_shared<Conversation>();
  header->steps.push_back(Raw(
      "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n"));
  Run(header);
  ASSERT_EQ(header->responses.size(), 1u) << header->error.message();
  EXPECT_EQ(header->responses[0].result_int(), 431u);

  auto body = std::make_shared<Conversation>();
  body->steps.push_back(
      Raw("POST /servers/a/drain HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n" +
          std::string(100, 'b')));
  Run(body);
  ASSERT_EQ(body->responses.size(), 1u) << body->error.message();
  EXPECT_EQ(body->responses[0].result_int(), 413u);
  EXPECT_TRUE(recorder_.draining_calls.empty());
}

TEST_F(AdminServerTest, ThrowingHandlerIs500AndTheConnectionLives) {
  AdminHandlers handlers;
  handlers.status = []() -> json { throw std::runtime_error("x"); };
  auto started = AdminServer::Start(io_, HostPort{"127.0.0.1", 0}, std::move(handlers));
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  server_ = std::move(started).value();
  auto c = std::make_shared<Conversation>();
  c->steps.push_back(Request(http::verb::get, "/status"));
  c->steps.push_back(Request(http::verb::get, "/metrics"));
  Run(c);
  ASSERT_EQ(c->responses.size(), 2u) << c->error.message();
  EXPECT_EQ(c->responses[0].result_int(), 500u);
  EXPECT_EQ(c->responses[1].result_int(), 503u);
}

TEST_F(AdminServerTest, PortInUseIsAClearError) {
  StartServer();
  uint16_t port = server_->bound_port();
  auto second = AdminServer::Start(io_, HostPort{"127.0.0.1", port}, AdminHandlers{});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kIoError);
  EXPECT_EQ(second.status().message(),
            "admin 127.0.0.1:" + std::to_string(port) + ": address already in use");
}

TEST_F(AdminServerTest, EmptyHostMeansLoopback) {
  auto started = AdminServer::Start(io_, HostPort{"", 0}, MakeHandlers(&recorder_));
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  server_ = std::move(started).value();
  auto c = std::make_shared<Conversation>();
  c->steps.push_back(Request(http::verb::get, "/"));
  Run(c);
  ASSERT_EQ(c->responses.size(), 1u) << c->error.message();
  EXPECT_EQ(c->responses[0].result_int(), 200u);
  EXPECT_EQ(c->responses[0][http::field::content_type], "text/html; charset=utf-8");
}

TEST_F(AdminServerTest, StopClosesIdleConnectionsAndTheIoContextFinishes) {
  StartServer();
  auto c = std::make_shared<Conversation>();
  c->steps.push_back(Request(http::verb::get, "/status"));
  c->wait_for_close = true;  // the server would keep it open for its 10 s timeout
  asio::co_spawn(io_, Converse(Endpoint(), c), [](const std::exception_ptr&) {});
  ASSERT_TRUE(RunUntil(io_, [c] { return c->responses.size() == 1; }));
  EXPECT_FALSE(c->done);

  server_->Stop();
  server_->Stop();  // idempotent
  ASSERT_TRUE(RunUntil(io_, [c] { return c->done; }));
  EXPECT_TRUE(c->closed_by_server) << c->error.message();
  io_.run_for(std::chrono::seconds(10));
  EXPECT_TRUE(io_.stopped()) << "work left after Stop()";

  // Nothing listens any more.
  io_.restart();
  auto refused = std::make_shared<Conversation>();
  refused->steps.push_back(Request(http::verb::get, "/status"));
  asio::co_spawn(io_, Converse(Endpoint(), refused), [](const std::exception_ptr&) {});
  io_.run_for(std::chrono::seconds(10));
  EXPECT_TRUE(refused->done);
  EXPECT_TRUE(refused->error);
}

TEST_F(AdminServerTest, DestructorClosesAConnectionMidRequest) {
  StartServer();
  auto c = std::make_shared<Conversation>();
  c->steps.push_back(Raw("GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n"));  // header never ends
  asio::co_spawn(io_, Converse(Endpoint(), c), [](const std::exception_ptr&) {});
  // Let the server accept and start reading.
  for (int i = 0; i < 20; ++i) io_.run_for(std::chrono::milliseconds(5));
  EXPECT_FALSE(c->done);
  server_.reset();  // the destructor stops
  ASSERT_TRUE(RunUntil(io_, [c] { return c->done; }));
  EXPECT_TRUE(c->error);
  EXPECT_TRUE(c->responses.empty());
  io_.run_for(std::chrono::seconds(10));
  EXPECT_TRUE(io_.stopped());
}

TEST_F(AdminServerTest, ConnectionsOverTheLimitAreClosed) {
  AdminServerOptions options;
  options.max_connections = 1;
  StartServer(options);
  auto first = std::make_shared<Conversation>();
  first->steps.push_back(Request(http::verb::get, "/status"));
  first->wait_for_close = true;  // holds the one connection open
  asio::co_spawn(io_, Converse(Endpoint(), first), [](const std::exception_ptr&) {});
  ASSERT_TRUE(RunUntil(io_, [first] { return first->responses.size() == 1; }));

  auto second = std::make_shared<Conversation>();
  second->steps.push_back(Request(http::verb::get, "/status"));
  Run(second);
  EXPECT_TRUE(second->responses.empty());
  EXPECT_TRUE(second->error);
  EXPECT_FALSE(first->done);

  // `first` must not outlive its coroutine.
  server_->Stop();
  ASSERT_TRUE(RunUntil(io_, [first] { return first->done; }));
  EXPECT_TRUE(first->closed_by_server);
}

TEST(AdminServerLifetimeTest, DestroyedWithoutEverRunningTheIoContext) {
  asio::io_context io;
  auto started = AdminServer::Start(io, HostPort{"127.0.0.1", 0}, AdminHandlers{});
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  started.value().reset();
  // The io_context's destructor drops the pending accept coroutine.
}

}  // namespace
}  // namespace cb::admin
