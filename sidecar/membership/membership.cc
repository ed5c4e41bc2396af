#include "sidecar/membership/membership.h"

#include <algorithm>
#include <tuple>

namespace cb::membership {

Membership::Membership(const ClusterConfig& config, int self_index, uint64_t self_incarnation,
                       int64_t now_unix_ms)
    : config_(config),
      cluster_name_(config.name),
      static_count_(static_cast<int>(config.servers.size())),
      first_dynamic_(FirstDynamicIndex(static_count_)),
      self_index_(self_index),
      heartbeat_timeout_ms_(config.heartbeat_timeout.count()),
      dynamic_timeout_ms_(config.dynamic_server_timeout.count()),
      slow_start_ms_(static_cast<uint32_t>(config.slow_start.count())),
      alone_after_unix_ms_(now_unix_ms + config.alone_wait().count()),
      triad_lost_unix_ms_(now_unix_ms) {
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
  founded_ = OnlyServer();
}

bool Membership::OnlyServer() const {
  if (static_count_ != 1 || self_index_ != 0) return false;
  for (int index = first_dynamic_; index < kMaxServers; ++index) {
    if (Known(index)) return false;
  }
  return true;
}

namespace {

// Copies who dynamic server `from` is (id, addresses, weight, admission) into
// `to`, leaving what heartbeats say of it (incarnation, liveness) and its index.
void CopyDynamicIdentity(const protocol::ServerRecord& from, protocol::ServerRecord& to) {
  to.id = from.id;
  to.cluster_address = from.cluster_address;
  to.http_address = from.http_address;
  to.weight = from.weight;
  to.dynamic = true;
  to.admission = from.admission;
}

}  // namespace

Membership::Membership(const ClusterConfig& config, const protocol::ServerRecord& self,
                       uint64_t self_incarnation, int64_t now_unix_ms)
    : Membership(config, self.index, self_incarnation, now_unix_ms) {
  protocol::ServerRecord& record = records_[Slot(self.index)];
  record.index = self.index;
  CopyDynamicIdentity(self, record);
}

ServerSet Membership::PeersToDial() const {
  ServerSet peers;
  const int first = is_triad(self_index_) ? self_index_ + 1 : 0;
  for (int index = first; index < kTriadSize; ++index) {
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
  down_since_[Slot(index)] = alive ? 0 : now_unix_ms;
  return Changed();
}

bool Membership::CheckFounded(int64_t now_unix_ms) {
  if (founded_) return false;
  // Every connected triad peer has told what it sees (each sends its view as soon
  // as the connection is up, and again when it turns founded); the founded ones
  // count, and one is enough.
  const ServerSet founded_peers = heard_from_triad_ & founded_triad_;
  bool agrees = !founded_peers.empty() &&
                (connected_ & ServerSet::Triad()).Without(heard_from_triad_).empty();
  founded_peers.ForEach([&](int peer) {
    triad_shows_up_[Slot(peer)].ForEach([&](int index) {
      if (index != self_index_ && !records_[Slot(index)].alive) agrees = false;
    });
  });
  if (!agrees && now_unix_ms < alone_after_unix_ms_) return false;
  // A spoke that has heard no triad server's view knows nothing of the others
  // (README "Partitions"): founding alone would publish them all down and send
  // their sessions to its own backend. Its web server keeps the view file as it
  // was until a connected triad server has told its view.
  if (!agrees && !is_triad(self_index_) &&
      (heard_from_triad_ & connected_ & ServerSet::Triad()).empty()) {
    return false;
  }
  founded_ = true;
  return Changed();
}

bool Membership::OnPeerAuthenticated(int index, uint64_t peer_incarnation, int64_t now_unix_ms) {
  if (!MayConnect(index)) return false;
  connected_.Add(index);
  if (is_triad(index)) triad_lost_unix_ms_ = 0;
  last_heard_[Slot(index)] = now_unix_ms;
  const uint64_t incarnation = std::max(records_[Slot(index)].incarnation, peer_incarnation);
  const bool changed = SetAlive(index, true, incarnation, now_unix_ms);
  return CheckFounded(now_unix_ms) || changed;
}

bool Membership::CutOffFromTriadWithout(int index, int64_t now_unix_ms) const {
  if (is_triad(self_index_) || !is_triad(index)) return false;
  // Lately: more recently than halfway between the heartbeat interval (a live
  // link is heard that often) and the timeout (a silent one is about to go).
  const int64_t lately_ms = (config_.heartbeat_interval.count() + heartbeat_timeout_ms_) / 2;
  bool heard_lately = false;
  (connected_ & ServerSet::Triad()).ForEach([&](int peer) {
    if (peer != index && now_unix_ms - last_heard_[Slot(peer)] <= lately_ms) {
      heard_lately = true;
    }
  });
  return !heard_lately;
}

bool Membership::OnPeerClosed(int index, int64_t now_unix_ms) {
  if (!connected_.Contains(index)) return false;
  const bool keep = founded_ && CutOffFromTriadWithout(index, now_unix_ms);
  connected_.Remove(index);
  heard_from_triad_.Remove(index);
  last_heard_[Slot(index)] = 0;
  if (!is_triad(self_index_) && is_triad(index) && (connected_ & ServerSet::Triad()).empty()) {
    triad_lost_unix_ms_ = now_unix_ms;
  }
  const bool changed =
      !keep && SetAlive(index, false, records_[Slot(index)].incarnation, now_unix_ms);
  return CheckFounded(now_unix_ms) || changed;
}

int64_t Membership::view_stale_since_unix_ms() const {
  if (!founded_ || is_triad(self_index_) || !(connected_ & ServerSet::Triad()).empty()) return 0;
  return triad_lost_unix_ms_;
}

bool Membership::OnHeartbeat(int index, const protocol::Heartbeat& heartbeat, int64_t now_unix_ms) {
  if (!connected_.Contains(index)) return false;
  last_heard_[Slot(index)] = now_unix_ms;
  const uint64_t incarnation = std::max(records_[Slot(index)].incarnation, heartbeat.incarnation);
  bool changed = SetAlive(index, true, incarnation, now_unix_ms);
  protocol::ServerRecord& record = records_[Slot(index)];
  if (record.deployed != heartbeat.deployed && IsValidDeployedList(heartbeat.deployed)) {
    record.deployed = heartbeat.deployed;
    changed = Changed();
  }
  return CheckFounded(now_unix_ms) || changed;
}

bool Membership::SetSelfDeployed(std::vector<protocol::DeployedApp> deployed) {
  protocol::ServerRecord& record = records_[Slot(self_index_)];
  if (record.deployed == deployed || !IsValidDeployedList(deployed)) return false;
  record.deployed = std::move(deployed);
  return Changed();
}

bool Membership::MergeDeployment(const protocol::DeploymentTarget& target) {
  if (!IsValidDeploymentTarget(target)) return false;
  auto found = deployments_.find(target.name);
  if (found != deployments_.end() && std::tie(target.version, target.commit) <=
                                         std::tie(found->second.version, found->second.commit)) {
    return false;
  }
  deployments_[target.name] = target;
  return Changed();
}

namespace {

bool IsHexCommit(std::string_view text) {
  return text.size() == 40 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

constexpr std::size_t kMaxDeploymentNameLength = 127;  // the view's name field
constexpr std::size_t kMaxDeployError = 1024;

}  // namespace

bool IsValidDeployedList(const std::vector<protocol::DeployedApp>& deployed) {
  for (std::size_t i = 0; i < deployed.size(); ++i) {
    const protocol::DeployedApp& app = deployed[i];
    if (app.name.empty() || app.name.size() > kMaxDeploymentNameLength ||
        (!app.commit.empty() && !IsHexCommit(app.commit)) || app.error.size() > kMaxDeployError ||
        (i > 0 && deployed[i - 1].name >= app.name)) {
      return false;
    }
  }
  return true;
}

bool IsValidDeploymentTarget(const protocol::DeploymentTarget& target) {
  return !target.name.empty() && target.name.size() <= kMaxDeploymentNameLength &&
         IsHexCommit(target.commit) && target.label.size() <= 64;
}

std::vector<int> Membership::Tick(int64_t now_unix_ms) {
  std::vector<int> silent;
  connected_.ForEach([&](int index) {
    if (now_unix_ms - last_heard_[Slot(index)] > heartbeat_timeout_ms_) silent.push_back(index);
  });
  for (int index : silent) OnPeerClosed(index, now_unix_ms);
  CheckFounded(now_unix_ms);
  return silent;
}

bool Membership::MergeRecord(const protocol::ServerRecord& remote, int64_t now_unix_ms) {
  const int index = remote.index;
  protocol::ServerRecord& local = records_[Slot(index)];
  bool changed = false;

  if (remote.id.size() > kMaxIdLength || remote.cluster_address.size() > kMaxAddressLength ||
      remote.http_address.size() > kMaxAddressLength || !IsValidDeployedList(remote.deployed)) {
    return false;  // cannot be published; a peer of ours never sends it
  }
  if (is_dynamic_index(index) && index != self_index_) {
    // A dynamic server's identity comes from the triad that admitted it. Our own
    // is ours: a triad server that gave our index away says so in its JoinReply.
    changed = MergeIdentity(remote, now_unix_ms);
  }
  if (local.id.empty() || local.id != remote.id) return changed;

  if (remote.admin_version > local.admin_version ||
      (remote.admin_version == local.admin_version && remote.draining && !local.draining)) {
    local.admin_version = remote.admin_version;
    // A triad server keeps a dynamic server's drain flag with its identity.
    if (is_dynamic_index(index)) ++identity_generation_;
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
  // What a server runs is its own word; the triad passes it on to the spokes.
  if (local.deployed != remote.deployed) {
    local.deployed = remote.deployed;
    changed = Changed();
  }
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

namespace {

constexpr uint64_t kMaxAdmission = uint64_t{1} << 62;

auto IdentityOf(const protocol::ServerRecord& record) {
  return std::tie(record.admission, record.id, record.cluster_address, record.http_address,
                  record.weight);
}

}  // namespace

bool Membership::MergeIdentity(const protocol::ServerRecord& remote, int64_t now_unix_ms) {
  const protocol::ServerRecord& local = records_[Slot(remote.index)];
  // What no triad server of ours sends: an identity the admission would refuse,
  // or an admission counter near its end (raising it must never wrap).
  if (remote.admission > kMaxAdmission ||
      (!remote.id.empty() &&
       !CheckJoinRequest(
            {remote.id, remote.cluster_address, remote.http_address, remote.weight, -1}, config_)
            .ok())) {
    return false;
  }
  if (IdentityOf(remote) <= IdentityOf(local)) return false;
  const bool same_occupant = local.id == remote.id && !local.id.empty();
  Occupy(remote.index, remote, remote.admission, now_unix_ms);
  if (!same_occupant) {
    // Of a new occupant, the triad's word is all there is.
    records_[Slot(remote.index)].admin_version = remote.admin_version;
    records_[Slot(remote.index)].draining = remote.draining;
  }
  // One server, one index. Two triad servers that could not hear each other may
  // both have admitted it (each from its own share); every sidecar keeps the lower
  // index and frees the other, so all agree without talking. The server is told
  // when it next claims the freed one.
  for (int other = first_dynamic_; !remote.id.empty() && other < kMaxServers; ++other) {
    if (other == remote.index || records_[Slot(other)].id != remote.id) continue;
    const int loser = std::max(other, remote.index);
    Occupy(loser, protocol::ServerRecord{}, records_[Slot(loser)].admission + 1, now_unix_ms);
    break;
  }
  return true;
}

void Membership::Occupy(int index, const protocol::ServerRecord& identity, uint64_t admission,
                        int64_t now_unix_ms) {
  protocol::ServerRecord& record = records_[Slot(index)];
  const bool same_occupant = record.id == identity.id && !record.id.empty();
  record.index = index;
  record.id = identity.id;
  record.cluster_address = identity.id.empty() ? "" : identity.cluster_address;
  record.http_address = identity.id.empty() ? "" : identity.http_address;
  record.weight = identity.id.empty() ? 0 : identity.weight;
  record.dynamic = true;
  record.admission = admission;
  if (!same_occupant) {
    // Whoever held the index before is gone: nothing of its state carries over
    // except the drain counter, which must keep growing.
    record.alive = false;
    record.incarnation = 0;
    record.up_since_unix_ms = 0;
    record.draining = false;
    ++record.admin_version;
    record.deployed.clear();
    connected_.Remove(index);
    last_heard_[Slot(index)] = 0;
    down_since_[Slot(index)] = now_unix_ms;
  }
  ++identity_generation_;
  Changed();
}

Result<int> Membership::Admit(const protocol::JoinRequest& request, int64_t now_unix_ms) {
  if (!is_triad(self_index_)) {
    return Status::InvalidArgument("only triad servers admit dynamic servers");
  }
  if (Status checked = CheckJoinRequest(request, config_); !checked.ok()) return checked;
  int index = IndexOf(request.server_id);
  const int previous = request.previous_index;
  if (previous != index && is_dynamic_index(previous) &&
      AdmitterOf(previous, static_count_) != self_index_ &&
      records_[Slot(previous)].admission == 0) {
    // Another triad server admitted it there and has not told us yet (we just
    // started, or cannot reach it). Whatever we know of this server may be stale,
    // and a second index would only have to be undone: it keeps its connections
    // to the others and asks us again later.
    return Status::InvalidArgument("index " + std::to_string(previous) +
                                   " is not known here yet (triad server \"" +
                                   records_[Slot(AdmitterOf(previous, static_count_))].id +
                                   "\" admits to it); try again once the triad has caught up");
  }
  for (int other = first_dynamic_; other < kMaxServers; ++other) {
    const protocol::ServerRecord& record = records_[Slot(other)];
    const auto used_by_record = [&](const std::string& address) {
      return address == record.cluster_address || address == record.http_address;
    };
    if (other != index && record.alive &&
        (used_by_record(request.cluster_address) || used_by_record(request.http_address))) {
      return Status::InvalidArgument("an address of \"" + request.server_id +
                                     "\" is in use by the live server \"" + record.id + "\"");
    }
  }
  if (index >= 0 && connected_.Contains(index)) {
    const protocol::ServerRecord& live = records_[Slot(index)];
    if (live.cluster_address != request.cluster_address ||
        live.http_address != request.http_address) {
      return Status::InvalidArgument("\"" + request.server_id + "\" is up at " +
                                     live.cluster_address +
                                     " and connected; is the same --server "
                                     "id running on two machines?");
    }
  }
  if (index < 0) {
    const auto free_in_my_share = [&](int candidate) {
      return is_dynamic_index(candidate) && records_[Slot(candidate)].id.empty() &&
             AdmitterOf(candidate, static_count_) == self_index_;
    };
    if (free_in_my_share(previous)) index = previous;
    for (int candidate = first_dynamic_; index < 0 && candidate < kMaxServers; ++candidate) {
      if (free_in_my_share(candidate)) index = candidate;
    }
    if (index < 0) {
      return Status::InvalidArgument("no free index for dynamic servers left in the share of \"" +
                                     records_[Slot(self_index_)].id +
                                     "\"; another triad server may have one");
    }
  }
  protocol::ServerRecord identity;
  identity.id = request.server_id;
  identity.cluster_address = request.cluster_address;
  identity.http_address = request.http_address;
  identity.weight = request.weight;
  const protocol::ServerRecord& current = records_[Slot(index)];
  if (current.id != identity.id || current.cluster_address != identity.cluster_address ||
      current.http_address != identity.http_address || current.weight != identity.weight) {
    Occupy(index, identity, current.admission + 1, now_unix_ms);
  }
  return index;
}

std::vector<std::string> Membership::FreeLongDownDynamicServers(int64_t now_unix_ms) {
  std::vector<std::string> freed;
  if (!is_triad(self_index_)) return freed;
  for (int index = first_dynamic_; index < kMaxServers; ++index) {
    const protocol::ServerRecord& record = records_[Slot(index)];
    // Only the admitter frees: a triad server that merely cannot reach the server
    // (while its admitter can) must not take its index away, again and again.
    if (AdmitterOf(index, static_count_) != self_index_) continue;
    if (record.id.empty() || record.alive || connected_.Contains(index)) continue;
    if (down_since_[Slot(index)] == 0) down_since_[Slot(index)] = now_unix_ms;
    if (now_unix_ms - down_since_[Slot(index)] < dynamic_timeout_ms_) continue;
    freed.push_back(record.id);
    Occupy(index, protocol::ServerRecord{}, record.admission + 1, now_unix_ms);
  }
  return freed;
}

std::vector<protocol::ServerRecord> Membership::DynamicIdentities() const {
  std::vector<protocol::ServerRecord> identities;
  for (int index = first_dynamic_; index < kMaxServers; ++index) {
    const protocol::ServerRecord& record = records_[Slot(index)];
    if (record.admission == 0) continue;
    protocol::ServerRecord identity;
    identity.index = index;
    CopyDynamicIdentity(record, identity);
    identity.admin_version = record.admin_version;
    identity.draining = record.draining;
    identities.push_back(std::move(identity));
  }
  return identities;
}

void Membership::RestoreDynamicIdentities(const std::vector<protocol::ServerRecord>& records,
                                          int64_t now_unix_ms) {
  for (const protocol::ServerRecord& record : records) {
    if (!is_dynamic_index(record.index) || record.index == self_index_) continue;
    if (record.id.size() > kMaxIdLength || record.cluster_address.size() > kMaxAddressLength ||
        record.http_address.size() > kMaxAddressLength) {
      continue;
    }
    MergeIdentity(record, now_unix_ms);
  }
  // Restored before anything is published: the only static server with dynamic
  // servers to meet again waits for them like any other.
  if (founded_ && !OnlyServer()) founded_ = false;
}

bool Membership::OnViewUpdate(int from_index, const protocol::ViewUpdate& update,
                              int64_t now_unix_ms) {
  // Only the triad speaks for the cluster.
  if (!is_triad(from_index)) return false;
  bool changed = false;
  ServerSet shows_up;
  for (const protocol::ServerRecord& remote : update.servers) {
    if (remote.index < 0 || remote.index >= kMaxServers) continue;
    changed = MergeRecord(remote, now_unix_ms) || changed;
    if (remote.alive && !remote.id.empty()) shows_up.Add(remote.index);
  }
  for (const protocol::DeploymentTarget& target : update.deployments) {
    changed = MergeDeployment(target) || changed;
  }
  if (connected_.Contains(from_index)) {
    triad_shows_up_[Slot(from_index)] = shows_up;
    heard_from_triad_.Add(from_index);
    if (update.founded) {
      founded_triad_.Add(from_index);
    } else {
      founded_triad_.Remove(from_index);
    }
  }
  return CheckFounded(now_unix_ms) || changed;
}

Status Membership::SetDraining(std::string_view server_id, bool draining) {
  const int index = IndexOf(server_id);
  if (index < 0) return Status::NotFound("unknown server \"" + std::string(server_id) + "\"");
  protocol::ServerRecord& record = records_[Slot(index)];
  ++record.admin_version;
  record.draining = draining;
  if (is_dynamic_index(index)) ++identity_generation_;  // saved with its identity
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
  }
  // Deployments: the current commit of each (the first kViewMaxDeployments by
  // name) and what every server runs of it.
  size_t slot = 0;
  for (const auto& [name, target] : deployments_) {
    if (slot == kViewMaxDeployments) break;
    ViewDeployment& deployment = view.deployments[slot++];
    (void)deployment.SetName(name);
    for (int index = 0; index < kMaxServers; ++index) {
      for (const protocol::DeployedApp& app : records_[Slot(index)].deployed) {
        if (app.name == name && !app.commit.empty()) {
          (void)deployment.SetServerCommit(index, app.commit);
        }
      }
    }
    (void)deployment.SetCommit(target.commit);
  }
  return view;
}

protocol::ViewUpdate Membership::FullUpdate() const {
  protocol::ViewUpdate update;
  update.founded = founded_;
  for (const protocol::ServerRecord& record : records_) {
    // Tombstones too: everyone must forget a freed dynamic server.
    if (!record.id.empty() || record.admission > 0) update.servers.push_back(record);
  }
  for (const auto& [name, target] : deployments_) update.deployments.push_back(target);
  return update;
}

protocol::Heartbeat Membership::MakeHeartbeat(int64_t now_unix_ms) const {
  protocol::Heartbeat heartbeat;
  heartbeat.incarnation = self_incarnation();
  heartbeat.view_generation = generation_;
  heartbeat.sent_unix_ms = now_unix_ms;
  heartbeat.deployed = records_[Slot(self_index_)].deployed;
  return heartbeat;
}

}  // namespace cb::membership
