// The admin HTTP endpoint's routing, without sockets: a request in, a response out.
//
// The routes, each answered by a handler the daemon injects (so this file knows
// nothing of membership or Git):
//
//   GET  /                      the admin page (admin_page.h), with the CSRF token
//   GET  /admin.js, /admin.css  the page's script and style sheet
//   GET  /status                200 application/json, the status handler's JSON
//   GET  /history               200 application/json, the history handler's JSON
//   GET  /csrf-token            200 {"csrf_token": "<AdminHandlers::csrf_token>"}
//   GET  /metrics               200 Prometheus text exposition format 0.0.4
//   POST /servers/<id>/drain    set_draining(id, true);  200 {"server": id, "state": "draining"}
//   POST /servers/<id>/enable   set_draining(id, false); 200 {"server": id, "state": "up"}
//   POST /deploy?webapp=W[&stage=S][&host=H][&version=V][&message=M][&author=A]
//                               body = the archive; deploy(request, reply), asynchronous
//   GET  /deployments[?webapp=W]  200 application/json, deployments(webapp)'s JSON
//   POST /rollback?webapp=W&to=X[&stage=S][&host=H][&author=A]
//                               rollback(request, reply), asynchronous
//
// Every POST must carry the header X-CSRF-Token with AdminHandlers::csrf_token
// (AdminRequest::csrf_token), else 403 {"error": "missing or wrong X-CSRF-Token
// (GET /csrf-token)"}, checked after the method and before anything else; with
// no token set, every POST is refused. A browser page from another origin can
// send a POST but cannot read the token (no CORS headers are ever sent).
//
// Errors are JSON {"error": "<message>"}: 404 for an unknown path; 405 with
// AdminResponse::allow set for a known path with another method; 400 for a
// server id outside [A-Za-z0-9._-]{1,63} (percent-encoding is not decoded, so
// an id containing '%' is refused). A handler's Status maps InvalidArgument and
// Unsupported → 400, NotFound → 404, TooLarge → 413, anything else → 503. A
// handler that is not set answers 503; a handler that throws answers 500.
// Methods are case-sensitive as in HTTP.
//
// The query string is ignored except by /deploy, /deployments and /rollback,
// which take exactly the keys shown: an unknown or repeated key, a bad
// percent-escape or a missing required key is a 400 naming it. Values are
// percent-decoded (RFC 3986: '+' stays '+'; encode a space as %20).
//
// Everything here is pure and thread-compatible; DispatchAdminRequest is as
// thread-safe as the handlers it calls.
#ifndef CLUSTER_BALANCE_SIDECAR_ADMIN_ADMIN_ROUTER_H_
#define CLUSTER_BALANCE_SIDECAR_ADMIN_ADMIN_ROUTER_H_

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/status.h"

