#include "sidecar/transport/backoff.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace cb::transport {
namespace {

using std::chrono::milliseconds;

TEST(BackoffTest, GrowsStepByStep) {
  Backoff backoff(milliseconds(100), milliseconds(100000), 1);
  milliseconds previous{0};
  for (int step = 0; step < 8; ++step) {
    const milliseconds ceiling = milliseconds(100 << step);
    EXPECT_EQ(backoff.ceiling(), ceiling);
    const milliseconds delay = backoff.Next();
    EXPECT_GE(delay, ceiling / 2) << "step " << step;
    EXPECT_LE(delay, ceiling) << "step " << step;
    EXPECT_GE(delay, previous) << "equal jitter never goes down before the cap";
    previous = delay;
  }
  EXPECT_EQ(backoff.attempt(), 8u);
}

TEST(BackoffTest, CappedAtMaximum) {
  Backoff backoff(milliseconds(100), milliseconds(5000), 2);
  for (int step = 0; step < 1000; ++step) {
    const milliseconds delay = backoff.Next();
    EXPECT_LE(delay, milliseconds(5000));
    if (step >= 6) {
      EXPECT_GE(delay, milliseconds(2500)) << "step " << step;
    }
  }
  EXPECT_EQ(backoff.ceiling(), milliseconds(5000));
}

TEST(BackoffTest, JitterStaysWithinBoundsAndVaries) {
  std::set<int64_t> seen;
  for (uint64_t seed = 0; seed < 500; ++seed) {
    Backoff backoff(milliseconds(100), milliseconds(5000), seed);
    backoff.Next();
    backoff.Next();
    const milliseconds delay = backoff.Next();  // ceiling 400 ms
    ASSERT_GE(delay, milliseconds(200));
    ASSERT_LE(delay, milliseconds(400));
    seen.insert(delay.count());
  }
  EXPECT_GT(seen.size(), 100u) << "the jitter should spread the delays";
  EXPECT_LT(*seen.begin(), 230);
  EXPECT_GT(*seen.rbegin(), 370);
}

TEST(BackoffTest, ResetStartsOver) {
  Backoff backoff(milliseconds(100), milliseconds(5000), 3);
  for (int step = 0; step < 10; ++step) backoff.Next();
  EXPECT_EQ(backoff.ceiling(), milliseconds(5000));
  backoff.Reset();
  EXPECT_EQ(backoff.attempt(), 0u);
  EXPECT_EQ(backoff.ceiling(), milliseconds(100));
  const milliseconds delay = backoff.Next();
  EXPECT_GE(delay, milliseconds(50));
  EXPECT_LE(delay, milliseconds(100));
}

TEST(BackoffTest, DeterministicForASeed) {
  auto sequence = [](uint64_t seed) {
    Backoff backoff(milliseconds(100), milliseconds(5000), seed);
    std::vector<int64_t> delays;
    for (int step = 0; step < 20; ++step) delays.push_back(backoff.Next().count());
    return delays;
  };
  EXPECT_EQ(sequence(42), sequence(42));
  EXPECT_NE(sequence(42), sequence(43));
}

TEST(BackoffTest, OddArgumentsAreClamped) {
  Backoff zero(milliseconds(0), milliseconds(0), 4);
  EXPECT_EQ(zero.initial(), milliseconds(1));
  EXPECT_EQ(zero.cap(), milliseconds(1));
  for (int step = 0; step < 100; ++step) {
    const milliseconds delay = zero.Next();
    EXPECT_EQ(delay, milliseconds(1)) << "never 0 ms";
  }
  Backoff huge(milliseconds(1), milliseconds(int64_t{1} << 60), 5);
  for (int step = 0; step < 200; ++step) EXPECT_GT(huge.Next(), milliseconds(0));
  EXPECT_EQ(huge.ceiling(), milliseconds(int64_t{1} << 60));
}

}  // namespace
}  // namespace cb::transport
