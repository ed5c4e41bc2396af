#include "sidecar/admin/admin_router.h"

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <exception>
#include <initializer_list>
#include <memory>
#include <optional>
#include <system_error>

#include <sodium.h>

#include "sidecar/admin/admin_page.h"

namespace cb::admin {
namespace {

constexpr std::string_view kJson = "application/json";
constexpr std::string_view kPrometheus = "text/plain; version=0.0.4; charset=utf-8";

// Never throws on invalid UTF-8 (a handler's message may carry anything).
std::string Dump(const nlohmann::json& json, int indent = -1) {
  return json.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

AdminResponse Json(unsigned status, const nlohmann::json& json) {
  return AdminResponse{status, std::string(kJson), Dump(json, 2), {}};
}

AdminResponse Error(unsigned status, std::string message) {
  return AdminResponse{status, std::string(kJson), Dump({{"error", std::move(message)}}), {}};
}

AdminResponse MethodNotAllowed(std::string_view method, std::string_view allow) {
  AdminResponse response =
      Error(405, "method " + std::string(method) +
                     " not allowed here (allowed: " + std::string(allow) + ")");
  response.allow = std::string(allow);
  return response;
}

// The response for a handler's error.
AdminResponse ErrorForStatus(const Status& status) {
  switch (status.code()) {
    case Status::Code::kInvalidArgument:
    case Status::Code::kUnsupported:
      return Error(400, status.message());
    case Status::Code::kNotFound:
      return Error(404, status.message());
    case Status::Code::kTooLarge:
      return Error(413, status.message());
    default:
      return Error(503, status.message());
  }
}

AdminResponse SetDraining(const AdminHandlers& handlers, const std::string& id, bool draining) {
  if (!handlers.set_draining) return Error(503, "draining is not available");
  Status status = handlers.set_draining(id, draining);
  if (status.ok()) {
    return Json(200, {{"server", id}, {"state", draining ? "draining" : "up"}});
  }
  switch (status.code()) {
    case Status::Code::kNotFound:
      return Error(404, status.message().empty() ? "unknown server " + id : status.message());
    case Status::Code::kInvalidArgument:
      return Error(400, status.message());
    default:
      return Error(503, status.message());
  }
}

std::string_view PathOf(std::string_view target) {
  size_t query = target.find('?');
  return query == std::string_view::npos ? target : target.substr(0, query);
}

std::string_view QueryOf(std::string_view target) {
  size_t query = target.find('?');
  return query == std::string_view::npos ? std::string_view() : target.substr(query + 1);
}

struct QueryField {
  std::string_view key;
  std::string* value;
};

// Fills `fields` from the query of `target`; an error response for a bad
// escape, an unknown key (all of them named) or a repeated one.
std::optional<AdminResponse> ReadQuery(std::string_view target,
                                       std::initializer_list<QueryField> fields) {
  Result<std::vector<std::pair<std::string, std::string>>> pairs = ParseQuery(QueryOf(target));
  if (!pairs.ok()) return Error(400, pairs.status().message());
  std::vector<std::string_view> seen;
  std::string unknown;
  for (auto& [key, value] : *pairs) {
    const QueryField* field = nullptr;
    for (const QueryField& candidate : fields) {
      if (candidate.key == key) field = &candidate;
    }
    if (field == nullptr) {
      if (!unknown.empty()) unknown += ", ";
      unknown += "\"" + key + "\"";
      continue;
    }
    if (std::find(seen.begin(), seen.end(), field->key) != seen.end()) {
      return Error(400, "query parameter " + key + " given twice");
    }
    seen.push_back(field->key);
    *field->value = std::move(value);
  }
  if (!unknown.empty()) {
    std::string known;
    for (const QueryField& field : fields) {
      if (!known.empty()) known += ", ";
      known += field.key;
    }
    return Error(400, "unknown query parameter " + unknown + " (known: " + known + ")");
  }
  return std::nullopt;
}

AdminResponse MissingParameter(std::string_view key, std::string_view usage) {
  return Error(400,
               "missing query parameter " + std::string(key) + " (" + std::string(usage) + ")");
}

// A 403 unless the request carries the handlers' CSRF token; with no token set
// every POST is refused (the router never runs unprotected by mistake).
std::optional<AdminResponse> CheckCsrf(const AdminHandlers& handlers, const AdminRequest& request) {
  const std::string& expected = handlers.csrf_token;
  const std::string& given = request.csrf_token;
  // The length is no secret (64 hex digits); the bytes are compared in constant time.
  if (!expected.empty() && given.size() == expected.size() &&
      sodium_memcmp(given.data(), expected.data(), expected.size()) == 0) {
    return std::nullopt;
  }
  return Error(403, "missing or wrong X-CSRF-Token (GET /csrf-token)");
}

// The response for every route answered now; nullopt once an asynchronous
// handler owns `reply`.
std::optional<AdminResponse> Route(const AdminHandlers& handlers, AdminRequest& request,
                                   const AdminReply& reply) {
  std::string_view path = PathOf(request.target);
  const std::string& method = request.method;

  if (path == "/" || path == "/admin.js" || path == "/admin.css") {
    if (method != "GET") return MethodNotAllowed(method, "GET");
    if (auto page = AdminPageResponse(path, handlers.csrf_token)) return page;
    return Error(404, "no such path: " + std::string(path));
  }

  if (path == "/status" || path == "/metrics" || path == "/history" || path == "/csrf-token") {
    if (method != "GET") return MethodNotAllowed(method, "GET");
    if (path == "/metrics") {
      if (!handlers.metrics) return Error(503, "metrics are not available");
      return AdminResponse{200, std::string(kPrometheus), handlers.metrics(), {}};
    }
    if (path == "/history") {
      if (!handlers.history) return Error(503, "history is not available");
      return Json(200, handlers.history());
    }
    if (path == "/csrf-token") {
      if (handlers.csrf_token.empty()) return Error(503, "no CSRF token is set");
      return Json(200, {{"csrf_token", handlers.csrf_token}});
    }
    if (!handlers.status) return Error(503, "status is not available");
    return Json(200, handlers.status());
  }

  if (path == "/deploy") {
    if (method != "POST") return MethodNotAllowed(method, "POST");
    if (auto refusal = CheckCsrf(handlers, request)) return refusal;
    DeployRequest deploy;
    if (auto error = ReadQuery(request.target, {{"webapp", &deploy.webapp},
                                                {"stage", &deploy.stage},
                                                {"host", &deploy.host},
                                                {"version", &deploy.version},
                                                {"message", &deploy.message},
                                                {"author", &deploy.author}})) {
      return error;
    }
    if (deploy.webapp.empty()) return MissingParameter("webapp", "POST /deploy?webapp=NAME");
    if (!handlers.deploy) return Error(503, "deploying is not available");
    deploy.user = request.user;
    deploy.client = request.client;
    deploy.archive = std::move(request.body);
    handlers.deploy(std::move(deploy), reply);
    return std::nullopt;
  }

  if (path == "/rollback") {
    if (method != "POST") return MethodNotAllowed(method, "POST");
    if (auto refusal = CheckCsrf(handlers, request)) return refusal;
    RollbackRequest rollback;
    if (auto error = ReadQuery(request.target, {{"webapp", &rollback.webapp},
                                                {"to", &rollback.to},
                                                {"stage", &rollback.stage},
                                                {"host", &rollback.host},
                                                {"author", &rollback.author}})) {
      return error;
    }
    constexpr std::string_view kUsage = "POST /rollback?webapp=NAME&to=VERSION";
    if (rollback.webapp.empty()) return MissingParameter("webapp", kUsage);
    if (rollback.to.empty()) return MissingParameter("to", kUsage);
    if (!handlers.rollback) return Error(503, "rollback is not available");
    rollback.user = request.user;
    rollback.client = request.client;
    handlers.rollback(std::move(rollback), reply);
    return std::nullopt;
  }

  if (path == "/deployments") {
    if (method != "GET") return MethodNotAllowed(method, "GET");
    std::string webapp;
    if (auto error = ReadQuery(request.target, {{"webapp", &webapp}})) return error;
    if (!handlers.deployments) return Error(503, "deployments are not available");
    Result<nlohmann::json> deployments = handlers.deployments(webapp);
    if (!deployments.ok()) return ErrorForStatus(deployments.status());
    return Json(200, *deployments);
  }

  constexpr std::string_view kServers = "/servers/";
  if (path.starts_with(kServers)) {
    std::string_view rest = path.substr(kServers.size());
    size_t slash = rest.find('/');
    if (slash != std::string_view::npos) {
      std::string_view id = rest.substr(0, slash);
      std::string_view action = rest.substr(slash + 1);
      if (action == "drain" || action == "enable") {
        if (method != "POST") return MethodNotAllowed(method, "POST");
        if (auto refusal = CheckCsrf(handlers, request)) return refusal;
        if (!IsValidServerId(id)) {
          return Error(400, "invalid server id \"" + std::string(id) +
                                "\": expected 1 to 63 of A-Z a-z 0-9 . _ - (no percent-encoding)");
        }
        return SetDraining(handlers, std::string(id), action == "drain");
      }
    }
  }
  return Error(404, "no such path: " + std::string(path));
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    int high = i + 1 < text.size() ? HexDigit(text[i + 1]) : -1;
    int low = i + 2 < text.size() ? HexDigit(text[i + 2]) : -1;
    if (high < 0 || low < 0) {
      return Status::InvalidArgument(
          "bad percent-escape \"" +
          std::string(text.substr(i, std::min<size_t>(3, text.size() - i))) + "\"");
    }
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return out;
}

bool IsNameChar(char c, bool first, bool allow_colon) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (allow_colon && c == ':') return true;
  return !first && c >= '0' && c <= '9';
}

std::string SanitizeName(std::string_view name, bool allow_colon) {
  std::string out(name.empty() ? "_" : name);
  for (size_t i = 0; i < out.size(); ++i) {
    if (!IsNameChar(out[i], i == 0, allow_colon)) out[i] = '_';
  }
  return out;
}

// Backslash and newline always; the double quote too in label values.
std::string Escape(std::string_view text, bool quote) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  if (ec != std::errc()) return "NaN";  // cannot happen with 64 bytes
  return std::string(buf, end);
}

}  // namespace

