// What a sidecar keeps in its data dir between starts, and the checks made on it at
// startup. Each function returns an error whose message is one line naming the path
// and the cause, for the daemon's startup error.
#ifndef CLUSTER_BALANCE_SIDECAR_DAEMON_NODE_STATE_H_
#define CLUSTER_BALANCE_SIDECAR_DAEMON_NODE_STATE_H_

#include <cstdint>
#include <string>

#include "shared/status.h"

namespace cb::daemon {

// Creates the data dir (mode 0750) when missing; refuses a path that is not a
// directory or where this process cannot create files.
Status PrepareDataDir(const std::string& path);

// The incarnation of this start: above the one stored in <data_dir>/incarnation
// and not below `now_unix_ms`, so that it also grows across a wiped data dir (as
// long as the clock does). Stored durably (temporary file, fsync, rename) before it
// is returned. A stored value that is not a number is an error, not a reset.
Result<uint64_t> NextIncarnation(const std::string& data_dir, int64_t now_unix_ms);

}  // namespace cb::daemon

#endif  // CLUSTER_BALANCE_SIDECAR_DAEMON_NODE_STATE_H_
