// memcached's answers to the commands that name no key: version, verbosity and
// stats, with what this server has to say in them. Pure: the caller gathers the
// numbers (ServerStats).
//
// Thread-safety: free functions of their arguments only; thread-safe.
#ifndef CLUSTER_BALANCE_SIDECAR_MEMCACHE_INFO_REPLIES_H_
#define CLUSTER_BALANCE_SIDECAR_MEMCACHE_INFO_REPLIES_H_

#include <cstdint>
#include <functional>
#include <string>

#include "sidecar/memcache/parser.h"

namespace cb::memcache {

// What "stats" reports, under memcached's names.
struct ServerStats {
  int64_t pid = 0;
  int64_t uptime_s = 0;     // since the server started
  int64_t unix_time_s = 0;  // now
  uint64_t curr_items = 0;  // records held (triad servers; 0 on a spoke)
  uint64_t bytes = 0;       // their key and value bytes
  uint64_t cmd_get = 0;     // gets answered as the keys' owner
  uint64_t cmd_set = 0;     // writes made as the keys' owner
  uint64_t get_hits = 0;
  uint64_t get_misses = 0;
};

// "VERSION cluster-balance-<the project's version>\r\n".
std::string VersionReply();

// Whether `command` is answered by InfoReply: version, verbosity, stats.
bool IsInfoCommand(Command command);

// The reply to a request of an info command ("\r\n" included):
//   version: VersionReply().
//   verbosity: "OK", or nothing under noreply (there is nothing to set).
//   stats: the STAT lines of `stats()` and "END"; "stats reset": "RESET"; stats
//     of memcached's memory layout (settings, items, slabs, sizes, conns), which
//     has no counterpart here: an empty "END"; any other: "ERROR", as memcached.
// `stats` is called only for a plain "stats".
std::string InfoReply(const Request& request, const std::function<ServerStats()>& stats);

}  // namespace cb::memcache

#endif  // CLUSTER_BALANCE_SIDECAR_MEMCACHE_INFO_REPLIES_H_
