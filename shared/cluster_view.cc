#include "shared/cluster_view.h"

#include <cstring>
#include <string>

namespace cb {
namespace {

template <std::size_t N>
std::string_view FieldView(const char (&field)[N]) {
  return std::string_view(field, strnlen(field, N));
}

template <std::size_t N>
bool IsTerminated(const char (&field)[N]) {
  return std::memchr(field, '\0', N) != nullptr;
}

template <std::size_t N>
Status SetField(char (&field)[N], std::string_view text, std::string_view what) {
  if (text.size() >= N) {
    return Status::TooLarge(std::string(what) + " \"" + std::string(text) + "\" is longer than " +
                            std::to_string(N - 1) + " bytes");
  }
  if (text.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument(std::string(what) + " holds a NUL byte");
  }
  std::memset(field, 0, N);
  std::memcpy(field, text.data(), text.size());
  return Status::Ok();
}

}  // namespace

std::string_view ServerStateName(ServerState state) {
  switch (state) {
    case ServerState::kAbsent:
      return "absent";
    case ServerState::kUp:
      return "up";
    case ServerState::kDraining:
      return "draining";
    case ServerState::kDown:
      return "down";
  }
  return "invalid";
}

std::string_view ViewServer::id_view() const { return FieldView(id); }
std::string_view ViewServer::cluster_address_view() const { return FieldView(cluster_address); }
std::string_view ViewServer::http_address_view() const { return FieldView(http_address); }
std::string_view ViewServer::deployed_version_view() const { return FieldView(deployed_version); }

Status ViewServer::SetId(std::string_view text) { return SetField(id, text, "server id"); }
Status ViewServer::SetClusterAddress(std::string_view text) {
  return SetField(cluster_address, text, "cluster address");
}
Status ViewServer::SetHttpAddress(std::string_view text) {
  return SetField(http_address, text, "HTTP address");
}
Status ViewServer::SetDeployedVersion(std::string_view text) {
  return SetField(deployed_version, text, "deployed version");
}

std::string_view ClusterView::cluster_name_view() const { return FieldView(cluster_name); }
Status ClusterView::SetClusterName(std::string_view text) {
  return SetField(cluster_name, text, "cluster name");
}

ServerSet ClusterView::ServersIn(ServerState wanted) const {
  ServerSet set;
  for (int i = 0; i < kMaxServers; ++i) {
    if (servers[i].state == static_cast<uint8_t>(wanted)) set.Add(i);
  }
  return set;
}

Status ClusterView::Validate() const {
  if (!IsTerminated(cluster_name))
    return Status::InvalidArgument("view: cluster name unterminated");
  if (publisher_index < -1 || publisher_index >= kMaxServers) {
    return Status::InvalidArgument("view: publisher index out of range");
  }
  for (int i = 0; i < kMaxServers; ++i) {
    const ViewServer& s = servers[i];
    const std::string slot = "view: slot " + std::to_string(i) + ": ";
    if (s.state > static_cast<uint8_t>(ServerState::kDown)) {
      return Status::InvalidArgument(slot + "unknown state " + std::to_string(s.state));
    }
    if (!IsTerminated(s.id) || !IsTerminated(s.cluster_address) || !IsTerminated(s.http_address) ||
        !IsTerminated(s.deployed_version)) {
      return Status::InvalidArgument(slot + "unterminated string");
    }
    if (s.server_state() == ServerState::kAbsent) continue;
    if (s.index != i)
      return Status::InvalidArgument(slot + "holds index " + std::to_string(s.index));
    if (s.id[0] == '\0') return Status::InvalidArgument(slot + "present server without an id");
  }
  return Status::Ok();
}

}  // namespace cb