namespace cb::admin {

struct AdminRequest {
  std::string method;  // "GET", "POST", ... as on the request line
  std::string target;  // request-target as on the request line, e.g. "/status?x=1"
  std::string body;
  std::string user = {};        // the authenticated user; "" when the server has no users
  std::string client = {};      // the client's IP address, e.g. "127.0.0.1" or "::1"
  std::string csrf_token = {};  // the X-CSRF-Token header; "" when absent
};

struct AdminResponse {
  unsigned status = 200;
  std::string content_type;
  std::string body;
  std::string allow;  // the Allow header for a 405, else empty
  // Further headers (WWW-Authenticate, Retry-After, ...), written as given.
  std::vector<std::pair<std::string, std::string>> headers = {};
};

// Answers a request. Called at most once; the AdminServer accepts it only on
// its io thread (see admin_server.h), later calls are ignored.
using AdminReply = std::function<void(AdminResponse)>;

// POST /deploy: the decoded query and the request's body. Empty strings for
// keys not given; the handler applies its defaults and checks the values.
struct DeployRequest {
  std::string webapp;
  std::string stage;
  std::string host;
  std::string version;
  std::string message;
  std::string author;
  std::string user;    // AdminRequest::user
  std::string client;  // AdminRequest::client
  std::string archive;
};

// POST /rollback: make the version or commit `to` current.
struct RollbackRequest {
  std::string webapp;
  std::string to;
  std::string stage;
  std::string host;
  std::string author;
  std::string user;
  std::string client;
};

struct AdminHandlers {
  // GET /status: the JSON the page (and clusterctl) reads; see DESIGN.md.
  std::function<nlohmann::json()> status;
  // GET /metrics: a complete exposition in text format 0.0.4 (see MetricsText).
  std::function<std::string()> metrics;
  // POST /servers/<id>/drain (draining = true) and /enable (draining = false).
  // NotFound for an unknown id; the message is shown to the operator.
  std::function<Status(const std::string& server_id, bool draining)> set_draining;
  // POST /deploy and POST /rollback: may answer later (a deploy waits for the
  // triad) by calling `reply` once, with the complete response (status and JSON
  // body). A handler that throws before replying gets a 500 sent for it.
  std::function<void(DeployRequest request, AdminReply reply)> deploy;
  std::function<void(RollbackRequest request, AdminReply reply)> rollback;
  // GET /deployments: `webapp` is "" for all of them.
  std::function<Result<nlohmann::json>(const std::string& webapp)> deployments;
  // GET /history: the last minutes of per-server samples the page charts.
  std::function<nlohmann::json()> history;
  // What every POST's X-CSRF-Token must equal, served by GET /csrf-token and in
  // the page. AdminServer::Start sets a random one when it is empty.
  std::string csrf_token;
};

// Routes `request` (its body is moved into a DeployRequest) and calls `reply`
// exactly once: before returning for every route but /deploy and /rollback,
// whose handlers may call it later. Never throws for a handler's exception
// (500); only std::bad_alloc while building the error response could escape.
void DispatchAdminRequest(const AdminHandlers& handlers, AdminRequest request, AdminReply reply);

// DispatchAdminRequest for a caller that needs the answer now: a handler that
// has not replied by the time it returns yields a 500.
AdminResponse RouteAdminRequest(const AdminHandlers& handlers, const AdminRequest& request);

// True for the requests whose body is an upload (POST /deploy): the server
// allows them its upload limit rather than its body limit. `target` may carry
// a query.
bool IsUploadRequest(std::string_view method, std::string_view target);

// True for the requests that change what is deployed (POST /deploy and POST
// /rollback), which the server refuses to remote clients unless allowed.
bool IsDeployRequest(std::string_view method, std::string_view target);

// The decoded "key=value" pairs of a query (without the '?'), in order; a key
// without '=' has the value "". InvalidArgument naming a bad percent-escape.
Result<std::vector<std::pair<std::string, std::string>>> ParseQuery(std::string_view query);

// DNS rebinding: a page of another site whose name is made to resolve to
// 127.0.0.1 is same-origin with the admin endpoint, and could read the CSRF
// token. Its requests carry that other name in Host. True when `host` (the Host
// header, with or without a port) is an IP address, "localhost" or a name
// under ".localhost" (case-insensitive), or empty (HTTP/1.0): what a browser
// sends for the plain-HTTP admin endpoint, which is on loopback. (Over TLS a
// rebound name fails the certificate check, so the server checks only plain HTTP.)
bool IsLoopbackAdminHost(std::string_view host);

// True for [A-Za-z0-9._-]{1,63}.
bool IsValidServerId(std::string_view id);

// Builds a Prometheus text exposition (format 0.0.4). Samples of one metric name
// are written together under one "# HELP" and one "# TYPE" line, in the order the
// names were first used, whatever order the calls come in. The help text of the
// first call for a name is kept. Characters not allowed in a metric name
// ([a-zA-Z_:][a-zA-Z0-9_:]*) or a label name ([a-zA-Z_][a-zA-Z0-9_]*) become '_';
// label values and help text are escaped as the format requires. A sample whose
// name was first used with the other type is dropped (a programming error that
// must not produce an exposition Prometheus refuses). Writing the same name and
// labels twice is the caller's mistake and is not detected.
class MetricsText {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;

  void Counter(std::string_view name, std::string_view help, double value,
               const Labels& labels = {});
  void Gauge(std::string_view name, std::string_view help, double value, const Labels& labels = {});

  // The exposition, ending in a newline (empty when nothing was added).
  std::string str() const;

 private:
  struct Family {
    std::string name;
    std::string help;
    std::string type;                  // "counter" or "gauge"
    std::vector<std::string> samples;  // complete lines without the newline
  };
  void Add(std::string_view type, std::string_view name, std::string_view help, double value,
           const Labels& labels);

  std::vector<Family> families_;
  std::map<std::string, size_t, std::less<>> index_;  // name → families_ position
};

}  // namespace cb::admin

#endif  // CLUSTER_BALANCE_SIDECAR_ADMIN_ADMIN_ROUTER_H_
