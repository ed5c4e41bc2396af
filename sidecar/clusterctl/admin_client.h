// clusterctl's HTTP client for a sidecar's admin endpoint (Boost.Beast, blocking,
// with a timeout). One request per call; not thread-safe to share.
#ifndef CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_ADMIN_CLIENT_H_
#define CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_ADMIN_CLIENT_H_

#include <chrono>
#include <string>

#include "shared/config_values.h"
#include "shared/status.h"

namespace cb {

struct AdminReply {
  unsigned status = 0;
  std::string body;
};

// Sends `method` `target` to the admin endpoint at `address`. An error when the
// sidecar cannot be reached or does not answer within `timeout` (the message names
// the address); any HTTP status is a reply.
Result<AdminReply> CallAdmin(const HostPort& address, const std::string& method,
                             const std::string& target,
                             std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace cb

#endif  // CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_ADMIN_CLIENT_H_
