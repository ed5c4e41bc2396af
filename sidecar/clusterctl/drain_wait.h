// `clusterctl drain ID --wait`: after the drain, wait until the server holds no
// live session that would still be routed to it (issue 14), printing the count
// as it falls.
//
// The count is the sidecar's /status "sessions" of the server: the live
// sessions whose ids begin with its route character, as the triad's store
// counts them (sidecar/daemon/server_vitals.h). A server that goes down holds
// none any more (its sessions go to their backups); one enabled again while
// waiting ends the wait with an error.
//
// Pure apart from the injected status fetch and clock; thread-compatible.
#ifndef CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_DRAIN_WAIT_H_
#define CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_DRAIN_WAIT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "shared/status.h"

namespace cb {

// What one /status says of the server being drained.
struct DrainObservation {
  bool known = false;                // the status lists the server
  std::string state;                 // "up", "draining", "down", ...
  std::optional<uint64_t> sessions;  // nullopt: no count known yet
};
DrainObservation ObserveDrain(const nlohmann::json& status, std::string_view server_id);

struct DrainWaitHooks {
  std::function<Result<nlohmann::json>()> fetch_status;
  std::function<std::chrono::steady_clock::time_point()> now;
  std::function<void(std::chrono::milliseconds)> sleep;
};

inline constexpr int kDrainWaitTimedOut = 2;

// Polls every `interval` until the server holds no live session (0), the
// timeout passes (kDrainWaitTimedOut, saying how many remain), or an error (1:
// unknown server, enabled again, /status failing for longer than the timeout).
// Writes one line each time the count changes.
int WaitForDrain(std::string_view server_id, std::chrono::milliseconds timeout,
                 std::chrono::milliseconds interval, const DrainWaitHooks& hooks, std::ostream& out,
                 std::ostream& err);

}  // namespace cb

#endif  // CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_DRAIN_WAIT_H_
