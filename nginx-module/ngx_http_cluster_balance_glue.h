// What the parts of the nginx glue share: conversions between nginx's structures
// and plain C++ types, the state of one upstream block, and the state of one
// request. Every decision is shared/'s (balancer.h, request_policy.h); this only
// converts.
//
// Failing open: every entry point nginx calls is noexcept and catches. Whatever
// goes wrong inside the module (no view, a bad view, an exception), the request is
// served by nginx's own round robin over the upstream's server lines with its
// passive failure handling; it is never dropped because of the module.
//
// An nginx worker is one thread: nothing here is shared between threads.
#ifndef CLUSTER_BALANCE_NGINX_MODULE_NGX_HTTP_CLUSTER_BALANCE_GLUE_H_
#define CLUSTER_BALANCE_NGINX_MODULE_NGX_HTTP_CLUSTER_BALANCE_GLUE_H_

extern "C" {
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
}

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "shared/balancer.h"
#include "shared/balancer_options.h"
#include "shared/request_policy.h"
#include "shared/server_set.h"
#include "shared/socket_address.h"

extern "C" {
extern ngx_module_t ngx_http_cluster_balance_module;
}

// The glue's names stay inside the .so (as they did when it was one file), so that
// two modules built from different versions never mix.
#pragma GCC visibility push(hidden)

namespace cb::nginx {

// ---------------------------------------------------------------------------------
// Conversions

inline std::string_view View(const ngx_str_t& text) {
  return {reinterpret_cast<const char*>(text.data), text.len};
}

// Copies `text` into `pool`; false when the pool is out of memory.
bool CopyToPool(ngx_pool_t* pool, std::string_view text, ngx_str_t& out);

void LogWhat(ngx_uint_t level, ngx_log_t* log, std::string_view where, std::string_view what);

// Inside a catch block: logs the exception. The caller then fails open (goes on as
// if the module were not there).
void LogException(ngx_log_t* log, std::string_view where) noexcept;

// nginx's cached wall clock in unix milliseconds.
int64_t NowUnixMs();

// ---------------------------------------------------------------------------------
// Configuration: one Upstream per upstream block that uses cluster_balance.

struct Upstream {
  Upstream() = default;
  Upstream(const Upstream&) = delete;
  Upstream& operator=(const Upstream&) = delete;

  // Created in each worker on its first request: each process must map the view
  // and seed its own generator.
  cb::Balancer& WorkerBalancer();

  cb::BalancerOptions options;
  bool cookie_configured = false;  // cluster_balance_cookie was given
  bool initialized = false;        // InitUpstream ran: no other method replaced it
  std::string name;                // the upstream block's name, for log lines
  std::vector<cb::SocketAddress> configured;
  std::unique_ptr<cb::Balancer> balancer;
};

struct SrvConf {
  Upstream* upstream;  // null: not a cluster_balance upstream
};

// The Upstream of an upstream block; null when it does not use cluster_balance.
Upstream* UpstreamOf(ngx_http_upstream_srv_conf_t* uscf);

// Logs what the view tracker noticed since the last call.
void LogNotices(cb::Balancer& balancer, const Upstream& upstream, ngx_log_t* log);

// ---------------------------------------------------------------------------------
// Per request

// Lives in the request's pool (trivially destructible). Shared by the peer
// callbacks, the variables and the header filter.
struct RequestContext {
  Upstream* upstream = nullptr;
  ngx_str_t session{};  // points into the request's headers; len 0: no session
  bool session_found = false;
  cb::RequestPolicy policy;
};
// nginx frees its pool without running destructors.
static_assert(std::is_trivially_destructible_v<RequestContext>);

// The servers nginx cannot send to (RequestPolicy's `unreachable`): none. It
// reaches a dynamic server at the address the view gives.
inline constexpr cb::ServerSet kUnreachableServers{};

// The request's context for `upstream`, created on first use; null when the pool
// is out of memory or the request already uses another upstream.
RequestContext* ContextOf(ngx_http_request_t* r, Upstream* upstream);

// The request's session (found once: Balancer::SessionOfRequest).
std::string_view SessionOf(ngx_http_request_t* r, RequestContext* ctx, cb::Balancer& balancer);

// The server lines that nginx's passive failure handling holds out now (max_fails
// failures, fail_timeout not over since the last) and that stay held out
// (cb::StaysHeldOut): the view says whether a server's sidecar is up, this
// remembers that its application did not answer.
cb::ServerSet ServerLinesHeldOut(ngx_http_upstream_rr_peers_t* peers, const cb::Balancer& balancer);

// The request's context, its first try decided (RequestPolicy::Plan) if it has no
// choice yet and nginx has not started connecting: a variable read then names the
// server that gets the request. Null when the module has no context for it.
RequestContext* DecidedContext(ngx_http_request_t* r);

// ---------------------------------------------------------------------------------
// Entry points nginx calls (each in its own part of the glue)

// ngx_http_cluster_balance_peer.cc: the upstream's peer.init.
ngx_int_t InitPeer(ngx_http_request_t* r, ngx_http_upstream_srv_conf_t* uscf) noexcept;

// ngx_http_cluster_balance_variables.cc: $cluster_route and $cluster_route_reason
// (preconfiguration), and the insert mode's header filter (installed by
// InstallHeaderFilter when some upstream inserts cookies).
ngx_int_t AddVariables(ngx_conf_t* cf) noexcept;
void InstallHeaderFilter();

}  // namespace cb::nginx

#pragma GCC visibility pop

#endif  // CLUSTER_BALANCE_NGINX_MODULE_NGX_HTTP_CLUSTER_BALANCE_GLUE_H_
