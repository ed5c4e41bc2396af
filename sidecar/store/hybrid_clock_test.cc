#include "sidecar/store/hybrid_clock.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace cb::store {
namespace {

TEST(HybridClockTest, ReadingIsPhysicalMillisecondsThenLogical) {
  HybridClock clock(7);
  const Version v = clock.Tick(1'700'000'000'000);
  EXPECT_EQ(v.server, 7u);
  EXPECT_EQ(HybridClock::PhysicalMs(v.clock), 1'700'000'000'000);
  EXPECT_EQ(HybridClock::Logical(v.clock), 0u);
  EXPECT_EQ(v.clock, HybridClock::Compose(1'700'000'000'000, 0));
}

TEST(HybridClockTest, SameMillisecondAdvancesTheLogicalPart) {
  HybridClock clock(1);
  const Version a = clock.Tick(5'000);
  const Version b = clock.Tick(5'000);
  EXPECT_LT(a, b);
  EXPECT_EQ(HybridClock::PhysicalMs(b.clock), 5'000);
  EXPECT_EQ(HybridClock::Logical(b.clock), 1u);
  const Version c = clock.Tick(5'001);
  EXPECT_EQ(c.clock, HybridClock::Compose(5'001, 0));
}

TEST(HybridClockTest, MonotonicWhenTheClockGoesBackwards) {
  HybridClock clock(2);
  Version previous = clock.Tick(10'000);
  for (int64_t now : {9'000, 1, 0, -5, 9'999, 10'000}) {
    const Version next = clock.Tick(now);
    EXPECT_GT(next, previous) << now;
    EXPECT_EQ(HybridClock::PhysicalMs(next.clock), 10'000) << now;
    previous = next;
  }
  EXPECT_EQ(clock.Tick(10'001).clock, HybridClock::Compose(10'001, 0));
}

TEST(HybridClockTest, NeverNullEvenAtTimeZero) {
  HybridClock clock(0);
  EXPECT_FALSE(clock.Tick(0).is_null());
  EXPECT_FALSE(HybridClock(0).Tick(-1).is_null());
}

TEST(HybridClockTest, LogicalOverflowCarriesAndStaysMonotonic) {
  HybridClock clock(3);
  clock.Observe(Version{HybridClock::Compose(100, 0xFFFF), 9});
  const Version v = clock.Tick(100);
  EXPECT_EQ(v.clock, HybridClock::Compose(101, 0));
  EXPECT_GT(clock.Tick(100).clock, v.clock);
}

TEST(HybridClockTest, LaterThanEveryObservedVersion) {
  HybridClock clock(4);
  const Version far_future{HybridClock::Compose(4'000'000'000'000, 12), 1};
  clock.Observe(far_future);
  clock.Observe(Version{HybridClock::Compose(5, 0), 2});  // an older one changes nothing
  Version previous = far_future;
  for (int i = 0; i < 1000; ++i) {
    const Version next = clock.Tick(1'700'000'000'000);
    EXPECT_GT(next.clock, previous.clock);
    EXPECT_EQ(next.server, 4u);
    previous = next;
  }
  EXPECT_EQ(clock.last(), previous.clock);
}

TEST(HybridClockTest, SaturatesAtTheTopOfTheRange) {
  HybridClock clock(5);
  clock.Observe(Version{std::numeric_limits<uint64_t>::max(), 0});
  EXPECT_EQ(clock.Tick(1).clock, std::numeric_limits<uint64_t>::max());
}

TEST(HybridClockTest, PlausibleUnlessTooFarAhead) {
  const int64_t now = 1'700'000'000'000;
  EXPECT_TRUE(HybridClock::IsPlausible(Version{HybridClock::Compose(now - 50, 3), 1}, now, 1000));
  EXPECT_TRUE(HybridClock::IsPlausible(Version{HybridClock::Compose(now + 1000, 3), 1}, now, 1000));
  EXPECT_FALSE(
      HybridClock::IsPlausible(Version{HybridClock::Compose(now + 1001, 0), 1}, now, 1000));
  EXPECT_FALSE(HybridClock::IsPlausible(Version{std::numeric_limits<uint64_t>::max(), 1}, now,
                                        int64_t{365} * 24 * 3600 * 1000));
}

}  // namespace
}  // namespace cb::store
