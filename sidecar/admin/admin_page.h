// The admin page an operator keeps open (GET /): three static files embedded in
// the binary at build time (sidecar/admin/page/, see cmake/EmbedFiles.cmake).
// The page fetches /status every second and /history once, and renders them
// itself; the server only fills in the CSRF token.
//
//   GET /           page/admin.html, with the CSRF token in <meta name="csrf-token">
//   GET /admin.js   page/admin.js
//   GET /admin.css  page/admin.css
//
// Each answer carries kContentSecurityPolicy (no inline script or style, nothing
// from another origin), X-Content-Type-Options: nosniff, Referrer-Policy:
// no-referrer and Cache-Control: no-cache.
#ifndef CLUSTER_BALANCE_SIDECAR_ADMIN_ADMIN_PAGE_H_
#define CLUSTER_BALANCE_SIDECAR_ADMIN_ADMIN_PAGE_H_

#include <optional>
#include <span>
#include <string_view>

#include "sidecar/admin/admin_router.h"

namespace cb::admin {

inline constexpr std::string_view kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

// The placeholder in admin.html replaced by the (HTML-escaped) token.
inline constexpr std::string_view kCsrfTokenPlaceholder = "{{csrf_token}}";

struct EmbeddedFile {
  std::string_view name;  // relative to sidecar/admin/page/, e.g. "admin.js"
  std::string_view data;
};

// The embedded files, in the order CMake lists them (generated code).
std::span<const EmbeddedFile> AdminPageFiles();

// The response for `path` (without query) when it is one of the page's routes,
// else nullopt. The method is the caller's concern.
std::optional<AdminResponse> AdminPageResponse(std::string_view path, std::string_view csrf_token);

// `text` with & < > " ' replaced by their character references.
std::string EscapeHtml(std::string_view text);

}  // namespace cb::admin

#endif  // CLUSTER_BALANCE_SIDECAR_ADMIN_ADMIN_PAGE_H_
