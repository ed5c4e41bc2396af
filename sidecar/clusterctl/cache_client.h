// clusterctl's `cache get|set|delete`: one memcached text-protocol request to a
// sidecar's memcached port, so operators see exactly what applications see. The
// request building and reply parsing are pure (tested alone); CallMemcache owns
// the socket (blocking, with a timeout, one request per call).
#ifndef CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_CACHE_CLIENT_H_
#define CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_CACHE_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "shared/config_values.h"
#include "shared/status.h"

namespace cb {

enum class CacheVerb { kGet, kSet, kDelete };

// The request's bytes; the key is "<cache>:<key>". InvalidArgument for a key that
// memcached cannot carry (empty, over 250 bytes with its prefix, white space or
// control characters).
Result<std::string> BuildCacheRequest(CacheVerb verb, std::string_view cache, std::string_view key,
                                      std::string_view value = {}, int64_t ttl_seconds = 0);

// Whether `reply` holds the whole answer to a request of `verb`.
bool CacheReplyComplete(CacheVerb verb, std::string_view reply);

// get: the value, or nullopt for a miss. set/delete: nullopt on success (STORED,
// DELETED); a miss of delete is NotFound. The server's error line is the message
// of an IoError.
Result<std::optional<std::string>> ParseCacheReply(CacheVerb verb, std::string_view reply);

// Sends `request` and reads until CacheReplyComplete; IoError naming `address`
// when it cannot connect, the connection ends first, or the whole exchange takes
// longer than `timeout`.
Result<std::string> CallMemcache(const HostPort& address, CacheVerb verb,
                                 const std::string& request,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace cb

#endif  // CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_CACHE_CLIENT_H_
