#include "sidecar/cache/ownership.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

#include "shared/rendezvous.h"

namespace cb::cache {
namespace {

ServerSet Set(std::initializer_list<int> indices) {
  ServerSet set;
  for (int index : indices) set.Add(index);
  return set;
}

protocol::Heartbeat Said(bool ready, ServerSet ready_seen, ServerSet triad_links,
                         ServerSet caught_up_from = {}) {
  protocol::Heartbeat heartbeat;
  heartbeat.store_ready = ready;
  heartbeat.ready_seen = ready_seen.bits();
  heartbeat.triad_links = triad_links.bits();
  heartbeat.caught_up_from = caught_up_from.bits();
  return heartbeat;
}

// What a spoke's heartbeat says of the triad servers it reaches.
protocol::Heartbeat SpokeReaches(ServerSet triad_links) { return Said(false, {}, triad_links); }

TEST(OwnershipTest, LoneServerOwnsEverythingOnceReady) {
  Ownership ownership(0, true, 1);
  EXPECT_FALSE(ownership.ready());
  EXPECT_FALSE(ownership.synced());
  EXPECT_FALSE(ownership.owning());
  EXPECT_EQ(ownership.ready_seen(), 0u);
  EXPECT_EQ(ownership.OwnerOf("session", "k"), -1);
  EXPECT_EQ(ownership.triad_links(), Set({0}).bits());

  EXPECT_TRUE(ownership.BecomeReady());
  EXPECT_FALSE(ownership.BecomeReady());  // once
  EXPECT_TRUE(ownership.synced());
  EXPECT_TRUE(ownership.owning());
  EXPECT_EQ(ownership.ReadyTriad(), Set({0}));
  EXPECT_EQ(ownership.OwnerOf("session", "k"), 0);

  protocol::Heartbeat stamped;
  ownership.Stamp(stamped);
  EXPECT_TRUE(stamped.store_ready);
  EXPECT_EQ(stamped.ready_seen, Set({0}).bits());
  EXPECT_EQ(stamped.triad_links, Set({0}).bits());
  EXPECT_EQ(stamped.caught_up_from, 0u);
}

TEST(OwnershipTest, SpokeCountsTheSyncedTriadServersItReaches) {
  Ownership spoke(3, false, 5);
  spoke.PeerConnected(0);
  spoke.PeerConnected(1);
  spoke.PeerConnected(4);  // another spoke
  EXPECT_EQ(spoke.triad_links(), Set({0, 1}).bits());
  // A spoke never pulls, and never owns.
  EXPECT_FALSE(spoke.OnHeartbeat(0, Said(true, Set({0, 1}), Set({0, 1})), false).start);
  EXPECT_FALSE(spoke.OnHeartbeat(1, Said(true, Set({0, 1}), Set({0, 1})), false).start);
  EXPECT_EQ(spoke.ReadyTriad(), Set({0, 1}));
  EXPECT_FALSE(spoke.synced());
  EXPECT_FALSE(spoke.owning());
  // The owner is the rendezvous choice over cache NUL key among them.
  EXPECT_EQ(spoke.OwnerOf("session", "k"),
            OwnerAmongLiveTriad(std::string("session\0k", 9), Set({0, 1})));
  // A triad server that says it is not synced (its own bit) is no owner.
  spoke.OnHeartbeat(1, Said(true, Set({0}), Set({0, 1})), false);
  EXPECT_EQ(spoke.ReadyTriad(), Set({0}));
  spoke.PeerLost(0);
  EXPECT_EQ(spoke.ReadyTriad(), Set({}));
}

TEST(OwnershipTest, CatchingUpFromAReadyPeerThenOwningOnceCounted) {
  Ownership ownership(2, true, 3);
  ownership.PeerConnected(0);
  // Its first heartbeat: ready; this server is not, so the pull counts.
  const Ownership::Pull pull = ownership.OnHeartbeat(0, Said(true, Set({0}), Set({0, 2})), false);
  EXPECT_TRUE(pull.start);
  EXPECT_TRUE(pull.counts);
  ownership.CountPull(0);
  EXPECT_TRUE(ownership.awaiting_pulls());
  // A second heartbeat starts no second pull.
  EXPECT_FALSE(ownership.OnHeartbeat(0, Said(true, Set({0}), Set({0, 2})), true).start);
  EXPECT_FALSE(ownership.ready());
  EXPECT_EQ(ownership.ReadyTriad(), Set({0}));

  EXPECT_TRUE(ownership.PullFinished(0));  // the last pull readiness waited for
  EXPECT_TRUE(ownership.BecomeReady());
  EXPECT_FALSE(ownership.awaiting_pulls());
  EXPECT_TRUE(ownership.synced());
  EXPECT_EQ(ownership.ReadyTriad(), Set({0, 2}));
  // Synced, but index 0 does not count it yet.
  EXPECT_FALSE(ownership.owning());
  ownership.OnHeartbeat(0, Said(true, Set({0, 2}), Set({0, 2})), false);
  EXPECT_TRUE(ownership.owning());

  protocol::Heartbeat stamped;
  ownership.Stamp(stamped);
  EXPECT_EQ(stamped.caught_up_from, Set({0}).bits());
  EXPECT_EQ(stamped.triad_links, Set({0, 2}).bits());
}

TEST(OwnershipTest, ReadyServerIsNotSyncedBeforeItPulledFromAReadyPeer) {
  Ownership ownership(0, true, 3);
  ASSERT_TRUE(ownership.BecomeReady());  // alone
  ownership.PeerConnected(1);
  const Ownership::Pull pull = ownership.OnHeartbeat(1, Said(true, Set({1}), Set({0, 1})), false);
  EXPECT_TRUE(pull.start);
  EXPECT_FALSE(pull.counts);  // it is ready already
  EXPECT_FALSE(ownership.synced());
  EXPECT_EQ(ownership.ReadyTriad(), Set({1}));
  EXPECT_FALSE(ownership.PullFinished(1));  // readiness did not wait for it
  EXPECT_TRUE(ownership.synced());
  EXPECT_EQ(ownership.ReadyTriad(), Set({0, 1}));
}

TEST(OwnershipTest, PeerNotConnectedToEveryOwnerIsNotCounted) {
  Ownership ownership(0, true, 3);
  ownership.BecomeReady();
  for (int peer : {1, 2}) {
    ownership.PeerConnected(peer);
    ownership.OnHeartbeat(peer, Said(true, Set({peer}), Set({0, peer})), false);
    ownership.PullFinished(peer);
  }
  // 1 and 2 are synced, but neither is connected to the other: each would be
  // taken for down there.
  EXPECT_EQ(ownership.ReadyTriad(), Set({0}));
  ownership.OnHeartbeat(1, Said(true, Set({1}), Set({0, 1, 2})), false);
  EXPECT_EQ(ownership.ReadyTriad(), Set({0, 1}));
  ownership.OnHeartbeat(2, Said(true, Set({2}), Set({0, 1, 2})), false);
  EXPECT_EQ(ownership.ReadyTriad(), Set({0, 1, 2}));
}

TEST(OwnershipTest, PeerTurningReadyHoldsUpOwnershipUnlessItCaughtUpFromServersSyncedWith) {
  {
    // It caught up from this server only, and no pull of it is under way.
    Ownership ownership(0, true, 3);
    ownership.BecomeReady();
    ownership.PeerConnected(1);
    ownership.OnHeartbeat(1, Said(false, Set({}), Set({0, 1})), false);
    ASSERT_TRUE(ownership.synced());  // a peer that is not ready holds nothing up
    const Ownership::Pull pull =
        ownership.OnHeartbeat(1, Said(true, Set({1}), Set({0, 1}), Set({0})), false);
    EXPECT_TRUE(pull.start);  // for convergence
    EXPECT_FALSE(pull.counts);
    EXPECT_TRUE(ownership.synced());
  }
  {
    // The same, but this server's first pull of it is still under way.
    Ownership ownership(0, true, 3);
    ownership.BecomeReady();
    ownership.PeerConnected(1);
    ownership.OnHeartbeat(1, Said(false, Set({}), Set({0, 1})), false);
    ownership.OnHeartbeat(1, Said(true, Set({1}), Set({0, 1}), Set({0})), true);
    EXPECT_FALSE(ownership.synced());
    ownership.PullFinished(1);
    EXPECT_TRUE(ownership.synced());
  }
  {
    // It caught up from index 2, which this server has not synced with.
    Ownership ownership(0, true, 3);
    ownership.BecomeReady();
    ownership.PeerConnected(1);
    ownership.OnHeartbeat(1, Said(false, Set({}), Set({0, 1})), false);
    ownership.OnHeartbeat(1, Said(true, Set({1}), Set({0, 1, 2}), Set({2})), false);
    EXPECT_FALSE(ownership.synced());
  }
}

TEST(OwnershipTest, LosingTheOnlyCountedPullStartsCatchUpOver) {
  Ownership ownership(2, true, 3);
  for (int peer : {0, 1}) {
    ownership.PeerConnected(peer);
    ASSERT_TRUE(ownership.OnHeartbeat(peer, Said(true, Set({0, 1}), Set({0, 1, 2})), false).counts);
    ownership.CountPull(peer);
  }
  EXPECT_FALSE(ownership.PeerLost(0));  // the pull from 1 is still under way
  EXPECT_TRUE(ownership.PeerLost(1));
  EXPECT_FALSE(ownership.awaiting_pulls());
  EXPECT_EQ(ownership.ReadyTriad(), Set({}));
  EXPECT_EQ(ownership.triad_links(), Set({2}).bits());
  // Connected again: pulled again, from scratch.
  ownership.PeerConnected(0);
  EXPECT_TRUE(ownership.OnHeartbeat(0, Said(true, Set({0}), Set({0, 2})), false).start);
}

TEST(OwnershipTest, LosingAPeerOnceReadyNeedsNoCatchUp) {
  Ownership ownership(0, true, 2);
  ownership.PeerConnected(1);
  ownership.OnHeartbeat(1, Said(true, Set({1}), Set({0, 1})), false);
  ownership.CountPull(1);
  ownership.BecomeReady();  // alone after all, say (index 0 of two: a quorum alone)
  EXPECT_FALSE(ownership.PeerLost(1));
  EXPECT_TRUE(ownership.synced());
  EXPECT_TRUE(ownership.owning());
}

TEST(OwnershipTest, HeartbeatsOfItselfAndOfSpokesAreIgnored) {
  Ownership ownership(0, true, 3);
  ownership.PeerConnected(3);
  EXPECT_FALSE(ownership.OnHeartbeat(0, Said(true, Set({0}), Set({0})), false).start);
  EXPECT_FALSE(ownership.OnHeartbeat(3, Said(true, Set({0}), Set({0})), false).start);
  EXPECT_FALSE(ownership.OnHeartbeat(-1, Said(true, Set({0}), Set({0})), false).start);
  EXPECT_EQ(ownership.ReadyPeers(), Set({}));
  EXPECT_EQ(ownership.connected(), Set({3}));
  EXPECT_EQ(ownership.TriadPeers(), Set({}));
}

TEST(OwnershipTest, TriadServerOwnsOnlyWhileItReachesMoreThanHalfOfTheClusterFile) {
  // 3 triad servers and 2 spokes in the cluster file.
  Ownership ownership(1, true, 5);
  ASSERT_TRUE(ownership.BecomeReady());
  EXPECT_EQ(ownership.voters_reached(), 1);
  EXPECT_FALSE(ownership.quorum());
  EXPECT_FALSE(ownership.synced());
  EXPECT_FALSE(ownership.owning());
  EXPECT_EQ(ownership.ReadyTriad(), Set({}));
  EXPECT_EQ(ownership.OwnerOf("session", "k"), -1);
  protocol::Heartbeat stamped;
  ownership.Stamp(stamped);
  EXPECT_EQ(stamped.ready_seen, 0u);  // spokes and peers count it out

  // The two spokes: 3 of 5, while both other triad servers are gone, once each
  // has said that it reaches this triad server alone.
  ownership.PeerConnected(3);
  ownership.OnHeartbeat(3, SpokeReaches(Set({1})), false);
  EXPECT_FALSE(ownership.quorum());
  ownership.PeerConnected(4);
  EXPECT_EQ(ownership.voters_reached(), 2);  // not yet heard
  ownership.OnHeartbeat(4, SpokeReaches(Set({1})), false);
  EXPECT_EQ(ownership.voters_reached(), 3);
  EXPECT_TRUE(ownership.quorum());
  EXPECT_TRUE(ownership.owning());
  EXPECT_EQ(ownership.OwnerOf("session", "k"), 1);

  ownership.PeerLost(3);
  EXPECT_FALSE(ownership.owning());
  EXPECT_EQ(ownership.ReadyTriad(), Set({}));
}

// Asymmetric cut: 0 reaches 1, 1 reaches 2, 0 does not reach 2; the spokes
// reach all three. Server 1 counts neither 0 nor 2 (each misses a triad server
// it counts), so 0 sends every key to 1 instead of owning some itself.
TEST(OwnershipTest, ServerNotCountedByItsPeersLeavesItsKeysToThoseCounted) {
  Ownership ownership(0, true, 5);
  ownership.BecomeReady();
  ownership.PeerConnected(1);
  ownership.PeerConnected(3);
  ownership.PeerConnected(4);
  ownership.OnHeartbeat(1, Said(true, Set({1}), Set({0, 1, 2})), false);
  ownership.PullFinished(1);
  ASSERT_TRUE(ownership.ReadyPeers().Contains(1));
  EXPECT_FALSE(ownership.owning());
  EXPECT_EQ(ownership.ReadyTriad(), Set({1}));
  for (const char* key : {"a", "b", "c", "d", "e", "f", "g", "h"}) {
    EXPECT_EQ(ownership.OwnerOf("session", key), 1) << key;
  }

  // Were the spokes cut off from 2, they would vote for 0's side too.
  ownership.OnHeartbeat(3, SpokeReaches(Set({0, 1})), false);
  ownership.OnHeartbeat(4, SpokeReaches(Set({0, 1})), false);
  EXPECT_TRUE(ownership.quorum());
  EXPECT_TRUE(ownership.synced());
  EXPECT_EQ(ownership.ReadyTriad(), Set({0, 1}));
}

// 0 is cut off from 1 and 2, and both spokes still reach all three: were the
// spokes to count for both sides, both would reach 3 or 4 of the 5 servers and
// accept writes for the same keys. Each spoke votes for the larger group, 1 and 2.
TEST(OwnershipTest, SpokeReachingBothSidesOfACutVotesForOneSideOnly) {
  Ownership spoke(3, false, 5);
  for (int triad : {0, 1, 2}) spoke.PeerConnected(triad);
  spoke.OnHeartbeat(0, Said(true, Set({0}), Set({0})), false);
  spoke.OnHeartbeat(1, Said(true, Set({1, 2}), Set({1, 2})), false);
  spoke.OnHeartbeat(2, Said(true, Set({1, 2}), Set({1, 2})), false);
  ASSERT_EQ(spoke.QuorumVote(), Set({1, 2}).bits());
  protocol::Heartbeat stamped;
  spoke.Stamp(stamped);
  EXPECT_EQ(stamped.triad_links, Set({1, 2}).bits());

  Ownership lone(0, true, 5);
  Ownership pair(1, true, 5);
  pair.PeerConnected(2);
  for (Ownership* side : {&lone, &pair}) {
    for (int index : {3, 4}) {
      side->PeerConnected(index);
      side->OnHeartbeat(index, stamped, false);
    }
  }
  EXPECT_EQ(lone.voters_reached(), 1);
  EXPECT_FALSE(lone.quorum());
  EXPECT_EQ(pair.voters_reached(), 4);
  EXPECT_TRUE(pair.quorum());

  // A vote from before the cut names all three: it counts for neither side
  // until the spoke has said whom it votes for now.
  pair.OnHeartbeat(3, SpokeReaches(Set({0, 1, 2})), false);
  pair.OnHeartbeat(4, SpokeReaches(Set({0, 1, 2})), false);
  EXPECT_EQ(pair.voters_reached(), 2);
  EXPECT_FALSE(pair.quorum());

  // A spoke's vote lapses when its connection does, and starts again only with
  // its next word.
  pair.OnHeartbeat(3, stamped, false);
  pair.OnHeartbeat(4, stamped, false);
  EXPECT_TRUE(pair.quorum());
  pair.PeerLost(3);
  pair.PeerConnected(3);
  EXPECT_EQ(pair.voters_reached(), 3);
  pair.OnHeartbeat(3, stamped, false);
  EXPECT_EQ(pair.voters_reached(), 4);
}

TEST(OwnershipTest, SpokeVotesForTheLargestGroupOfTriadServersThatReachEachOther) {
  Ownership spoke(4, false, 5);
  EXPECT_EQ(spoke.QuorumVote(), 0u);  // reaches none
  for (int triad : {0, 1, 2}) spoke.PeerConnected(triad);
  // Not heard yet: each is a group of one, and the lowest index wins the tie.
  EXPECT_EQ(spoke.QuorumVote(), Set({0}).bits());
  for (int triad : {0, 1, 2}) spoke.OnHeartbeat(triad, Said(true, {}, Set({0, 1, 2})), false);
  EXPECT_EQ(spoke.QuorumVote(), Set({0, 1, 2}).bits());
  // Asymmetric: 0 reaches 1, 1 reaches 2, 0 does not reach 2. 1 names both, and
  // both name it: the vote goes to all three, which only 1 reaches.
  spoke.OnHeartbeat(0, Said(true, {}, Set({0, 1})), false);
  spoke.OnHeartbeat(2, Said(true, {}, Set({1, 2})), false);
  EXPECT_EQ(spoke.QuorumVote(), Set({0, 1, 2}).bits());
  // 2 is gone (its connection closed): the vote goes to 0 and 1 at once.
  spoke.PeerLost(2);
  EXPECT_EQ(spoke.QuorumVote(), Set({0, 1}).bits());
  // A triad server votes for what it reaches.
  Ownership triad(1, true, 5);
  triad.PeerConnected(2);
  EXPECT_EQ(triad.QuorumVote(), Set({1, 2}).bits());
}

TEST(OwnershipTest, DynamicServersDoNotCountTowardsTheQuorum) {
  Ownership ownership(0, true, 3);
  ownership.BecomeReady();
  for (int dynamic : {3, 4, 5, 6}) ownership.PeerConnected(dynamic);
  EXPECT_EQ(ownership.voters_reached(), 1);
  EXPECT_FALSE(ownership.quorum());
  ownership.PeerConnected(2);
  EXPECT_TRUE(ownership.quorum());
}

TEST(OwnershipTest, AtExactlyHalfOnlyTheSideOfIndexZeroHasTheQuorum) {
  {
    Ownership first(0, true, 2);
    EXPECT_TRUE(first.quorum());
    Ownership second(1, true, 2);
    EXPECT_FALSE(second.quorum());
    second.PeerConnected(0);
    EXPECT_TRUE(second.quorum());
  }
  {
    // 4 in the file: {1, 3} against {0, 2}.
    Ownership ownership(1, true, 4);
    ownership.PeerConnected(3);
    EXPECT_FALSE(ownership.quorum());
    Ownership other(2, true, 4);
    other.PeerConnected(0);
    EXPECT_TRUE(other.quorum());
  }
  {
    Ownership spoke(3, false, 5);  // a spoke owns nothing, so it needs none
    EXPECT_TRUE(spoke.quorum());
  }
}

}  // namespace
}  // namespace cb::cache
