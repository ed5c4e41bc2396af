// What the parts of the httpd glue share: conversions between httpd's structures
// and plain C++ types, the configuration of one balancer (its <Proxy balancer://>
// section), the Balancer of each thread, and the state of one request. Every
// decision is shared/'s (balancer.h, request_policy.h); this only converts.
//
// Failing open: every function httpd or mod_proxy calls is noexcept and catches.
// Whatever goes wrong inside the module (no view, a bad view, an exception), the
// request is balanced by httpd's own rules over the balancer's declared members
// (their usable states, lbsets, hot standbys), never dropped because of the module.
//
// Threads: an httpd child runs requests on many threads (mpm_event) or one
// (mpm_prefork). Each thread has its own Balancer per section (ThreadBalancer);
// the configuration is read-only after startup; a request stays on one thread.
#ifndef CLUSTER_BALANCE_HTTPD_MODULE_MOD_CLUSTER_BALANCE_GLUE_H_
#define CLUSTER_BALANCE_HTTPD_MODULE_MOD_CLUSTER_BALANCE_GLUE_H_

// httpd.h first: httpd's other headers need its types. It opens extern "C" itself;
// mod_proxy.h does not.
#include <httpd.h>

#include <http_config.h>
#include <http_log.h>
extern "C" {
#include <mod_proxy.h>
}

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "shared/balancer.h"
#include "shared/balancer_options.h"
#include "shared/request_policy.h"
#include "shared/route_codec.h"
#include "shared/server_set.h"

extern "C" {
extern module AP_MODULE_DECLARE_DATA cluster_balance_module;
}

// The glue's names stay inside the .so, so that two modules built from different
// versions never mix.
#pragma GCC visibility push(hidden)

namespace cb::httpd {

// ---------------------------------------------------------------------------------
// Conversions and logging

// Logs `what` for the request (or, without one, for the server) at `level`.
void LogWhat(int level, const request_rec* r, std::string_view where, std::string_view what);

// Inside a catch block: logs the exception. The caller then fails open.
void LogException(const request_rec* r, std::string_view where) noexcept;

// Wall clock in unix milliseconds (slow start, held-out checks) and a monotonic
// clock in milliseconds (the view's recheck cadence).
int64_t NowUnixMs();
int64_t NowMonotonicMs();

// ---------------------------------------------------------------------------------
// Configuration: one Section per balancer with ClusterBalance in its <Proxy
// "balancer://NAME"> section. Balancer names are global to the module: a name
// configures the balancer of that name in every virtual host.

struct Section {
  Section() = default;
  Section(const Section&) = delete;
  Section& operator=(const Section&) = delete;

  // Logs what a thread's view tracker noticed, each change once per process: every
  // thread of a child follows the same file and notices the same changes.
  void LogNotices(cb::Balancer& balancer, const request_rec* r) const;

  std::string name;  // "balancer://NAME", for log lines
  cb::BalancerOptions options;
  bool cookie_configured = false;  // ClusterBalanceCookie was given
  // The request header that tells the backend the chosen server's route
  // character; empty: none.
  std::string route_header{"X-Cluster-Route"};
  // Keys the threads' Balancers: unique per section per configuration load, so
  // that a thread never uses a Balancer of a configuration httpd reloaded.
  uint64_t id = 0;

 private:
  mutable std::mutex notices_mutex_;
  mutable std::string last_notice_;  // guarded by notices_mutex_
};

// The sections of the configuration httpd loaded, by balancer name (httpd keeps
// no link from a balancer to its <Proxy> section). Filled while httpd reads its
// configuration, before it starts serving; read-only afterwards.
std::vector<Section*>& LoadedSections();

// The Section of `balancer` ("balancer://NAME", any case); null without
// ClusterBalance for it.
const Section* SectionOf(const proxy_balancer* balancer);

// This thread's Balancer for `section`, created on first use.
cb::Balancer& ThreadBalancer(const Section& section);

// ---------------------------------------------------------------------------------
// Members: the balancer's workers by cluster index.

// A member names its server with route=: the server's route character (A for
// server 0, B for 1, ...) or its id in the view (app-a). The index of `route`;
// -1 when it names none (an id while there is no view, or an empty route).
int IndexOfRoute(std::string_view route, const cb::Balancer& balancer);

// The balancer's members by cluster index, read at each try (balancer-manager may
// change them and their states at any time).
class Members {
 public:
  Members(const proxy_balancer* balancer, const cb::Balancer& view);

  // The member of server `index`; null when there is none.
  proxy_worker* WorkerOf(int index) const;
  // The index of `worker`; -1 when its route names no server.
  int IndexOf(const proxy_worker* worker) const;

  // RequestPolicy's `unreachable`: the servers httpd cannot send to. Those without
  // a member, and those whose member balancer-manager disabled or stopped.
  cb::ServerSet Unreachable(const cb::Balancer& view) const;
  // RequestPolicy's `held_out()`: members that failed httpd's health check, and
  // members in httpd's error state after a failed try, for their retry= time,
  // unless the view shows their server came up since (cb::StaysHeldOut).
  cb::ServerSet HeldOut(const cb::Balancer& view) const;

 private:
  std::array<proxy_worker*, cb::kMaxServers> by_index_{};
};

// ---------------------------------------------------------------------------------
// Per request

// In r->request_config for the request's balancer (the first one that asked; a
// request goes to one balancer). Lives in r->pool (trivially destructible).
struct RequestState {
  const proxy_balancer* balancer = nullptr;
  const Section* section = nullptr;  // null: lbmethod=cluster without ClusterBalance
  const char* session = nullptr;     // r->pool copy; null: not looked for yet
  std::size_t session_length = 0;
  bool tries_started = false;  // RequestPolicy::StartTries ran
  bool filter_added = false;   // the insert cookie's filter is in place
  bool in_try = false;         // between a finder's answer and mod_proxy's post_request
  int tried_count = 0;         // members this request tried, in tried_workers
  std::array<const proxy_worker*, cb::kMaxServers> tried_workers{};
  cb::RequestPolicy policy;
};
static_assert(std::is_trivially_destructible_v<RequestState>);

// The request's state, created on first use; null when the request already uses
// another balancer.
RequestState* StateOf(request_rec* r, const proxy_balancer* balancer, const Section* section);
// The request's state if it has one.
RequestState* ExistingStateOf(const request_rec* r);

// The request's session (found once: Balancer::SessionOfRequest over its Cookie
// headers and its path).
std::string_view SessionOf(request_rec* r, RequestState& state, const cb::Balancer& balancer);

// ---------------------------------------------------------------------------------
// Entry points httpd calls (each in its own part of the glue)

// mod_cluster_balance_lbmethod.cc: the provider registered as lbmethod "cluster".
extern const proxy_balancer_method kClusterMethod;
// Looks up mod_proxy's helper for httpd's own balancing; false without mod_proxy.
bool FindProxyFunctions();

// mod_cluster_balance_response.cc: the insert cookie's output filter (registered
// with the module's hooks) and mod_proxy's post_request hook that ends a try
// (registered at pre_config; false without mod_proxy).
void RegisterCookieFilter();
bool HookEndOfTry();
// Adds the insert cookie's filter to the request (once).
void AddCookieFilter(request_rec* r, RequestState& state);

}  // namespace cb::httpd

#pragma GCC visibility pop

#endif  // CLUSTER_BALANCE_HTTPD_MODULE_MOD_CLUSTER_BALANCE_GLUE_H_
