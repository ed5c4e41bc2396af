#include "sidecar/membership/membership.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "sidecar/testing/test_cluster_config.h"

namespace cb::membership {
namespace {

constexpr int64_t kStart = 1'700'000'000'000;

ClusterConfig FiveServers() {
  return testing_support::StaticServersConfig(
      5, "heartbeat_interval = \"1s\"\nheartbeat_timeout = \"3s\"");
}

ServerState StateIn(const Membership& membership, int index) {
  return membership.ToView(kStart).state(index);
}

TEST(MembershipTest, StartsWithItselfUpAndEveryoneElseDown) {
  const ClusterConfig config = FiveServers();
  Membership self(config, 3, 7, kStart);
  const ClusterView view = self.ToView(kStart);
  ASSERT_TRUE(view.Validate().ok());
  EXPECT_EQ(view.state(3), ServerState::kUp);
  EXPECT_EQ(view.server(3).incarnation, 7u);
  EXPECT_EQ(view.server(3).up_since_unix_ms, kStart);
  for (int index : {0, 1, 2, 4}) EXPECT_EQ(view.state(index), ServerState::kDown) << index;
  EXPECT_EQ(view.state(5), ServerState::kAbsent);
  EXPECT_EQ(view.server(4).id_view(), "s4");
  EXPECT_EQ(view.server(4).http_address_view(), "127.0.0.1:8004");
  EXPECT_EQ(view.cluster_name_view(), "shop");
  EXPECT_EQ(view.publisher_index, 3);
}

TEST(MembershipTest, SpokesDialTheTriadAndNeverEachOther) {
  const ClusterConfig config = FiveServers();
  Membership spoke(config, 3, 1, kStart);
  EXPECT_EQ(spoke.PeersToDial(), ServerSet::Triad());
  EXPECT_TRUE(spoke.MayConnect(0));
  EXPECT_FALSE(spoke.MayConnect(4));
  EXPECT_FALSE(spoke.MayConnect(3));  // itself
  // Within the triad the lower index dials: one connection per pair.
  Membership triad(config, 1, 1, kStart);
  ServerSet higher;
  higher.Add(2);
  EXPECT_EQ(triad.PeersToDial(), higher);
  EXPECT_TRUE(Membership(config, 2, 1, kStart).PeersToDial().empty());
  EXPECT_EQ(Membership(config, 0, 1, kStart).PeersToDial().size(), 2);
  EXPECT_TRUE(triad.MayConnect(0));
  EXPECT_TRUE(triad.MayConnect(4));
  EXPECT_FALSE(triad.MayConnect(9));  // no such server
}

TEST(MembershipTest, ConnectionMarksUpAndCloseMarksDownAtOnce) {
  Membership triad(FiveServers(), 0, 1, kStart);
  const uint64_t generation = triad.generation();
  EXPECT_TRUE(triad.OnPeerAuthenticated(4, 3, kStart + 10));
  EXPECT_GT(triad.generation(), generation);
  EXPECT_EQ(StateIn(triad, 4), ServerState::kUp);
  EXPECT_EQ(triad.record(4).incarnation, 3u);
  EXPECT_EQ(triad.ToView(kStart + 20).server(4).up_since_unix_ms, kStart + 10);
  EXPECT_TRUE(triad.OnPeerClosed(4, kStart + 30));
  EXPECT_EQ(StateIn(triad, 4), ServerState::kDown);
  EXPECT_EQ(triad.ToView(kStart).server(4).up_since_unix_ms, 0);
  EXPECT_FALSE(triad.OnPeerClosed(4, kStart + 40));  // already closed: no change
}

TEST(MembershipTest, SilenceLongerThanTheTimeoutMarksDown) {
  Membership triad(FiveServers(), 0, 1, kStart);
  triad.OnPeerAuthenticated(4, 1, kStart);
  triad.OnPeerAuthenticated(3, 1, kStart);
  EXPECT_TRUE(triad.Tick(kStart + 2000).empty());
  triad.OnHeartbeat(3, protocol::Heartbeat{1, 0, kStart + 2500}, kStart + 2500);
  EXPECT_TRUE(triad.Tick(kStart + 3000).empty());  // exactly the timeout: still up
  EXPECT_EQ(triad.Tick(kStart + 3001), std::vector<int>{4});
  EXPECT_EQ(StateIn(triad, 4), ServerState::kDown);
  EXPECT_EQ(StateIn(triad, 3), ServerState::kUp);
  EXPECT_FALSE(triad.connected(4));
  EXPECT_EQ(triad.Tick(kStart + 5501), std::vector<int>{3});
}

TEST(MembershipTest, HeartbeatWithANewIncarnationRestartsWarmUp) {
  Membership triad(FiveServers(), 0, 1, kStart);
  triad.OnPeerAuthenticated(4, 1, kStart);
  triad.OnHeartbeat(4, protocol::Heartbeat{2, 0, kStart + 500}, kStart + 500);
  EXPECT_EQ(triad.record(4).incarnation, 2u);
  EXPECT_EQ(triad.record(4).up_since_unix_ms, kStart + 500);
  // A heartbeat from a peer we are not connected to is ignored.
  EXPECT_FALSE(triad.OnHeartbeat(3, protocol::Heartbeat{9, 0, kStart}, kStart));
  EXPECT_EQ(StateIn(triad, 3), ServerState::kDown);
}

TEST(MembershipTest, SpokeLearnsOtherSpokesFromTheTriadOnly) {
  const ClusterConfig config = FiveServers();
  Membership triad(config, 0, 1, kStart);
  triad.OnPeerAuthenticated(4, 5, kStart);
  Membership spoke(config, 3, 1, kStart);
  spoke.OnPeerAuthenticated(0, 1, kStart);
  EXPECT_TRUE(spoke.OnViewUpdate(0, triad.FullUpdate(), kStart + 1));
  EXPECT_EQ(StateIn(spoke, 4), ServerState::kUp);
  EXPECT_EQ(spoke.record(4).incarnation, 5u);
  // A spoke does not speak for the cluster.
  Membership other_spoke(config, 4, 5, kStart);
  protocol::ViewUpdate claim = other_spoke.FullUpdate();
  claim.servers[1].incarnation = 99;  // "s1 is down at 99"
  EXPECT_FALSE(spoke.OnViewUpdate(4, claim, kStart + 2));
}

TEST(MembershipTest, StaleDownNeverOverridesANewerUp) {
  Membership spoke(FiveServers(), 3, 1, kStart);
  protocol::ServerRecord up = spoke.record(4);
  up.alive = true;
  up.incarnation = 6;
  up.up_since_unix_ms = kStart;
  ASSERT_TRUE(spoke.OnViewUpdate(0, protocol::ViewUpdate{{up}}, kStart));
  protocol::ServerRecord stale_down = up;
  stale_down.alive = false;
  stale_down.incarnation = 5;
  EXPECT_FALSE(spoke.OnViewUpdate(1, protocol::ViewUpdate{{stale_down}}, kStart + 1));
  EXPECT_EQ(StateIn(spoke, 4), ServerState::kUp);
  // The same incarnation reported down wins: the triad saw it fail.
  protocol::ServerRecord down = up;
  down.alive = false;
  EXPECT_TRUE(spoke.OnViewUpdate(1, protocol::ViewUpdate{{down}}, kStart + 2));
  EXPECT_EQ(StateIn(spoke, 4), ServerState::kDown);
  // A restart (higher incarnation) brings it back.
  protocol::ServerRecord restarted = up;
  restarted.incarnation = 7;
  restarted.up_since_unix_ms = kStart + 3;
  EXPECT_TRUE(spoke.OnViewUpdate(2, protocol::ViewUpdate{{restarted}}, kStart + 3));
  EXPECT_EQ(StateIn(spoke, 4), ServerState::kUp);
  EXPECT_EQ(spoke.record(4).up_since_unix_ms, kStart + 3);
}

TEST(MembershipTest, DirectObservationWinsOverHearsay) {
  Membership spoke(FiveServers(), 3, 1, kStart);
  spoke.OnPeerAuthenticated(1, 4, kStart);
  protocol::ServerRecord rumour = spoke.record(1);
  rumour.alive = false;
  rumour.incarnation = 4;
  EXPECT_FALSE(spoke.OnViewUpdate(0, protocol::ViewUpdate{{rumour}}, kStart + 1));
  EXPECT_EQ(StateIn(spoke, 1), ServerState::kUp);
}

// A triad server does not take another's word for who is up: the other may have
// died since, and nobody would correct it.
TEST(MembershipTest, TriadServersTrustOnlyTheirOwnConnections) {
  const ClusterConfig config = FiveServers();
  Membership triad0(config, 0, 1, kStart);
  Membership triad1(config, 1, 1, kStart);
  triad1.OnPeerAuthenticated(4, 3, kStart);
  triad0.OnPeerAuthenticated(1, 1, kStart);
  triad0.OnViewUpdate(1, triad1.FullUpdate(), kStart + 1);
  EXPECT_EQ(StateIn(triad0, 4), ServerState::kDown);
  // Drain flags still spread between them.
  ASSERT_TRUE(triad1.SetDraining("s4", true).ok());
  triad0.OnViewUpdate(1, triad1.FullUpdate(), kStart + 2);
  EXPECT_TRUE(triad0.record(4).draining);
}

TEST(MembershipTest, ASidecarRefutesRumoursOfItsDeath) {
  const ClusterConfig config = FiveServers();
  Membership spoke(config, 3, 2, kStart);
  protocol::ServerRecord rumour = spoke.record(3);
  rumour.alive = false;
  rumour.incarnation = 2;
  EXPECT_TRUE(spoke.OnViewUpdate(0, protocol::ViewUpdate{{rumour}}, kStart + 1));
  EXPECT_EQ(spoke.self_incarnation(), 3u);
  EXPECT_EQ(StateIn(spoke, 3), ServerState::kUp);
  // The raised incarnation wins at a triad server that believed the rumour.
  Membership triad(config, 1, 1, kStart);
  triad.OnViewUpdate(0, protocol::ViewUpdate{{rumour}}, kStart + 1);
  triad.OnPeerAuthenticated(3, spoke.self_incarnation(), kStart + 2);
  EXPECT_EQ(StateIn(triad, 3), ServerState::kUp);
  EXPECT_EQ(triad.record(3).incarnation, 3u);
}

TEST(MembershipTest, DrainSpreadsAndSurvivesRestarts) {
  const ClusterConfig config = FiveServers();
  Membership triad0(config, 0, 1, kStart);
  triad0.OnPeerAuthenticated(4, 1, kStart);
  ASSERT_TRUE(triad0.SetDraining("s4", true).ok());
  EXPECT_EQ(StateIn(triad0, 4), ServerState::kDraining);
  EXPECT_EQ(triad0.SetDraining("nope", true).code(), Status::Code::kNotFound);

  // Another triad server and a spoke learn it.
  Membership triad1(config, 1, 1, kStart);
  triad1.OnViewUpdate(0, triad0.FullUpdate(), kStart + 1);
  EXPECT_TRUE(triad1.record(4).draining);
  // The drained server restarts: it learns its own drain flag from the triad.
  Membership restarted(config, 4, 2, kStart + 2);
  EXPECT_EQ(StateIn(restarted, 4), ServerState::kUp);
  restarted.OnViewUpdate(1, triad1.FullUpdate(), kStart + 3);
  EXPECT_EQ(StateIn(restarted, 4), ServerState::kDraining);
  // triad0 restarts with no memory; triad1 hands the flag back.
  Membership triad0_again(config, 0, 2, kStart + 4);
  triad0_again.OnViewUpdate(1, triad1.FullUpdate(), kStart + 5);
  EXPECT_TRUE(triad0_again.record(4).draining);

  // Enable with a newer version wins over the older drain.
  ASSERT_TRUE(triad0_again.SetDraining("s4", false).ok());
  triad1.OnViewUpdate(0, triad0_again.FullUpdate(), kStart + 6);
  EXPECT_FALSE(triad1.record(4).draining);
}

TEST(MembershipTest, ConcurrentDrainAndEnableAtTheSameVersionResolveToDraining) {
  const ClusterConfig config = FiveServers();
  Membership a(config, 0, 1, kStart);
  Membership b(config, 1, 1, kStart);
  ASSERT_TRUE(a.SetDraining("s3", true).ok());
  ASSERT_TRUE(b.SetDraining("s3", false).ok());
  a.OnViewUpdate(1, b.FullUpdate(), kStart);
  b.OnViewUpdate(0, a.FullUpdate(), kStart);
  EXPECT_TRUE(a.record(3).draining);
  EXPECT_TRUE(b.record(3).draining);
}

TEST(MembershipTest, OverlongPeerRecordsAreIgnored) {
  Membership spoke(FiveServers(), 3, 1, kStart);
  protocol::ServerRecord record;
  record.index = 9;
  record.id = std::string(200, 'x');
  record.incarnation = 1;
  record.alive = true;
  EXPECT_FALSE(spoke.OnViewUpdate(0, protocol::ViewUpdate{{record}}, kStart));
  EXPECT_FALSE(spoke.Known(9));
  EXPECT_TRUE(spoke.ToView(kStart).Validate().ok());
}

// Five sidecars (incarnation 10 + index) started at `started`, every allowed pair
// connected at kStart, and the triad's views pushed to everyone `rounds` times.
std::vector<std::unique_ptr<Membership>> FiveConnected(const ClusterConfig& config, int64_t started,
                                                       int rounds) {
  std::vector<std::unique_ptr<Membership>> nodes;
  for (int i = 0; i < 5; ++i) {
    nodes.push_back(std::make_unique<Membership>(config, i, 10 + i, started));
  }
  for (int a = 0; a < 5; ++a) {
    for (int b = 0; b < 5; ++b) {
      if (a != b && nodes[a]->MayConnect(b)) nodes[a]->OnPeerAuthenticated(b, 10 + b, kStart);
    }
  }
  for (int round = 0; round < rounds; ++round) {
    for (int from = 0; from < 3; ++from) {
      for (int to = 0; to < 5; ++to) {
        if (to != from) nodes[to]->OnViewUpdate(from, nodes[from]->FullUpdate(), kStart);
      }
    }
  }
  return nodes;
}

// Three triad servers and two spokes, every allowed pair connected, updates pushed
// until nothing changes: every sidecar publishes the same states.
TEST(MembershipTest, FiveSidecarsConverge) {
  const ClusterConfig config = FiveServers();
  auto nodes = FiveConnected(config, kStart, 5);
  for (int node = 0; node < 5; ++node) {
    for (int index = 0; index < 5; ++index) {
      EXPECT_EQ(StateIn(*nodes[node], index), ServerState::kUp) << node << " sees " << index;
      EXPECT_EQ(nodes[node]->record(index).incarnation, 10u + index);
    }
  }
  // Spoke 4 fails: the triad sees the close; spoke 3 learns it from them.
  for (int triad = 0; triad < 3; ++triad) nodes[triad]->OnPeerClosed(4, kStart + 1);
  nodes[3]->OnViewUpdate(0, nodes[0]->FullUpdate(), kStart + 2);
  EXPECT_EQ(StateIn(*nodes[3], 4), ServerState::kDown);
}

// --- founded: no view is published before the sidecar knows who is up ---

// Five sidecars that know each other (running since long before kStart, so
// founded), for one of them to restart among.
std::vector<std::unique_ptr<Membership>> ConvergedFive(const ClusterConfig& config) {
  return FiveConnected(config, kStart - 60'000, 1);
}

TEST(MembershipFoundedTest, TheOnlyServerIsFoundedAtOnceOthersAreNot) {
  std::string text =
      "[cluster]\nname = \"c\"\nkey_file = \"k\"\n[[server]]\nid = \"a\"\n"
      "cluster_address = \"h:1\"\nhttp_address = \"h:2\"\n";
  Result<ClusterConfig> one = ParseClusterConfig(text, "one.toml");
  ASSERT_TRUE(one.ok());
  EXPECT_TRUE(Membership(*one, 0, 1, kStart).founded());
  EXPECT_FALSE(Membership(FiveServers(), 0, 1, kStart).founded());
  EXPECT_FALSE(Membership(FiveServers(), 3, 1, kStart).founded());

  // A dynamic server beside the one static server hears from it first.
  protocol::ServerRecord dynamic;
  dynamic.index = 3;  // dynamic servers take 3..63
  dynamic.id = "web-1";
  dynamic.cluster_address = "h:3";
  dynamic.http_address = "h:4";
  dynamic.admission = 1;
  EXPECT_FALSE(Membership(*one, dynamic, 1, kStart).founded());
  // The static server that knows dynamic servers waits for them to reconnect.
  Membership with_dynamic(*one, 0, 2, kStart);
  with_dynamic.RestoreDynamicIdentities({dynamic}, kStart);
  EXPECT_FALSE(with_dynamic.founded());
  with_dynamic.OnPeerAuthenticated(3, 5, kStart + 10);
  EXPECT_FALSE(with_dynamic.founded()) << "no triad peer to hear from: the alone wait";
  with_dynamic.OnHeartbeat(3, protocol::Heartbeat{5, 0, 0}, kStart + 3000);
  with_dynamic.Tick(kStart + 4000);
  EXPECT_TRUE(with_dynamic.founded());
}

TEST(MembershipFoundedTest, RestartedSpokeIsFoundedByTheFirstTriadView) {
  const ClusterConfig config = FiveServers();
  auto nodes = ConvergedFive(config);
  Membership spoke(config, 3, 99, kStart + 100);  // s3 restarted
  EXPECT_FALSE(spoke.OnPeerAuthenticated(0, 10, kStart + 101) && spoke.founded());
  EXPECT_FALSE(spoke.founded()) << "connected, but told nothing yet";
  EXPECT_TRUE(spoke.OnViewUpdate(0, nodes[0]->FullUpdate(), kStart + 102));
  EXPECT_TRUE(spoke.founded());
  for (int index = 0; index < 5; ++index) EXPECT_EQ(StateIn(spoke, index), ServerState::kUp);
}

// README "Partitions": a spoke that hears no triad server any more learns
// nothing about the servers, only about its links; it keeps its view.
TEST(MembershipCutOffTest, SpokeCutOffFromTheWholeTriadKeepsItsViewAndSaysItIsStale) {
  const ClusterConfig config = FiveServers();  // heartbeat timeout 3 s
  auto nodes = ConvergedFive(config);
  Membership& spoke = *nodes[3];
  ASSERT_TRUE(spoke.founded());
  EXPECT_EQ(spoke.view_stale_since_unix_ms(), 0);
  const int64_t heard = kStart + 10'000;
  for (int triad : {0, 1, 2}) spoke.OnHeartbeat(triad, protocol::Heartbeat{1, 0, heard}, heard);
  // Every triad link falls silent at once; they expire on different ticks.
  EXPECT_EQ(spoke.Tick(heard + 3'001), (std::vector<int>{0, 1, 2}));
  for (int index = 0; index < 5; ++index) {
    EXPECT_EQ(spoke.ToView(heard + 3'001).state(index), ServerState::kUp) << index;
  }
  EXPECT_EQ(spoke.view_stale_since_unix_ms(), heard + 3'001);
  EXPECT_FALSE(spoke.connected(0));

  // A triad server back: the view is the triad's again.
  spoke.OnPeerAuthenticated(1, 1, heard + 5'000);
  EXPECT_EQ(spoke.view_stale_since_unix_ms(), 0);
  protocol::ViewUpdate update = nodes[1]->FullUpdate();
  for (protocol::ServerRecord& record : update.servers) {
    if (record.index == 4) record.alive = false;  // s4 failed meanwhile
  }
  EXPECT_TRUE(spoke.OnViewUpdate(1, update, heard + 5'001));
  EXPECT_EQ(spoke.ToView(heard + 5'001).state(4), ServerState::kDown);
}

TEST(MembershipCutOffTest, SpokeStillMarksDownATriadServerThatFailsWhileOthersAreHeard) {
  const ClusterConfig config = FiveServers();
  auto nodes = ConvergedFive(config);
  Membership& spoke = *nodes[3];
  const int64_t t = kStart + 10'000;
  for (int triad : {0, 1, 2}) spoke.OnHeartbeat(triad, protocol::Heartbeat{1, 0, t}, t);
  // Closed at once (a kill): the others were heard lately.
  EXPECT_TRUE(spoke.OnPeerClosed(0, t + 500));
  EXPECT_EQ(spoke.ToView(t + 500).state(0), ServerState::kDown);
  // Silent (a stopped process) while 2 is heard.
  spoke.OnHeartbeat(2, protocol::Heartbeat{1, 0, t + 2'500}, t + 2'500);
  EXPECT_EQ(spoke.Tick(t + 3'001), (std::vector<int>{1}));
  EXPECT_EQ(spoke.ToView(t + 3'001).state(1), ServerState::kDown);
  EXPECT_EQ(spoke.view_stale_since_unix_ms(), 0);
  // The last one closes: nobody is left to tell, so it stays as it was.
  EXPECT_FALSE(spoke.OnPeerClosed(2, t + 3'100));
  EXPECT_EQ(spoke.ToView(t + 3'100).state(2), ServerState::kUp);
  EXPECT_EQ(spoke.view_stale_since_unix_ms(), t + 3'100);
}

// With a heartbeat interval above half the timeout, a live triad link may be
// silent for longer than half the timeout between two heartbeats: it is still
// "heard lately", so a triad server that closes meanwhile is marked down.
TEST(MembershipCutOffTest, SlowHeartbeatsStillCountAsHeardLately) {
  ClusterConfig config = FiveServers();
  config.heartbeat_interval = std::chrono::milliseconds(2'000);  // timeout 3 s
  auto nodes = ConvergedFive(config);
  Membership& spoke = *nodes[3];
  const int64_t t = kStart + 10'000;
  for (int triad : {0, 1, 2}) spoke.OnHeartbeat(triad, protocol::Heartbeat{1, 0, t}, t);
  EXPECT_TRUE(spoke.OnPeerClosed(0, t + 1'900));
  EXPECT_EQ(spoke.ToView(t + 1'900).state(0), ServerState::kDown);
  EXPECT_EQ(spoke.view_stale_since_unix_ms(), 0);
}

TEST(MembershipCutOffTest, TriadServersMarkDownWhatTheyNoLongerHear) {
  const ClusterConfig config = FiveServers();
  auto nodes = ConvergedFive(config);
  Membership& triad = *nodes[1];
  const int64_t t = kStart + 10'000;
  for (int peer : {0, 2, 3, 4}) triad.OnHeartbeat(peer, protocol::Heartbeat{1, 0, t}, t);
  EXPECT_EQ(triad.Tick(t + 3'001).size(), 4u);
  for (int peer : {0, 2, 3, 4}) EXPECT_EQ(triad.ToView(t + 3'001).state(peer), ServerState::kDown);
  EXPECT_EQ(triad.view_stale_since_unix_ms(), 0);
}

TEST(MembershipFoundedTest, RestartedTriadServerWaitsForEveryServerTheTriadShowsUp) {
  const ClusterConfig config = FiveServers();
  auto nodes = ConvergedFive(config);
  Membership triad(config, 0, 99, kStart + 100);  // s0 restarted
  triad.OnPeerAuthenticated(1, 11, kStart + 101);
  EXPECT_FALSE(triad.founded());
  // s1 shows s2, s3 and s4 up: a triad server sees them only by their connections.
  triad.OnViewUpdate(1, nodes[1]->FullUpdate(), kStart + 102);
  EXPECT_FALSE(triad.founded());
  triad.OnPeerAuthenticated(2, 12, kStart + 103);
  triad.OnPeerAuthenticated(3, 13, kStart + 104);
  EXPECT_FALSE(triad.founded());
  triad.OnViewUpdate(2, nodes[2]->FullUpdate(), kStart + 104);
  EXPECT_FALSE(triad.founded()) << "s4 is not connected yet";
  EXPECT_TRUE(triad.OnPeerAuthenticated(4, 14, kStart + 105));
  EXPECT_TRUE(triad.founded());
}

TEST(MembershipFoundedTest, AViewOfATriadServerThatJustStartedTooFoundsNothing) {
  const ClusterConfig config = FiveServers();
  auto nodes = ConvergedFive(config);
  Membership spoke(config, 4, 99, kStart + 100);
  // s2 restarted too and knows only itself and s0 so far; s0 knows everyone.
  Membership restarted_triad(config, 2, 98, kStart + 100);
  restarted_triad.OnPeerAuthenticated(0, 10, kStart + 100);
  ASSERT_FALSE(restarted_triad.founded());
  spoke.OnPeerAuthenticated(2, 98, kStart + 101);
  spoke.OnViewUpdate(2, restarted_triad.FullUpdate(), kStart + 102);
  EXPECT_FALSE(spoke.founded()) << "s2 has met only s0: its view shows everyone else down";
  // s0's view counts; s2's, not founded, neither helps nor holds it up.
  spoke.OnPeerAuthenticated(0, 10, kStart + 103);
  spoke.OnViewUpdate(0, nodes[0]->FullUpdate(), kStart + 104);
  EXPECT_TRUE(spoke.founded());
  for (int index = 0; index < 5; ++index) EXPECT_EQ(StateIn(spoke, index), ServerState::kUp);
  // s2, founded once it has heard s0 and met everyone s0 shows up, says so.
  restarted_triad.OnViewUpdate(0, nodes[0]->FullUpdate(), kStart + 105);
  for (int peer : {1, 3, 4}) restarted_triad.OnPeerAuthenticated(peer, 10 + peer, kStart + 106);
  EXPECT_FALSE(restarted_triad.founded()) << "s1 has not sent its view yet";
  restarted_triad.OnViewUpdate(1, nodes[1]->FullUpdate(), kStart + 107);
  EXPECT_TRUE(restarted_triad.founded());
  EXPECT_TRUE(restarted_triad.FullUpdate().founded);
}

TEST(MembershipFoundedTest, EveryConnectedTriadPeerMustAgree) {
  const ClusterConfig config = FiveServers();
  auto nodes = ConvergedFive(config);

  // s0's view shows s3 up at incarnation 13; s2 shows s3 down at 13 (it lost s3
  // for a moment): down wins at equal incarnations, so the spoke shows s3 down,
  // against s0's word.
  protocol::ViewUpdate from_two = nodes[2]->FullUpdate();
  for (protocol::ServerRecord& record : from_two.servers) {
    if (record.index == 3) record.alive = false;
  }
  Membership spoke3(config, 4, 99, kStart + 100);
  spoke3.OnPeerAuthenticated(0, 10, kStart + 101);
  spoke3.OnPeerAuthenticated(2, 12, kStart + 101);
  spoke3.OnViewUpdate(2, from_two, kStart + 102);
  EXPECT_FALSE(spoke3.founded()) << "s0 is connected and has not told its view yet";
  spoke3.OnViewUpdate(0, nodes[0]->FullUpdate(), kStart + 103);
  EXPECT_FALSE(spoke3.founded());
  spoke3.OnViewUpdate(2, nodes[2]->FullUpdate(), kStart + 104);
  EXPECT_EQ(StateIn(spoke3, 3), ServerState::kDown) << "down at equal incarnation stays";
  EXPECT_FALSE(spoke3.founded());
  // s2 loses its connection: only s0's word counts now, and it still disagrees...
  spoke3.OnPeerClosed(2, kStart + 105);
  EXPECT_FALSE(spoke3.founded());
  // ...until the alone wait is over (4 s here).
  spoke3.OnHeartbeat(0, protocol::Heartbeat{10, 0, 0}, kStart + 100 + 3000);
  spoke3.Tick(kStart + 100 + 3999);
  EXPECT_FALSE(spoke3.founded());
  spoke3.Tick(kStart + 100 + 4000);
  EXPECT_TRUE(spoke3.founded());
}

TEST(MembershipFoundedTest, HeardFromNoTriadPeerItIsFoundedAfterTheAloneWait) {
  const ClusterConfig config = FiveServers();  // alone wait: 3 s timeout + 1 s interval
  Membership triad(config, 1, 5, kStart);
  triad.Tick(kStart + 3999);
  EXPECT_FALSE(triad.founded());
  const uint64_t generation = triad.generation();
  triad.Tick(kStart + 4000);
  EXPECT_TRUE(triad.founded());
  EXPECT_GT(triad.generation(), generation) << "founding is a change to publish";
  // Once founded, always: losing every peer changes nothing about it.
  triad.OnPeerAuthenticated(0, 1, kStart + 5000);
  triad.OnPeerClosed(0, kStart + 5001);
  EXPECT_TRUE(triad.founded());
}

// A spoke restarted while it is cut off from the whole triad publishes nothing:
// a view of its own would show every other server down.
TEST(MembershipFoundedTest, SpokeThatReachesNoTriadServerIsNotFoundedByTheAloneWait) {
  const ClusterConfig config = FiveServers();  // alone wait: 3 s timeout + 1 s interval
  auto nodes = ConvergedFive(config);
  Membership spoke(config, 4, 20, kStart);
  spoke.Tick(kStart + 4000);
  spoke.Tick(kStart + 60'000);
  EXPECT_FALSE(spoke.founded());
  // Once a triad server is reached, its view founds the spoke as usual.
  spoke.OnPeerAuthenticated(1, 11, kStart + 60'001);
  EXPECT_FALSE(spoke.founded());
  spoke.OnViewUpdate(1, nodes[1]->FullUpdate(), kStart + 60'002);
  EXPECT_TRUE(spoke.founded());
  EXPECT_EQ(spoke.ToView(kStart + 60'002).state(0), ServerState::kUp);
}

TEST(MembershipFoundedTest, ColdStartOfTheWholeClusterFoundsEveryoneAfterTheAloneWait) {
  const ClusterConfig config = FiveServers();
  auto nodes = FiveConnected(config, kStart, 2);
  // Nobody can vouch for anybody: each waits out the alone wait.
  for (int node = 0; node < 5; ++node) EXPECT_FALSE(nodes[node]->founded()) << node;
  for (int node = 0; node < 5; ++node) {
    for (int peer = 0; peer < 5; ++peer) {
      if (nodes[node]->connected(peer)) {
        nodes[node]->OnHeartbeat(peer, protocol::Heartbeat{10u + peer, 0, 0}, kStart + 3500);
      }
    }
    nodes[node]->Tick(kStart + 4000);
    EXPECT_TRUE(nodes[node]->founded()) << node;
  }
}

}  // namespace
}  // namespace cb::membership

namespace cb::membership {
namespace {

protocol::DeploymentTarget Target(char commit_digit, uint64_t version) {
  return {"production/webapp/default/shop", std::string(40, commit_digit), version, ""};
}

TEST(MembershipDeployTest, TheTargetOfHighestVersionWinsInAnyOrder) {
  Membership a(FiveServers(), 3, 1, kStart);
  Membership b(FiveServers(), 4, 1, kStart);
  EXPECT_TRUE(a.MergeDeployment(Target('1', 10)));
  EXPECT_TRUE(a.MergeDeployment(Target('2', 20)));
  EXPECT_FALSE(a.MergeDeployment(Target('1', 10)));  // older: ignored
  EXPECT_TRUE(b.MergeDeployment(Target('2', 20)));
  EXPECT_FALSE(b.MergeDeployment(Target('1', 10)));
  EXPECT_EQ(a.deployments().at("production/webapp/default/shop"),
            b.deployments().at("production/webapp/default/shop"));
  // At equal versions the larger commit, so that two deploys in the same tick agree.
  EXPECT_TRUE(a.MergeDeployment(Target('3', 20)));
  EXPECT_FALSE(a.MergeDeployment(Target('2', 20)));
}

TEST(MembershipDeployTest, MalformedTargetsAreIgnored) {
  Membership spoke(FiveServers(), 3, 1, kStart);
  protocol::DeploymentTarget bad = Target('1', 5);
  bad.commit = "xyz";
  EXPECT_FALSE(spoke.MergeDeployment(bad));
  bad = Target('1', 5);
  bad.name = std::string(200, 'n');
  EXPECT_FALSE(spoke.MergeDeployment(bad));
  EXPECT_TRUE(spoke.deployments().empty());
}

TEST(MembershipDeployTest, ViewUpdatesCarryTargetsAndHeartbeatsWhatAServerRuns) {
  Membership triad(FiveServers(), 0, 1, kStart);
  Membership spoke(FiveServers(), 3, 1, kStart);
  triad.OnPeerAuthenticated(3, 1, kStart);
  spoke.OnPeerAuthenticated(0, 1, kStart);
  ASSERT_TRUE(triad.MergeDeployment(Target('a', 7)));
  EXPECT_TRUE(spoke.OnViewUpdate(0, triad.FullUpdate(), kStart + 1));
  EXPECT_EQ(spoke.deployments().at("production/webapp/default/shop").commit, std::string(40, 'a'));

  const std::vector<protocol::DeployedApp> runs = {
      {"production/webapp/default/shop", std::string(40, 'a'), ""}};
  EXPECT_TRUE(spoke.SetSelfDeployed(runs));
  EXPECT_FALSE(spoke.SetSelfDeployed(runs));
  EXPECT_TRUE(triad.OnHeartbeat(3, spoke.MakeHeartbeat(kStart + 2), kStart + 2));
  EXPECT_EQ(triad.record(3).deployed, runs);
  // Another spoke learns it from the triad's view.
  Membership other(FiveServers(), 4, 1, kStart);
  other.OnPeerAuthenticated(0, 1, kStart);
  other.OnViewUpdate(0, triad.FullUpdate(), kStart + 3);
  EXPECT_EQ(other.record(3).deployed, runs);
  // An unsorted list is not one a sidecar of ours sends.
  protocol::Heartbeat odd = spoke.MakeHeartbeat(kStart + 4);
  odd.deployed = {{"b", "", ""}, {"a", "", ""}};
  triad.OnHeartbeat(3, odd, kStart + 4);
  EXPECT_EQ(triad.record(3).deployed, runs);
}

}  // namespace
}  // namespace cb::membership

namespace cb::membership {
namespace {

TEST(MembershipDeployTest, TheViewShowsWhoRunsTheCurrentVersion) {
  Membership triad(FiveServers(), 0, 1, kStart);
  triad.OnPeerAuthenticated(3, 1, kStart);
  triad.OnPeerAuthenticated(4, 1, kStart);
  const std::string name = "production/webapp/default/shop";
  const std::string v1(40, '1'), v2(40, '2');
  triad.MergeDeployment({name, v2, 9, ""});
  protocol::Heartbeat on_v2 = triad.MakeHeartbeat(kStart + 1);
  on_v2.deployed = {{name, v2, ""}};
  protocol::Heartbeat on_v1 = on_v2;
  on_v1.deployed = {{name, v1, ""}};
  triad.OnHeartbeat(3, on_v2, kStart + 1);
  triad.OnHeartbeat(4, on_v1, kStart + 1);
  const ClusterView view = triad.ToView(kStart + 2);
  ASSERT_TRUE(view.Validate().ok());
  const ViewDeployment* shop = view.FindDeployment("shop");
  ASSERT_NE(shop, nullptr);
  EXPECT_EQ(shop->commit_view(), v2);
  EXPECT_TRUE(shop->Runs(3));
  EXPECT_FALSE(shop->Runs(4));
  EXPECT_FALSE(shop->Runs(0));  // reported nothing
  EXPECT_EQ(shop->ServerCommitHex(4), v1);
}

}  // namespace
}  // namespace cb::membership
