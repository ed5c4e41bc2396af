#include "sidecar/membership/membership.h"

#include <algorithm>

namespace cb::membership {

Membership::Membership(const ClusterConfig& config, int self_index, uint64_t self_incarnation,
                       int64_t now_unix_ms)
    : cluster_name_(config.name),
      static_count_(static_cast<int>(config.servers.size())),
      self_index_(self_index),
      heartbeat_timeout_ms_(config.heartbeat_timeout.count()),
      slow_start_ms_(static_cast<uint32_t>(config.slow_start.count())) {
  for (const ServerConfig& server : config.servers) {
    protocol::ServerRecord& record = records_[Slot(server.index)];
    record.index = server.index;
    record.id = server.id;
    record.cluster_address = server.cluster_address.ToString();
    record.http_address = server.http_address.ToString();
    record.weight = server.weight;
  }
  protocol::ServerRecord& self = records_[Slot(self_index)];
  self.alive = true;
  self.incarnation = self_incarnation;
  self.up_since_unix_ms = now_unix_ms;
}

ServerSet Membership::PeersToDial() const {
  ServerSet peers;
  const int first = is_triad(self_index_) ? self_index_ + 1 : 0;
  for (int index = first; index < 3; ++index) {
    if (Known(index)) peers.Add(index);
  }
  return peers;
}

bool Membership::MayConnect(int index) const {
  return index >= 0 && index < kMaxServers && index != self_index_ && Known(index) &&
         (is_triad(index) || is_triad(self_index_));
}

int Membership::IndexOf(std::string_view server_id) const {
  for (int index = 0; index < kMaxServers; ++index) {
    if (records_[Slot(index)].id == server_id && !server_id.empty()) return index;
  }
  return -1;
}

bool Membership::Changed() {
  ++generation_;
  return true;
}

bool Membership::SetAlive(int index, bool alive, uint64_t incarnation, int64_t now_unix_ms) {
  protocol::ServerRecord& record = records_[Slot(index)];
  if (record.alive == alive && record.incarnation == incarnation) return false;
  // A new incarnation is a restart: its warm-up starts again.
  if (alive && (!record.alive || record.incarnation != incarnation)) {
    record.up_since_unix_ms = now_unix_ms;
  }
  record.alive = alive;
  record.incarnation = incarnation;
  if (!alive) record.up_since_unix_ms = 0;
  return Changed();
}

bool Membership::OnPeerAuthenticated(int index, uint64_t peer_incarnation, int64_t now_unix_ms) {
  if (!MayConnect(index)) return false;
  connected_.Add(index);
  last_heard_[Slot(index)] = now_unix_ms;
  const uint64_t incarnation = std::max(records_[Slot(index)].incarnation, peer_incarnation);
  return SetAlive(index, true, incarnation, now_unix_ms);
}

bool Membership::OnPeerClosed(int index, int64_t now_unix_ms) {
  if (!connected_.Contains(index)) return false;
  connected_.Remove(index);
  last_heard_[Slot(index)] = 0;
  return SetAlive(index, false, records_[Slot(index)].incarnation, now_unix_ms);
}

bool Membership::OnHeartbeat(int index, const protocol::Heartbeat& heartbeat, int64_t now_unix_ms) {
  if (!connected_.Contains(index)) return false;
  last_heard_[Slot(index)] = now_unix_ms;
  const uint64_t incarnation = std::max(records_[Slot(index)].incarnation, heartbeat.incarnation);
  return SetAlive(index, true, incarnation, now_unix_ms);
}

std::vector<int> Membership::Tick(int64_t now_unix_ms) {
  std::vector<int> silent;
  connected_.ForEach([&](int index) {
    if (now_unix_ms - last_heard_[Slot(index)] > heartbeat_timeout_ms_) silent.push_back(index);
  });
  for (int index : silent) OnPeerClosed(index, now_unix_ms);
  return silent;
}

bool Membership::MergeRecord(const protocol::ServerRecord& remote, int64_t now_unix_ms) {
  const int index = remote.index;
  protocol::ServerRecord& local = records_[Slot(index)];
  bool changed = false;

  if (remote.id.size() > kMaxIdLength || remote.cluster_address.size() > kMaxAddressLength ||
      remote.http_address.size() > kMaxAddressLength ||
      remote.deployed_version.size() >= kViewVersionCapacity) {
    return false;  // cannot be published; a peer of ours never sends it
  }
  if (index >= static_count_ && remote.incarnation >= local.incarnation && !remote.id.empty() &&
      (local.id != remote.id || local.cluster_address != remote.cluster_address ||
       local.http_address != remote.http_address || local.weight != remote.weight)) {
    // A dynamic server's identity comes from the triad that admitted it.
    local.index = index;
    local.id = remote.id;
    local.cluster_address = remote.cluster_address;
    local.http_address = remote.http_address;
    local.weight = remote.weight;
    local.dynamic = remote.dynamic;
    changed = Changed();
  }
  if (local.id.empty()) return changed;

  if (remote.admin_version > local.admin_version ||
      (remote.admin_version == local.admin_version && remote.draining && !local.draining)) {
    local.admin_version = remote.admin_version;
    if (local.draining != remote.draining) {
      local.draining = remote.draining;
      changed = Changed();
    }
  }

  if (index == self_index_) {
    // Nobody else decides that this server is down: outbid the rumour.
    if (!remote.alive && remote.incarnation >= local.incarnation) {
      local.incarnation = remote.incarnation + 1;
      changed = Changed();
    }
    return changed;
  }
  if (connected_.Contains(index)) return changed;  // our own observation stands
  // Every server connects to every triad server, so a triad server sees for itself
  // whether anyone is up; hearsay could only be stale (its source may be gone).
  if (is_triad(self_index_)) return changed;

  const bool newer = remote.incarnation > local.incarnation;
  const bool same_but_down =
      remote.incarnation == local.incarnation && !remote.alive && local.alive;
  if (newer || same_but_down) {
    const bool restarted = newer && remote.alive;
    local.alive = remote.alive;
    local.incarnation = remote.incarnation;
    local.up_since_unix_ms =
        remote.alive
            ? (restarted && remote.up_since_unix_ms <= 0 ? now_unix_ms : remote.up_since_unix_ms)
            : 0;
    changed = Changed();
  }
  return changed;
}

bool Membership::OnViewUpdate(int from_index, const protocol::ViewUpdate& update,
                              int64_t now_unix_ms) {
  // Only the triad speaks for the cluster.
  if (!is_triad(from_index)) return false;
  bool changed = false;
  for (const protocol::ServerRecord& remote : update.servers) {
    if (remote.index < 0 || remote.index >= kMaxServers) continue;
    changed = MergeRecord(remote, now_unix_ms) || changed;
  }
  return changed;
}

Status Membership::SetDraining(std::string_view server_id, bool draining) {
  const int index = IndexOf(server_id);
  if (index < 0) return Status::NotFound("unknown server \"" + std::string(server_id) + "\"");
  protocol::ServerRecord& record = records_[Slot(index)];
  ++record.admin_version;
  record.draining = draining;
  Changed();
  return Status::Ok();
}

ClusterView Membership::ToView(int64_t now_unix_ms) const {
  ClusterView view;
  view.generation = generation_;
  view.published_unix_ms = now_unix_ms;
  view.slow_start_ms = slow_start_ms_;
  view.publisher_index = self_index_;
  (void)view.SetClusterName(cluster_name_);  // validated by the config: it fits
  for (int index = 0; index < kMaxServers; ++index) {
    const protocol::ServerRecord& record = records_[Slot(index)];
    if (record.id.empty()) continue;
    ViewServer& server = view.server(index);
    server.index = static_cast<uint8_t>(index);
    server.state = static_cast<uint8_t>(!record.alive     ? ServerState::kDown
                                        : record.draining ? ServerState::kDraining
                                                          : ServerState::kUp);
    server.flags = record.dynamic ? ViewServer::kFlagDynamic : 0;
    server.weight = record.weight;
    server.incarnation = record.incarnation;
    server.up_since_unix_ms = record.alive ? record.up_since_unix_ms : 0;
    // Fields longer than the view's capacity are refused by the config and by the
    // join; a peer's overlong value leaves the field empty rather than cut.
    (void)server.SetId(record.id);
    (void)server.SetClusterAddress(record.cluster_address);
    (void)server.SetHttpAddress(record.http_address);
    (void)server.SetDeployedVersion(record.deployed_version);
  }
  return view;
}

protocol::ViewUpdate Membership::FullUpdate() const {
  protocol::ViewUpdate update;
  for (const protocol::ServerRecord& record : records_) {
    if (!record.id.empty()) update.servers.push_back(record);
  }
  return update;
}

protocol::Heartbeat Membership::MakeHeartbeat(int64_t now_unix_ms) const {
  return protocol::Heartbeat{self_incarnation(), generation_, now_unix_ms};
}

}  // namespace cb::membership
