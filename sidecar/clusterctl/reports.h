// What clusterctl prints: plain-text reports for operators. Pure functions of
// their inputs (no I/O), so they are unit-tested alone; thread-safe.
#ifndef CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_REPORTS_H_
#define CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_REPORTS_H_

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "shared/cluster_config.h"
#include "shared/cluster_view.h"

namespace cb {

// The validated model of a cluster file: cluster settings, one row per server (index,
// route character, role, id, addresses, weight), the caches and the config digest.
std::string RenderConfigReport(const ClusterConfig& config);

// A view as a table: one row per present server with its state, weight,
// incarnation, warm-up age and deployed version, as of `now_unix_ms`.
std::string RenderViewTable(const ClusterView& view, int64_t now_unix_ms);

// A sidecar's GET /status answer as a table: one row per server with its state,
// incarnation, heartbeat age (for peers it is connected to) and warm-up age. When
// the answer lists deployments: a line per deployment with its current commit,
// and a DEPLOYED column with each server's commit per deployment, marked
// "(behind)" where it differs from the current one and "(failed)" where the
// server reported an error for it.
// Fields missing from the JSON print as "-"; nothing in it can make this throw.
std::string RenderStatusTable(const nlohmann::json& status, int64_t now_unix_ms);

}  // namespace cb

#endif  // CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_REPORTS_H_
