#include "sidecar/clusterctl/reports.h"

#include <cstdio>
#include <iomanip>
#include <sstream>
#include <string_view>
#include <vector>

#include "shared/config_digest.h"
#include "shared/route_codec.h"
#include "shared/server_set.h"
#include "sidecar/clusterctl/deploy_progress.h"
#include "sidecar/clusterctl/text_table.h"

namespace cb {
namespace {

std::string RoleOf(int index) { return index < kTriadSize ? "triad" : "spoke"; }

std::string ExpiryText(const CacheConfig& cache) {
  if (cache.idle_timeout.count() > 0) return "idle " + FormatDuration(cache.idle_timeout);
  if (cache.ttl.count() > 0) return "ttl " + FormatDuration(cache.ttl);
  return "never";
}

std::string AgeText(int64_t since_unix_ms, int64_t now_unix_ms) {
  if (since_unix_ms <= 0) return "-";
  const int64_t age = now_unix_ms - since_unix_ms;
  if (age < 0) return "0s";
  return FormatDuration(milliseconds(age / 1000 * 1000));
}

// The field as text, "-" when absent or null.
// Whether `object[key]` is the boolean true (false for anything malformed).
bool IsTrue(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return false;
  const auto found = object.find(key);
  return found != object.end() && found->is_boolean() && found->get<bool>();
}

std::string Text(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return "-";
  const auto found = object.find(key);
  if (found == object.end() || found->is_null()) return "-";
  if (found->is_string()) return found->get<std::string>();
  return found->dump();
}

// "0.24ms"; "-" when not measured (no connection to it) or from an older sidecar.
std::string RoundTripText(const nlohmann::json& row) {
  if (!row.is_object()) return "-";
  const auto found = row.find("rtt_ms");
  if (found == row.end() || !found->is_number()) return "-";
  char text[32];
  std::snprintf(text, sizeof text, "%.2fms", found->get<double>());
  return text;
}

int64_t Number(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return 0;
  const auto found = object.find(key);
  return found != object.end() && found->is_number_integer() ? found->get<int64_t>() : 0;
}

// A deployment and the commit the answering sidecar holds current for it.
struct CurrentDeployment {
  std::string name;  // "production/webapp/default/shop"
  std::string commit;
};

std::vector<CurrentDeployment> CurrentDeployments(const nlohmann::json& status) {
  std::vector<CurrentDeployment> deployments;
  if (!status.is_object()) return deployments;
  const auto list = status.find("deployments");
  if (list == status.end() || !list->is_array()) return deployments;
  for (const nlohmann::json& entry : *list) {
    const std::string name = Text(entry, "name");
    if (name == "-") continue;
    const std::string commit = Text(entry, "commit");
    deployments.push_back({name, commit == "-" ? "" : commit});
  }
  return deployments;
}

// A server's deployed commits, one per deployment ("<webapp>:" before each when
// there are several), each marked "(behind)" when it is not the current one and
// "(failed)" when the server reported an error for it.
std::string DeployedText(const nlohmann::json& row,
                         const std::vector<CurrentDeployment>& deployments) {
  const nlohmann::json none;
  const nlohmann::json& deployed =
      row.is_object() && row.contains("deployed") ? row["deployed"] : none;
  std::string text;
  for (const CurrentDeployment& deployment : deployments) {
    const nlohmann::json& entry = deployed.is_object() && deployed.contains(deployment.name)
                                      ? deployed[deployment.name]
                                      : none;
    const std::string commit = Text(entry, "commit");
    const std::string error = Text(entry, "error");
    if (!text.empty()) text += ", ";
    if (deployments.size() > 1) {
      text += deployment.name.substr(deployment.name.rfind('/') + 1) + ":";
    }
    text += commit == "-" || commit.empty() ? "-" : ShortCommit(commit);
    if (commit != deployment.commit) text += " (behind)";
    if (error != "-" && !error.empty()) text += " (failed)";
  }
  return text;
}

}  // namespace

std::string RenderConfigReport(const ClusterConfig& config) {
  std::ostringstream out;
  out << "cluster " << config.name << " (" << config.source << ")\n"
      << "  key file            " << config.key_file << "\n"
      << "  heartbeat           every " << FormatDuration(config.heartbeat_interval)
      << ", down after " << FormatDuration(config.heartbeat_timeout) << " of silence\n"
      << "  slow start          " << FormatDuration(config.slow_start) << "\n"
      << "  dynamic index freed after " << FormatDuration(config.dynamic_server_timeout)
      << " down\n"
      << "  digest              " << DigestConfig(config).Combined().Hex() << "\n\n";

  TextTable servers({"INDEX", "ROUTE", "ROLE", "ID", "CLUSTER ADDRESS", "HTTP ADDRESS", "WEIGHT",
                     "ADMIN", "MEMCACHED"});
  for (const ServerConfig& server : config.servers) {
    servers.Add({std::to_string(server.index), std::string(1, RouteCharForIndex(server.index)),
                 RoleOf(server.index), server.id, server.cluster_address.ToString(),
                 server.http_address.ToString(), std::to_string(server.weight),
                 server.node.admin_listen.ToString(), server.node.memcached_listen.ToString()});
  }
  servers.Print(out);
  out << "\n";

  TextTable caches({"CACHE", "EXPIRY", "MAX ENTRY"});
  for (const CacheConfig& cache : config.caches) {
    caches.Add({cache.name, ExpiryText(cache), std::to_string(cache.max_entry_bytes) + " bytes"});
  }
  caches.Print(out);
  out << "\ndeploy: stage " << config.deploy.stage << ", host " << config.deploy.host << ", remote "
      << (config.deploy.remote ? "on" : "off") << ", keep " << config.deploy.keep_versions
      << " versions\n";
  return out.str();
}

std::string RenderViewTable(const ClusterView& view, int64_t now_unix_ms) {
  std::ostringstream out;
  out << "cluster " << view.cluster_name_view() << ", generation " << view.generation
      << ", published " << AgeText(view.published_unix_ms, now_unix_ms) << " ago";
  if (view.publisher_index >= 0) {
    out << " by index " << view.publisher_index;
  }
  out << "\n";
  TextTable table({"INDEX", "ROUTE", "ROLE", "ID", "STATE", "WEIGHT", "INCARNATION", "UP FOR",
                   "HTTP ADDRESS", "VERSION"});
  for (int i = 0; i < kMaxServers; ++i) {
    const ViewServer& server = view.server(i);
    if (server.server_state() == ServerState::kAbsent) continue;
    const std::string_view version = server.deployed_version_view();
    table.Add(
        {std::to_string(i), std::string(1, RouteCharForIndex(i)), RoleOf(i),
         std::string(server.id_view()), std::string(ServerStateName(server.server_state())),
         std::to_string(server.weight), std::to_string(server.incarnation),
         server.server_state() == ServerState::kUp ? AgeText(server.up_since_unix_ms, now_unix_ms)
                                                   : "-",
         std::string(server.http_address_view()), version.empty() ? "-" : std::string(version)});
  }
  table.Print(out);
  return out.str();
}

std::string RenderStatusTable(const nlohmann::json& status, int64_t now_unix_ms) {
  std::ostringstream out;
  const nlohmann::json server =
      status.is_object() ? status.value("server", nlohmann::json{}) : nlohmann::json{};
  out << "cluster " << Text(status, "cluster") << ", as seen by " << Text(server, "id")
      << " (index " << Text(server, "index") << "), generation " << Text(status, "generation")
      << "\n";
  const std::vector<CurrentDeployment> deployments = CurrentDeployments(status);
  for (const CurrentDeployment& deployment : deployments) {
    out << deployment.name << " current "
        << (deployment.commit.empty() ? "-" : ShortCommit(deployment.commit)) << "\n";
  }
  std::vector<std::string> header = {"INDEX",  "ROUTE",       "ROLE",        "ID",
                                     "STATE",  "INCARNATION", "HEARTBEAT",   "RTT",
                                     "UP FOR", "SESSIONS",    "HTTP ADDRESS"};
  if (!deployments.empty()) header.push_back("DEPLOYED");
  TextTable table(std::move(header));
  const nlohmann::json servers =
      status.is_object() ? status.value("servers", nlohmann::json::array()) : nlohmann::json{};
  if (servers.is_array()) {
    for (const nlohmann::json& row : servers) {
      const std::string heartbeat = Text(row, "heartbeat_age_ms");
      std::vector<std::string> cells = {
          Text(row, "index"),
          Text(row, "route"),
          Text(row, "role") + (IsTrue(row, "dynamic") ? " (dynamic)" : ""),
          Text(row, "id"),
          Text(row, "state"),
          Text(row, "incarnation"),
          heartbeat == "-" ? "-" : heartbeat + "ms",
          RoundTripText(row),
          Text(row, "state") == "down" ? "-"
                                       : AgeText(Number(row, "up_since_unix_ms"), now_unix_ms),
          Text(row, "sessions"),
          Text(row, "http_address")};
      if (!deployments.empty()) cells.push_back(DeployedText(row, deployments));
      table.Add(std::move(cells));
    }
  }
  table.Print(out);
  return out.str();
}

}  // namespace cb
