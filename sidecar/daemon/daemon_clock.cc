#include "sidecar/daemon/daemon_clock.h"

#include <chrono>

namespace cb::daemon {

int64_t NowUnixMs() {
  using namespace std::chrono;
  static const system_clock::time_point wall_start = system_clock::now();
  static const steady_clock::time_point steady_start = steady_clock::now();
  return duration_cast<milliseconds>((wall_start + duration_cast<system_clock::duration>(
                                                       steady_clock::now() - steady_start))
                                         .time_since_epoch())
      .count();
}

}  // namespace cb::daemon
