#include "sidecar/clusterctl/deploy_progress.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <sstream>

#include "sidecar/clusterctl/text_table.h"

namespace cb {
namespace {

using nlohmann::json;

// The field as text; `absent` when missing, null or not a string or number.
std::string Text(const json& object, const char* key, const std::string& absent = "") {
  if (!object.is_object()) return absent;
  const auto found = object.find(key);
  if (found == object.end() || found->is_null()) return absent;
  if (found->is_string()) return found->get<std::string>();
  if (found->is_number() || found->is_boolean()) return found->dump();
  return absent;
}

const json& Field(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  const auto found = object.find(key);
  return found == object.end() ? kNull : *found;
}

int64_t Integer(const json& object, const char* key) {
  const json& value = Field(object, key);
  return value.is_number_integer() ? value.get<int64_t>() : 0;
}

std::string MiB(uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return text;
}

// The deployment's entry of a server's "deployed" object.
const json& Deployed(const json& server, const std::string& deployment) {
  return Field(Field(server, "deployed"), deployment.c_str());
}

// One event line. Names from an archive need not be UTF-8: replaced, not thrown.
std::string Line(const json& event) {
  return event.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace

std::string ShortCommit(std::string_view commit) {
  return std::string(commit.substr(0, kShortCommit));
}

std::string_view ServerOutcomeName(ServerOutcome outcome) {
  switch (outcome) {
    case ServerOutcome::kCurrent:
      return "current";
    case ServerOutcome::kFailed:
      return "failed";
    case ServerOutcome::kBehind:
      break;
  }
  return "behind";
}

int Convergence::total() const {
  return static_cast<int>(
      std::count_if(servers.begin(), servers.end(), [](const auto& s) { return s.counted(); }));
}

int Convergence::converged() const {
  return static_cast<int>(std::count_if(servers.begin(), servers.end(), [](const auto& s) {
    return s.counted() && s.outcome == ServerOutcome::kCurrent;
  }));
}

int Convergence::failed() const {
  return static_cast<int>(std::count_if(servers.begin(), servers.end(), [](const auto& s) {
    return s.counted() && s.outcome == ServerOutcome::kFailed;
  }));
}

bool Convergence::settled() const { return converged() + failed() == total(); }

Convergence ReadConvergence(const json& status, const std::string& deployment,
                            const std::string& commit,
                            const std::map<std::string, std::string>& errors_before) {
  Convergence convergence;
  const json& servers = Field(status, "servers");
  if (!servers.is_array()) return convergence;
  for (const json& row : servers) {
    if (!row.is_object()) continue;
    ServerProgress server;
    server.id = Text(row, "id", "-");
    server.state = Text(row, "state", "-");
    const json& deployed = Deployed(row, deployment);
    server.commit = Text(deployed, "commit");
    server.error = Text(deployed, "error");
    if (!commit.empty() && server.commit == commit) {
      server.outcome = ServerOutcome::kCurrent;
    } else if (!server.error.empty()) {
      const auto before = errors_before.find(server.id);
      const bool old = before != errors_before.end() && before->second == server.error;
      if (!old) server.outcome = ServerOutcome::kFailed;
    }
    convergence.servers.push_back(std::move(server));
  }
  return convergence;
}

std::map<std::string, std::string> ReadDeployErrors(const json& status,
                                                    const std::string& deployment) {
  std::map<std::string, std::string> errors;
  const json& servers = Field(status, "servers");
  if (!servers.is_array()) return errors;
  for (const json& row : servers) {
    const std::string error = Text(Deployed(row, deployment), "error");
    if (!error.empty()) errors[Text(row, "id", "-")] = error;
  }
  return errors;
}

std::vector<ServerProgress> ChangedServers(const Convergence& before, const Convergence& now) {
  std::vector<ServerProgress> changed;
  for (const ServerProgress& server : now.servers) {
    const auto previous =
        std::find_if(before.servers.begin(), before.servers.end(),
                     [&](const ServerProgress& old) { return old.id == server.id; });
    if (previous == before.servers.end() || !(*previous == server)) changed.push_back(server);
  }
  return changed;
}

std::string RenderUploadLine(uint64_t sent, uint64_t total) {
  return "uploading " + MiB(sent) + "/" + MiB(total) + " MiB";
}

std::string RenderConvergenceLine(const Convergence& convergence) {
  std::string line = "converged " + std::to_string(convergence.converged()) + "/" +
                     std::to_string(convergence.total()) + ":";
  for (const ServerProgress& server : convergence.servers) {
    if (!server.counted()) continue;
    line += " " + server.id + " ";
    switch (server.outcome) {
      case ServerOutcome::kCurrent:
        line += "\u2713";  // ✓
        break;
      case ServerOutcome::kFailed:
        line += "\u2717";  // ✗
        break;
      case ServerOutcome::kBehind:
        line += "\u2026";  // …
        break;
    }
  }
  return line;
}

std::string RenderConvergenceSummary(const Convergence& convergence, bool timed_out) {
  std::ostringstream out;
  TextTable table({"SERVER", "STATE", "COMMIT", "RESULT"});
  std::vector<std::string> missing;
  for (const ServerProgress& server : convergence.servers) {
    std::string result;
    if (!server.counted()) {
      result = "not waited for (" + server.state + ")";
    } else if (server.outcome == ServerOutcome::kFailed) {
      result = "failed: " + server.error;
    } else {
      result = std::string(ServerOutcomeName(server.outcome));
    }
    if (server.counted() && server.outcome != ServerOutcome::kCurrent) {
      missing.push_back(server.id);
    }
    table.Add({server.id, server.state, server.commit.empty() ? "-" : ShortCommit(server.commit),
               result});
  }
  table.Print(out);
  out << std::to_string(convergence.converged()) << "/" << convergence.total()
      << " servers converged";
  if (!missing.empty()) {
    out << "; not converged" << (timed_out ? " (timed out)" : "") << ":";
    for (const std::string& id : missing) out << " " << id;
  }
  out << "\n";
  return out.str();
}

std::string RenderStoredLine(const json& reply, const std::string& webapp) {
  const std::string deployment = Text(reply, "deployment", "-");
  const std::string commit = ShortCommit(Text(reply, "commit", "-"));
  const std::string to = Text(reply, "to");
  if (!to.empty()) return "rolled back " + deployment + " to " + ShortCommit(to) + " as " + commit;
  const json& unchanged = Field(reply, "unchanged");
  if (unchanged.is_boolean() && unchanged.get<bool>()) {
    return "unchanged: " + webapp + " is already " + commit;
  }
  std::string line = "stored " + deployment + " as " + commit;
  const std::string version = Text(reply, "version");
  if (!version.empty()) line += " (version " + version + ")";
  line += ", " + std::to_string(Integer(reply, "files")) + " files, " +
          MiB(static_cast<uint64_t>(std::max<int64_t>(0, Integer(reply, "bytes")))) + " MiB";
  const json& stored_on = Field(reply, "stored_on");
  if (stored_on.is_array() && !stored_on.empty()) {
    line += ", on";
    for (const json& id : stored_on) {
      if (id.is_string()) line += " " + id.get<std::string>();
    }
  }
  return line;
}

std::string UploadedEvent(uint64_t bytes) {
  return Line(json{{"event", "uploaded"}, {"bytes", bytes}});
}

std::string StoredEvent(const json& reply) {
  json event = {{"event", "stored"},
                {"deployment", Field(reply, "deployment")},
                {"commit", Field(reply, "commit")},
                {"unchanged",
                 Field(reply, "unchanged").is_boolean() ? Field(reply, "unchanged") : json(false)}};
  if (!Field(reply, "to").is_null()) event["to"] = Field(reply, "to");
  return Line(event);
}

std::string ServerEvent(const ServerProgress& server) {
  return Line(json{{"event", "server"},
                   {"id", server.id},
                   {"commit", server.commit},
                   {"state", ServerOutcomeName(server.outcome)},
                   {"server_state", server.state},
                   {"error", server.error}});
}

std::string DoneEvent(const Convergence& convergence, bool timed_out) {
  return Line(json{{"event", "done"},
                   {"converged", convergence.converged()},
                   {"total", convergence.total()},
                   {"ok", convergence.ok()},
                   {"timed_out", timed_out}});
}

std::string IsoTimeUtc(int64_t unix_seconds) {
  const std::time_t time = static_cast<std::time_t>(unix_seconds);
  std::tm parts{};
  if (gmtime_r(&time, &parts) == nullptr) return "-";
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

std::string RenderDeploymentsTable(const json& deployments) {
  std::ostringstream out;
  const json& list = Field(deployments, "deployments");
  if (!list.is_array() || list.empty()) return "no deployments\n";
  bool first = true;
  for (const json& deployment : list) {
    if (!deployment.is_object()) continue;
    if (!first) out << "\n";
    first = false;
    const std::string current = Text(deployment, "current");
    out << Text(deployment, "name", "-") << "  (current "
        << (current.empty() ? "-" : ShortCommit(current)) << ")\n";
    TextTable table({"", "COMMIT", "VERSION", "TIME (UTC)", "AUTHOR", "MESSAGE"});
    const json& versions = Field(deployment, "versions");
    if (versions.is_array()) {
      for (const json& version : versions) {
        const std::string commit = Text(version, "commit");
        const int64_t time = Integer(version, "time_unix_s");
        std::string message = Text(version, "message", "-");
        // One line per version: a multi-line message shows its first line.
        message = message.substr(0, message.find('\n'));
        table.Add({!commit.empty() && commit == current ? "*" : "",
                   commit.empty() ? "-" : ShortCommit(commit), Text(version, "version", "-"),
                   time > 0 ? IsoTimeUtc(time) : "-", Text(version, "author", "-"), message});
      }
    }
    table.Print(out, "  ");
  }
  return out.str();
}

}  // namespace cb
