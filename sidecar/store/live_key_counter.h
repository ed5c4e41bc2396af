// Counts the live keys of one cache by their first byte, without reading the
// store: the sessions whose route character (the first byte of a session id,
// DESIGN.md "Request path") names a server, for session-aware drain (issue 14).
//
// A key is live from the moment it is added until its expiry passes or it is
// removed. The counter is told of every stored entry with a value (Add) and of
// every one that is replaced, deleted or swept (Remove), each with its expiry;
// expired entries stay until the store removes them, so the count at a time
// leaves them out. The cost of a count is the number of expiry times passed
// since the previous count: each passes once.
//
// Time only moves forward here: a count at an earlier time than a previous one
// counts as at the previous one (a clock stepped back does not revive keys).
//
// Thread-safety: not thread-safe; the RecordStore's single user calls it.
#ifndef CLUSTER_BALANCE_SIDECAR_STORE_LIVE_KEY_COUNTER_H_
#define CLUSTER_BALANCE_SIDECAR_STORE_LIVE_KEY_COUNTER_H_

#include <array>
#include <cstdint>
#include <limits>
#include <map>
#include <string_view>

namespace cb::store {

class LiveKeyCounter {
 public:
  using Counts = std::array<uint64_t, 256>;  // by the key's first byte

  LiveKeyCounter() = default;
  LiveKeyCounter(const LiveKeyCounter&) = delete;
  LiveKeyCounter& operator=(const LiveKeyCounter&) = delete;

  // `expiry_unix_ms` 0 means never. An empty key counts under byte 0.
  void Add(std::string_view key, int64_t expiry_unix_ms);
  // Precondition: the same (first byte, expiry) was added and not yet removed.
  void Remove(std::string_view key, int64_t expiry_unix_ms);

  // The keys whose expiry is after `now_unix_ms` (or never).
  Counts LiveAt(int64_t now_unix_ms);

 private:
  struct ByFirstByte {
    std::map<int64_t, uint64_t> expiries;  // expiry → keys (never = max)
    uint64_t live = 0;                     // keys whose expiry is after cursor_
  };
  ByFirstByte& For(std::string_view key);

  std::array<ByFirstByte, 256> counts_;
  int64_t cursor_ = std::numeric_limits<int64_t>::min();  // the latest time counted at
};

}  // namespace cb::store

#endif  // CLUSTER_BALANCE_SIDECAR_STORE_LIVE_KEY_COUNTER_H_
