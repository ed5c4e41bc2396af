// What the admin endpoint shows of a running sidecar: GET /status (JSON) and
// GET /metrics (Prometheus text), rendered from a StatusSnapshot the Sidecar
// takes of itself. Pure: no clock, no I/O; the same snapshot always renders to the
// same bytes, so the formats can be tested without a running cluster.
//
// Thread-safety: the functions are thread-compatible (they only read the snapshot).
#ifndef CLUSTER_BALANCE_SIDECAR_DAEMON_STATUS_REPORT_H_
#define CLUSTER_BALANCE_SIDECAR_DAEMON_STATUS_REPORT_H_

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "shared/cluster_view.h"
#include "shared/server_set.h"
#include "sidecar/cache/cache_node.h"
#include "sidecar/memcache/memcache_server.h"
#include "sidecar/protocol/messages.h"
#include "sidecar/store/record_store.h"

namespace cb::daemon {

// One known server as this sidecar sees it.
struct ServerStatus {
  protocol::ServerRecord record;           // record.index is its index
  ServerState state = ServerState::kDown;  // as published in the view
  int64_t up_since_unix_ms = 0;            // as published in the view
  bool connected = false;
  // Since this sidecar last heard from it; only while connected.
  std::optional<int64_t> heartbeat_age_ms;
  int64_t state_since_unix_ms = 0;      // when this sidecar saw it enter `state`
  std::optional<double> round_trip_ms;  // only while connected (server_vitals.h)
  // Slow-start progress while up: 0 at the start, 1 at full weight.
  std::optional<double> warmup;
  std::optional<uint64_t> sessions;  // live sessions routed to it, once a count is known
};

// What the Sidecar counts about its peer connections.
struct PeerCounters {
  uint64_t heartbeats_sent = 0;
  uint64_t heartbeats_received = 0;
  uint64_t heartbeats_missed = 0;  // peers marked down for silence
  uint64_t view_changes = 0;
  uint64_t connection_resets = 0;
  uint64_t deploy_bytes_sent = 0;  // Git pack bytes, in chunks on the cluster connections
  uint64_t deploy_bytes_received = 0;
  std::map<std::string, uint64_t> refusals;  // by RefusalCategory (or "join")
};

// One cache of the cluster file, on this server.
struct CacheStatus {
  std::string name;
  store::CacheStats stored;       // zero where this server stores no records (spokes)
  cache::CacheCounters answered;  // gets answered here as the owner
};

struct StoreStatus {
  bool stores_records = false;  // a triad server
  bool ready = false;
  bool synced = false;
  bool owning = false;
  // Reaches more than half of the cluster file's servers (cache/ownership.h);
  // true on a spoke.
  bool quorum = true;
  int voters_reached = 0;  // of the cluster file's servers, itself included
  // The cluster file's durability: "replicated" or "fsync".
  std::string durability = "replicated";
  ServerSet ready_triad;
  std::vector<CacheStatus> caches;  // in the cluster file's order
  cache::CacheNodeStats node;       // its per_cache is not read: see `caches`
  int64_t replication_lag_ms = 0;
  uint64_t applied_forgotten_early = 0;
};

struct StatusSnapshot {
  int64_t now_unix_ms = 0;  // when it was taken: the page computes durations from it
  std::string cluster_name;
  uint64_t generation = 0;  // of the view
  // A spoke cut off from the whole triad: since when its view is kept as it was
  // (membership.h); 0 when it is not.
  int64_t view_stale_since_unix_ms = 0;
  int self_index = -1;
  std::string self_id;
  uint64_t self_incarnation = 0;
  std::vector<ServerStatus> servers;                    // every known server, by increasing index
  std::vector<protocol::DeploymentTarget> deployments;  // current versions, by name
  PeerCounters counters;
  StoreStatus store;
  std::optional<memcache::MemcacheServerStats> memcached;  // while it serves
};

// GET /status.
nlohmann::json StatusJson(const StatusSnapshot& snapshot);
// GET /metrics: a complete exposition (admin::MetricsText).
std::string MetricsText(const StatusSnapshot& snapshot);

// The metric label of a handshake refusal, from its reason ("key", "cluster_name",
// "config_digest", "protocol_version", "topology", "identity" or "other").
std::string RefusalCategory(const std::string& reason);

}  // namespace cb::daemon

#endif  // CLUSTER_BALANCE_SIDECAR_DAEMON_STATUS_REPORT_H_
