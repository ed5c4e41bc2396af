// A spoke's copies of records it read recently, kept to validate with the
// key's owner (a get sends the version held; the owner answers "unchanged"
// instead of the bytes). Never an answer on its own: the caller asks the owner
// every time (doc/store.md "Spokes").
//
// Bounded: at most `max_bytes` of cache names, keys and values; the least
// recently used copies go first. A record larger than that on its own is not
// kept.
//
// Thread-safety: none; the sidecar's io_context thread only.
#ifndef CLUSTER_BALANCE_SIDECAR_CACHE_SPOKE_CACHE_H_
#define CLUSTER_BALANCE_SIDECAR_CACHE_SPOKE_CACHE_H_

#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "sidecar/memcache/parser.h"
#include "sidecar/protocol/messages.h"
#include "sidecar/store/record.h"

namespace cb::cache {

class SpokeCache {
 public:
  explicit SpokeCache(uint64_t max_bytes);
  SpokeCache(const SpokeCache&) = delete;
  SpokeCache& operator=(const SpokeCache&) = delete;

  // The copy of (cache, key), now the most recently used; nullptr when there is
  // none. Valid until the next call that changes the cache.
  const store::Record* Find(std::string_view cache, std::string_view key);
  // Keeps `record` as the copy of (cache, key), replacing any other.
  void Remember(std::string_view cache, std::string_view key, store::Record record);
  void Forget(std::string_view cache, std::string_view key);
  // Forgets every copy of one cache (it was flushed).
  void ForgetCache(std::string_view cache);

  // The owner's `reply` to `command` on (cache, key), sent with the version of
  // `known` (the copy held then, if any), as the client is to see it: a get's
  // record is kept (or the copy forgotten when there is none), an "unchanged"
  // becomes the full reply from `known`; any other command, or an error,
  // forgets the copy.
  protocol::CacheOpReply OnOwnerReply(std::string_view cache, std::string_view key,
                                      memcache::Command command,
                                      const std::optional<store::Record>& known,
                                      const protocol::CacheOpReply& reply);

  // Bytes held: cache name, separator, key and value of each copy.
  uint64_t bytes() const { return bytes_; }
  std::size_t size() const { return index_.size(); }
  // Gets the owner answered "unchanged".
  uint64_t validated() const { return validated_; }

 private:
  struct Entry {
    std::string cache_key;  // cache '\0' key
    store::Record record;
  };

  void ForgetJoined(const std::string& cache_key);

  const uint64_t max_bytes_;
  uint64_t bytes_ = 0;
  uint64_t validated_ = 0;
  std::list<Entry> lru_;  // most recent first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

}  // namespace cb::cache

#endif  // CLUSTER_BALANCE_SIDECAR_CACHE_SPOKE_CACHE_H_
