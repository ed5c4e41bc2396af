// How the store reaches the other sidecars; the daemon implements it with its
// connections.
//
// Thread-safety: called on the sidecar's io_context thread only.
#ifndef CLUSTER_BALANCE_SIDECAR_CACHE_PEER_LINK_H_
#define CLUSTER_BALANCE_SIDECAR_CACHE_PEER_LINK_H_

#include "sidecar/protocol/messages.h"

namespace cb::cache {

class PeerLink {
 public:
  virtual ~PeerLink() = default;
  // Queues `message` to the authenticated peer at `index`; false when there is
  // none (or the queue is full, which closes that connection).
  virtual bool Send(int index, const protocol::Message& message) = 0;
  // Sends a heartbeat to every peer now: the store's state changed.
  virtual void AnnounceStoreState() = 0;
};

}  // namespace cb::cache

#endif  // CLUSTER_BALANCE_SIDECAR_CACHE_PEER_LINK_H_
