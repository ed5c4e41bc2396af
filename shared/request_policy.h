// The request policy both web server modules share (DESIGN.md "Request path"): which
// server each try of one request goes to, what happens when the view offers none,
// and what the request reports ($cluster_route, $cluster_route_reason). The glue of
// a web server only converts: its server lines or members to cluster indices (line
// i is server i), its passive failure state to held-out servers, its clocks to
// milliseconds, and the answers back to its own structures.
//
// Failing open: when choosing a try's server throws (in ChooseNext, or in the
// glue's conversion of the answer), the glue goes on as if the view had offered
// no server for that try (kNoServer): WhenNoServer, which never throws, decides.
// ChooseNext changes nothing in the policy, so nothing is half done. A fault in
// the module thus costs no request that the web server alone would have served.
//
// Threading: one RequestPolicy per request, used by one thread at a time. It
// keeps no reference to a Balancer: each call takes the calling thread's (one
// Balancer per thread, balancer.h), all of them following the group's view file.
#ifndef CLUSTER_BALANCE_SHARED_REQUEST_POLICY_H_
#define CLUSTER_BALANCE_SHARED_REQUEST_POLICY_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "shared/balancer.h"
#include "shared/routing.h"
#include "shared/server_set.h"

namespace cb {

// The name a request reports for `reason`: "sticky", "backup", "balanced", or
// "fallback" (kNoServer: the web server's own balancing chose).
std::string_view ReasonName(RouteReason reason);

// Whether server `index`, which the web server's passive failure detection holds
// out since a failure at `failed_unix_ms`, stays held out. Not once the view shows
// that it came up after that failure (a new up period): a server that came back
// gets its sessions back at once, not after the web server's own timeout.
bool StaysHeldOut(const Balancer& balancer, int index, int64_t failed_unix_ms);

// What a try does when the view offers no server for it (RouteChoice kNoServer).
enum class NoServerAction {
  kOwnBalancing,         // the web server balances over its own servers
  kOwnBalancingUntried,  // the same, over the servers this request did not try: the
                         // view became unusable during the request
  kGiveUp,               // every server was tried: the request fails, as it would
                         // under the web server's own balancing
};

// The tries of one request to one balanced group, and what the request reports.
// Trivially destructible and holding no allocation, so that it lives in a web
// server's request memory (nginx's request pool, httpd's r->pool) without a
// cleanup. Not thread-safe: one per request.
//
// A request's calls: Plan, if the web server asks for the choice before it sends
// (nginx); StartTries once the view is refreshed for the request, and MaxTries;
// then for each try, either the web server's own balancing (own_balancing()) or
// ChooseNext, and WhenNoServer when that offers none; StartTry with the server the
// try goes to. InsertCookie for the response.
class RequestPolicy {
 public:
  RequestPolicy() = default;
  RequestPolicy(const RequestPolicy&) = delete;
  RequestPolicy& operator=(const RequestPolicy&) = delete;

  // Once per request, after Balancer::Refresh and before the first try: without a
  // usable view the web server's own balancing takes every try (own_balancing()).
  void StartTries(const Balancer& balancer);

  // How many tries the request may make: one per server the view offers
  // (Balancer::Candidates) outside `unreachable` (see ChooseNext), as no server is
  // tried twice. 0 when the web server's own balancing takes the request
  // (own_balancing()): its own limit stands.
  int MaxTries(const Balancer& balancer, ServerSet unreachable) const;

  // Whether the web server's own balancing takes every try from now on: there was
  // no usable view when the tries started, or a try went where the web server's
  // own balancing chose (StartTry with kNoServer). The view gets no say halfway
  // through: the web server knows what its own balancing tried. The glue then
  // balances as without the module and reports each try with StartTry(kNoServer).
  bool own_balancing() const noexcept { return own_balancing_; }

