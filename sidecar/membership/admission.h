// Which index a dynamic server gets, and who may hand it out.
//
// Dynamic servers take the indices left after the static ones, from 3 (or after
// the last static server) to 63. The triad hands them out without a coordinator
// and without ever giving one index to two servers, even while the triad is
// partitioned: the dynamic indices are split into disjoint shares, one per triad
// server (index i belongs to triad server i mod triad size), and a triad server
// gives out fresh indices from its own share only. A server that was admitted
// before keeps its index: any triad server confirms it by id, whoever admitted it.
//
// The price is capacity while triad servers are down: alone, one triad server can
// admit only the free indices of its share (about a third of them). Servers
// already admitted are not affected.
//
// Pure; thread-safe.
#ifndef CLUSTER_BALANCE_SIDECAR_MEMBERSHIP_ADMISSION_H_
#define CLUSTER_BALANCE_SIDECAR_MEMBERSHIP_ADMISSION_H_

#include "shared/cluster_config.h"
#include "shared/status.h"
#include "sidecar/protocol/messages.h"

namespace cb::membership {

// The lowest index a dynamic server can hold: 3, or the index after the last
// static server when there are more than three.
int FirstDynamicIndex(int static_count);

// The triad server whose share holds dynamic index `index`.
int AdmitterOf(int index, int static_count);

// Whether the fields of a join request could be published at all: a valid server
// id, two parseable addresses that fit the view, a weight in range. The reason
// names the field; an id of a static server of `config` is refused too.
Status CheckJoinRequest(const protocol::JoinRequest& request, const ClusterConfig& config);

// What server `self` sends a triad server to join: to be given an index, or to
// keep `previous_index`, the one it holds (-1 when it holds none). A dynamic
// server's Joiner, a server claiming its index back, and the command line's check
// of a dynamic server's own entry all build it here.
protocol::JoinRequest MakeJoinRequest(const ServerConfig& self, int previous_index);

}  // namespace cb::membership

#endif  // CLUSTER_BALANCE_SIDECAR_MEMBERSHIP_ADMISSION_H_
