#include "shared/routing.h"

#include <algorithm>
#include <array>

#include "shared/rendezvous.h"
#include "shared/route_codec.h"

namespace cb {
namespace {

RouteChoice Backup(const ClusterView& view, const RouteRequest& request) {
  const uint64_t key_hash = RendezvousKeyHash(request.session_id);
  for (ServerState state : {ServerState::kUp, ServerState::kDraining}) {
    const int index = RendezvousFirst(key_hash, view.ServersIn(state).Without(request.exclude));
    if (index >= 0) return {index, RouteReason::kBackup};
  }
  return {};
}

RouteChoice Balanced(const ClusterView& view, const RouteRequest& request) {
  std::array<uint64_t, kMaxServers> weights{};
  uint64_t total = 0;
  view.ServersIn(ServerState::kUp).Without(request.exclude).ForEach([&](int index) {
    weights[static_cast<std::size_t>(index)] =
        EffectiveWeight(view.server(index), request.now_unix_ms, view.slow_start_ms);
    total += weights[static_cast<std::size_t>(index)];
  });
  if (total == 0) return {};
  uint64_t pick = request.random % total;
  for (int index = 0; index < kMaxServers; ++index) {
    const uint64_t weight = weights[static_cast<std::size_t>(index)];
    if (pick < weight) return {index, RouteReason::kBalanced};
    pick -= weight;
  }
  return {};  // unreachable: pick < total
}

}  // namespace

uint64_t EffectiveWeight(const ViewServer& server, int64_t now_unix_ms, uint32_t slow_start_ms) {
  const uint64_t weight = server.weight;
  if (weight == 0 || slow_start_ms == 0 || server.up_since_unix_ms <= 0) return weight;
  const int64_t elapsed = now_unix_ms - server.up_since_unix_ms;
  if (elapsed >= static_cast<int64_t>(slow_start_ms)) return weight;
  if (elapsed <= 0) return 1;
  return std::max<uint64_t>(1, weight * static_cast<uint64_t>(elapsed) / slow_start_ms);
}

RouteChoice ChooseServer(const ClusterView& view, const RouteRequest& request) {
  const int route = RouteIndexOfSession(request.session_id);
  if (route >= 0 && view.state(route) != ServerState::kAbsent) {
    const ServerState state = view.state(route);
    if ((state == ServerState::kUp || state == ServerState::kDraining) &&
        !request.exclude.Contains(route)) {
      return {route, RouteReason::kSticky};
    }
    return Backup(view, request);
  }
  return Balanced(view, request);
}

}  // namespace cb
