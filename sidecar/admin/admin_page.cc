#include "sidecar/admin/admin_page.h"

#include <string>

namespace cb::admin {
namespace {

std::optional<std::string_view> FileData(std::string_view name) {
  for (const EmbeddedFile& file : AdminPageFiles()) {
    if (file.name == name) return file.data;
  }
  return std::nullopt;
}

AdminResponse PageResponse(std::string_view content_type, std::string body) {
  AdminResponse response{200, std::string(content_type), std::move(body), {}};
  response.headers = {
      {"Content-Security-Policy", std::string(kContentSecurityPolicy)},
      {"X-Content-Type-Options", "nosniff"},
      {"Referrer-Policy", "no-referrer"},
      // The files change only with the binary; no-cache revalidates each load
      // so that an upgraded sidecar never serves last version's script.
      {"Cache-Control", "no-cache"},
  };
  return response;
}

}  // namespace

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

std::optional<AdminResponse> AdminPageResponse(std::string_view path, std::string_view csrf_token) {
  struct Route {
    std::string_view path;
    std::string_view file;
    std::string_view content_type;
  };
  static constexpr Route kRoutes[] = {
      {"/", "admin.html", "text/html; charset=utf-8"},
      {"/admin.js", "admin.js", "text/javascript; charset=utf-8"},
      {"/admin.css", "admin.css", "text/css; charset=utf-8"},
  };
  for (const Route& route : kRoutes) {
    if (route.path != path) continue;
    std::optional<std::string_view> data = FileData(route.file);
    if (!data.has_value()) return std::nullopt;  // not embedded: a build mistake, a 404
    std::string body(*data);
    if (route.file == "admin.html") {
      size_t at = body.find(kCsrfTokenPlaceholder);
      if (at != std::string::npos) {
        body.replace(at, kCsrfTokenPlaceholder.size(), EscapeHtml(csrf_token));
      }
    }
    return PageResponse(route.content_type, std::move(body));
  }
  return std::nullopt;
}

}  // namespace cb::admin
