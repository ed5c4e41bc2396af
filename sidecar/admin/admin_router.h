// The admin HTTP endpoint's routing, without sockets: a request in, a response out.
//
// The routes, each answered by a handler the daemon injects (so this file knows
// nothing of membership):
//
//   GET  /                      HTML page: one row per server of the status JSON
//   GET  /status                200 application/json, the status handler's JSON
//   GET  /metrics               200 Prometheus text exposition format 0.0.4
//   POST /servers/<id>/drain    set_draining(id, true);  200 {"server": id, "state": "draining"}
//   POST /servers/<id>/enable   set_draining(id, false); 200 {"server": id, "state": "up"}
//
// Errors are JSON {"error": "<message>"}: 404 for an unknown path; 405 with
// AdminResponse::allow set for a known path with another method; 400 for a
// server id outside [A-Za-z0-9._-]{1,63} (percent-encoding is not decoded, so
// an id containing '%' is refused); set_draining failing maps NotFound → 404,
// InvalidArgument → 400, anything else → 503. A handler that is not set answers
// 503; a handler that throws answers 500. The query string is ignored; methods
// are case-sensitive as in HTTP.
//
// Everything here is pure and thread-compatible; RouteAdminRequest is as
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
};

struct AdminResponse {
  unsigned status = 200;
  std::string content_type;
  std::string body;
  std::string allow;  // the Allow header for a 405, else empty
};

struct AdminHandlers {
  // GET /status and GET /. The HTML page reads, leniently: "id" (string, this
  // server) and "servers" (array of objects with "id", "state" and either
  // "heartbeat_age_ms" (number, null for this server) or "heartbeat_age").
  // Anything else in the JSON is passed through to /status untouched.
  std::function<nlohmann::json()> status;
  // GET /metrics: a complete exposition in text format 0.0.4 (see MetricsText).
  std::function<std::string()> metrics;
  // POST /servers/<id>/drain (draining = true) and /enable (draining = false).
  // NotFound for an unknown id; the message is shown to the operator.
  std::function<Status(const std::string& server_id, bool draining)> set_draining;
};

// Never throws for a handler's exception (500); only std::bad_alloc while
// building the error response itself could escape.
AdminResponse RouteAdminRequest(const AdminHandlers& handlers, const AdminRequest& request);

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
