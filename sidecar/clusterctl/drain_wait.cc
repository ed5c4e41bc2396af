#include "sidecar/clusterctl/drain_wait.h"

namespace cb {
namespace {

std::string Sessions(uint64_t count) {
  return std::to_string(count) + (count == 1 ? " live session" : " live sessions");
}

}  // namespace

DrainObservation ObserveDrain(const nlohmann::json& status, std::string_view server_id) {
  DrainObservation observation;
  if (!status.is_object() || !status.contains("servers") || !status["servers"].is_array()) {
    return observation;
  }
  for (const nlohmann::json& server : status["servers"]) {
    if (!server.is_object()) continue;
    const auto id = server.find("id");
    if (id == server.end() || !id->is_string() || id->get<std::string>() != server_id) continue;
    observation.known = true;
    const auto state = server.find("state");
    observation.state =
        state != server.end() && state->is_string() ? state->get<std::string>() : "";
    if (auto sessions = server.find("sessions");
        sessions != server.end() && sessions->is_number_integer() && *sessions >= 0) {
      observation.sessions = sessions->get<uint64_t>();
    }
  }
  return observation;
}

int WaitForDrain(std::string_view server_id, std::chrono::milliseconds timeout,
                 std::chrono::milliseconds interval, const DrainWaitHooks& hooks, std::ostream& out,
                 std::ostream& err) {
  const std::string id(server_id);
  const auto deadline = hooks.now() + timeout;
  std::optional<uint64_t> shown;
  bool said_unknown = false;
  // A spoke forwards the drain to the triad and sees it only when the view comes
  // back: "up" before the first "draining" is the drain on its way.
  bool seen_draining = false;
  bool said_pending = false;
  std::string last_error;
  while (true) {
    Result<nlohmann::json> status = hooks.fetch_status();
    if (!status.ok()) {
      last_error = status.status().message();
    } else {
      last_error.clear();
      const DrainObservation seen = ObserveDrain(*status, id);
      if (!seen.known) {
        err << "clusterctl: " << id << ": no such server in the sidecar's status\n";
        return 1;
      }
      if (seen.state == "down") {
        out << id << ": down; its sessions go to their backups\n";
        return 0;
      }
      if (seen.state == "up" && !seen_draining) {
        if (!said_pending) out << id << ": waiting for the drain to reach the view\n";
        said_pending = true;
      } else if (seen.state != "draining") {
        err << "clusterctl: " << id << " is " << seen.state
            << " again (enabled while waiting): stopped waiting\n";
        return 1;
      } else if (seen_draining = true; !seen.sessions) {
        if (!said_unknown) out << id << ": waiting for the triad's session count\n";
        said_unknown = true;
      } else if (*seen.sessions == 0) {
        out << id << ": drained, no live session left\n";
        return 0;
      } else if (shown != seen.sessions) {
        out << id << ": " << Sessions(*seen.sessions) << "\n";
        out.flush();
        shown = seen.sessions;
      }
    }
    if (hooks.now() >= deadline) {
      if (!last_error.empty()) {
        err << "clusterctl: " << id << ": timed out; the last status request failed: " << last_error
            << "\n";
        return 1;
      }
      err << "clusterctl: " << id << ": timed out with "
          << (shown ? Sessions(*shown) : std::string("an unknown number of sessions"))
          << " remaining\n";
      return kDrainWaitTimedOut;
    }
    hooks.sleep(interval);
  }
}

}  // namespace cb
