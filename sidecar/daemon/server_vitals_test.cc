#include "sidecar/daemon/server_vitals.h"

#include <gtest/gtest.h>

namespace cb::daemon {
namespace {

protocol::Heartbeat From(uint64_t sent_steady_us, uint64_t echo = 0, uint64_t held = 0) {
  protocol::Heartbeat heartbeat;
  heartbeat.sent_steady_us = sent_steady_us;
  heartbeat.echo_steady_us = echo;
  heartbeat.echo_held_us = held;
  return heartbeat;
}

TEST(ServerVitalsTest, RoundTripIsTheEchoMinusTheTimeThePeerHeldIt) {
  ServerVitals vitals;
  protocol::Heartbeat out;
  vitals.StampEcho(3, out, 1'000'000);
  EXPECT_EQ(out.sent_steady_us, 1'000'000u);
  EXPECT_EQ(out.echo_steady_us, 0u);  // nothing heard from 3 yet
  EXPECT_FALSE(vitals.RoundTripMs(3).has_value());

  // Peer 3 (another clock entirely) got ours, held it 200 µs, and echoes it.
  vitals.OnHeartbeat(3, From(77'000'000, 1'000'000, 200), 1'001'450, false);
  ASSERT_TRUE(vitals.RoundTripMs(3).has_value());
  EXPECT_DOUBLE_EQ(*vitals.RoundTripMs(3), 1.25);

  // Our next heartbeat to 3 echoes its reading with how long we held it.
  vitals.StampEcho(3, out, 1'101'450);
  EXPECT_EQ(out.echo_steady_us, 77'000'000u);
  EXPECT_EQ(out.echo_held_us, 100'000u);
}

TEST(ServerVitalsTest, NoEchoOrAnImpossibleOneKeepsTheLastRoundTrip) {
  ServerVitals vitals;
  vitals.OnHeartbeat(1, From(5, 1'000, 100), 2'000, false);
  EXPECT_DOUBLE_EQ(*vitals.RoundTripMs(1), 0.9);
  vitals.OnHeartbeat(1, From(6), 3'000, false);              // an older peer: no echo
  vitals.OnHeartbeat(1, From(7, 2'900, 500), 3'000, false);  // held longer than the trip
  vitals.OnHeartbeat(1, From(8, 9'000, 0), 3'000, false);    // from our future
  EXPECT_DOUBLE_EQ(*vitals.RoundTripMs(1), 0.9);
  vitals.OnPeerDown(1);
  EXPECT_FALSE(vitals.RoundTripMs(1).has_value());
  protocol::Heartbeat out;
  vitals.StampEcho(1, out, 4'000);
  EXPECT_EQ(out.echo_steady_us, 0u);  // a new connection starts over
}

TEST(ServerVitalsTest, SessionsComeFromOwnCountsElseOneReadyTriadServer) {
  ServerVitals vitals;
  EXPECT_FALSE(vitals.Sessions(4).has_value());
  protocol::Heartbeat heartbeat = From(1);
  heartbeat.live_sessions = {0, 0, 0, 0, 200};
  vitals.OnHeartbeat(0, heartbeat, 10, /*from_ready_triad=*/false);  // not caught up: ignored
  EXPECT_FALSE(vitals.Sessions(4).has_value());
  vitals.OnHeartbeat(1, heartbeat, 10, /*from_ready_triad=*/true);
  EXPECT_EQ(vitals.Sessions(4), 200u);
  EXPECT_EQ(vitals.Sessions(9), 0u);  // beyond the list: none
  // The lowest ready triad server is the one source: another's (older) count is ignored.
  heartbeat.live_sessions = {0, 0, 0, 0, 150};
  vitals.OnHeartbeat(0, heartbeat, 20, true);
  EXPECT_EQ(vitals.Sessions(4), 150u);
  heartbeat.live_sessions = {0, 0, 0, 0, 151};
  vitals.OnHeartbeat(2, heartbeat, 30, true);
  EXPECT_EQ(vitals.Sessions(4), 150u);
  heartbeat.live_sessions.assign(kMaxServers + 1, 9);  // malformed: ignored
  vitals.OnHeartbeat(0, heartbeat, 30, true);
  EXPECT_EQ(vitals.Sessions(4), 150u);
  // The source lost: unknown until another ready triad server speaks.
  vitals.OnPeerDown(0);
  EXPECT_FALSE(vitals.Sessions(4).has_value());
  heartbeat.live_sessions = {0, 0, 0, 0, 149};
  vitals.OnHeartbeat(2, heartbeat, 40, true);
  EXPECT_EQ(vitals.Sessions(4), 149u);
  vitals.OnHeartbeat(2, From(2), 50, /*from_ready_triad=*/false);  // it fell behind
  EXPECT_FALSE(vitals.Sessions(4).has_value());

  vitals.SetOwnSessionCounts(std::vector<uint64_t>{0, 0, 0, 0, 148});
  EXPECT_EQ(vitals.Sessions(4), 148u);
  ASSERT_TRUE(vitals.own_session_counts().has_value());
  vitals.SetOwnSessionCounts(std::nullopt);
  EXPECT_FALSE(vitals.Sessions(4).has_value());
  EXPECT_FALSE(vitals.Sessions(-1).has_value());
  EXPECT_FALSE(vitals.Sessions(kMaxServers).has_value());
}

TEST(ServerVitalsTest, StateSinceStartsAtEachChange) {
  ServerVitals vitals;
  ClusterView view;
  view.server(2).state = static_cast<uint8_t>(ServerState::kUp);
  vitals.ObserveStates(view, 1'000);
  vitals.ObserveStates(view, 2'000);
  EXPECT_EQ(vitals.StateSinceUnixMs(2), 1'000);
  view.server(2).state = static_cast<uint8_t>(ServerState::kDraining);
  vitals.ObserveStates(view, 3'000);
  vitals.ObserveStates(view, 4'000);
  EXPECT_EQ(vitals.StateSinceUnixMs(2), 3'000);
  EXPECT_EQ(vitals.StateSinceUnixMs(99), 0);
}

}  // namespace
}  // namespace cb::daemon
