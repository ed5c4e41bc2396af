#include "sidecar/daemon/daemon_clock.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>

namespace cb::daemon {
namespace {

int64_t SystemUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST(DaemonClockTest, ReadsTheWallClockAndNeverGoesBack) {
  const int64_t first = NowUnixMs();
  EXPECT_LT(std::llabs(first - SystemUnixMs()), 60 * 1000);  // unless NTP stepped meanwhile
  int64_t last = first;
  for (int i = 0; i < 1000; ++i) {
    const int64_t now = NowUnixMs();
    EXPECT_GE(now, last);
    last = now;
  }
}

}  // namespace
}  // namespace cb::daemon