bool IsLoopbackAdminHost(std::string_view host) {
  if (host.empty()) return true;
  std::string name;
  if (host.front() == '[') {  // [IPv6]:port
    size_t close = host.find(']');
    if (close == std::string_view::npos) return false;
    name = std::string(host.substr(1, close - 1));
    std::string_view rest = host.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return false;
  } else {
    size_t colon = host.rfind(':');
    name = std::string(colon == std::string_view::npos ? host : host.substr(0, colon));
  }
  boost::system::error_code ec;
  (void)boost::asio::ip::make_address(name, ec);
  if (!ec) return true;
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (!name.empty() && name.back() == '.') name.pop_back();  // "localhost."
  return name == "localhost" || name.ends_with(".localhost");
}

bool IsValidServerId(std::string_view id) {
  if (id.empty() || id.size() > 63) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<std::vector<std::pair<std::string, std::string>>> ParseQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> pairs;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (item.empty()) continue;  // "a=1&&b=2", a trailing '&'
    size_t eq = item.find('=');
    Result<std::string> key = PercentDecode(item.substr(0, eq));
    Result<std::string> value =
        PercentDecode(eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1));
    for (const Status& status : {key.status(), value.status()}) {
      if (!status.ok()) {
        return Status::InvalidArgument("query \"" + std::string(item) + "\": " + status.message());
      }
    }
    pairs.emplace_back(std::move(key).value(), std::move(value).value());
  }
  return pairs;
}

