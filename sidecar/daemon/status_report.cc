#include "sidecar/daemon/status_report.h"

#include <string_view>
#include <utility>

#include "shared/route_codec.h"
#include "shared/server_set.h"
#include "sidecar/admin/admin_router.h"

namespace cb::daemon {
namespace {

// {"<deployment>": {"commit": ..., "error": ...}}: what a server runs.
nlohmann::json DeployedJson(const std::vector<protocol::DeployedApp>& deployed) {
  nlohmann::json json = nlohmann::json::object();
  for (const protocol::DeployedApp& app : deployed) {
    json[app.name] = {{"commit", app.commit}, {"error", app.error}};
  }
  return json;
}

template <typename T>
nlohmann::json Optional(const std::optional<T>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json();
}

nlohmann::json ServerJson(const ServerStatus& server) {
  const protocol::ServerRecord& record = server.record;
  return {
      {"index", record.index},
      {"route", std::string(1, RouteCharForIndex(record.index))},
      {"id", record.id},
      {"role", record.index < kTriadSize ? "triad" : "spoke"},
      {"dynamic", record.dynamic},
      {"cluster_address", record.cluster_address},
      {"http_address", record.http_address},
      {"weight", record.weight},
      {"state", std::string(ServerStateName(server.state))},
      {"incarnation", record.incarnation},
      {"up_since_unix_ms", server.up_since_unix_ms},
      {"connected", server.connected},
      {"heartbeat_age_ms", Optional(server.heartbeat_age_ms)},
      {"deployed", DeployedJson(record.deployed)},
      {"state_since_unix_ms", server.state_since_unix_ms},
      {"rtt_ms", Optional(server.round_trip_ms)},
      {"warmup", Optional(server.warmup)},
      {"sessions", Optional(server.sessions)},
  };
}

nlohmann::json DeploymentsJson(const std::vector<protocol::DeploymentTarget>& targets) {
  nlohmann::json json = nlohmann::json::array();
  for (const protocol::DeploymentTarget& target : targets) {
    json.push_back(
        {{"name", target.name},
         {"commit", target.commit},
         {"version", target.label.empty() ? nlohmann::json() : nlohmann::json(target.label)}});
  }
  return json;
}

nlohmann::json StoreJson(const StoreStatus& store) {
  nlohmann::json caches = nlohmann::json::array();
  for (const CacheStatus& cache : store.caches) {
    caches.push_back({
        {"name", cache.name},
        {"records", cache.stored.records},
        {"tombstones", cache.stored.tombstones},
        {"bytes", cache.stored.bytes},
        {"hits", cache.answered.hits},
        {"misses", cache.answered.misses},
    });
  }
  nlohmann::json json = {
      {"stores_records", store.stores_records},
      {"ready", store.ready},
      {"synced", store.synced},
      {"owning", store.owning},
      {"quorum", store.quorum},
      {"servers_reached", store.voters_reached},
      {"durability", store.durability},
      {"ready_triad", nlohmann::json::array()},
      {"caches", caches},
      {"replication_lag_ms", store.replication_lag_ms},
      {"applied_forgotten_early", store.applied_forgotten_early},
  };
  // The cache node's counters, each under its own name.
  using Node = cache::CacheNodeStats;
  for (const auto& [name, counter] :
       {std::pair{"writes_waiting", &Node::writes_waiting},
        std::pair{"replicated", &Node::replicated}, std::pair{"forwarded", &Node::forwarded},
        std::pair{"failed", &Node::failed}, std::pair{"retried", &Node::retried},
        std::pair{"answered_again", &Node::answered_again},
        std::pair{"buckets_pulled", &Node::buckets_pulled},
        std::pair{"records_pulled", &Node::records_pulled},
        std::pair{"spoke_cache_bytes", &Node::spoke_cache_bytes}}) {
    json[name] = store.node.*counter;
  }
  store.ready_triad.ForEach([&](int index) { json["ready_triad"].push_back(index); });
  return json;
}

// One metric family of a single sample.
struct Sample {
  enum class Kind { kCounter, kGauge };
  Kind kind;
  std::string_view name;
  std::string_view help;
  double value;
};

void Add(admin::MetricsText& text, std::initializer_list<Sample> samples) {
  for (const Sample& sample : samples) {
    if (sample.kind == Sample::Kind::kCounter) {
      text.Counter(sample.name, sample.help, sample.value);
    } else {
      text.Gauge(sample.name, sample.help, sample.value);
    }
  }
}

constexpr Sample::Kind kCounter = Sample::Kind::kCounter;
constexpr Sample::Kind kGauge = Sample::Kind::kGauge;

double Value(uint64_t count) { return static_cast<double>(count); }

void AddPeerMetrics(admin::MetricsText& text, const StatusSnapshot& snapshot) {
  int up = 0;
  int down = 0;
  for (const ServerStatus& server : snapshot.servers) {
    if (server.record.index == snapshot.self_index) continue;
    (server.record.alive ? up : down) += 1;
  }
  const PeerCounters& counters = snapshot.counters;
  Add(text,
      {
          {kGauge, "cluster_peers_up", "Other servers this sidecar sees up or draining.", 1.0 * up},
          {kGauge, "cluster_peers_down", "Other servers this sidecar sees down.", 1.0 * down},
          {kCounter, "cluster_heartbeats_sent_total", "Heartbeats sent to peers.",
           Value(counters.heartbeats_sent)},
          {kCounter, "cluster_heartbeats_received_total", "Heartbeats received from peers.",
           Value(counters.heartbeats_received)},
          {kCounter, "cluster_heartbeats_missed_total",
           "Peers marked down because their heartbeats stopped.",
           Value(counters.heartbeats_missed)},
          {kCounter, "cluster_view_changes_total", "Changes of this sidecar's view.",
           Value(counters.view_changes)},
          {kCounter, "cluster_connection_resets_total", "Peer connections lost to an error.",
           Value(counters.connection_resets)},
          {kCounter, "cluster_deploy_pack_bytes_sent_total",
           "Bytes of Git packs sent to peers (deploys and catch-up).",
           Value(counters.deploy_bytes_sent)},
          {kCounter, "cluster_deploy_pack_bytes_received_total",
           "Bytes of Git packs received from peers.", Value(counters.deploy_bytes_received)},
      });
  for (const auto& [reason, count] : counters.refusals) {
    text.Counter("cluster_handshake_refusals_total", "Peer connections refused, by reason.",
                 Value(count), {{"reason", reason}});
  }
  text.Gauge("cluster_view_generation", "Generation of this sidecar's view.",
             Value(snapshot.generation));
  text.Gauge(
      "cluster_view_stale_seconds",
      "How long this spoke has been cut off from the whole triad, keeping its view as it "
      "was; 0 when it is not.",
      snapshot.view_stale_since_unix_ms > 0
          ? static_cast<double>(snapshot.now_unix_ms - snapshot.view_stale_since_unix_ms) / 1000.0
          : 0.0);
}

// What the admin page shows of each server, one labelled sample per server.
void AddServerMetrics(admin::MetricsText& text, const StatusSnapshot& snapshot) {
  for (const ServerStatus& server : snapshot.servers) {
    const protocol::ServerRecord& record = server.record;
    const admin::MetricsText::Labels labels = {{"server", record.id}};
    text.Gauge("cluster_server_info",
               "Each known server: its role, route character and whether it is dynamic (always 1).",
               1,
               {{"server", record.id},
                {"role", record.index < kTriadSize ? "triad" : "spoke"},
                {"route", std::string(1, RouteCharForIndex(record.index))},
                {"dynamic", record.dynamic ? "true" : "false"}});
    for (ServerState state : {ServerState::kUp, ServerState::kDraining, ServerState::kDown}) {
      text.Gauge("cluster_server_state",
                 "1 for the state each server is in, as this sidecar sees it.",
                 server.state == state ? 1 : 0,
                 {{"server", record.id}, {"state", std::string(ServerStateName(state))}});
    }
    if (server.state_since_unix_ms > 0 && snapshot.now_unix_ms >= server.state_since_unix_ms) {
      text.Gauge("cluster_server_state_seconds", "How long each server has been in its state.",
                 static_cast<double>(snapshot.now_unix_ms - server.state_since_unix_ms) / 1000.0,
                 labels);
    }
    text.Gauge("cluster_server_incarnation", "Each server's incarnation (grows at every start).",
               Value(record.incarnation), labels);
    if (server.round_trip_ms) {
      text.Gauge("cluster_server_heartbeat_rtt_seconds",
                 "Heartbeat round trip to each connected server.", *server.round_trip_ms / 1000.0,
                 labels);
    }
    if (server.warmup) {
      text.Gauge("cluster_server_warmup_ratio",
                 "Slow-start progress of each up server: 1 at full weight.", *server.warmup,
                 labels);
    }
    if (server.sessions) {
      text.Gauge("cluster_server_sessions",
                 "Live sessions routed to each server (their ids begin with its route character).",
                 Value(*server.sessions), labels);
    }
    for (const protocol::DeploymentTarget& target : snapshot.deployments) {
      bool current = false;
      for (const protocol::DeployedApp& app : record.deployed) {
        if (app.name == target.name) current = app.commit == target.commit;
      }
      text.Gauge("cluster_server_deployed_current",
                 "1 when a server runs the triad's current commit of a webapp, else 0.",
                 current ? 1 : 0, {{"server", record.id}, {"webapp", target.name}});
    }
  }
  for (const protocol::DeploymentTarget& target : snapshot.deployments) {
    text.Gauge("cluster_deployment_info", "The triad's current commit of each webapp (always 1).",
               1, {{"webapp", target.name}, {"commit", target.commit}, {"version", target.label}});
  }
}

void AddStoreMetrics(admin::MetricsText& text, const StoreStatus& store) {
  text.Gauge("cluster_store_ready", "1 when this triad server's store has caught up.",
             store.ready ? 1 : 0);
  text.Gauge("cluster_store_owning",
             "1 when this triad server owns keys: caught up, synced with every connected "
             "ready triad server, and counted by them.",
             store.owning ? 1 : 0);
  text.Gauge("cluster_store_quorum",
             "1 when this server reaches more than half of the cluster file's servers (a triad "
             "server without it serves no key); always 1 on a spoke.",
             store.quorum ? 1 : 0);
  for (const CacheStatus& cache : store.caches) {
    const admin::MetricsText::Labels labels = {{"cache", cache.name}};
    text.Gauge("cluster_cache_records", "Records stored here, by cache.",
               Value(cache.stored.records), labels);
    text.Gauge("cluster_cache_bytes", "Key and value bytes stored here, by cache.",
               Value(cache.stored.bytes), labels);
    text.Counter("cluster_cache_hits_total", "Gets this server answered as owner with a value.",
                 Value(cache.answered.hits), labels);
    text.Counter("cluster_cache_misses_total", "Gets this server answered as owner without one.",
                 Value(cache.answered.misses), labels);
  }
  const cache::CacheNodeStats& node = store.node;
  Add(text, {
                {kGauge, "cluster_cache_writes_waiting",
                 "Writes waiting for the other triad servers.", Value(node.writes_waiting)},
                {kGauge, "cluster_cache_replication_lag_seconds",
                 "How long the oldest write waiting for a replica has waited.",
                 static_cast<double>(store.replication_lag_ms) / 1000.0},
                {kCounter, "cluster_cache_replicated_total",
                 "Writes every live triad server acknowledged.", Value(node.replicated)},
                {kCounter, "cluster_cache_failed_total", "Requests answered with SERVER_ERROR.",
                 Value(node.failed)},
                {kCounter, "cluster_cache_retried_total",
                 "Requests asked again of a new owner after theirs was lost.", Value(node.retried)},
                {kCounter, "cluster_cache_answered_again_total",
                 "Retried writes answered as they were first, not applied twice.",
                 Value(node.answered_again)},
                {kCounter, "cluster_cache_applied_forgotten_early_total",
                 "Applied writes forgotten before the retry timeout (too many writes): a "
                 "retry of one would be applied again.",
                 Value(store.applied_forgotten_early)},
                {kCounter, "cluster_cache_records_pulled_total",
                 "Records taken from peers when catching up.", Value(node.records_pulled)},
            });
}

void AddMemcachedMetrics(admin::MetricsText& text, const memcache::MemcacheServerStats& served) {
  Add(text, {
                {kGauge, "cluster_memcached_connections", "Open memcached-protocol connections.",
                 Value(served.connections_current)},
                {kCounter, "cluster_memcached_requests_total",
                 "memcached-protocol requests parsed.", Value(served.requests)},
                {kCounter, "cluster_memcached_protocol_errors_total", "memcached-protocol errors.",
                 Value(served.protocol_errors)},
            });
}

}  // namespace

nlohmann::json StatusJson(const StatusSnapshot& snapshot) {
  nlohmann::json servers = nlohmann::json::array();
  for (const ServerStatus& server : snapshot.servers) servers.push_back(ServerJson(server));
  return {{"now_unix_ms", snapshot.now_unix_ms},
          {"cluster", snapshot.cluster_name},
          {"generation", snapshot.generation},
          {"view_stale_since_unix_ms", snapshot.view_stale_since_unix_ms},
          {"server",
           {{"id", snapshot.self_id},
            {"index", snapshot.self_index},
            {"incarnation", snapshot.self_incarnation}}},
          {"servers", servers},
          {"deployments", DeploymentsJson(snapshot.deployments)},
          {"deploy",
           {{"pack_bytes_sent", snapshot.counters.deploy_bytes_sent},
            {"pack_bytes_received", snapshot.counters.deploy_bytes_received}}},
          {"store", StoreJson(snapshot.store)}};
}

std::string MetricsText(const StatusSnapshot& snapshot) {
  admin::MetricsText text;
  AddPeerMetrics(text, snapshot);
  AddServerMetrics(text, snapshot);
  AddStoreMetrics(text, snapshot.store);
  if (snapshot.memcached) AddMemcachedMetrics(text, *snapshot.memcached);
  return text.str();
}

std::string RefusalCategory(const std::string& reason) {
  for (const auto& [needle, category] :
       {std::pair{"authentication failed", "key"}, std::pair{"cluster \"", "cluster_name"},
        std::pair{"differ", "config_digest"}, std::pair{"protocol version", "protocol_version"},
        std::pair{"spoke", "topology"}, std::pair{"index", "identity"}}) {
    if (reason.find(needle) != std::string::npos) return category;
  }
  return "other";
}

}  // namespace cb::daemon
