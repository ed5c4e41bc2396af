#include "shared/rendezvous.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "shared/route_codec.h"
#include "shared/server_set.h"

namespace cb {
namespace {

// --- The documented formula, written out independently of rendezvous.cc -------------------

uint64_t TestFmix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

uint64_t TestKeyHash(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

uint64_t TestSalt(int index) {
  static constexpr char kSaltInput[] = "cluster-balance/rendezvous";
  static_assert(sizeof(kSaltInput) - 1 == 26);
  return XXH3_64bits_withSeed(kSaltInput, 26, static_cast<uint64_t>(index));
}

uint64_t TestScore(uint64_t key_hash, int index) { return TestFmix64(key_hash ^ TestSalt(index)); }

int TestFirst(uint64_t key_hash, ServerSet eligible) {
  int best = -1;
  uint64_t best_score = 0;
  for (int i = 0; i < kMaxServers; ++i) {
    if (!eligible.Contains(i)) continue;
    const uint64_t score = TestScore(key_hash, i);
    if (best < 0 || score > best_score) {
      best = i;
      best_score = score;
    }
  }
  return best;
}

// A deterministic stream of pseudo-random numbers.
uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::vector<std::string> SampleKeys(int count) {
  std::vector<std::string> keys;
  keys.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    keys.push_back(std::string(1, RouteCharForIndex(i % kMaxServers)) + "session-" +
                   std::to_string(i));
  }
  return keys;
}

// --- Pinned vectors --------------------------------------------------------------------------

TEST(RendezvousTest, FmixReferenceIsMurmur3Finalizer) {
  // Sanity check of the test's own fmix64 against MurmurHash3's published properties.
  EXPECT_EQ(TestFmix64(0), 0u);
  EXPECT_NE(TestFmix64(1), 1u);
}

TEST(RendezvousTest, KeyHashMatchesXxh3Seed0) {
  for (std::string_view key : {std::string_view(""), std::string_view("C"),
                               std::string_view("Cabc123"), std::string_view("session-1"),
                               std::string_view("a much longer key that spans more than one "
                                                "stripe of the XXH3 input loop, 0123456789 "
                                                "0123456789 0123456789 0123456789 0123456789")}) {
    EXPECT_EQ(RendezvousKeyHash(key), TestKeyHash(key)) << key;
  }
  // XXH3_64bits of the empty input is a published constant.
  EXPECT_EQ(RendezvousKeyHash(""), 0x2d06800538d394c2ULL);
}

TEST(RendezvousTest, ScoreMatchesDocumentedFormulaForAllServers) {
  for (const std::string& key : SampleKeys(200)) {
    const uint64_t hash = TestKeyHash(key);
    for (int i = 0; i < kMaxServers; ++i) {
      ASSERT_EQ(RendezvousScore(hash, i), TestScore(hash, i)) << key << " server " << i;
    }
  }
  // Arbitrary key hashes, including the extremes.
  uint64_t state = 42;
  std::vector<uint64_t> hashes = {0, 1, ~uint64_t{0}, uint64_t{1} << 63};
  for (int n = 0; n < 100; ++n) hashes.push_back(SplitMix64(state));
  for (uint64_t hash : hashes) {
    for (int i = 0; i < kMaxServers; ++i) {
      ASSERT_EQ(RendezvousScore(hash, i), TestScore(hash, i)) << hash << " server " << i;
    }
  }
}

TEST(RendezvousTest, FirstMatchesDocumentedFormula) {
  uint64_t state = 7;
  for (const std::string& key : SampleKeys(500)) {
    const uint64_t hash = RendezvousKeyHash(key);
    const ServerSet subset = ServerSet::FromBits(SplitMix64(state));
    EXPECT_EQ(RendezvousFirst(hash, ServerSet::FirstN(64)), TestFirst(hash, ServerSet::FirstN(64)))
        << key;
    EXPECT_EQ(RendezvousFirst(hash, ServerSet::Triad()), TestFirst(hash, ServerSet::Triad()))
        << key;
    EXPECT_EQ(RendezvousFirst(hash, subset), TestFirst(hash, subset)) << key;
  }
}

// Literal values obtained by running the implementation once. Any change to the hash, the
// salt input, the seeds or the finalizer breaks these: that is a protocol change.
TEST(RendezvousTest, PinnedLiteralVectors) {
  EXPECT_EQ(RendezvousKeyHash("Cabc123"), 0x1963da8bf8a1411bULL);
  EXPECT_EQ(RendezvousKeyHash("session-1"), 0xc07ea64948c9a305ULL);
  EXPECT_EQ(RendezvousKeyHash("ABCDEFGHIJ"), 0xa12fa283f5f24887ULL);
  EXPECT_EQ(RendezvousKeyHash(""), 0x2d06800538d394c2ULL);

  EXPECT_EQ(RendezvousScore(RendezvousKeyHash("Cabc123"), 0), 0xfb716c21b13659c1ULL);
  EXPECT_EQ(RendezvousScore(RendezvousKeyHash("session-1"), 0), 0xd186d0b41cc6dbeaULL);
  EXPECT_EQ(RendezvousScore(RendezvousKeyHash("ABCDEFGHIJ"), 0), 0xd03dd2256ced1b76ULL);
  EXPECT_EQ(RendezvousScore(RendezvousKeyHash(""), 0), 0xc47d24319b1ed57aULL);

  const ServerSet all = ServerSet::FirstN(64);
  EXPECT_EQ(RendezvousFirst(RendezvousKeyHash("Cabc123"), all), 26);
  EXPECT_EQ(RendezvousFirst(RendezvousKeyHash("session-1"), all), 52);
  EXPECT_EQ(RendezvousFirst(RendezvousKeyHash("ABCDEFGHIJ"), all), 12);
  EXPECT_EQ(RendezvousFirst(RendezvousKeyHash(""), all), 26);

  const ServerSet triad = ServerSet::Triad();
  EXPECT_EQ(RendezvousFirst(RendezvousKeyHash("Cabc123"), triad), 2);
  EXPECT_EQ(RendezvousFirst(RendezvousKeyHash("session-1"), triad), 0);
  EXPECT_EQ(RendezvousFirst(RendezvousKeyHash("ABCDEFGHIJ"), triad), 0);
  EXPECT_EQ(OwnerAmongLiveTriad("Cabc123", triad), 2);

  struct Pinned {
    std::string_view key;
    std::array<uint8_t, 8> order;
  };
  for (const Pinned& pinned :
       {Pinned{"Cabc123", {2, 0, 4, 3, 5, 1, 6, 7}}, Pinned{"session-1", {0, 7, 1, 5, 3, 6, 4, 2}},
        Pinned{"ABCDEFGHIJ", {6, 7, 0, 3, 2, 4, 5, 1}}, Pinned{"", {5, 0, 1, 6, 3, 2, 7, 4}}}) {
    const RendezvousOrder order =
        RendezvousRank(RendezvousKeyHash(pinned.key), ServerSet::FirstN(8));
    ASSERT_EQ(order.count, 8u) << pinned.key;
    for (std::size_t i = 0; i < 8; ++i) {
      EXPECT_EQ(order.indices[i], pinned.order[i]) << pinned.key << " position " << i;
    }
  }
}

// --- Properties ------------------------------------------------------------------------------

TEST(RendezvousTest, AllSaltsDistinct) {
  std::set<uint64_t> salts;
  for (int i = 0; i < kMaxServers; ++i) salts.insert(TestSalt(i));
  EXPECT_EQ(salts.size(), static_cast<std::size_t>(kMaxServers));
  // Hence, with fmix64 a bijection, scores of one key never tie.
  for (const std::string& key : SampleKeys(1000)) {
    const uint64_t hash = RendezvousKeyHash(key);
    std::set<uint64_t> scores;
    for (int i = 0; i < kMaxServers; ++i) scores.insert(RendezvousScore(hash, i));
    ASSERT_EQ(scores.size(), static_cast<std::size_t>(kMaxServers)) << key;
  }
}

TEST(RendezvousTest, EmptySet) {
  const uint64_t hash = RendezvousKeyHash("Cabc");
  EXPECT_EQ(RendezvousFirst(hash, ServerSet()), -1);
  EXPECT_EQ(RendezvousRank(hash, ServerSet()).count, 0u);
  EXPECT_EQ(OwnerAmongLiveTriad("Cabc", ServerSet()), -1);
}

TEST(RendezvousTest, SingleServer) {
  for (int i = 0; i < kMaxServers; ++i) {
    ServerSet one;
    one.Add(i);
    const uint64_t hash = RendezvousKeyHash("key-" + std::to_string(i));
    EXPECT_EQ(RendezvousFirst(hash, one), i);
    const RendezvousOrder order = RendezvousRank(hash, one);
    ASSERT_EQ(order.count, 1u);
    EXPECT_EQ(order.indices[0], i);
  }
}

TEST(RendezvousTest, RankIsPermutationSortedByDescendingScore) {
  uint64_t state = 1234;
  const std::vector<std::string> keys = SampleKeys(300);
  for (std::size_t n = 0; n < keys.size(); ++n) {
    const uint64_t hash = RendezvousKeyHash(keys[n]);
    ServerSet eligible =
        n % 3 == 0 ? ServerSet::FirstN(64) : ServerSet::FromBits(SplitMix64(state));
    const RendezvousOrder order = RendezvousRank(hash, eligible);
    ASSERT_EQ(order.count, static_cast<std::size_t>(eligible.size())) << keys[n];
    ServerSet seen;
    for (std::size_t i = 0; i < order.count; ++i) {
      const int index = order.indices[i];
      ASSERT_TRUE(eligible.Contains(index)) << keys[n] << " index " << index;
      ASSERT_FALSE(seen.Contains(index)) << keys[n] << " duplicate " << index;
      seen.Add(index);
      if (i > 0) {
        ASSERT_GT(RendezvousScore(hash, order.indices[i - 1]), RendezvousScore(hash, index))
            << keys[n] << " position " << i;
      }
    }
    EXPECT_EQ(seen, eligible);
  }
}

TEST(RendezvousTest, FirstEqualsFirstOfRank) {
  uint64_t state = 99;
  for (const std::string& key : SampleKeys(500)) {
    const uint64_t hash = RendezvousKeyHash(key);
    for (ServerSet eligible : {ServerSet::FirstN(64), ServerSet::Triad(), ServerSet::FirstN(10),
                               ServerSet::FromBits(SplitMix64(state))}) {
      const RendezvousOrder order = RendezvousRank(hash, eligible);
      ASSERT_GT(order.count, 0u);
      EXPECT_EQ(RendezvousFirst(hash, eligible), order.indices[0]) << key;
    }
  }
}

TEST(RendezvousTest, RemovingANonFirstServerKeepsTheFirst) {
  for (const std::string& key : SampleKeys(300)) {
    const uint64_t hash = RendezvousKeyHash(key);
    const ServerSet all = ServerSet::FirstN(64);
    const int first = RendezvousFirst(hash, all);
    for (int removed = 0; removed < kMaxServers; ++removed) {
      if (removed == first) continue;
      ServerSet fewer = all;
      fewer.Remove(removed);
      ASSERT_EQ(RendezvousFirst(hash, fewer), first) << key << " removed " << removed;
    }
    // Removing the first makes the second first.
    const RendezvousOrder order = RendezvousRank(hash, all);
    ServerSet without_first = all;
    without_first.Remove(first);
    EXPECT_EQ(RendezvousFirst(hash, without_first), order.indices[1]) << key;
  }
}

TEST(RendezvousTest, RankOfSubsetIsTheRankFilteredToTheSubset) {
  uint64_t state = 5;
  for (const std::string& key : SampleKeys(200)) {
    const uint64_t hash = RendezvousKeyHash(key);
    const RendezvousOrder full = RendezvousRank(hash, ServerSet::FirstN(64));
    const ServerSet subset = ServerSet::FromBits(SplitMix64(state));
    std::vector<int> expected;
    for (std::size_t i = 0; i < full.count; ++i) {
      if (subset.Contains(full.indices[i])) expected.push_back(full.indices[i]);
    }
    const RendezvousOrder order = RendezvousRank(hash, subset);
    ASSERT_EQ(order.count, expected.size());
    for (std::size_t i = 0; i < order.count; ++i) EXPECT_EQ(order.indices[i], expected[i]);
  }
}

TEST(RendezvousTest, DistributionOver64ServersIsRoughlyEven) {
  constexpr int kKeys = 64 * 1024;
  std::array<int, kMaxServers> counts{};
  const ServerSet all = ServerSet::FirstN(64);
  for (int i = 0; i < kKeys; ++i) {
    const std::string key = "C" + std::to_string(i) + "x";
    const int first = RendezvousFirst(RendezvousKeyHash(key), all);
    ASSERT_GE(first, 0);
    ASSERT_LT(first, kMaxServers);
    ++counts[static_cast<std::size_t>(first)];
  }
  const double mean = static_cast<double>(kKeys) / kMaxServers;
  for (int i = 0; i < kMaxServers; ++i) {
    EXPECT_GT(counts[static_cast<std::size_t>(i)], 0.6 * mean) << "server " << i;
    EXPECT_LT(counts[static_cast<std::size_t>(i)], 1.4 * mean) << "server " << i;
  }
}

TEST(RendezvousTest, OwnerAmongLiveTriadIgnoresNonTriadServers) {
  for (const std::string& key : SampleKeys(300)) {
    const int owner = OwnerAmongLiveTriad(key, ServerSet::Triad());
    EXPECT_EQ(owner, RendezvousFirst(RendezvousKeyHash(key), ServerSet::Triad())) << key;
    EXPECT_GE(owner, 0);
    EXPECT_LE(owner, 2);
    // Adding any number of non-triad servers changes nothing.
    EXPECT_EQ(OwnerAmongLiveTriad(key, ServerSet::FirstN(64)), owner) << key;
    EXPECT_EQ(OwnerAmongLiveTriad(key, ServerSet::FirstN(10)), owner) << key;
    // Only non-triad servers live: no owner.
    EXPECT_EQ(OwnerAmongLiveTriad(key, ServerSet::FirstN(64).Without(ServerSet::Triad())), -1)
        << key;
  }
  ServerSet non_triad;
  non_triad.Add(3);
  non_triad.Add(40);
  non_triad.Add(63);
  EXPECT_EQ(OwnerAmongLiveTriad("Cabc", non_triad), -1);
  EXPECT_EQ(OwnerAmongLiveTriad("Cabc", ServerSet()), -1);
}

TEST(RendezvousTest, OwnerFailsOverToSecondOfPreviousRanking) {
  for (const std::string& key : SampleKeys(300)) {
    const uint64_t hash = RendezvousKeyHash(key);
    const RendezvousOrder order = RendezvousRank(hash, ServerSet::Triad());
    ASSERT_EQ(order.count, 3u);
    ServerSet live = ServerSet::FirstN(20);
    EXPECT_EQ(OwnerAmongLiveTriad(key, live), order.indices[0]) << key;
    live.Remove(order.indices[0]);
    EXPECT_EQ(OwnerAmongLiveTriad(key, live), order.indices[1]) << key;
    live.Remove(order.indices[1]);
    EXPECT_EQ(OwnerAmongLiveTriad(key, live), order.indices[2]) << key;
    // The first comes back: it owns the key again.
    live.Add(order.indices[0]);
    EXPECT_EQ(OwnerAmongLiveTriad(key, live), order.indices[0]) << key;
    live.Remove(order.indices[0]);
    live.Remove(order.indices[2]);
    EXPECT_EQ(OwnerAmongLiveTriad(key, live), -1) << key;
  }
}

TEST(RendezvousTest, OwnerEachTriadServerOwnsSomeKeys) {
  std::array<int, 3> counts{};
  for (const std::string& key : SampleKeys(3000)) {
    ++counts[static_cast<std::size_t>(OwnerAmongLiveTriad(key, ServerSet::Triad()))];
  }
  for (int count : counts) {
    EXPECT_GT(count, 800);
    EXPECT_LT(count, 1200);
  }
}

// --- ServerSet -------------------------------------------------------------------------------

TEST(ServerSetTest, DefaultIsEmpty) {
  constexpr ServerSet set;
  static_assert(set.empty());
  EXPECT_TRUE(set.empty());
  EXPECT_EQ(set.size(), 0);
  EXPECT_EQ(set.bits(), 0u);
  EXPECT_EQ(set.First(), -1);
  for (int i = 0; i < kMaxServers; ++i) EXPECT_FALSE(set.Contains(i));
}

TEST(ServerSetTest, FirstNEdgeCases) {
  EXPECT_EQ(ServerSet::FirstN(0).bits(), 0u);
  EXPECT_TRUE(ServerSet::FirstN(0).empty());
  EXPECT_EQ(ServerSet::FirstN(-1).bits(), 0u);
  EXPECT_EQ(ServerSet::FirstN(INT_MIN).bits(), 0u);
  EXPECT_EQ(ServerSet::FirstN(1).bits(), 1u);
  EXPECT_EQ(ServerSet::FirstN(3).bits(), 0b111u);
  EXPECT_EQ(ServerSet::FirstN(3), ServerSet::Triad());
  EXPECT_EQ(ServerSet::FirstN(3).size(), 3);
  EXPECT_EQ(ServerSet::FirstN(63).bits(), ~uint64_t{0} >> 1);
  EXPECT_EQ(ServerSet::FirstN(63).size(), 63);
  EXPECT_TRUE(ServerSet::FirstN(63).Contains(62));
  EXPECT_FALSE(ServerSet::FirstN(63).Contains(63));
  EXPECT_EQ(ServerSet::FirstN(64).bits(), ~uint64_t{0});
  EXPECT_EQ(ServerSet::FirstN(64).size(), 64);
  EXPECT_EQ(ServerSet::FirstN(65).bits(), ~uint64_t{0});
  EXPECT_EQ(ServerSet::FirstN(100).bits(), ~uint64_t{0});
  EXPECT_EQ(ServerSet::FirstN(INT_MAX).bits(), ~uint64_t{0});
  for (int n = 0; n <= kMaxServers; ++n) {
    const ServerSet set = ServerSet::FirstN(n);
    EXPECT_EQ(set.size(), n);
    for (int i = 0; i < kMaxServers; ++i) EXPECT_EQ(set.Contains(i), i < n) << n << " " << i;
  }
  static_assert(ServerSet::FirstN(64).size() == 64);
  static_assert(ServerSet::Triad().bits() == 7);
}

TEST(ServerSetTest, TriadIsZeroOneTwo) {
  const ServerSet triad = ServerSet::Triad();
  EXPECT_EQ(triad.size(), 3);
  EXPECT_TRUE(triad.Contains(0));
  EXPECT_TRUE(triad.Contains(1));
  EXPECT_TRUE(triad.Contains(2));
  EXPECT_FALSE(triad.Contains(3));
}

TEST(ServerSetTest, AddRemoveContains) {
  ServerSet set;
  set.Add(5);
  set.Add(0);
  set.Add(63);
  set.Add(5);  // twice: no effect
  EXPECT_EQ(set.size(), 3);
  EXPECT_TRUE(set.Contains(0));
  EXPECT_TRUE(set.Contains(5));
  EXPECT_TRUE(set.Contains(63));
  EXPECT_FALSE(set.Contains(1));
  EXPECT_EQ(set.bits(), (uint64_t{1} << 63) | (uint64_t{1} << 5) | 1u);
  set.Remove(5);
  EXPECT_FALSE(set.Contains(5));
  EXPECT_EQ(set.size(), 2);
  set.Remove(5);  // not present: no effect
  EXPECT_EQ(set.size(), 2);
  set.Remove(0);
  set.Remove(63);
  EXPECT_TRUE(set.empty());
}

TEST(ServerSetTest, OutOfRangeIndicesAreIgnored) {
  ServerSet set = ServerSet::FromBits(0x1234);
  for (int bad : {-1, -2, -64, 64, 65, 100, 1000, INT_MIN, INT_MAX}) {
    set.Add(bad);
    EXPECT_EQ(set.bits(), 0x1234u) << bad;
    set.Remove(bad);
    EXPECT_EQ(set.bits(), 0x1234u) << bad;
    EXPECT_FALSE(set.Contains(bad)) << bad;
    EXPECT_FALSE(ServerSet::FirstN(64).Contains(bad)) << bad;
  }
  ServerSet all = ServerSet::FirstN(64);
  all.Remove(64);
  all.Remove(-1);
  EXPECT_EQ(all.size(), 64);
}

TEST(ServerSetTest, ForEachVisitsInIncreasingOrder) {
  ServerSet set;
  for (int i : {63, 7, 0, 32, 31, 2}) set.Add(i);
  std::vector<int> visited;
  set.ForEach([&](int index) { visited.push_back(index); });
  EXPECT_EQ(visited, (std::vector<int>{0, 2, 7, 31, 32, 63}));

  visited.clear();
  ServerSet().ForEach([&](int index) { visited.push_back(index); });
  EXPECT_TRUE(visited.empty());

  visited.clear();
  ServerSet::FirstN(64).ForEach([&](int index) { visited.push_back(index); });
  ASSERT_EQ(visited.size(), 64u);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(visited[static_cast<std::size_t>(i)], i);
}

TEST(ServerSetTest, SizeAndFirst) {
  uint64_t state = 3;
  for (int n = 0; n < 200; ++n) {
    const uint64_t bits = SplitMix64(state) & SplitMix64(state);
    const ServerSet set = ServerSet::FromBits(bits);
    int count = 0;
    int lowest = -1;
    for (int i = 0; i < kMaxServers; ++i) {
      if ((bits >> i) & 1) {
        ++count;
        if (lowest < 0) lowest = i;
      }
    }
    EXPECT_EQ(set.size(), count);
    EXPECT_EQ(set.First(), lowest);
    EXPECT_EQ(set.empty(), bits == 0);
  }
  ServerSet only_top;
  only_top.Add(63);
  EXPECT_EQ(only_top.First(), 63);
  EXPECT_EQ(ServerSet::FirstN(64).First(), 0);
  EXPECT_EQ(ServerSet().First(), -1);
}

TEST(ServerSetTest, SetOperations) {
  const ServerSet a = ServerSet::FromBits(0b1100);
  const ServerSet b = ServerSet::FromBits(0b1010);
  EXPECT_EQ((a & b).bits(), 0b1000u);
  EXPECT_EQ((a | b).bits(), 0b1110u);
  EXPECT_EQ(a.Without(b).bits(), 0b0100u);
  EXPECT_EQ(b.Without(a).bits(), 0b0010u);
  EXPECT_EQ(a.Without(a).bits(), 0u);
  EXPECT_TRUE(a == ServerSet::FromBits(0b1100));
  EXPECT_FALSE(a == b);
  EXPECT_EQ(ServerSet::FromBits(~uint64_t{0}), ServerSet::FirstN(64));
}

}  // namespace
}  // namespace cb