bool IsUploadRequest(std::string_view method, std::string_view target) {
  return method == "POST" && PathOf(target) == "/deploy";
}

bool IsDeployRequest(std::string_view method, std::string_view target) {
  std::string_view path = PathOf(target);
  return method == "POST" && (path == "/deploy" || path == "/rollback");
}

void DispatchAdminRequest(const AdminHandlers& handlers, AdminRequest request, AdminReply reply) {
  // Whatever a handler does, `reply` is called once.
  auto replied = std::make_shared<bool>(false);
  AdminReply once = [replied, reply = std::move(reply)](AdminResponse response) {
    if (*replied) return;
    *replied = true;
    reply(std::move(response));
  };
  try {
    std::optional<AdminResponse> response = Route(handlers, request, once);
    if (response.has_value()) once(std::move(*response));
  } catch (const std::exception& e) {
    once(Error(500, std::string("internal error: ") + e.what()));
  } catch (...) {
    once(Error(500, "internal error"));
  }
}

AdminResponse RouteAdminRequest(const AdminHandlers& handlers, const AdminRequest& request) {
  auto answer = std::make_shared<std::optional<AdminResponse>>();
  DispatchAdminRequest(handlers, request,
                       [answer](AdminResponse response) { *answer = std::move(response); });
  if (answer->has_value()) return std::move(**answer);
  return Error(500, "internal error: the handler did not answer at once");
}

void MetricsText::Counter(std::string_view name, std::string_view help, double value,
                          const Labels& labels) {
  Add("counter", name, help, value, labels);
}

void MetricsText::Gauge(std::string_view name, std::string_view help, double value,
                        const Labels& labels) {
  Add("gauge", name, help, value, labels);
}

void MetricsText::Add(std::string_view type, std::string_view name, std::string_view help,
                      double value, const Labels& labels) {
  std::string metric = SanitizeName(name, /*allow_colon=*/true);
  auto it = index_.find(metric);
  if (it == index_.end()) {
    it = index_.emplace(metric, families_.size()).first;
    families_.push_back(Family{metric, Escape(help, /*quote=*/false), std::string(type), {}});
  }
  Family& family = families_[it->second];
  if (family.type != type) return;

  std::string line = metric;
  if (!labels.empty()) {
    line += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i > 0) line += ',';
      line += SanitizeName(labels[i].first, /*allow_colon=*/false);
      line += "=\"";
      line += Escape(labels[i].second, /*quote=*/true);
      line += '"';
    }
    line += '}';
  }
  line += ' ';
  line += FormatValue(value);
  family.samples.push_back(std::move(line));
}

std::string MetricsText::str() const {
  std::string out;
  for (const Family& family : families_) {
    out += "# HELP " + family.name + " " + family.help + "\n";
    out += "# TYPE " + family.name + " " + family.type + "\n";
    for (const std::string& sample : family.samples) {
      out += sample;
      out += '\n';
    }
  }
  return out;
}

}  // namespace cb::admin
