// Cluster configurations for the sidecar's unit tests.
#ifndef CLUSTER_BALANCE_SIDECAR_TESTING_TEST_CLUSTER_CONFIG_H_
#define CLUSTER_BALANCE_SIDECAR_TESTING_TEST_CLUSTER_CONFIG_H_

#include <string_view>

#include "shared/cluster_config.h"

namespace cb::testing_support {

// A valid configuration of cluster "shop" (key file "k") with `count` static
// servers s0, s1, … at 127.0.0.1:7000+i (cluster) and 127.0.0.1:8000+i (http).
// `cluster_keys` are further lines of the [cluster] table (heartbeats, timeouts);
// `tables` are whole tables after it (e.g. "[cache.objects]\n"). A configuration
// that does not parse fails the calling test and is returned empty.
ClusterConfig StaticServersConfig(int count, std::string_view cluster_keys,
                                  std::string_view tables = "");

}  // namespace cb::testing_support

#endif  // CLUSTER_BALANCE_SIDECAR_TESTING_TEST_CLUSTER_CONFIG_H_
