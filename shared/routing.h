// The routing decision of DESIGN.md "Request path", shared by the nginx module, the
// httpd module and the sidecar so that all of them agree:
//
//   1. A session whose route character names a server that is up or draining goes
//      to that server (sticky).
//   2. Any other session goes to its backup: the first up server in the
//      rendezvous order of the session id; if none is up, the first draining one.
//      That covers a server that is down or excluded (it just failed this
//      request), an index no server holds any more, and an id that does not start
//      with a route character: each session still lands on one server, the same
//      on every request and every web server.
//   3. No session (none found, or malformed: route_codec.h yields none): weighted
//      random choice among up servers, never a draining or down one, with each
//      weight ramped up during slow start. With current_version_only (a rollout
//      in progress), among those that run the deployment's current version, if
//      any is eligible; else among all of them: a rollout never costs a request.
//
// A RoutingTable holds the routing-relevant part of one view laid out for the
// per-request path (state sets as bit masks, weights side by side). Build it once
// per view change; Choose() is then a pure function, thread-safe on a const table.
#ifndef CLUSTER_BALANCE_SHARED_ROUTING_H_
#define CLUSTER_BALANCE_SHARED_ROUTING_H_

#include <array>
#include <cstdint>
#include <optional>
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

struct RoutingOptions {
  // The warm-up time of servers that come up; the view's (the cluster file's
  // slow_start) when not given.
  std::optional<uint32_t> slow_start_ms;
  // New sessions go to the servers that run the current version of the deployment
  // ClusterView::FindDeployment(webapp) finds, when the view has it and one of
  // them is eligible (rule 3).
  bool current_version_only = false;
  std::string_view webapp;  // used only while the table is built
};

struct RouteRequest {
  std::string_view session_id;  // as found by route_codec.h (valid or empty = no session)
  int64_t now_unix_ms = 0;      // wall clock, for slow start
  uint64_t random = 0;          // uniformly random, used only for new sessions
  ServerSet exclude;            // servers already tried for this request
};

class RoutingTable {
 public:
  RoutingTable() = default;  // no servers: every choice is kNoServer
  explicit RoutingTable(const ClusterView& view, const RoutingOptions& options = {});

  RouteChoice Choose(const RouteRequest& request) const;

  ServerSet up() const { return up_; }
  ServerSet draining() const { return draining_; }
  // The up servers with a weight that new sessions go to first: those that run the
  // current version with current_version_only, else none (no preference).
  ServerSet preferred() const { return preferred_.servers; }

 private:
  // Once no up server is warming up, weights are constant until the next view:
  // running sums over a set of servers (in index order) make a choice one search.
  struct WeightedServers {
    ServerSet servers;  // the up servers with a weight among the set's
    int count = 0;
    std::array<uint8_t, kMaxServers> index{};
    std::array<uint64_t, kMaxServers> running_sum{};
  };

  WeightedServers Weigh(ServerSet servers) const;
  RouteChoice Backup(const RouteRequest& request) const;
  RouteChoice Balanced(const RouteRequest& request) const;
  RouteChoice BalancedAmong(const WeightedServers& among, const RouteRequest& request) const;
  // Weighs every eligible server of `among` at the request's time: during warm-up
  // or a retry.
  RouteChoice BalancedRamped(ServerSet among, const RouteRequest& request) const;
  // The server whose share of [0, total) holds `random % total`, given the running
  // sums of the weights of `count` servers (all weights > 0).
  static RouteChoice PickWeighted(const uint64_t* running_sum, const uint8_t* indices, int count,
                                  uint64_t random);

  ServerSet up_;
  ServerSet draining_;
  uint32_t slow_start_ms_ = 0;
  std::array<uint32_t, kMaxServers> weight_{};
  std::array<int64_t, kMaxServers> up_since_unix_ms_{};
  int64_t warm_until_unix_ms_ = 0;
  WeightedServers balanced_;   // all up servers
  WeightedServers preferred_;  // empty: no preference
};

// One-off decision (builds a RoutingTable): for tools and tests, not per request.
RouteChoice ChooseServer(const ClusterView& view, const RouteRequest& request);

// The weight a server gets for new sessions at `now_unix_ms`: its configured weight,
// scaled linearly from 1/weight up to the full weight over `slow_start_ms` after it
// came up. 0 for a weight of 0.
uint64_t EffectiveWeight(uint32_t weight, int64_t up_since_unix_ms, int64_t now_unix_ms,
                         uint32_t slow_start_ms);

}  // namespace cb

#endif  // CLUSTER_BALANCE_SHARED_ROUTING_H_
