// The daemon's clock: wall-clock milliseconds that never jump, the wall clock read
// once and advanced by the steady clock. Heartbeat timeouts must not fire (or
// stall) because NTP stepped the system clock; what is published (up-since,
// publish time) stays within the size of such a step of the wall clock the web
// servers read.
//
// Thread-safety: thread-safe.
#ifndef CLUSTER_BALANCE_SIDECAR_DAEMON_DAEMON_CLOCK_H_
#define CLUSTER_BALANCE_SIDECAR_DAEMON_DAEMON_CLOCK_H_

#include <cstdint>

namespace cb::daemon {

// Unix milliseconds; never goes back.
int64_t NowUnixMs();

}  // namespace cb::daemon

#endif  // CLUSTER_BALANCE_SIDECAR_DAEMON_DAEMON_CLOCK_H_
