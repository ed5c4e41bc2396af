#include "shared/view_tracker.h"

#include <utility>

namespace cb {

ViewTracker::ViewTracker(std::string path, std::vector<SocketAddress> configured,
                         int64_t recheck_ms)
    : path_(std::move(path)), configured_(std::move(configured)), recheck_ms_(recheck_ms) {}

ViewTracker::~ViewTracker() = default;

bool ViewTracker::Refresh(int64_t now_ms) {
  if (!checked_once_ || now_ms >= next_recheck_ms_) {
    checked_once_ = true;
    next_recheck_ms_ = now_ms + recheck_ms_;
    Recheck();
  }
  if (reader_ == nullptr) return false;  // Recheck() said why
  if (!publisher_running_) {
    BecomeUnusable(path_ + ": the sidecar that publishes it is not running");
    return false;
  }
  Result<const ClusterView*> view = reader_->Current();
  if (!view.ok()) {
    BecomeUnusable(view.status().message());
    return false;
  }
  if (reader_->snapshot_id() != table_snapshot_) Rebuild(**view);
  // Candidates() is empty until usable; take them from the table itself here.
  if ((table_.up() | table_.draining()).Without(unreachable_).empty()) {
    BecomeUnusable(path_ + ": no server is up or draining in the view");
    return false;
  }
  BecomeUsable(**view);
  return true;
}

void ViewTracker::Recheck() {
  if (reader_ != nullptr && reader_->MappingIsStale()) {
    reader_.reset();
    table_snapshot_ = 0;
  }
  if (reader_ == nullptr) {
    Result<std::unique_ptr<ViewReader>> opened = ViewReader::Open(path_);
    if (!opened.ok()) {
      BecomeUnusable(opened.status().message());
      return;
    }
    reader_ = std::move(opened).value();
  }
  publisher_running_ = reader_->PublisherIsRunning();
}

void ViewTracker::Rebuild(const ClusterView& view) {
  RoutingOptions options;
  options.slow_start_ms = slow_start_override_ms_;
  options.current_version_only = current_version_only_;
  options.webapp = webapp_;
  table_ = RoutingTable(view, options);
  CheckDeployment(view);
  table_snapshot_ = reader_->snapshot_id();
  unreachable_ = ServerSet();
  for (int index = 0; index < kMaxServers; ++index) {
    const auto slot = static_cast<std::size_t>(index);
    view_addresses_[slot] = SocketAddress();
    const ViewServer& server = view.server(index);
    up_since_unix_ms_[slot] = server.up_since_unix_ms;
    ids_[slot] =
        server.server_state() == ServerState::kAbsent ? std::string_view{} : server.id_view();
    if (server.server_state() == ServerState::kAbsent) {
      reported_address_[slot].clear();  // a server that comes back is checked anew
      continue;
    }
    const std::string_view text = server.http_address_view();
    Result<SocketAddress> parsed = ParseNumericSocketAddress(text);
    std::string problem;
    if (slot < configured_.size()) {
      const SocketAddress& own = configured_[slot];
      if (parsed.ok() && !SameSocketAddress(parsed->get(), parsed->length, own.get(), own.length)) {
        problem = "server " + std::to_string(index) + " (" + std::string(server.id_view()) +
                  ") is at " + parsed->text + " in the view but at " + own.text +
                  " in this web server's configuration; using " + own.text +
                  " (the server lines must follow the cluster file's order)";
      }
    } else if (parsed.ok()) {
      view_addresses_[slot] = std::move(parsed).value();
    } else {
      unreachable_.Add(index);
      problem = "server " + std::to_string(index) + " (" + std::string(server.id_view()) +
                ") gets no requests from this web server: " + parsed.status().message();
    }
    if (!problem.empty() && problem != reported_address_[slot]) {
      notices_.push_back({ViewNotice::Level::kWarning, path_ + ": " + problem});
    }
    reported_address_[slot] = std::move(problem);
  }
}

void ViewTracker::CheckDeployment(const ClusterView& view) {
  if (!current_version_only_) return;
  std::string problem;
  if (view.FindDeployment(webapp_) == nullptr) {
    std::string deployed;
    for (const ViewDeployment& deployment : view.deployments) {
      if (!deployment.used()) continue;
      deployed += (deployed.empty() ? "" : ", ") + std::string(deployment.name_view());
    }
    // Before the first deployment there is nothing to find: no warning.
    if (!deployed.empty()) {
      problem = (webapp_.empty() ? std::string("current_version_only=on without webapp= needs "
                                               "exactly one deployment in the view")
                                 : "current_version_only=on: no single deployment \"" + webapp_ +
                                       "\" in the view") +
                " (deployed: " + deployed + "); new sessions go to every server";
    }
  }
  if (!problem.empty() && problem != reported_deployment_) {
    notices_.push_back({ViewNotice::Level::kWarning, path_ + ": " + problem});
  }
  reported_deployment_ = std::move(problem);
}

void ViewTracker::BecomeUnusable(const std::string& reason) {
  if (!usable_ && reason == unusable_reason_) return;
  usable_ = false;
  unusable_reason_ = reason;
  notices_.push_back({ViewNotice::Level::kWarning,
                      "no usable cluster view (" + reason +
                          "); the web server balances over its own servers until it is back"});
}

void ViewTracker::BecomeUsable(const ClusterView& view) {
  if (usable_) return;
  usable_ = true;
  unusable_reason_.clear();
  notices_.push_back(
      {ViewNotice::Level::kInfo, "following the cluster view " + path_ + " (cluster \"" +
                                     std::string(view.cluster_name_view()) + "\", " +
                                     std::to_string(table_.up().size()) + " up, " +
                                     std::to_string(table_.draining().size()) + " draining)"});
}

RouteChoice ViewTracker::Choose(std::string_view session_id, ServerSet exclude, int64_t now_unix_ms,
                                uint64_t random) const {
  if (!usable_) return {};
  RouteRequest request;
  request.session_id = session_id;
  request.now_unix_ms = now_unix_ms;
  request.random = random;
  request.exclude = exclude | unreachable_;
  return table_.Choose(request);
}

int ViewTracker::IndexOfId(std::string_view id) const {
  if (!usable_ || id.empty()) return -1;
  for (int index = 0; index < kMaxServers; ++index) {
    if (ids_[static_cast<std::size_t>(index)] == id) return index;
  }
  return -1;
}

ServerSet ViewTracker::Candidates() const {
  if (!usable_) return ServerSet();
  return (table_.up() | table_.draining()).Without(unreachable_);
}

const SocketAddress* ViewTracker::AddressOf(int index) const {
  if (index < 0 || index >= kMaxServers) return nullptr;
  const auto slot = static_cast<std::size_t>(index);
  if (slot < configured_.size()) return &configured_[slot];
  if (unreachable_.Contains(index) || view_addresses_[slot].length == 0) return nullptr;
  return &view_addresses_[slot];
}

bool ViewTracker::Serves(int index) const {
  return usable_ && (table_.up() | table_.draining()).Contains(index);
}

int64_t ViewTracker::UpSinceUnixMs(int index) const {
  if (!Serves(index)) return 0;
  return up_since_unix_ms_[static_cast<std::size_t>(index)];
}

std::vector<ViewNotice> ViewTracker::TakeNotices() { return std::exchange(notices_, {}); }

}  // namespace cb
