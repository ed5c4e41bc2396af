#include "sidecar/admin/admin_router.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <exception>
#include <system_error>

namespace cb::admin {
namespace {

constexpr std::string_view kJson = "application/json";
constexpr std::string_view kPrometheus = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view kHtml = "text/html; charset=utf-8";

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

std::string EscapeHtml(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// A JSON value as a table cell's text: strings without quotes, null as "-".
std::string CellText(const nlohmann::json* value) {
  if (value == nullptr || value->is_null()) return "-";
  if (value->is_string()) return value->get<std::string>();
  return value->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string FormatAgeMs(const nlohmann::json& value) {
  if (!value.is_number()) return CellText(&value);
  double ms = value.get<double>();
  if (!std::isfinite(ms) || ms < 0) return "-";
  char buf[32];
  if (ms < 1000) {
    std::snprintf(buf, sizeof buf, "%.0f ms", ms);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f s", ms / 1000);
  }
  return buf;
}

const nlohmann::json* Member(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

AdminResponse StatusPage(const nlohmann::json& status) {
  std::string self;
  // The sidecar's own id: {"server": {"id": ...}} as the daemon's /status has it.
  const nlohmann::json* identity = Member(status, "server");
  if (const nlohmann::json* id = identity != nullptr ? Member(*identity, "id") : nullptr;
      id != nullptr && id->is_string()) {
    self = id->get<std::string>();
  }
  std::string title = self.empty() ? "cluster-sidecar" : "cluster-sidecar " + self;
  std::string html =
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + EscapeHtml(title) +
      "</title>\n<style>body{font-family:sans-serif}table{border-collapse:collapse}"
      "td,th{border:1px solid #999;padding:2px 8px;text-align:left}</style></head>\n<body><h1>" +
      EscapeHtml(title) +
      "</h1>\n<table>\n<tr><th>server</th><th>state</th><th>heartbeat age</th></tr>\n";
  const nlohmann::json* servers = Member(status, "servers");
  if (servers != nullptr && servers->is_array()) {
    for (const nlohmann::json& server : *servers) {
      std::string age = "-";
      if (const nlohmann::json* ms = Member(server, "heartbeat_age_ms")) {
        age = FormatAgeMs(*ms);
      } else if (const nlohmann::json* text = Member(server, "heartbeat_age")) {
        age = CellText(text);
      }
      html += "<tr><td>" + EscapeHtml(CellText(Member(server, "id"))) + "</td><td>" +
              EscapeHtml(CellText(Member(server, "state"))) + "</td><td>" + EscapeHtml(age) +
              "</td></tr>\n";
    }
  }
  html +=
      "</table>\n<p><a href=\"/status\">status JSON</a> · <a href=\"/metrics\">metrics</a></p>\n"
      "</body></html>\n";
  return AdminResponse{200, std::string(kHtml), std::move(html), {}};
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

AdminResponse Route(const AdminHandlers& handlers, const AdminRequest& request) {
  std::string_view path = request.target;
  if (size_t query = path.find('?'); query != std::string_view::npos) {
    path = path.substr(0, query);
  }
  const std::string& method = request.method;

  if (path == "/" || path == "/status" || path == "/metrics") {
    if (method != "GET") return MethodNotAllowed(method, "GET");
    if (path == "/metrics") {
      if (!handlers.metrics) return Error(503, "metrics are not available");
      return AdminResponse{200, std::string(kPrometheus), handlers.metrics(), {}};
    }
    if (!handlers.status) return Error(503, "status is not available");
    nlohmann::json status = handlers.status();
    return path == "/" ? StatusPage(status) : Json(200, status);
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

bool IsValidServerId(std::string_view id) {
  if (id.empty() || id.size() > 63) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

AdminResponse RouteAdminRequest(const AdminHandlers& handlers, const AdminRequest& request) {
  try {
    return Route(handlers, request);
  } catch (const std::exception& e) {
    return Error(500, std::string("internal error: ") + e.what());
  } catch (...) {
    return Error(500, "internal error");
  }
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
