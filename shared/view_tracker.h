// Follows one view file on behalf of one web server process (an nginx worker, an
// httpd child) and answers its routing questions; the modules' glue only converts.
//
// The file is opened lazily and looked at again at most once per recheck interval:
// reopened when the sidecar replaced or removed it, tested for a running publisher
// (a sidecar that stopped leaves a view that no longer follows the cluster). While
// there is no usable view (no file, a truncated file or one of another format, no
// running sidecar, no server up or draining) Choose() answers kNoServer and the
// caller balances over its own configured servers. Between rechecks a request costs
// one atomic load when the view is unchanged; a new view rebuilds the RoutingTable.
//
// Every change of state (usable, or unusable for a new reason) and every address
// problem is reported once through TakeNotices(), so the caller logs once per
// change, never per request.
//
// Not thread-safe: one tracker per thread (an nginx worker is one thread).
#ifndef CLUSTER_BALANCE_SHARED_VIEW_TRACKER_H_
#define CLUSTER_BALANCE_SHARED_VIEW_TRACKER_H_

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shared/routing.h"
#include "shared/server_set.h"
#include "shared/socket_address.h"
#include "shared/view_file.h"

namespace cb {

struct ViewNotice {
  enum class Level { kInfo, kWarning };
  Level level = Level::kInfo;
  std::string text;
};

class ViewTracker {
 public:
  static constexpr int64_t kDefaultRecheckMs = 1000;

  // `configured` holds the addresses of the caller's own server lines: server i of
  // the cluster is configured[i] (the static servers in cluster order). Servers at
  // higher indices (dynamic ones) are reached at the numeric HTTP address of the view.
  ViewTracker(std::string path, std::vector<SocketAddress> configured,
              int64_t recheck_ms = kDefaultRecheckMs);
  ViewTracker(const ViewTracker&) = delete;
  ViewTracker& operator=(const ViewTracker&) = delete;
  ~ViewTracker();

  // Servers that come up warm up over `slow_start_ms` instead of the view's slow
  // start (the cluster file's). Takes effect at the next view change; call it
  // before the first Refresh.
  void OverrideSlowStart(uint32_t slow_start_ms) { slow_start_override_ms_ = slow_start_ms; }

  // New sessions go to the servers that run the current version of `webapp`
  // (RoutingOptions::current_version_only). Takes effect at the next view change;
  // call it before the first Refresh. A view with deployments but none that
  // `webapp` finds is reported once (a misspelt name would otherwise go unseen).
  void PreferCurrentVersion(std::string webapp) {
    current_version_only_ = true;
    webapp_ = std::move(webapp);
  }

  // Brings the view up to date. `now_ms` is a monotonic clock in milliseconds, for
  // the recheck cadence. Returns true when a usable view routes this request.
  bool Refresh(int64_t now_ms);

  // The routing decision of routing.h on the view of the last Refresh(), never
  // choosing a server in `exclude` nor one without a usable address. kNoServer
  // while the view is unusable.
  RouteChoice Choose(std::string_view session_id, ServerSet exclude, int64_t now_unix_ms,
                     uint64_t random) const;

  // The servers one request may try: the up and draining servers with an
  // address. None while the view is unusable.
  ServerSet Candidates() const;

  // Where server `index` is reached; nullptr when it has no usable address.
  const SocketAddress* AddressOf(int index) const;

  // True when the view is usable and server `index` is up or draining in it.
  bool Serves(int index) const;

  // When server `index` last came up (its warm-up start, unix ms); 0 when it is not
  // up or draining, or the view is unusable.
  int64_t UpSinceUnixMs(int index) const;

  // The index of the server whose id is `id` in the view of the last Refresh(),
  // present in any state; -1 when no server has it or the view is unusable.
  int IndexOfId(std::string_view id) const;

  bool usable() const { return usable_; }

  // What changed since the last call, oldest first.
  std::vector<ViewNotice> TakeNotices();

  const std::string& path() const { return path_; }

 private:
  void Recheck();
  void Rebuild(const ClusterView& view);
  void CheckDeployment(const ClusterView& view);
  void BecomeUnusable(const std::string& reason);
  void BecomeUsable(const ClusterView& view);

  const std::string path_;
  const std::vector<SocketAddress> configured_;
  const int64_t recheck_ms_;
  std::optional<uint32_t> slow_start_override_ms_;
  bool current_version_only_ = false;
  std::string webapp_;

  std::unique_ptr<ViewReader> reader_;
  bool publisher_running_ = false;
  int64_t next_recheck_ms_ = 0;
  bool checked_once_ = false;

  uint64_t table_snapshot_ = 0;
  RoutingTable table_;
  ServerSet unreachable_;  // present in the view, but with no usable address
  std::array<SocketAddress, kMaxServers> view_addresses_{};
  std::array<int64_t, kMaxServers> up_since_unix_ms_{};
  std::array<std::string, kMaxServers> ids_{};               // "" for an absent server
  std::array<std::string, kMaxServers> reported_address_{};  // problems already reported
  std::string reported_deployment_;                          // the same, for webapp_

  bool usable_ = false;
  std::string unusable_reason_;
  std::vector<ViewNotice> notices_;
};

}  // namespace cb

#endif  // CLUSTER_BALANCE_SHARED_VIEW_TRACKER_H_
