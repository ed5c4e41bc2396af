#include "shared/routing.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shared/cluster_view.h"
#include "shared/rendezvous.h"
#include "shared/route_codec.h"
#include "shared/server_set.h"

namespace cb {
namespace {

// A deterministic stream of pseudo-random numbers.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

void AddServer(ClusterView& view, int index, ServerState state, uint32_t weight = 100,
               int64_t up_since_unix_ms = 0) {
  ViewServer& server = view.server(index);
  server.state = static_cast<uint8_t>(state);
  server.index = static_cast<uint8_t>(index);
  server.weight = weight;
  server.up_since_unix_ms = up_since_unix_ms;
  ASSERT_TRUE(server.SetId("app-" + std::to_string(index)).ok());
  ASSERT_TRUE(server.SetHttpAddress("10.0.0." + std::to_string(index) + ":8080").ok());
}

// A session id created by server `index`.
std::string SessionOf(int index, std::string_view rest = "abc123") {
  return std::string(1, RouteCharForIndex(index)) + std::string(rest);
}

RouteChoice Choose(const ClusterView& view, std::string_view session, uint64_t random = 0,
                   ServerSet exclude = ServerSet(), int64_t now = 1'000'000) {
  RouteRequest request;
  request.session_id = session;
  request.now_unix_ms = now;
  request.random = random;
  request.exclude = exclude;
  return ChooseServer(view, request);
}

// Up 0,1,2,4; draining 3; down 5 and 6; everything else absent.
ClusterView MixedView() {
  ClusterView view;
  AddServer(view, 0, ServerState::kUp);
  AddServer(view, 1, ServerState::kUp);
  AddServer(view, 2, ServerState::kUp);
  AddServer(view, 3, ServerState::kDraining);
  AddServer(view, 4, ServerState::kUp);
  AddServer(view, 5, ServerState::kDown);
  AddServer(view, 6, ServerState::kDown);
  return view;
}

TEST(RoutingTest, MixedViewIsValid) {
  const ClusterView view = MixedView();
  EXPECT_TRUE(view.Validate().ok()) << view.Validate().ToString();
}

// --- Sticky ----------------------------------------------------------------------------------

TEST(RoutingTest, StickyToUpServer) {
  const ClusterView view = MixedView();
  for (int index : {0, 1, 2, 4}) {
    for (uint64_t random : {uint64_t{0}, uint64_t{12345}, ~uint64_t{0}}) {
      const RouteChoice choice = Choose(view, SessionOf(index), random);
      EXPECT_EQ(choice.index, index);
      EXPECT_EQ(choice.reason, RouteReason::kSticky);
    }
  }
}

TEST(RoutingTest, StickyToDrainingServer) {
  const ClusterView view = MixedView();
  const RouteChoice choice = Choose(view, SessionOf(3));
  EXPECT_EQ(choice.index, 3);
  EXPECT_EQ(choice.reason, RouteReason::kSticky);
}

TEST(RoutingTest, StickyOnlyLooksAtFirstCharacter) {
  const ClusterView view = MixedView();
  EXPECT_EQ(Choose(view, "C").index, 2);
  EXPECT_EQ(Choose(view, "C").reason, RouteReason::kSticky);
  EXPECT_EQ(Choose(view, "Bxyz-with-A-inside").index, 1);
}

TEST(RoutingTest, StickyToHighIndex) {
  ClusterView view;
  AddServer(view, 63, ServerState::kUp);
  AddServer(view, 0, ServerState::kUp);
  const RouteChoice choice = Choose(view, "_abc");
  EXPECT_EQ(choice.index, 63);
  EXPECT_EQ(choice.reason, RouteReason::kSticky);
}

// --- Backup ----------------------------------------------------------------------------------

TEST(RoutingTest, DownServerGoesToRendezvousBackupAmongUpServers) {
  const ClusterView view = MixedView();
  const ServerSet up = view.ServersIn(ServerState::kUp);
  ASSERT_EQ(up.bits(), 0b10111u);
  for (int n = 0; n < 500; ++n) {
    for (int down : {5, 6}) {
      const std::string session = SessionOf(down, "s" + std::to_string(n));
      const RouteChoice choice = Choose(view, session, static_cast<uint64_t>(n));
      EXPECT_EQ(choice.reason, RouteReason::kBackup) << session;
      EXPECT_EQ(choice.index, RendezvousFirst(RendezvousKeyHash(session), up)) << session;
      EXPECT_TRUE(up.Contains(choice.index)) << session;
    }
  }
}

TEST(RoutingTest, BackupDoesNotDependOnRandom) {
  const ClusterView view = MixedView();
  const std::string session = SessionOf(5, "fixed");
  const RouteChoice first = Choose(view, session, 0);
  SplitMix64 rng(1);
  for (int n = 0; n < 100; ++n) {
    const RouteChoice choice = Choose(view, session, rng.Next(), ServerSet(), 1000 + n);
    EXPECT_EQ(choice.index, first.index);
    EXPECT_EQ(choice.reason, RouteReason::kBackup);
  }
}

TEST(RoutingTest, BackupUsesEachUpServerForSomeSessions) {
  const ClusterView view = MixedView();
  std::array<int, kMaxServers> counts{};
  for (int n = 0; n < 2000; ++n) {
    const RouteChoice choice = Choose(view, SessionOf(5, std::to_string(n)));
    ASSERT_EQ(choice.reason, RouteReason::kBackup);
    ++counts[static_cast<std::size_t>(choice.index)];
  }
  for (int up : {0, 1, 2, 4}) EXPECT_GT(counts[static_cast<std::size_t>(up)], 350) << up;
  EXPECT_EQ(counts[3], 0);  // draining: never while an up server exists
  EXPECT_EQ(counts[5], 0);
  EXPECT_EQ(counts[6], 0);
}

TEST(RoutingTest, BackupFallsBackToDrainingWhenNoServerIsUp) {
  ClusterView view;
  AddServer(view, 0, ServerState::kDown);
  AddServer(view, 1, ServerState::kDraining);
  AddServer(view, 2, ServerState::kDraining);
  AddServer(view, 7, ServerState::kDraining);
  AddServer(view, 9, ServerState::kDown);
  const ServerSet draining = view.ServersIn(ServerState::kDraining);
  for (int n = 0; n < 300; ++n) {
    const std::string session = SessionOf(0, std::to_string(n));
    const RouteChoice choice = Choose(view, session);
    EXPECT_EQ(choice.reason, RouteReason::kBackup) << session;
    EXPECT_EQ(choice.index, RendezvousFirst(RendezvousKeyHash(session), draining)) << session;
  }
}

TEST(RoutingTest, BackupPrefersAnyUpServerOverDraining) {
  ClusterView view;
  AddServer(view, 0, ServerState::kDown);
  AddServer(view, 1, ServerState::kDraining);
  AddServer(view, 2, ServerState::kDraining);
  AddServer(view, 3, ServerState::kDraining);
  AddServer(view, 40, ServerState::kUp);
  for (int n = 0; n < 300; ++n) {
    const RouteChoice choice = Choose(view, SessionOf(0, std::to_string(n)));
    EXPECT_EQ(choice.index, 40);
    EXPECT_EQ(choice.reason, RouteReason::kBackup);
  }
}

TEST(RoutingTest, BackupWithNothingUpOrDrainingIsNoServer) {
  ClusterView view;
  AddServer(view, 0, ServerState::kDown);
  AddServer(view, 1, ServerState::kDown);
  AddServer(view, 2, ServerState::kDown);
  const RouteChoice choice = Choose(view, SessionOf(1));
  EXPECT_EQ(choice.index, -1);
  EXPECT_EQ(choice.reason, RouteReason::kNoServer);
}

TEST(RoutingTest, BackupIsStableWhenAnUnrelatedServerGoesDown) {
  // The rendezvous property, seen through routing: a session whose backup is B keeps B when
  // some other up server goes down.
  ClusterView view;
  for (int i = 0; i < 10; ++i) AddServer(view, i, ServerState::kUp);
  view.server(0).state = static_cast<uint8_t>(ServerState::kDown);
  for (int n = 0; n < 200; ++n) {
    const std::string session = SessionOf(0, std::to_string(n));
    const int backup = Choose(view, session).index;
    ASSERT_GE(backup, 1);
    ClusterView fewer = view;
    const int other = backup == 9 ? 8 : 9;
    fewer.server(other).state = static_cast<uint8_t>(ServerState::kDown);
    EXPECT_EQ(Choose(fewer, session).index, backup) << session;
  }
}

// --- Exclude ---------------------------------------------------------------------------------

TEST(RoutingTest, ExcludedStickyServerGoesToBackupSkippingIt) {
  const ClusterView view = MixedView();
  for (int n = 0; n < 500; ++n) {
    for (int route : {0, 1, 2, 4}) {
      const std::string session = SessionOf(route, std::to_string(n));
      ServerSet exclude;
      exclude.Add(route);
      const RouteChoice choice = Choose(view, session, 0, exclude);
      EXPECT_EQ(choice.reason, RouteReason::kBackup) << session;
      EXPECT_NE(choice.index, route) << session;
      // The first up server in rendezvous order that is not excluded.
      const RendezvousOrder order =
          RendezvousRank(RendezvousKeyHash(session), view.ServersIn(ServerState::kUp));
      const int expected = order.indices[0] == route ? order.indices[1] : order.indices[0];
      EXPECT_EQ(choice.index, expected) << session;
    }
  }
}

TEST(RoutingTest, ExcludedDrainingStickyServerGoesToBackup) {
  const ClusterView view = MixedView();
  ServerSet exclude;
  exclude.Add(3);
  const std::string session = SessionOf(3);
  const RouteChoice choice = Choose(view, session, 0, exclude);
  EXPECT_EQ(choice.reason, RouteReason::kBackup);
  EXPECT_EQ(choice.index,
            RendezvousFirst(RendezvousKeyHash(session), view.ServersIn(ServerState::kUp)));
}

TEST(RoutingTest, BackupIsNeverAnExcludedServer) {
  const ClusterView view = MixedView();
  SplitMix64 rng(2024);
  const ServerSet up = view.ServersIn(ServerState::kUp);
  const ServerSet draining = view.ServersIn(ServerState::kDraining);
  for (int n = 0; n < 2000; ++n) {
    const int route = static_cast<int>(rng.Next() % 7);
    const std::string session = SessionOf(route, std::to_string(n));
    const ServerSet exclude = ServerSet::FromBits(rng.Next() & 0x7f);
    const RouteChoice choice = Choose(view, session, rng.Next(), exclude);
    if (choice.index >= 0) {
      EXPECT_FALSE(exclude.Contains(choice.index)) << session;
    }
    const bool route_usable = (up | draining).Contains(route) && !exclude.Contains(route);
    if (route_usable) {
      EXPECT_EQ(choice.reason, RouteReason::kSticky) << session;
      EXPECT_EQ(choice.index, route) << session;
      continue;
    }
    const uint64_t hash = RendezvousKeyHash(session);
    int expected = RendezvousFirst(hash, up.Without(exclude));
    if (expected < 0) expected = RendezvousFirst(hash, draining.Without(exclude));
    EXPECT_EQ(choice.index, expected) << session;
    EXPECT_EQ(choice.reason, expected < 0 ? RouteReason::kNoServer : RouteReason::kBackup)
        << session;
  }
}

TEST(RoutingTest, ExcludingAllUpServersFallsBackToDraining) {
  const ClusterView view = MixedView();
  const ServerSet exclude = view.ServersIn(ServerState::kUp);
  const RouteChoice choice = Choose(view, SessionOf(5), 0, exclude);
  EXPECT_EQ(choice.index, 3);
  EXPECT_EQ(choice.reason, RouteReason::kBackup);
  ServerSet everything = exclude;
  everything.Add(3);
  const RouteChoice none = Choose(view, SessionOf(5), 0, everything);
  EXPECT_EQ(none.index, -1);
  EXPECT_EQ(none.reason, RouteReason::kNoServer);
}

// --- No usable session -----------------------------------------------------------------------

// A session whose server has left the view (its index is free) keeps a server: its
// backup, the same on every request and every web server, not a random one.
TEST(RoutingTest, RouteCharOfAbsentIndexGoesToTheBackup) {
  const ClusterView view = MixedView();
  const ServerSet up = view.ServersIn(ServerState::kUp);
  for (int absent : {7, 8, 30, 63}) {
    ASSERT_EQ(view.state(absent), ServerState::kAbsent);
    const std::string session = SessionOf(absent);
    const int backup = RendezvousFirst(RendezvousKeyHash(session), up);
    ASSERT_GE(backup, 0);
    for (uint64_t random = 0; random < 400; ++random) {
      const RouteChoice choice = Choose(view, session, random);
      EXPECT_EQ(choice.reason, RouteReason::kBackup);
      EXPECT_EQ(choice.index, backup);
    }
  }
}

// Session ids that do not start with a route character (an application that does
// not prefix them) are still sticky: to their rendezvous choice.
TEST(RoutingTest, SessionWithoutRouteCharGoesToItsRendezvousChoice) {
  const ClusterView view = MixedView();
  const ServerSet up = view.ServersIn(ServerState::kUp);
  for (std::string_view session : {"!abc", "+abc", "~", "\x80xyz"}) {
    const int expected = RendezvousFirst(RendezvousKeyHash(session), up);
    for (uint64_t random = 0; random < 400; ++random) {
      const RouteChoice choice = Choose(view, session, random);
      EXPECT_EQ(choice.reason, RouteReason::kBackup);
      EXPECT_EQ(choice.index, expected) << session;
    }
  }
}

TEST(RoutingTest, NoSessionOnlyChoosesUpServers) {
  const ClusterView view = MixedView();
  const ServerSet up = view.ServersIn(ServerState::kUp);
  SplitMix64 rng(7);
  ServerSet chosen;
  for (int n = 0; n < 20000; ++n) {
    const RouteChoice choice = Choose(view, "", rng.Next());
    ASSERT_EQ(choice.reason, RouteReason::kBalanced);
    ASSERT_TRUE(up.Contains(choice.index)) << choice.index;
    chosen.Add(choice.index);
  }
  EXPECT_EQ(chosen, up);
  for (uint64_t random : {uint64_t{0}, uint64_t{1}, ~uint64_t{0}, ~uint64_t{0} - 1,
                          uint64_t{1} << 63, uint64_t{399}, uint64_t{400}}) {
    const RouteChoice choice = Choose(view, "", random);
    EXPECT_EQ(choice.reason, RouteReason::kBalanced);
    EXPECT_TRUE(up.Contains(choice.index)) << random;
  }
}

TEST(RoutingTest, NoSessionFrequenciesAreProportionalToWeights) {
  ClusterView view;
  AddServer(view, 0, ServerState::kUp, 100);
  AddServer(view, 1, ServerState::kUp, 300);
  constexpr int kDraws = 40000;
  std::array<int, 2> counts{};
  SplitMix64 rng(12345);
  for (int n = 0; n < kDraws; ++n) {
    const RouteChoice choice = Choose(view, "", rng.Next());
    ASSERT_EQ(choice.reason, RouteReason::kBalanced);
    ASSERT_TRUE(choice.index == 0 || choice.index == 1) << choice.index;
    ++counts[static_cast<std::size_t>(choice.index)];
  }
  // Expected 10000 : 30000; the standard deviation is about 87.
  EXPECT_GT(counts[0], 9500);
  EXPECT_LT(counts[0], 10500);
  EXPECT_EQ(counts[0] + counts[1], kDraws);
}

TEST(RoutingTest, NoSessionFrequenciesWithManyServers) {
  ClusterView view;
  const std::array<uint32_t, 5> weights = {1, 2, 3, 4, 10};
  const std::array<int, 5> indices = {3, 17, 18, 40, 63};
  for (std::size_t i = 0; i < weights.size(); ++i) {
    AddServer(view, indices[i], ServerState::kUp, weights[i]);
  }
  AddServer(view, 0, ServerState::kDraining, 1000);
  AddServer(view, 1, ServerState::kDown, 1000);
  constexpr int kDraws = 100000;
  std::array<int, kMaxServers> counts{};
  SplitMix64 rng(99);
  for (int n = 0; n < kDraws; ++n) {
    ++counts[static_cast<std::size_t>(Choose(view, "", rng.Next()).index)];
  }
  EXPECT_EQ(counts[0], 0);
  EXPECT_EQ(counts[1], 0);
  for (std::size_t i = 0; i < weights.size(); ++i) {
    const double expected = kDraws * weights[i] / 20.0;
    EXPECT_GT(counts[static_cast<std::size_t>(indices[i])], 0.9 * expected) << indices[i];
    EXPECT_LT(counts[static_cast<std::size_t>(indices[i])], 1.1 * expected) << indices[i];
  }
}

TEST(RoutingTest, WeightZeroServerIsNeverChosen) {
  ClusterView view;
  AddServer(view, 0, ServerState::kUp, 0);
  AddServer(view, 1, ServerState::kUp, 5);
  AddServer(view, 2, ServerState::kUp, 0);
  SplitMix64 rng(3);
  for (int n = 0; n < 5000; ++n) {
    const RouteChoice choice = Choose(view, "", rng.Next());
    EXPECT_EQ(choice.index, 1);
    EXPECT_EQ(choice.reason, RouteReason::kBalanced);
  }
}

TEST(RoutingTest, AllWeightsZeroIsNoServer) {
  ClusterView view;
  AddServer(view, 0, ServerState::kUp, 0);
  AddServer(view, 1, ServerState::kUp, 0);
  const RouteChoice choice = Choose(view, "", 17);
  EXPECT_EQ(choice.index, -1);
  EXPECT_EQ(choice.reason, RouteReason::kNoServer);
}

TEST(RoutingTest, WeightZeroServerStillGetsItsStickySessions) {
  ClusterView view;
  AddServer(view, 0, ServerState::kUp, 0);
  AddServer(view, 1, ServerState::kUp, 5);
  const RouteChoice choice = Choose(view, SessionOf(0));
  EXPECT_EQ(choice.index, 0);
  EXPECT_EQ(choice.reason, RouteReason::kSticky);
}

TEST(RoutingTest, AllDownIsNoServer) {
  ClusterView view;
  for (int i = 0; i < 5; ++i) AddServer(view, i, ServerState::kDown);
  for (uint64_t random : {uint64_t{0}, uint64_t{1}, ~uint64_t{0}}) {
    const RouteChoice choice = Choose(view, "", random);
    EXPECT_EQ(choice.index, -1);
    EXPECT_EQ(choice.reason, RouteReason::kNoServer);
  }
}

TEST(RoutingTest, OnlyDrainingAndDownIsNoServerForNewSessions) {
  ClusterView view;
  AddServer(view, 0, ServerState::kDraining);
  AddServer(view, 1, ServerState::kDown);
  AddServer(view, 2, ServerState::kDraining);
  SplitMix64 rng(11);
  for (int n = 0; n < 100; ++n) {
    const RouteChoice choice = Choose(view, "", rng.Next());
    EXPECT_EQ(choice.index, -1);
    EXPECT_EQ(choice.reason, RouteReason::kNoServer);
  }
}

TEST(RoutingTest, EmptyViewIsNoServer) {
  const ClusterView view;
  for (std::string_view session : {"", "Cabc", "!"}) {
    const RouteChoice choice = Choose(view, session, 5);
    EXPECT_EQ(choice.index, -1);
    EXPECT_EQ(choice.reason, RouteReason::kNoServer);
  }
  const RouteChoice defaults;
  EXPECT_EQ(defaults.index, -1);
  EXPECT_EQ(defaults.reason, RouteReason::kNoServer);
}

TEST(RoutingTest, NoSessionNeverChoosesExcludedServer) {
  const ClusterView view = MixedView();
  ServerSet exclude;
  exclude.Add(0);
  exclude.Add(4);
  SplitMix64 rng(5);
  ServerSet chosen;
  for (int n = 0; n < 5000; ++n) {
    const RouteChoice choice = Choose(view, "", rng.Next(), exclude);
    ASSERT_EQ(choice.reason, RouteReason::kBalanced);
    chosen.Add(choice.index);
  }
  EXPECT_EQ(chosen.bits(), 0b110u);
  const RouteChoice none = Choose(view, "", 1, view.ServersIn(ServerState::kUp));
  EXPECT_EQ(none.index, -1);
  EXPECT_EQ(none.reason, RouteReason::kNoServer);
}

// --- Slow start ------------------------------------------------------------------------------

ViewServer WarmingServer(uint32_t weight, int64_t up_since) {
  ViewServer server;
  server.state = static_cast<uint8_t>(ServerState::kUp);
  server.weight = weight;
  server.up_since_unix_ms = up_since;
  return server;
}

// EffectiveWeight for a server's slot in a view.
uint64_t WeightAt(const ViewServer& server, int64_t now_unix_ms, uint32_t slow_start_ms) {
  return EffectiveWeight(server.weight, server.up_since_unix_ms, now_unix_ms, slow_start_ms);
}

TEST(EffectiveWeightTest, TakesItsArgumentsInDeclaredOrder) {
  // weight 1000, up since 50 s, now 55 s, slow start 10 s: half the weight.
  EXPECT_EQ(EffectiveWeight(1000, 50'000, 55'000, 10'000), 500u);
  EXPECT_EQ(EffectiveWeight(0, 50'000, 55'000, 10'000), 0u);
  EXPECT_EQ(EffectiveWeight(1000, 0, 55'000, 10'000), 1000u);
  EXPECT_EQ(EffectiveWeight(1000, 50'000, 55'000, 0), 1000u);
}

TEST(EffectiveWeightTest, RampsLinearly) {
  const ViewServer server = WarmingServer(1000, 50'000);
  constexpr uint32_t kSlowStart = 10'000;
  EXPECT_EQ(WeightAt(server, 50'000, kSlowStart), 1u);
  EXPECT_EQ(WeightAt(server, 52'500, kSlowStart), 250u);
  EXPECT_EQ(WeightAt(server, 55'000, kSlowStart), 500u);
  EXPECT_EQ(WeightAt(server, 57'500, kSlowStart), 750u);
  EXPECT_EQ(WeightAt(server, 60'000, kSlowStart), 1000u);
  EXPECT_EQ(WeightAt(server, 60'001, kSlowStart), 1000u);
  EXPECT_EQ(WeightAt(server, 1'000'000'000, kSlowStart), 1000u);
}

TEST(EffectiveWeightTest, MonotoneAndBounded) {
  const ViewServer server = WarmingServer(300, 1'000);
  constexpr uint32_t kSlowStart = 7'000;
  uint64_t previous = 0;
  for (int64_t now = 1'000; now <= 9'000; now += 13) {
    const uint64_t weight = WeightAt(server, now, kSlowStart);
    EXPECT_GE(weight, 1u) << now;
    EXPECT_LE(weight, 300u) << now;
    EXPECT_GE(weight, previous) << now;
    previous = weight;
  }
  EXPECT_EQ(previous, 300u);
}

TEST(EffectiveWeightTest, BeforeUpSinceIsOne) {
  // A clock that runs behind the publisher's: the server has only just come up.
  const ViewServer server = WarmingServer(1000, 50'000);
  EXPECT_EQ(WeightAt(server, 49'000, 10'000), 1u);
  EXPECT_EQ(WeightAt(server, 0, 10'000), 1u);
}

TEST(EffectiveWeightTest, NoSlowStartIsFullWeight) {
  const ViewServer server = WarmingServer(1000, 50'000);
  EXPECT_EQ(WeightAt(server, 50'000, 0), 1000u);
  EXPECT_EQ(WeightAt(server, 50'001, 0), 1000u);
}

TEST(EffectiveWeightTest, NoUpSinceIsFullWeight) {
  const ViewServer server = WarmingServer(1000, 0);
  EXPECT_EQ(WeightAt(server, 0, 10'000), 1000u);
  EXPECT_EQ(WeightAt(server, 5'000, 10'000), 1000u);
  EXPECT_EQ(WeightAt(server, 1'700'000'000'000, 10'000), 1000u);
}

TEST(EffectiveWeightTest, WeightZeroIsZero) {
  EXPECT_EQ(WeightAt(WarmingServer(0, 50'000), 50'000, 10'000), 0u);
  EXPECT_EQ(WeightAt(WarmingServer(0, 50'000), 55'000, 10'000), 0u);
  EXPECT_EQ(WeightAt(WarmingServer(0, 50'000), 70'000, 10'000), 0u);
  EXPECT_EQ(WeightAt(WarmingServer(0, 0), 70'000, 10'000), 0u);
  EXPECT_EQ(WeightAt(WarmingServer(0, 50'000), 55'000, 0), 0u);
}

TEST(EffectiveWeightTest, WeightOneStaysOne) {
  const ViewServer server = WarmingServer(1, 50'000);
  for (int64_t now : {50'000, 51'000, 55'000, 59'999, 60'000, 90'000}) {
    EXPECT_EQ(WeightAt(server, now, 10'000), 1u) << now;
  }
}

TEST(EffectiveWeightTest, NoOverflowAtTheExtremes) {
  constexpr uint32_t kMax = 0xffffffffu;
  const int64_t up_since = 1'700'000'000'000;
  const ViewServer server = WarmingServer(kMax, up_since);
  EXPECT_EQ(WeightAt(server, up_since + 0x7fffffff, kMax), 0x7fffffffu);
  EXPECT_EQ(WeightAt(server, up_since + kMax - 1, kMax), uint64_t{kMax} - 1);
  EXPECT_EQ(WeightAt(server, up_since + kMax, kMax), kMax);
  EXPECT_EQ(WeightAt(server, up_since, kMax), 1u);
}

TEST(RoutingTest, SlowStartFavorsWarmServerDuringWarmUp) {
  constexpr int64_t kNow = 1'700'000'000'000;
  ClusterView view;
  view.slow_start_ms = 60'000;
  AddServer(view, 0, ServerState::kUp, 100, 0);             // warm long ago: 100
  AddServer(view, 1, ServerState::kUp, 100, kNow - 6'000);  // 10% of the way: 10
  EXPECT_EQ(WeightAt(view.server(0), kNow, view.slow_start_ms), 100u);
  EXPECT_EQ(WeightAt(view.server(1), kNow, view.slow_start_ms), 10u);

  constexpr int kDraws = 22000;
  std::array<int, 2> counts{};
  SplitMix64 rng(777);
  for (int n = 0; n < kDraws; ++n) {
    const RouteChoice choice = Choose(view, "", rng.Next(), ServerSet(), kNow);
    ASSERT_EQ(choice.reason, RouteReason::kBalanced);
    ++counts[static_cast<std::size_t>(choice.index)];
  }
  // Expected 20000 : 2000.
  EXPECT_GT(counts[1], 1700);
  EXPECT_LT(counts[1], 2300);

  // Once warmed up, the split is even.
  counts = {};
  for (int n = 0; n < kDraws; ++n) {
    ++counts[static_cast<std::size_t>(
        Choose(view, "", rng.Next(), ServerSet(), kNow + 60'000).index)];
  }
  EXPECT_GT(counts[1], 10000);
  EXPECT_LT(counts[1], 12000);
}

TEST(RoutingTest, SlowStartServerThatJustCameUpGetsAlmostNothing) {
  constexpr int64_t kNow = 1'700'000'000'000;
  ClusterView view;
  view.slow_start_ms = 60'000;
  AddServer(view, 0, ServerState::kUp, 1000, 0);
  AddServer(view, 1, ServerState::kUp, 1000, kNow);  // effective weight 1
  constexpr int kDraws = 20000;
  int fresh = 0;
  SplitMix64 rng(4242);
  for (int n = 0; n < kDraws; ++n) {
    if (Choose(view, "", rng.Next(), ServerSet(), kNow).index == 1) ++fresh;
  }
  // Expected 20000 / 1001, about 20.
  EXPECT_GT(fresh, 0);
  EXPECT_LT(fresh, 60);
}

TEST(RoutingTest, SlowStartDoesNotAffectStickySessions) {
  constexpr int64_t kNow = 1'700'000'000'000;
  ClusterView view;
  view.slow_start_ms = 60'000;
  AddServer(view, 0, ServerState::kUp, 100, 0);
  AddServer(view, 1, ServerState::kUp, 100, kNow);
  const RouteChoice choice = Choose(view, SessionOf(1), 0, ServerSet(), kNow);
  EXPECT_EQ(choice.index, 1);
  EXPECT_EQ(choice.reason, RouteReason::kSticky);
}

// --- RoutingTable ----------------------------------------------------------------------------

RouteChoice ChooseWith(const RoutingTable& table, std::string_view session, uint64_t random,
                       ServerSet exclude, int64_t now) {
  RouteRequest request;
  request.session_id = session;
  request.now_unix_ms = now;
  request.random = random;
  request.exclude = exclude;
  return table.Choose(request);
}

TEST(RoutingTableTest, DefaultTableHasNoServer) {
  const RoutingTable table;
  EXPECT_TRUE(table.up().empty());
  EXPECT_TRUE(table.draining().empty());
  for (std::string_view session : {"", "Cabc", "!"}) {
    const RouteChoice choice = ChooseWith(table, session, 3, ServerSet(), 1000);
    EXPECT_EQ(choice.index, -1);
    EXPECT_EQ(choice.reason, RouteReason::kNoServer);
  }
}

TEST(RoutingTableTest, SetsMatchTheView) {
  const ClusterView view = MixedView();
  const RoutingTable table(view);
  EXPECT_EQ(table.up(), view.ServersIn(ServerState::kUp));
  EXPECT_EQ(table.draining(), view.ServersIn(ServerState::kDraining));
}

TEST(RoutingTableTest, AgreesWithChooseServer) {
  constexpr int64_t kNow = 1'700'000'000'000;
  ClusterView view = MixedView();
  view.slow_start_ms = 30'000;
  view.server(1).up_since_unix_ms = kNow - 10'000;  // warming up until kNow + 20 s
  view.server(2).weight = 0;
  const RoutingTable table(view);
  SplitMix64 rng(31337);
  for (int n = 0; n < 5000; ++n) {
    const int route = static_cast<int>(rng.Next() % 9) - 1;  // -1: no session
    const std::string session = route < 0 ? std::string() : SessionOf(route, std::to_string(n));
    const ServerSet exclude = ServerSet::FromBits(rng.Next() & rng.Next() & 0x7f);
    const uint64_t random = rng.Next();
    const int64_t now = kNow + static_cast<int64_t>(rng.Next() % 40'000) - 5'000;
    const RouteChoice from_table = ChooseWith(table, session, random, exclude, now);
    const RouteChoice one_off = Choose(view, session, random, exclude, now);
    ASSERT_EQ(from_table.index, one_off.index) << session << " " << now;
    ASSERT_EQ(from_table.reason, one_off.reason) << session << " " << now;
  }
}

TEST(RoutingTableTest, TableIsASnapshotOfTheView) {
  ClusterView view = MixedView();
  const RoutingTable table(view);
  view.server(0).state = static_cast<uint8_t>(ServerState::kDown);
  const RouteChoice choice = ChooseWith(table, SessionOf(0), 0, ServerSet(), 1000);
  EXPECT_EQ(choice.index, 0);
  EXPECT_EQ(choice.reason, RouteReason::kSticky);
}

TEST(RoutingTableTest, ExcludingIneligibleServersDoesNotChangeBalancedChoice) {
  // Excluding servers that could not be chosen anyway (draining, down, absent) leaves the
  // weighted choice for every random value exactly as it was.
  ClusterView view = MixedView();
  view.server(0).weight = 7;
  view.server(1).weight = 1;
  view.server(2).weight = 30;
  view.server(4).weight = 12;
  const RoutingTable table(view);
  ServerSet ineligible;
  for (int index : {3, 5, 6, 7, 60}) ineligible.Add(index);
  SplitMix64 rng(8);
  for (uint64_t random = 0; random < 200; ++random) {
    const RouteChoice plain = ChooseWith(table, "", random, ServerSet(), 1000);
    const RouteChoice excluding = ChooseWith(table, "", random, ineligible, 1000);
    ASSERT_EQ(plain.index, excluding.index) << random;
    ASSERT_EQ(excluding.reason, RouteReason::kBalanced);
  }
  for (int n = 0; n < 5000; ++n) {
    const uint64_t random = rng.Next();
    ASSERT_EQ(ChooseWith(table, "", random, ServerSet(), 1000).index,
              ChooseWith(table, "", random, ineligible, 1000).index)
        << random;
  }
}

TEST(RoutingTableTest, AfterWarmUpChoicesEqualThoseWithoutSlowStart) {
  constexpr int64_t kNow = 1'700'000'000'000;
  ClusterView warming = MixedView();
  warming.slow_start_ms = 60'000;
  warming.server(0).up_since_unix_ms = kNow - 10'000;
  warming.server(4).up_since_unix_ms = kNow - 30'000;
  warming.server(2).weight = 250;
  ClusterView settled = warming;
  settled.server(0).up_since_unix_ms = 0;
  settled.server(4).up_since_unix_ms = 0;
  const RoutingTable warming_table(warming);
  const RoutingTable settled_table(settled);
  SplitMix64 rng(21);
  // From the end of the last warm-up on (kNow + 50 s), weights are the configured ones.
  for (int64_t now : {kNow + 50'000, kNow + 50'001, kNow + 3'600'000}) {
    for (int n = 0; n < 2000; ++n) {
      const uint64_t random = rng.Next();
      ASSERT_EQ(ChooseWith(warming_table, "", random, ServerSet(), now).index,
                ChooseWith(settled_table, "", random, ServerSet(), now).index)
          << now << " " << random;
    }
  }
  // Before it, the warming servers are chosen less often.
  std::array<int, kMaxServers> warm_counts{};
  std::array<int, kMaxServers> settled_counts{};
  for (int n = 0; n < 20000; ++n) {
    const uint64_t random = rng.Next();
    ++warm_counts[static_cast<std::size_t>(
        ChooseWith(warming_table, "", random, ServerSet(), kNow).index)];
    ++settled_counts[static_cast<std::size_t>(
        ChooseWith(settled_table, "", random, ServerSet(), kNow).index)];
  }
  EXPECT_LT(warm_counts[0], settled_counts[0] / 3);
  EXPECT_LT(warm_counts[4], settled_counts[4] * 4 / 5);  // 50/416 vs 100/550
  EXPECT_GT(warm_counts[2], settled_counts[2]);
}

TEST(RoutingTableTest, WarmUpWithExclude) {
  constexpr int64_t kNow = 1'700'000'000'000;
  ClusterView view;
  view.slow_start_ms = 60'000;
  AddServer(view, 0, ServerState::kUp, 100, 0);
  AddServer(view, 1, ServerState::kUp, 100, kNow - 6'000);  // 10
  AddServer(view, 2, ServerState::kUp, 100, 0);
  const RoutingTable table(view);
  ServerSet exclude;
  exclude.Add(2);
  std::array<int, 3> counts{};
  SplitMix64 rng(55);
  for (int n = 0; n < 22000; ++n) {
    ++counts[static_cast<std::size_t>(ChooseWith(table, "", rng.Next(), exclude, kNow).index)];
  }
  EXPECT_EQ(counts[2], 0);
  EXPECT_GT(counts[1], 1700);  // expected 2000 of 22000
  EXPECT_LT(counts[1], 2300);
}

TEST(RoutingTableTest, ExtremeUpSinceDoesNotBreakChoice) {
  // A corrupt or far-future up_since must not make the choice fail or misbehave.
  ClusterView view;
  view.slow_start_ms = 60'000;
  AddServer(view, 0, ServerState::kUp, 100, std::numeric_limits<int64_t>::max());
  AddServer(view, 1, ServerState::kUp, 100, std::numeric_limits<int64_t>::max() - 1);
  AddServer(view, 2, ServerState::kUp, 100, std::numeric_limits<int64_t>::min());
  const RoutingTable table(view);
  SplitMix64 rng(1);
  for (int n = 0; n < 1000; ++n) {
    const RouteChoice choice = ChooseWith(table, "", rng.Next(), ServerSet(), 1'700'000'000'000);
    ASSERT_EQ(choice.reason, RouteReason::kBalanced);
    ASSERT_GE(choice.index, 0);
    ASSERT_LE(choice.index, 2);
  }
}

TEST(RoutingTest, SlowStartGivenToTheTableOverridesTheViews) {
  constexpr int64_t kNow = 1'700'000'000'000;
  ClusterView view;
  view.slow_start_ms = 0;  // the cluster file's: none
  AddServer(view, 0, ServerState::kUp, 1000, 0);
  AddServer(view, 1, ServerState::kUp, 1000, kNow);  // just came up
  const RoutingTable as_viewed(view);
  RoutingOptions options;
  options.slow_start_ms = 60'000;
  const RoutingTable warming(view, options);
  constexpr int kDraws = 20000;
  int fresh_as_viewed = 0;
  int fresh_warming = 0;
  SplitMix64 rng(99);
  for (int n = 0; n < kDraws; ++n) {
    RouteRequest request;
    request.now_unix_ms = kNow;
    request.random = rng.Next();
    if (as_viewed.Choose(request).index == 1) ++fresh_as_viewed;
    if (warming.Choose(request).index == 1) ++fresh_warming;
  }
  // Without a slow start half the new sessions go to the new server; with one of a
  // minute, about 1 in 1001 at its first millisecond.
  EXPECT_GT(fresh_as_viewed, 9000);
  EXPECT_LT(fresh_warming, 60);
}

// --- current_version_only --------------------------------------------------------------------

constexpr std::string_view kNewCommit = "1111111111111111111111111111111111111111";
constexpr std::string_view kOldCommit = "0000000000000000000000000000000000000abc";

// Servers 0, 1, 2 up; the deployment "shop" is at kNewCommit on 0 and 1, still at
// kOldCommit on 2 (a rollout in progress).
ClusterView RolloutView() {
  ClusterView view;
  for (int index : {0, 1, 2}) AddServer(view, index, ServerState::kUp);
  ViewDeployment& shop = view.deployments[3];
  EXPECT_TRUE(shop.SetName("production/webapp/default/shop").ok());
  EXPECT_TRUE(shop.SetCommit(kNewCommit).ok());
  EXPECT_TRUE(shop.SetServerCommit(0, kNewCommit).ok());
  EXPECT_TRUE(shop.SetServerCommit(1, kNewCommit).ok());
  EXPECT_TRUE(shop.SetServerCommit(2, kOldCommit).ok());
  return view;
}

RoutingOptions CurrentVersionOnly(std::string_view webapp = "shop") {
  RoutingOptions options;
  options.current_version_only = true;
  options.webapp = webapp;
  return options;
}

// How many of `draws` new sessions each server gets.
std::array<int, kMaxServers> NewSessionCounts(const RoutingTable& table, int draws,
                                              ServerSet exclude = ServerSet(),
                                              int64_t now = 1'000'000) {
  std::array<int, kMaxServers> counts{};
  SplitMix64 rng(2024);
  for (int n = 0; n < draws; ++n) {
    const RouteChoice choice = ChooseWith(table, "", rng.Next(), exclude, now);
    EXPECT_EQ(choice.reason, RouteReason::kBalanced);
    if (choice.index >= 0) ++counts[static_cast<std::size_t>(choice.index)];
  }
  return counts;
}

TEST(CurrentVersionOnlyTest, NewSessionsGoOnlyToServersRunningTheCurrentVersion) {
  const ClusterView view = RolloutView();
  ASSERT_TRUE(view.Validate().ok()) << view.Validate().ToString();
  for (std::string_view webapp : {"shop", "production/webapp/default/shop", ""}) {
    SCOPED_TRACE(std::string(webapp));
    const RoutingTable table(view, CurrentVersionOnly(webapp));
    EXPECT_EQ(table.preferred(), ServerSet::FromBits(0b011));
    const std::array<int, kMaxServers> counts = NewSessionCounts(table, 1000);
    EXPECT_EQ(counts[2], 0);
    EXPECT_EQ(counts[0] + counts[1], 1000);
    EXPECT_GT(counts[0], 400);
    EXPECT_GT(counts[1], 400);
  }
}

TEST(CurrentVersionOnlyTest, ExistingSessionsStaySticky) {
  const RoutingTable table(RolloutView(), CurrentVersionOnly());
  for (int index : {0, 1, 2}) {
    for (uint64_t random : {uint64_t{0}, uint64_t{77}, ~uint64_t{0}}) {
      const RouteChoice choice = ChooseWith(table, SessionOf(index), random, ServerSet(), 1000);
      EXPECT_EQ(choice.index, index);
      EXPECT_EQ(choice.reason, RouteReason::kSticky);
    }
  }
}

TEST(CurrentVersionOnlyTest, BackupIsUnchanged) {
  // A session whose server is gone goes to its rendezvous backup, whichever version
  // that runs: moving it would lose it as much as a failover does.
  ClusterView view = RolloutView();
  AddServer(view, 5, ServerState::kDown);
  const RoutingTable plain(view);
  const RoutingTable preferring(view, CurrentVersionOnly());
  for (int n = 0; n < 300; ++n) {
    const std::string session = SessionOf(5, std::to_string(n));
    const RouteChoice expected = ChooseWith(plain, session, 0, ServerSet(), 1000);
    const RouteChoice choice = ChooseWith(preferring, session, 0, ServerSet(), 1000);
    ASSERT_EQ(choice.index, expected.index) << session;
    ASSERT_EQ(choice.reason, RouteReason::kBackup);
  }
}

TEST(CurrentVersionOnlyTest, RetriesStayOnCurrentServersThenFailOpen) {
  const RoutingTable table(RolloutView(), CurrentVersionOnly());
  std::array<int, kMaxServers> counts = NewSessionCounts(table, 200, ServerSet::FromBits(0b001));
  EXPECT_EQ(counts[1], 200);
  // Every current server excluded (tried, failed): the old version rather than nothing.
  counts = NewSessionCounts(table, 200, ServerSet::FromBits(0b011));
  EXPECT_EQ(counts[2], 200);
  const RouteChoice none = ChooseWith(table, "", 5, ServerSet::FromBits(0b111), 1000);
  EXPECT_EQ(none.reason, RouteReason::kNoServer);
}

TEST(CurrentVersionOnlyTest, CurrentServersThatCannotTakeSessionsFailOpen) {
  for (int variant = 0; variant < 3; ++variant) {
    SCOPED_TRACE(variant);
    ClusterView view = RolloutView();
    for (int index : {0, 1}) {
      if (variant == 0) view.server(index).state = static_cast<uint8_t>(ServerState::kDraining);
      if (variant == 1) view.server(index).state = static_cast<uint8_t>(ServerState::kDown);
      if (variant == 2) view.server(index).weight = 0;
    }
    const RoutingTable table(view, CurrentVersionOnly());
    EXPECT_TRUE(table.preferred().empty());
    EXPECT_EQ(NewSessionCounts(table, 100)[2], 100);
  }
}

TEST(CurrentVersionOnlyTest, AllServersBehindBalanceAsUsual) {
  ClusterView view = RolloutView();
  ViewDeployment& shop = view.deployments[3];
  for (int index : {0, 1, 2}) ASSERT_TRUE(shop.SetServerCommit(index, kOldCommit).ok());
  ASSERT_TRUE(shop.current().empty());
  const RoutingTable plain(view);
  const RoutingTable preferring(view, CurrentVersionOnly());
  EXPECT_TRUE(preferring.preferred().empty());
  EXPECT_EQ(NewSessionCounts(preferring, 1000), NewSessionCounts(plain, 1000));
  EXPECT_GT(NewSessionCounts(preferring, 1000)[2], 200);
}

TEST(CurrentVersionOnlyTest, OffGivesNewSessionsToEveryServer) {
  const ClusterView view = RolloutView();
  RoutingOptions off = CurrentVersionOnly();
  off.current_version_only = false;
  const RoutingTable table(view, off);
  EXPECT_TRUE(table.preferred().empty());
  const std::array<int, kMaxServers> counts = NewSessionCounts(table, 1000);
  EXPECT_EQ(counts, NewSessionCounts(RoutingTable(view), 1000));
  EXPECT_GT(counts[2], 200);
}

TEST(CurrentVersionOnlyTest, WithoutTheDeploymentBalanceAsUsual) {
  ClusterView other = RolloutView();
  ASSERT_TRUE(other.deployments[0].SetName("production/webapp/default/blog").ok());
  const std::array<int, kMaxServers> usual = NewSessionCounts(RoutingTable(other), 1000);
  // A name no slot has; an empty name with two deployments; a full name of another
  // stage; no deployments at all.
  const std::pair<ClusterView, std::string_view> cases[] = {
      {RolloutView(), "cart"},
      {other, ""},
      {RolloutView(), "staging/webapp/default/shop"},
      {MixedView(), "shop"},
  };
  for (const auto& [view, webapp] : cases) {
    SCOPED_TRACE(std::string(webapp));
    const RoutingTable table(view, CurrentVersionOnly(webapp));
    EXPECT_TRUE(table.preferred().empty());
  }
  EXPECT_EQ(NewSessionCounts(RoutingTable(other, CurrentVersionOnly("cart")), 1000), usual);
  EXPECT_EQ(NewSessionCounts(RoutingTable(other, CurrentVersionOnly("")), 1000), usual);
  // With the other deployment present, naming "shop" still finds it.
  EXPECT_EQ(RoutingTable(other, CurrentVersionOnly("shop")).preferred(),
            ServerSet::FromBits(0b011));
}

TEST(CurrentVersionOnlyTest, WeightsAndWarmUpApplyAmongCurrentServers) {
  constexpr int64_t kNow = 1'700'000'000'000;
  ClusterView view = RolloutView();
  view.server(0).weight = 300;
  view.server(1).weight = 100;
  const RoutingTable table(view, CurrentVersionOnly());
  std::array<int, kMaxServers> counts = NewSessionCounts(table, 4000);
  EXPECT_EQ(counts[2], 0);
  EXPECT_GT(counts[0], 2700);  // about 3000
  EXPECT_LT(counts[0], 3300);
  // Server 1 just came up: during its warm-up it gets few new sessions, still none
  // go to server 2.
  view.slow_start_ms = 60'000;
  view.server(1).up_since_unix_ms = kNow;
  const RoutingTable warming(view, CurrentVersionOnly());
  counts = NewSessionCounts(warming, 4000, ServerSet(), kNow + 1);
  EXPECT_EQ(counts[2], 0);
  EXPECT_LT(counts[1], 40);
}

}  // namespace
}  // namespace cb
