// The unit of the session store and the distributed cache (DESIGN.md "Sessions and
// caches"): a value in a named cache, with the version that orders writes on
// every replica.
//
// Conflicting writes resolve by version, deterministically, with no lock: every
// replica keeps the record of the highest version it has seen. A delete is a
// record too (a tombstone), so that it wins over older writes that arrive late.
//
// Plain values; thread-safe to read from many threads.
#ifndef CLUSTER_BALANCE_SIDECAR_STORE_RECORD_H_
#define CLUSTER_BALANCE_SIDECAR_STORE_RECORD_H_

#include <compare>
#include <cstdint>
#include <string>

namespace cb::store {

// When a write happened, as a hybrid logical clock reading (hybrid_clock.h) of the
// server that made it, and that server's index to break ties. Ordered by clock,
// then server; the null version (clock 0) is older than every write.
struct Version {
  uint64_t clock = 0;
  uint32_t server = 0;

  auto operator<=>(const Version&) const = default;
  bool is_null() const { return clock == 0; }
  // memcached's "cas unique": equal for equal versions, and (with overwhelming
  // probability) different for different ones. Never 0.
  uint64_t CasToken() const;
};

struct Record {
  std::string value;
  Version version;
  int64_t expiry_unix_ms = 0;  // absolute; 0 = never
  uint32_t flags = 0;          // memcached's client flags, stored and returned as given
  bool deleted = false;        // a tombstone: the key has no value at `version`

  bool operator==(const Record&) const = default;
  // Whether the record is absent for a reader at `now_unix_ms`: a tombstone, or
  // expired. Every replica decides it the same way from the same record.
  bool IsGoneAt(int64_t now_unix_ms) const {
    return deleted || (expiry_unix_ms != 0 && now_unix_ms >= expiry_unix_ms);
  }
};

}  // namespace cb::store

#endif  // CLUSTER_BALANCE_SIDECAR_STORE_RECORD_H_
