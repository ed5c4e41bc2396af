// What a sidecar keeps in its data dir between starts, and the checks made on it at
// startup. Each function returns an error whose message is one line naming the path
// and the cause, for the daemon's startup error.
#ifndef CLUSTER_BALANCE_SIDECAR_DAEMON_NODE_STATE_H_
#define CLUSTER_BALANCE_SIDECAR_DAEMON_NODE_STATE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "shared/status.h"
#include "sidecar/protocol/messages.h"

namespace cb::daemon {

// Creates the data dir (mode 0750) when missing; refuses a path that is not a
// directory or where this process cannot create files.
Status PrepareDataDir(const std::string& path);

// The incarnation of this start: above the one stored in <data_dir>/incarnation
// and not below `now_unix_ms`, so that it also grows across a wiped data dir (as
// long as the clock does). Stored durably (temporary file, fsync, rename) before it
// is returned. A stored value that is not a number is an error, not a reset.
Result<uint64_t> NextIncarnation(const std::string& data_dir, int64_t now_unix_ms);

// A dynamic server's index, kept in <data_dir>/dynamic-index with the cluster name
// and server id it was given to. Load yields -1 when there is none yet, and an
// error when the file is malformed or names another cluster or server (a data dir
// copied from elsewhere must not claim that server's index).
Result<int> LoadJoinedIndex(const std::string& data_dir, const std::string& cluster_name,
                            const std::string& server_id);
Status SaveJoinedIndex(const std::string& data_dir, const std::string& cluster_name,
                       const std::string& server_id, int index);

// A triad server's record of the dynamic servers it knows (identities and
// tombstones, see Membership::DynamicIdentities), in <data_dir>/dynamic-servers.
// Load yields nothing when there is no file yet, and an error when it is malformed.
Result<std::vector<protocol::ServerRecord>> LoadDynamicIdentities(const std::string& data_dir);
Status SaveDynamicIdentities(const std::string& data_dir,
                             const std::vector<protocol::ServerRecord>& identities);

}  // namespace cb::daemon

#endif  // CLUSTER_BALANCE_SIDECAR_DAEMON_NODE_STATE_H_