  // Chooses the first try's server before the request is sent: nginx evaluates
  // proxy_set_header (and so $cluster_route) before it connects. The first try then
  // goes there, so that the header names the server that gets the request.
  // `unreachable`, `held_out()`: as for ChooseNext; held_out() is called once.
  template <typename HeldOut>
  void Plan(Balancer& balancer, std::string_view session, ServerSet unreachable, HeldOut&& held_out,
            int64_t now_unix_ms) {
    planned_choice_ = ChooseAvoiding(balancer, session, unreachable, held_out(), now_unix_ms);
    planned_ = true;
  }

  // The server for the next try: the planned one (Plan) on the first try and on its
  // repeat (TakeFreshConnectionRetry); otherwise the view's choice (Balancer::Choose),
  // never a server this request tried, and none of `held_out()` while any other
  // server is eligible. Never one in `unreachable`: the servers the web server
  // cannot send to at all (httpd reaches only its declared members, so a dynamic
  // server beyond them; nginx reaches every server and passes none). `held_out()`
  // returns the servers the web server holds out after failures (see
  // StaysHeldOut); it is called only when the view is asked. kNoServer: see
  // WhenNoServer.
  template <typename HeldOut>
  RouteChoice ChooseNext(Balancer& balancer, std::string_view session, ServerSet unreachable,
                         HeldOut&& held_out, int64_t now_unix_ms) const {
    if (tried_.empty() && planned_ && planned_choice_.index >= 0 &&
        !unreachable.Contains(planned_choice_.index)) {
      return planned_choice_;
    }
    return ChooseAvoiding(balancer, session, unreachable, held_out(), now_unix_ms);
  }

  // When ChooseNext offered no server: on the first try the web server balances;
  // after tries, every server it could reach was tried while the view is still
  // usable, else the view became unusable and the web server balances over what is
  // left.
  NoServerAction WhenNoServer(const Balancer& balancer) const noexcept;

  // Without a usable view: the server the request's first try goes to if the web
  // server's own rules allow it, the session's own (its route character's); -1 on
  // a later try or without a session naming one (the web server balances).
  int OwnServerWithoutView(std::string_view session) const;

  // A try goes to `choice.index`: from ChooseNext, or with reason kNoServer when
  // the web server's own balancing chose (index -1 when it cannot tell which),
  // which it keeps doing for the rest of the request (own_balancing()).
  void StartTry(RouteChoice choice) noexcept;

  // The current try failed on a kept-alive connection: takes the request's one
  // repeat on a fresh connection and says whether it was still there. True once per
  // request: the server had closed the idle connection, which is no failure of it,
  // so the try is repeated on a fresh connection and the server no longer counts
  // as tried. False after that: the failure counts. Only nginx needs it: httpd's
  // mod_proxy_http repeats a request on a reused connection that the server closed
  // by itself.
  bool TakeFreshConnectionRetry();

  // Insert mode: the Set-Cookie header value for the response of the latest try's
  // server (Balancer::InsertCookieFor with the request's session); empty when no
  // try named a server (the web server's own balancing may not tell which) or no
  // cookie is needed. The glue asks only for a response that a server sent: not
  // for its own error page after every try failed, nor for one from its cache.
  std::string InsertCookie(Balancer& balancer, std::string_view session) const;

  // Whether a choice was made: a try started, or Plan ran.
  bool decided() const { return latest_.index >= 0 || planned_; }
  // What the request reports: the latest try's choice, else the planned one;
  // index -1 (kNoServer) when there is neither.
  RouteChoice Reported() const { return latest_.index >= 0 ? latest_ : planned_choice_; }
  // The latest try's choice; index -1 before any try.
  RouteChoice latest() const { return latest_; }
  // The servers this request tried.
  ServerSet tried() const { return tried_; }

 private:
  RouteChoice ChooseAvoiding(Balancer& balancer, std::string_view session, ServerSet unreachable,
                             ServerSet held_out, int64_t now_unix_ms) const;

  ServerSet tried_;
  bool planned_ = false;
  RouteChoice planned_choice_;
  RouteChoice latest_;
  bool retried_on_fresh_connection_ = false;
  bool own_balancing_ = false;
};

}  // namespace cb

#endif  // CLUSTER_BALANCE_SHARED_REQUEST_POLICY_H_
