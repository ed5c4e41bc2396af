// More than 64 servers (doc/domains.md): several triad domains, each a cluster of
// its own (its own cluster file, triad, view and store), simulated with the pure
// Membership state machines: 4 domains of 64 servers, 256 in all. Heartbeats
// and view updates are delivered at once, on a simulated clock; a connection
// exists where Membership says one is dialled (PeersToDial) and both ends run.
// What the daemon does around Membership is done here the same way: a triad
// server pushes its full view to every peer when its view changes and when a
// connection comes up; a peer that Tick reports silent has its connection
// closed on both ends.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "shared/cluster_config.h"
#include "sidecar/membership/membership.h"

namespace cb::membership {
namespace {

constexpr int kDomains = 4;
constexpr int kServersPerDomain = kMaxServers;  // 3 triad + 61 spokes
constexpr int64_t kStart = 1'700'000'000'000;
constexpr int64_t kStepMs = 50;
constexpr int64_t kIntervalMs = 1'000;
constexpr int64_t kTimeoutMs = 3'000;

ClusterConfig DomainConfig(int domain) {
  std::string text = "[cluster]\nname = \"domain-" + std::to_string(domain) +
                     "\"\nkey_file = \"k\"\nheartbeat_interval = \"1s\"\n"
                     "heartbeat_timeout = \"3s\"\n";
  for (int i = 0; i < kServersPerDomain; ++i) {
    const std::string host = "10." + std::to_string(domain) + "." + std::to_string(i / 200) + "." +
                             std::to_string(i % 200 + 1);
    text += "[[server]]\nid = \"d" + std::to_string(domain) + "-s" + std::to_string(i) +
            "\"\ncluster_address = \"" + host + ":6800\"\nhttp_address = \"" + host + ":8080\"\n";
  }
  Result<ClusterConfig> config = ParseClusterConfig(text, "domain.toml");
  EXPECT_TRUE(config.ok()) << config.status().ToString();
  return config.ok() ? *config : ClusterConfig{};
}

// One triad domain: its servers' Membership, who runs, who is connected.
class Domain {
 public:
  explicit Domain(int number) : config_(DomainConfig(number)) {}

  void StartAll(int64_t now) {
    for (int i = 0; i < kServersPerDomain; ++i) {
      nodes_.push_back(std::make_unique<Membership>(config_, i, 1, now));
    }
    running_.assign(kServersPerDomain, true);
    stopped_.assign(kServersPerDomain, false);
    ConnectAll(now);
  }

  // Dials every pair that should be connected and is not (the daemon retries).
  void ConnectAll(int64_t now) {
    for (int a = 0; a < kServersPerDomain; ++a) {
      // A stopped process completes no handshake.
      if (!Live(a) || stopped_[a]) continue;
      nodes_[a]->PeersToDial().ForEach([&](int b) {
        if (!Live(b) || stopped_[b] || links_.count(Link(a, b)) != 0) return;
        links_.insert(Link(a, b));
        Note(a, nodes_[a]->OnPeerAuthenticated(b, nodes_[b]->self_incarnation(), now), now);
        Note(b, nodes_[b]->OnPeerAuthenticated(a, nodes_[a]->self_incarnation(), now), now);
        // Each end that is a triad server sends its view as soon as the link is up.
        if (nodes_[a]->is_triad(a)) Send(a, b, now);
        if (nodes_[b]->is_triad(b)) Send(b, a, now);
      });
    }
    Drain(now);
  }

  // Heartbeats of every running, not stopped, server to its peers; then Tick.
  void Heartbeats(int64_t now) {
    for (int a = 0; a < kServersPerDomain; ++a) {
      if (!Live(a) || stopped_[a]) continue;
      const protocol::Heartbeat heartbeat = nodes_[a]->MakeHeartbeat(now);
      for (int b : Peers(a)) {
        ++heartbeats_sent_;
        if (!stopped_[b]) Note(b, nodes_[b]->OnHeartbeat(a, heartbeat, now), now);
      }
    }
    Drain(now);
  }

  // As the daemon's heartbeat timer does after sending: Tick marks the silent
  // peers down (a change of the view, pushed) and their connections close.
  void Tick(int64_t now) {
    for (int a = 0; a < kServersPerDomain; ++a) {
      if (!Live(a) || stopped_[a]) continue;
      const uint64_t generation = nodes_[a]->generation();
      for (int silent : nodes_[a]->Tick(now)) Close(a, silent, now);
      Note(a, nodes_[a]->generation() != generation, now);
    }
    Drain(now);
  }

