// The routing decision of DESIGN.md "Request path", shared by the nginx module, the
// httpd module and the sidecar so that all of them agree:
//
//   1. A session whose route character names a server that is up or draining goes
//      to that server (sticky).
//   2. A session whose server is down (or excluded, e.g. it just failed this
//      request) goes to its backup: the first up server in the rendezvous order of
//      the session id; if none is up, the first draining one.
//   3. No usable session (none, malformed, or a route character of an index with no
//      server in the view): weighted random choice among up servers, never a
//      draining or down one, with each weight ramped up during slow start.
//
// Pure functions of their arguments; thread-safe.
#ifndef CLUSTER_BALANCE_SHARED_ROUTING_H_
#define CLUSTER_BALANCE_SHARED_ROUTING_H_

#include <cstdint>
#include <string_view>

#include "shared/cluster_view.h"
#include "shared/server_set.h"

namespace cb {

enum class RouteReason {
  kSticky,    // the session's own server
  kBackup,    // the session's server is down or excluded
  kBalanced,  // no usable session
  kNoServer,  // nothing eligible: the caller falls back to its own configuration
};

struct RouteChoice {
  int index = -1;  // the chosen server; -1 with kNoServer
  RouteReason reason = RouteReason::kNoServer;
};

struct RouteRequest {
  std::string_view session_id;  // as found by route_codec.h; empty = no session
  int64_t now_unix_ms = 0;      // wall clock, for slow start
  uint64_t random = 0;          // uniformly random, used only for new sessions
  ServerSet exclude;            // servers already tried for this request
};

RouteChoice ChooseServer(const ClusterView& view, const RouteRequest& request);

// The weight a server gets for new sessions at `now_unix_ms`: its configured weight,
// scaled linearly from 1/weight up to the full weight over `slow_start_ms` after it
// came up. 0 for a weight of 0.
uint64_t EffectiveWeight(const ViewServer& server, int64_t now_unix_ms, uint32_t slow_start_ms);

}  // namespace cb

#endif  // CLUSTER_BALANCE_SHARED_ROUTING_H_
