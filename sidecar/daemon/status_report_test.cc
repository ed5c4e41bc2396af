#include "sidecar/daemon/status_report.h"

#include <gtest/gtest.h>

#include <string>

namespace cb::daemon {
namespace {

ServerStatus Server(int index, const std::string& id, ServerState state, bool connected) {
  ServerStatus server;
  server.record.index = index;
  server.record.id = id;
  server.record.cluster_address = "127.0.0.1:680" + std::to_string(index);
  server.record.http_address = "127.0.0.1:808" + std::to_string(index);
  server.record.weight = 100;
  server.record.incarnation = 1000 + static_cast<uint64_t>(index);
  server.record.alive = state != ServerState::kDown;
  server.record.deployed = {{"production/webapp/default/shop", std::string(40, 'c'), ""}};
  server.state = state;
  server.up_since_unix_ms = server.record.alive ? 5000 : 0;
  server.connected = connected;
  if (connected) server.heartbeat_age_ms = 120;
  return server;
}

// A triad server (index 1) that sees another triad server up, itself, and a
// dynamic spoke down; two caches, one of them used.
StatusSnapshot TriadSnapshot() {
  StatusSnapshot snapshot;
  snapshot.cluster_name = "demo";
  snapshot.generation = 7;
  snapshot.self_index = 1;
  snapshot.self_id = "app-b";
  snapshot.self_incarnation = 1001;
  snapshot.now_unix_ms = 9000;
  snapshot.servers.push_back(Server(0, "app-a", ServerState::kUp, true));
  snapshot.servers.back().state_since_unix_ms = 5000;
  snapshot.servers.back().round_trip_ms = 0.25;
  snapshot.servers.back().warmup = 0.5;
  snapshot.servers.back().sessions = 12;
  snapshot.servers.push_back(Server(1, "app-b", ServerState::kDraining, false));
  snapshot.servers.back().state_since_unix_ms = 8000;
  snapshot.servers.back().sessions = 3;
  snapshot.deployments.push_back(
      {"production/webapp/default/shop", std::string(40, 'c'), 77, "1.2"});
  ServerStatus dynamic = Server(3, "dyn-a", ServerState::kDown, false);
  dynamic.record.deployed = {{"production/webapp/default/shop", std::string(40, 'd'), ""}};
  dynamic.record.dynamic = true;
  dynamic.record.weight = 50;
  snapshot.servers.push_back(dynamic);
  snapshot.counters.heartbeats_sent = 10;
  snapshot.counters.heartbeats_received = 9;
  snapshot.counters.heartbeats_missed = 1;
  snapshot.counters.view_changes = 4;
  snapshot.counters.connection_resets = 2;
  snapshot.counters.refusals = {{"key", 3}, {"join", 1}};
  StoreStatus& store = snapshot.store;
  store.stores_records = true;
  store.ready = true;
  store.synced = true;
  store.owning = false;
  store.quorum = true;
  store.voters_reached = 2;
  store.ready_triad.Add(0);
  store.ready_triad.Add(1);
  store.caches.push_back({"session", {5, 1, 300, 0}, {7, 2}});
  store.caches.push_back({"fragments", {}, {}});
  store.node.writes_waiting = 1;
  store.node.replicated = 20;
  store.node.forwarded = 6;
  store.node.failed = 4;
  store.node.retried = 3;
  store.node.answered_again = 1;
  store.node.buckets_pulled = 2;
  store.node.records_pulled = 11;
  store.node.spoke_cache_bytes = 4096;
  store.replication_lag_ms = 1500;
  store.applied_forgotten_early = 5;
  memcache::MemcacheServerStats memcached;
  memcached.connections_current = 2;
  memcached.requests = 40;
  memcached.protocol_errors = 1;
  snapshot.memcached = memcached;
  return snapshot;
}

// The expected texts were checked against the rendering of the Sidecar before it
// worked from a snapshot, then grew the per-server figures of the admin page
// (issue 14): nothing that was there may change.
TEST(StatusReportTest, StatusJsonOfATriadServer) {
  EXPECT_EQ(StatusJson(TriadSnapshot()).dump(2), R"({
  "cluster": "demo",
  "deploy": {
    "pack_bytes_received": 0,
    "pack_bytes_sent": 0
  },
  "deployments": [
    {
      "commit": "cccccccccccccccccccccccccccccccccccccccc",
      "name": "production/webapp/default/shop",
      "version": "1.2"
    }
  ],
  "generation": 7,
  "now_unix_ms": 9000,
  "server": {
    "id": "app-b",
    "incarnation": 1001,
    "index": 1
  },
  "servers": [
    {
      "cluster_address": "127.0.0.1:6800",
      "connected": true,
      "deployed": {
        "production/webapp/default/shop": {
          "commit": "cccccccccccccccccccccccccccccccccccccccc",
          "error": ""
        }
      },
      "dynamic": false,
      "heartbeat_age_ms": 120,
      "http_address": "127.0.0.1:8080",
      "id": "app-a",
      "incarnation": 1000,
      "index": 0,
      "role": "triad",
      "route": "A",
      "rtt_ms": 0.25,
      "sessions": 12,
      "state": "up",
      "state_since_unix_ms": 5000,
      "up_since_unix_ms": 5000,
      "warmup": 0.5,
      "weight": 100
    },
    {
      "cluster_address": "127.0.0.1:6801",
      "connected": false,
      "deployed": {
        "production/webapp/default/shop": {
          "commit": "cccccccccccccccccccccccccccccccccccccccc",
          "error": ""
        }
      },
      "dynamic": false,
      "heartbeat_age_ms": null,
      "http_address": "127.0.0.1:8081",
      "id": "app-b",
      "incarnation": 1001,
      "index": 1,
      "role": "triad",
      "route": "B",
      "rtt_ms": null,
      "sessions": 3,
      "state": "draining",
      "state_since_unix_ms": 8000,
      "up_since_unix_ms": 5000,
      "warmup": null,
      "weight": 100
    },
    {
      "cluster_address": "127.0.0.1:6803",
      "connected": false,
      "deployed": {
        "production/webapp/default/shop": {
          "commit": "dddddddddddddddddddddddddddddddddddddddd",
          "error": ""
        }
      },
      "dynamic": true,
      "heartbeat_age_ms": null,
      "http_address": "127.0.0.1:8083",
      "id": "dyn-a",
      "incarnation": 1003,
      "index": 3,
      "role": "spoke",
      "route": "D",
      "rtt_ms": null,
      "sessions": null,
      "state": "down",
      "state_since_unix_ms": 0,
      "up_since_unix_ms": 0,
      "warmup": null,
      "weight": 50
    }
  ],
  "store": {
    "answered_again": 1,
    "applied_forgotten_early": 5,
    "buckets_pulled": 2,
    "caches": [
      {
        "bytes": 300,
        "hits": 7,
        "misses": 2,
        "name": "session",
        "records": 5,
        "tombstones": 1
      },
      {
        "bytes": 0,
        "hits": 0,
        "misses": 0,
        "name": "fragments",
        "records": 0,
        "tombstones": 0
      }
    ],
    "durability": "replicated",
    "failed": 4,
    "forwarded": 6,
    "owning": false,
    "quorum": true,
    "ready": true,
    "ready_triad": [
      0,
      1
    ],
    "records_pulled": 11,
    "replicated": 20,
    "replication_lag_ms": 1500,
    "retried": 3,
    "servers_reached": 2,
    "spoke_cache_bytes": 4096,
    "stores_records": true,
    "synced": true,
    "writes_waiting": 1
  },
  "view_stale_since_unix_ms": 0
})");
}

TEST(StatusReportTest, MetricsTextOfATriadServer) {
  EXPECT_EQ(MetricsText(TriadSnapshot()),
            R"(# HELP cluster_peers_up Other servers this sidecar sees up or draining.
# TYPE cluster_peers_up gauge
cluster_peers_up 1
# HELP cluster_peers_down Other servers this sidecar sees down.
# TYPE cluster_peers_down gauge
cluster_peers_down 1
# HELP cluster_heartbeats_sent_total Heartbeats sent to peers.
# TYPE cluster_heartbeats_sent_total counter
cluster_heartbeats_sent_total 10
# HELP cluster_heartbeats_received_total Heartbeats received from peers.
# TYPE cluster_heartbeats_received_total counter
cluster_heartbeats_received_total 9
# HELP cluster_heartbeats_missed_total Peers marked down because their heartbeats stopped.
# TYPE cluster_heartbeats_missed_total counter
cluster_heartbeats_missed_total 1
# HELP cluster_view_changes_total Changes of this sidecar's view.
# TYPE cluster_view_changes_total counter
cluster_view_changes_total 4
# HELP cluster_connection_resets_total Peer connections lost to an error.
# TYPE cluster_connection_resets_total counter
cluster_connection_resets_total 2
# HELP cluster_deploy_pack_bytes_sent_total Bytes of Git packs sent to peers (deploys and catch-up).
# TYPE cluster_deploy_pack_bytes_sent_total counter
cluster_deploy_pack_bytes_sent_total 0
# HELP cluster_deploy_pack_bytes_received_total Bytes of Git packs received from peers.
# TYPE cluster_deploy_pack_bytes_received_total counter
cluster_deploy_pack_bytes_received_total 0
# HELP cluster_handshake_refusals_total Peer connections refused, by reason.
# TYPE cluster_handshake_refusals_total counter
cluster_handshake_refusals_total{reason="join"} 1
cluster_handshake_refusals_total{reason="key"} 3
# HELP cluster_view_generation Generation of this sidecar's view.
# TYPE cluster_view_generation gauge
cluster_view_generation 7
# HELP cluster_view_stale_seconds How long this spoke has been cut off from the whole triad, keeping its view as it was; 0 when it is not.
# TYPE cluster_view_stale_seconds gauge
cluster_view_stale_seconds 0
# HELP cluster_server_info Each known server: its role, route character and whether it is dynamic (always 1).
# TYPE cluster_server_info gauge
cluster_server_info{server="app-a",role="triad",route="A",dynamic="false"} 1
cluster_server_info{server="app-b",role="triad",route="B",dynamic="false"} 1
cluster_server_info{server="dyn-a",role="spoke",route="D",dynamic="true"} 1
# HELP cluster_server_state 1 for the state each server is in, as this sidecar sees it.
# TYPE cluster_server_state gauge
cluster_server_state{server="app-a",state="up"} 1
cluster_server_state{server="app-a",state="draining"} 0
cluster_server_state{server="app-a",state="down"} 0
cluster_server_state{server="app-b",state="up"} 0
cluster_server_state{server="app-b",state="draining"} 1
cluster_server_state{server="app-b",state="down"} 0
cluster_server_state{server="dyn-a",state="up"} 0
cluster_server_state{server="dyn-a",state="draining"} 0
cluster_server_state{server="dyn-a",state="down"} 1
# HELP cluster_server_state_seconds How long each server has been in its state.
# TYPE cluster_server_state_seconds gauge
cluster_server_state_seconds{server="app-a"} 4
cluster_server_state_seconds{server="app-b"} 1
# HELP cluster_server_incarnation Each server's incarnation (grows at every start).
# TYPE cluster_server_incarnation gauge
cluster_server_incarnation{server="app-a"} 1000
cluster_server_incarnation{server="app-b"} 1001
cluster_server_incarnation{server="dyn-a"} 1003
# HELP cluster_server_heartbeat_rtt_seconds Heartbeat round trip to each connected server.
# TYPE cluster_server_heartbeat_rtt_seconds gauge
cluster_server_heartbeat_rtt_seconds{server="app-a"} 0.00025
# HELP cluster_server_warmup_ratio Slow-start progress of each up server: 1 at full weight.
# TYPE cluster_server_warmup_ratio gauge
cluster_server_warmup_ratio{server="app-a"} 0.5
# HELP cluster_server_sessions Live sessions routed to each server (their ids begin with its route character).
# TYPE cluster_server_sessions gauge
cluster_server_sessions{server="app-a"} 12
cluster_server_sessions{server="app-b"} 3
# HELP cluster_server_deployed_current 1 when a server runs the triad's current commit of a webapp, else 0.
# TYPE cluster_server_deployed_current gauge
cluster_server_deployed_current{server="app-a",webapp="production/webapp/default/shop"} 1
cluster_server_deployed_current{server="app-b",webapp="production/webapp/default/shop"} 1
cluster_server_deployed_current{server="dyn-a",webapp="production/webapp/default/shop"} 0
# HELP cluster_deployment_info The triad's current commit of each webapp (always 1).
# TYPE cluster_deployment_info gauge
cluster_deployment_info{webapp="production/webapp/default/shop",commit="cccccccccccccccccccccccccccccccccccccccc",version="1.2"} 1
# HELP cluster_store_ready 1 when this triad server's store has caught up.
# TYPE cluster_store_ready gauge
cluster_store_ready 1
# HELP cluster_store_owning 1 when this triad server owns keys: caught up, synced with every connected ready triad server, and counted by them.
# TYPE cluster_store_owning gauge
cluster_store_owning 0
# HELP cluster_store_quorum 1 when this server reaches more than half of the cluster file's servers (a triad server without it serves no key); always 1 on a spoke.
# TYPE cluster_store_quorum gauge
cluster_store_quorum 1
# HELP cluster_cache_records Records stored here, by cache.
# TYPE cluster_cache_records gauge
cluster_cache_records{cache="session"} 5
cluster_cache_records{cache="fragments"} 0
# HELP cluster_cache_bytes Key and value bytes stored here, by cache.
# TYPE cluster_cache_bytes gauge
cluster_cache_bytes{cache="session"} 300
cluster_cache_bytes{cache="fragments"} 0
# HELP cluster_cache_hits_total Gets this server answered as owner with a value.
# TYPE cluster_cache_hits_total counter
cluster_cache_hits_total{cache="session"} 7
cluster_cache_hits_total{cache="fragments"} 0
# HELP cluster_cache_misses_total Gets this server answered as owner without one.
# TYPE cluster_cache_misses_total counter
cluster_cache_misses_total{cache="session"} 2
cluster_cache_misses_total{cache="fragments"} 0
# HELP cluster_cache_writes_waiting Writes waiting for the other triad servers.
# TYPE cluster_cache_writes_waiting gauge
cluster_cache_writes_waiting 1
# HELP cluster_cache_replication_lag_seconds How long the oldest write waiting for a replica has waited.
# TYPE cluster_cache_replication_lag_seconds gauge
cluster_cache_replication_lag_seconds 1.5
# HELP cluster_cache_replicated_total Writes every live triad server acknowledged.
# TYPE cluster_cache_replicated_total counter
cluster_cache_replicated_total 20
# HELP cluster_cache_failed_total Requests answered with SERVER_ERROR.
# TYPE cluster_cache_failed_total counter
cluster_cache_failed_total 4
# HELP cluster_cache_retried_total Requests asked again of a new owner after theirs was lost.
# TYPE cluster_cache_retried_total counter
cluster_cache_retried_total 3
# HELP cluster_cache_answered_again_total Retried writes answered as they were first, not applied twice.
# TYPE cluster_cache_answered_again_total counter
cluster_cache_answered_again_total 1
# HELP cluster_cache_applied_forgotten_early_total Applied writes forgotten before the retry timeout (too many writes): a retry of one would be applied again.
# TYPE cluster_cache_applied_forgotten_early_total counter
cluster_cache_applied_forgotten_early_total 5
# HELP cluster_cache_records_pulled_total Records taken from peers when catching up.
# TYPE cluster_cache_records_pulled_total counter
cluster_cache_records_pulled_total 11
# HELP cluster_memcached_connections Open memcached-protocol connections.
# TYPE cluster_memcached_connections gauge
cluster_memcached_connections 2
# HELP cluster_memcached_requests_total memcached-protocol requests parsed.
# TYPE cluster_memcached_requests_total counter
cluster_memcached_requests_total 40
# HELP cluster_memcached_protocol_errors_total memcached-protocol errors.
# TYPE cluster_memcached_protocol_errors_total counter
cluster_memcached_protocol_errors_total 1
)");
}

TEST(StatusReportTest, NothingToCountIsEmptyInStatusAndAbsentFromMetrics) {
  StatusSnapshot snapshot;
  snapshot.cluster_name = "demo";
  snapshot.self_index = 4;
  snapshot.self_id = "app-e";
  snapshot.servers.push_back(Server(4, "app-e", ServerState::kUp, false));
  const nlohmann::json status = StatusJson(snapshot);
  EXPECT_EQ(status["servers"][0]["role"], "spoke");
  EXPECT_TRUE(status["servers"][0]["heartbeat_age_ms"].is_null());
  EXPECT_EQ(status["store"]["stores_records"], false);
  EXPECT_EQ(status["store"]["ready_triad"], nlohmann::json::array());
  EXPECT_EQ(status["store"]["caches"], nlohmann::json::array());

  const std::string metrics = MetricsText(snapshot);
  EXPECT_NE(metrics.find("\ncluster_peers_up 0\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\ncluster_peers_down 0\n"), std::string::npos) << metrics;
  for (const char* absent :
       {"cluster_handshake_refusals_total", "cluster_cache_hits_total", "cluster_memcached"}) {
    EXPECT_EQ(metrics.find(absent), std::string::npos) << absent;
  }
}

TEST(StatusReportTest, RefusalCategories) {
  EXPECT_EQ(RefusalCategory("authentication failed: wrong key?"), "key");
  EXPECT_EQ(RefusalCategory("peer refused: cluster \"b\" is not \"a\""), "cluster_name");
  EXPECT_EQ(RefusalCategory("cluster files differ in [server]"), "config_digest");
  EXPECT_EQ(RefusalCategory("protocol version 2, this side speaks 1"), "protocol_version");
  EXPECT_EQ(RefusalCategory("spokes do not connect to each other"), "topology");
  EXPECT_EQ(RefusalCategory("server \"x\" does not hold index 4"), "identity");
  EXPECT_EQ(RefusalCategory("handshake timeout"), "other");
}

}  // namespace
}  // namespace cb::daemon