  // kill -9: its connections close at once.
  void Kill(int index, int64_t now) {
    running_[index] = false;
    for (int peer : Peers(index)) {
      links_.erase(Link(index, peer));
      Note(peer, nodes_[peer]->OnPeerClosed(index, now), now);
    }
    Drain(now);
  }
  // SIGSTOP: it neither sends nor answers; its connections stay open.
  void Stop(int index) { stopped_[index] = true; }

  // Whether every live server other than `except` publishes `expected` for each
  // index of the domain.
  bool AllSee(const std::vector<ServerState>& expected, int64_t now, int except = -1) const {
    for (int a = 0; a < kServersPerDomain; ++a) {
      if (!Live(a) || stopped_[a] || a == except) continue;
      if (!nodes_[a]->founded()) return false;
      const ClusterView view = nodes_[a]->ToView(now);
      for (int i = 0; i < kServersPerDomain; ++i) {
        if (view.state(i) != expected[static_cast<std::size_t>(i)]) return false;
      }
    }
    return true;
  }

  std::vector<uint64_t> Generations() const {
    std::vector<uint64_t> generations;
    for (const auto& node : nodes_) generations.push_back(node->generation());
    return generations;
  }

  const Membership& node(int index) const { return *nodes_[index]; }
  uint64_t heartbeats_sent() const { return heartbeats_sent_; }
  uint64_t updates_sent() const { return updates_sent_; }

 private:
  static std::pair<int, int> Link(int a, int b) { return {std::min(a, b), std::max(a, b)}; }
  bool Live(int index) const { return running_[static_cast<std::size_t>(index)]; }

  std::vector<int> Peers(int a) const {
    std::vector<int> peers;
    for (const auto& [x, y] : links_) {
      if (x == a) peers.push_back(y);
      if (y == a) peers.push_back(x);
    }
    return peers;
  }

  // A triad server whose view changed pushes it (Sidecar::Publish).
  void Note(int index, bool changed, int64_t now) {
    if (!changed || !nodes_[index]->is_triad(index)) return;
    for (int peer : Peers(index)) Send(index, peer, now);
  }
  void Send(int from, int to, int64_t) {
    ++updates_sent_;
    pending_.push_back({from, to, nodes_[from]->FullUpdate()});
  }
  void Drain(int64_t now) {
    for (int guard = 0; !pending_.empty(); ++guard) {
      ASSERT_LT(guard, 1'000'000) << "view updates never settle";
      auto [from, to, update] = std::move(pending_.front());
      pending_.pop_front();
      if (!Live(to) || stopped_[to] || links_.count(Link(from, to)) == 0) continue;
      Note(to, nodes_[to]->OnViewUpdate(from, update, now), now);
    }
  }
  // `a` closes its connection with silent `b`; `b`, if it runs, sees it close.
  void Close(int a, int b, int64_t now) {
    if (links_.erase(Link(a, b)) == 0) return;
    if (Live(b) && !stopped_[b]) Note(b, nodes_[b]->OnPeerClosed(a, now), now);
  }

  struct Pending {
    int from;
    int to;
    protocol::ViewUpdate update;
  };

  ClusterConfig config_;
  std::vector<std::unique_ptr<Membership>> nodes_;
  std::vector<bool> running_;
  std::vector<bool> stopped_;
  std::set<std::pair<int, int>> links_;
  std::deque<Pending> pending_;
  uint64_t heartbeats_sent_ = 0;
  uint64_t updates_sent_ = 0;
};

class DomainsSimulationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int d = 0; d < kDomains; ++d) domains_.push_back(std::make_unique<Domain>(d));
    for (auto& domain : domains_) domain->StartAll(now_);
  }

  // Advances the clock one step: heartbeats and a Tick on interval boundaries
  // (the daemon's heartbeat timer), a reconnect attempt every step.
  void Step() {
    now_ += kStepMs;
    const bool beat = (now_ - kStart) % kIntervalMs == 0;
    for (auto& domain : domains_) {
      if (beat) {
        domain->Heartbeats(now_);
        domain->Tick(now_);
      }
      domain->ConnectAll(now_);
    }
  }

  // Steps until `done` (checked after each step) or `limit_ms` of simulated time;
  // returns the simulated time it took, or -1.
  template <typename Done>
  int64_t StepUntil(Done done, int64_t limit_ms) {
    const int64_t from = now_;
    while (now_ - from < limit_ms) {
      Step();
      if (done()) return now_ - from;
    }
    return -1;
  }

  static std::vector<ServerState> AllUp() {
    return std::vector<ServerState>(kServersPerDomain, ServerState::kUp);
  }

  int64_t now_ = kStart;
  std::vector<std::unique_ptr<Domain>> domains_;
};

