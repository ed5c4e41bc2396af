#include "sidecar/store/live_key_counter.h"

#include <gtest/gtest.h>

namespace cb::store {
namespace {

uint64_t LiveUnder(LiveKeyCounter& counter, char first, int64_t now) {
  return counter.LiveAt(now)[static_cast<unsigned char>(first)];
}

TEST(LiveKeyCounterTest, CountsByFirstByteUntilExpiry) {
  LiveKeyCounter counter;
  counter.Add("Aone", 1'000);
  counter.Add("Atwo", 2'000);
  counter.Add("Bthree", 0);  // never expires
  EXPECT_EQ(LiveUnder(counter, 'A', 500), 2u);
  EXPECT_EQ(LiveUnder(counter, 'B', 500), 1u);
  EXPECT_EQ(LiveUnder(counter, 'A', 1'000), 1u);  // expired at its expiry time
  EXPECT_EQ(LiveUnder(counter, 'A', 2'500), 0u);
  EXPECT_EQ(LiveUnder(counter, 'B', 1'000'000'000'000), 1u);
}

TEST(LiveKeyCounterTest, RemovingALiveOrALapsedKeyCountsRight) {
  LiveKeyCounter counter;
  counter.Add("Aone", 1'000);
  counter.Add("Atwo", 5'000);
  EXPECT_EQ(LiveUnder(counter, 'A', 2'000), 1u);
  counter.Remove("Aone", 1'000);  // swept after it lapsed: no change
  EXPECT_EQ(LiveUnder(counter, 'A', 2'000), 1u);
  counter.Remove("Atwo", 5'000);  // deleted while live
  EXPECT_EQ(LiveUnder(counter, 'A', 2'000), 0u);
}

TEST(LiveKeyCounterTest, ATouchedKeyMovesToItsNewExpiry) {
  LiveKeyCounter counter;
  counter.Add("Asession", 1'000);
  counter.Remove("Asession", 1'000);
  counter.Add("Asession", 9'000);
  EXPECT_EQ(LiveUnder(counter, 'A', 5'000), 1u);
}

TEST(LiveKeyCounterTest, AKeyAddedAlreadyExpiredIsNotLive) {
  LiveKeyCounter counter;
  EXPECT_EQ(LiveUnder(counter, 'A', 5'000), 0u);
  counter.Add("Aold", 4'000);  // replicated late
  EXPECT_EQ(LiveUnder(counter, 'A', 5'000), 0u);
  counter.Remove("Aold", 4'000);
  EXPECT_EQ(LiveUnder(counter, 'A', 5'000), 0u);
}

TEST(LiveKeyCounterTest, AClockSteppedBackDoesNotReviveKeys) {
  LiveKeyCounter counter;
  counter.Add("Aone", 1'000);
  EXPECT_EQ(LiveUnder(counter, 'A', 2'000), 0u);
  EXPECT_EQ(LiveUnder(counter, 'A', 500), 0u);
}

TEST(LiveKeyCounterTest, SameExpiryManyKeysAndEmptyKey) {
  LiveKeyCounter counter;
  for (int i = 0; i < 200; ++i) counter.Add("Z" + std::to_string(i), 3'000);
  counter.Add("", 0);
  EXPECT_EQ(LiveUnder(counter, 'Z', 2'999), 200u);
  EXPECT_EQ(LiveUnder(counter, '\0', 2'999), 1u);
  for (int i = 0; i < 150; ++i) counter.Remove("Z" + std::to_string(i), 3'000);
  EXPECT_EQ(LiveUnder(counter, 'Z', 2'999), 50u);
  EXPECT_EQ(LiveUnder(counter, 'Z', 3'000), 0u);
}

}  // namespace
}  // namespace cb::store
