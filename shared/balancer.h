// Everything a web server module decides for one balanced group of servers (an
// nginx upstream block), per process: which part of a request is its session,
// which server gets it (routing.h on the view a ViewTracker follows), and the
// cookie of the insert mode. The tries of one request are request_policy.h's. The
// glue of each web server only converts its request to string views and its
// configuration to BalancerOptions.
//
// Not thread-safe: one Balancer per thread that runs requests (an nginx worker,
// an httpd thread); a RequestPolicy (request_policy.h) is one per request and
// takes the Balancer of the thread that calls it.
#ifndef CLUSTER_BALANCE_SHARED_BALANCER_H_
#define CLUSTER_BALANCE_SHARED_BALANCER_H_

#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shared/balancer_options.h"
#include "shared/routing.h"
#include "shared/server_set.h"
#include "shared/socket_address.h"
#include "shared/view_tracker.h"

namespace cb {

class Balancer {
 public:
  // `configured`: the addresses of the group's own server lines, in cluster order.
  // `seed` starts the generator of balancing choices and cookie tokens.
  Balancer(BalancerOptions options, std::vector<SocketAddress> configured, uint64_t seed);
  Balancer(const Balancer&) = delete;
  Balancer& operator=(const Balancer&) = delete;

  const BalancerOptions& options() const { return options_; }

  // Once per request, before choosing: see ViewTracker::Refresh. False: no usable
  // view, the caller balances over its own servers.
  bool Refresh(int64_t now_monotonic_ms) { return tracker_.Refresh(now_monotonic_ms); }
  // Whether the last Refresh found a usable view.
  bool usable() const { return tracker_.usable(); }

  // The request's session as found in one Cookie header: in route mode the
  // session cookie's value, in insert mode the module's own cookie when it is of
  // the module's form. Empty: none in this header.
  std::string_view SessionFromCookieHeader(std::string_view cookie_header) const;
  // The session in the request path's ";jsessionid=" parameter (route mode only;
  // the cookie comes first). Empty: none.
  std::string_view SessionFromPath(std::string_view path) const;
  // The request's session: from the first of its Cookie headers that holds one,
  // else from its path. `next_cookie_header()` yields the Cookie headers in request
  // order as std::optional<std::string_view>, then std::nullopt. The path is taken
  // as the client sent it, as the application and clusterctl read it: no
  // percent-decoding can make a session of what the application sees as none.
  template <std::invocable NextCookieHeader>
  std::string_view SessionOfRequest(NextCookieHeader&& next_cookie_header,
                                    std::string_view path) const {
    while (const std::optional<std::string_view> header = next_cookie_header()) {
      const std::string_view session = SessionFromCookieHeader(*header);
      if (!session.empty()) return session;
    }
    return SessionFromPath(path);
  }

  // The server for a request with `session` (empty: none), never one in `exclude`
  // (servers this request already tried). kNoServer when nothing is eligible.
  RouteChoice Choose(std::string_view session, ServerSet exclude, int64_t now_unix_ms);

  // Insert mode: the Set-Cookie header value for a response that server `answered`
  // gave to a request with `session` (from SessionFromCookieHeader); empty when no
  // cookie is needed (and always in route mode).
  //  - no session: a new pin to `answered`;
  //  - pinned to another server that the view no longer has up or draining (a
  //    failover): re-pinned to `answered`, keeping its token;
  //  - pinned to a server that still serves (the answer came from elsewhere after a
  //    failure the view does not show, or while there is no view): the pin stays,
  //    so that the client returns to its server;
  //  - with a max_age, a pin that stays is sent again, so that an active client's
  //    cookie does not expire in the middle of its session.
  std::string InsertCookieFor(std::string_view session, int answered);

  ServerSet Candidates() const { return tracker_.Candidates(); }
  // Where server `index` is reached (ViewTracker::AddressOf); valid until the next
  // Refresh, so a request that keeps the address copies it.
  const SocketAddress* AddressOf(int index) const { return tracker_.AddressOf(index); }
  int64_t UpSinceUnixMs(int index) const { return tracker_.UpSinceUnixMs(index); }
  // The index of the server with id `id` in the view (ViewTracker::IndexOfId).
  int IndexOfServerId(std::string_view id) const { return tracker_.IndexOfId(id); }
  std::vector<ViewNotice> TakeNotices() { return tracker_.TakeNotices(); }

 private:
  uint64_t NextRandom();

  const BalancerOptions options_;
  ViewTracker tracker_;
  uint64_t random_state_;
};

}  // namespace cb

#endif  // CLUSTER_BALANCE_SHARED_BALANCER_H_