TEST_F(DomainsSimulationTest, EachDomainConvergesOnItsOwnSixtyFourServers) {
  const auto converged = [&] {
    return std::all_of(domains_.begin(), domains_.end(),
                       [&](const auto& domain) { return domain->AllSee(AllUp(), now_); });
  };
  // A cold start of a whole triad founds only after the alone wait (heartbeat
  // timeout + one interval: 4 s); one interval more for the last views to arrive.
  const int64_t took = StepUntil(converged, 10'000);
  ASSERT_GE(took, 0) << "the 256 servers did not converge within 10 s";
  EXPECT_LE(took, kTimeoutMs + 2 * kIntervalMs);
  for (int d = 0; d < kDomains; ++d) {
    for (int i = 0; i < kServersPerDomain; ++i) {
      // Each view is its own domain's: its name, its 64 servers, nobody else's.
      const ClusterView view = domains_[d]->node(i).ToView(now_);
      EXPECT_EQ(view.cluster_name_view(), "domain-" + std::to_string(d));
      EXPECT_EQ(view.server(63).id_view(), "d" + std::to_string(d) + "-s63");
    }
  }
}

TEST_F(DomainsSimulationTest, FailuresInOneDomainAreSeenThereWithinTheirBoundsAndNowhereElse) {
  ASSERT_GE(StepUntil([&] { return domains_[2]->AllSee(AllUp(), now_); }, 10'000), 0);
  StepUntil([] { return false; }, 2 * kIntervalMs);  // settled
  std::vector<std::vector<uint64_t>> before;
  for (const auto& domain : domains_) before.push_back(domain->Generations());

  // kill -9 of a spoke of domain 2: its connections close; every other server of
  // the domain shows it down at once (the triad pushes the change).
  Domain& two = *domains_[2];
  two.Kill(40, now_);
  std::vector<ServerState> expected = AllUp();
  expected[40] = ServerState::kDown;
  EXPECT_TRUE(two.AllSee(expected, now_)) << "not seen by all 63 others at once";

  // SIGSTOP of another spoke: seen by all within the heartbeat timeout plus one
  // interval (its last heartbeat may be an interval old).
  two.Stop(41);
  expected[41] = ServerState::kDown;
  const int64_t stopped_seen = StepUntil([&] { return two.AllSee(expected, now_, 41); }, 10'000);
  ASSERT_GE(stopped_seen, 0) << "the stopped spoke was never seen down by all";
  EXPECT_LE(stopped_seen, kTimeoutMs + kIntervalMs);
  EXPECT_GE(stopped_seen, kTimeoutMs - kIntervalMs);

  for (int d = 0; d < kDomains; ++d) {
    if (d == 2) continue;
    EXPECT_EQ(domains_[d]->Generations(), before[d]) << "domain " << d << " changed its view";
    EXPECT_TRUE(domains_[d]->AllSee(AllUp(), now_)) << "domain " << d;
  }
}

TEST_F(DomainsSimulationTest, SteadyCostPerServerIsItsHeartbeats) {
  ASSERT_GE(StepUntil([&] { return domains_[0]->AllSee(AllUp(), now_); }, 10'000), 0);
  StepUntil([] { return false; }, 2 * kIntervalMs);
  std::vector<uint64_t> heartbeats, updates;
  for (const auto& domain : domains_) {
    heartbeats.push_back(domain->heartbeats_sent());
    updates.push_back(domain->updates_sent());
  }
  const int64_t seconds = 10;
  StepUntil([] { return false; }, seconds * 1'000);
  for (int d = 0; d < kDomains; ++d) {
    // Per interval: each spoke to the 3 triad servers, each triad server to the
    // 63 others: 61 * 3 + 3 * 63 = 372, the same with 4 domains as with one.
    EXPECT_EQ(domains_[d]->heartbeats_sent() - heartbeats[d], 372u * seconds) << d;
    EXPECT_EQ(domains_[d]->updates_sent() - updates[d], 0u) << d << ": views pushed unchanged";
  }
}

}  // namespace
}  // namespace cb::membership
