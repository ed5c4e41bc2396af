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

// The 20 bytes of a 40-digit hex commit id; false for anything else.
bool ParseCommit(std::string_view hex, uint8_t (&bytes)[kViewCommitBytes]) {
  if (hex.size() != 2 * kViewCommitBytes) return false;
  const auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < kViewCommitBytes; ++i) {
    const int high = digit(hex[2 * i]);
    const int low = digit(hex[2 * i + 1]);
    if (high < 0 || low < 0) return false;
    bytes[i] = static_cast<uint8_t>(high * 16 + low);
  }
  return true;
}

std::string CommitHex(const uint8_t (&bytes)[kViewCommitBytes]) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * kViewCommitBytes);
  for (uint8_t byte : bytes) {
    hex.push_back(kDigits[byte >> 4]);
    hex.push_back(kDigits[byte & 0xf]);
  }
  return hex;
}

bool IsZero(const uint8_t (&bytes)[kViewCommitBytes]) {
  for (uint8_t byte : bytes) {
    if (byte != 0) return false;
  }
  return true;
}

Status BadCommit(std::string_view what, std::string_view hex) {
  return Status::InvalidArgument(std::string(what) + " \"" + std::string(hex.substr(0, 64)) +
                                 "\" is not a commit id (40 hex digits)");
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

std::string_view ViewDeployment::name_view() const { return FieldView(name); }
std::string_view ViewDeployment::commit_view() const { return FieldView(commit); }

Status ViewDeployment::SetName(std::string_view text) {
  return SetField(name, text, "deployment name");
}

Status ViewDeployment::SetCommit(std::string_view hex) {
  uint8_t bytes[kViewCommitBytes] = {};
  if (!hex.empty() && !ParseCommit(hex, bytes)) return BadCommit("deployment commit", hex);
  std::memset(commit, 0, sizeof(commit));
  current_servers = 0;
  if (hex.empty()) return Status::Ok();
  const std::string lower = CommitHex(bytes);
  std::memcpy(commit, lower.data(), lower.size());
  for (int i = 0; i < kMaxServers; ++i) {
    if (std::memcmp(server_commits[i], bytes, kViewCommitBytes) == 0) {
      current_servers |= uint64_t{1} << i;
    }
  }
  return Status::Ok();
}

std::string ViewDeployment::ServerCommitHex(int index) const {
  if (index < 0 || index >= kMaxServers || IsZero(server_commits[index])) return {};
  return CommitHex(server_commits[index]);
}

Status ViewDeployment::SetServerCommit(int index, std::string_view hex) {
  if (index < 0 || index >= kMaxServers) {
    return Status::InvalidArgument("deployment: server index " + std::to_string(index) +
                                   " out of range");
  }
  uint8_t bytes[kViewCommitBytes] = {};
  if (!hex.empty() && !ParseCommit(hex, bytes)) return BadCommit("server commit", hex);
  std::memcpy(server_commits[index], bytes, kViewCommitBytes);
  const uint64_t bit = uint64_t{1} << index;
  reported_servers &= ~bit;
  current_servers &= ~bit;
  if (hex.empty()) return Status::Ok();
  reported_servers |= bit;
  if (CommitHex(bytes) == commit_view()) current_servers |= bit;
  return Status::Ok();
}

ServerSet ClusterView::ServersIn(ServerState wanted) const {
  ServerSet set;
  for (int i = 0; i < kMaxServers; ++i) {
    if (servers[i].state == static_cast<uint8_t>(wanted)) set.Add(i);
  }
  return set;
}

const ViewDeployment* ClusterView::FindDeployment(std::string_view webapp) const {
  const ViewDeployment* found = nullptr;
  for (const ViewDeployment& deployment : deployments) {
    if (!IsTerminated(deployment.name) || !deployment.used()) continue;
    const std::string_view name = deployment.name_view();
    bool matches = webapp.empty() || name == webapp;
    if (!matches && webapp.find('/') == std::string_view::npos) {
      const std::size_t slash = name.rfind('/');
      matches = slash != std::string_view::npos && name.substr(slash + 1) == webapp;
    }
    if (!matches) continue;
    if (found != nullptr) return nullptr;  // ambiguous
    found = &deployment;
  }
  return found;
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
  for (std::size_t i = 0; i < kViewMaxDeployments; ++i) {
    const ViewDeployment& d = deployments[i];
    const std::string slot = "view: deployment " + std::to_string(i) + ": ";
    if (!IsTerminated(d.name) || !IsTerminated(d.commit)) {
      return Status::InvalidArgument(slot + "unterminated string");
    }
    uint8_t bytes[kViewCommitBytes] = {};
    if (!d.commit_view().empty() && !ParseCommit(d.commit_view(), bytes)) {
      return Status::InvalidArgument(slot + "commit is not 40 hex digits");
    }
  }
  return Status::Ok();
}

}  // namespace cb
