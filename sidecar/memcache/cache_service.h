// What the memcached listener (memcache_server.h) asks of the sidecar: carry out
// one parsed request and say what to answer. The listener owns the sockets and
// the order of the answers; the service owns the store, the versions and the
// replication, and may answer later (a write is answered only once every live
// triad server has it).
#ifndef CLUSTER_BALANCE_SIDECAR_MEMCACHE_CACHE_SERVICE_H_
#define CLUSTER_BALANCE_SIDECAR_MEMCACHE_CACHE_SERVICE_H_

#include <functional>
#include <string>

#include "sidecar/memcache/parser.h"

namespace cb::memcache {

class CacheService {
 public:
  // The bytes to send for the request ("\r\n" included; empty for noreply).
  using Done = std::function<void(std::string reply)>;

  virtual ~CacheService() = default;

  // Carries out `request` (any command but quit, which the listener handles) and
  // calls `done` exactly once, now or later, on the io_context's thread. The
  // client may be gone by then: `done` must tolerate it (the listener's does).
  virtual void Handle(Request request, Done done) = 0;
};

}  // namespace cb::memcache

#endif  // CLUSTER_BALANCE_SIDECAR_MEMCACHE_CACHE_SERVICE_H_
