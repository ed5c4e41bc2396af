// The memcached text protocol, semantics side: what one request does to one key's
// record and what to answer, as memcached 1.6 does it. Pure: the caller reads the
// current record from the store, calls Execute, writes the record it returns
// (after stamping its version) and sends the reply.
//
// Keys select a named cache as "<cache>:<key>" (SplitKey). Records of the store
// (sidecar/store/record.h) carry the value, the client flags, an absolute expiry
// in unix milliseconds, and the version whose CasToken() is memcached's
// "cas unique".
//
// Expiry, from an exptime as memcached reads it: 0 = never; 1..2592000 (30 days)
// = that many seconds from now; above = an absolute unix time in seconds (in the
// past = already expired); negative = already expired. A write of an already
// expired record is still a write: it replaces (and so hides) what was there.
//
// Where this differs from memcached because records are replicated by version:
// touch and gat write the record again, so its version and therefore its cas
// unique change (memcached keeps the cas on touch); incr, decr, append and
// prepend keep the record's flags and expiry, as memcached does.
//
// Thread-safety: free functions of their arguments only; thread-safe.
#ifndef CLUSTER_BALANCE_SIDECAR_MEMCACHE_COMMANDS_H_
#define CLUSTER_BALANCE_SIDECAR_MEMCACHE_COMMANDS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "sidecar/memcache/parser.h"
#include "sidecar/store/record.h"

namespace cb::memcache {

// Where a key lives: views into the full key (or the constant "default").
struct KeyTarget {
  std::string_view cache;
  std::string_view key;

  bool operator==(const KeyTarget&) const = default;
};

// Splits "<cache>:<key>" at the first ':' when what precedes it names a cache
// (`is_cache`); otherwise the whole key, colons and all, is a key of cache
// "default". "session:" is the empty key of cache "session". `is_cache` is
// called at most once, and not at all for a key without ':'.
KeyTarget SplitKey(std::string_view full_key,
                   const std::function<bool(std::string_view)>& is_cache);

struct CacheLimits {
  uint64_t max_entry_bytes = 1024 * 1024;  // the cache's max_entry_size
};

// The absolute expiry (unix milliseconds; 0 = never) of an exptime sent at
// `now_unix_ms` (> 0), by the rules above. An expired one is 1 (the epoch's first
// millisecond); times too far in the future for milliseconds are clamped.
int64_t ExpiryFromExptime(int64_t exptime, int64_t now_unix_ms);

struct Outcome {
  // The bytes to send ("\r\n" included): "STORED\r\n", "42\r\n", ...; empty under
  // noreply, and for get, gets, gat and gats, whose reply the caller builds with
  // ValueLines from all their keys.
  std::string reply;
  // The record to write, if any. Its version is null: the caller stamps it. A
  // delete writes a tombstone (deleted, empty value, no flags, no expiry).
  std::optional<store::Record> write;
  // get, gets, gat, gats: whether the key is shown. For get and gets the record
  // shown is `current`; for gat and gats it is `write`, with the version the
  // caller stamps on it (so gats shows the cas unique of the touched record).
  bool found = false;

  bool operator==(const Outcome&) const = default;
};

// Executes `request` on one key whose record is `current` (nullopt, a tombstone
// or a record expired at `now_unix_ms` all mean: absent). For key-level
// commands (set, add, replace, append, prepend, cas, delete, touch, incr, decr)
// the key is request.keys[0]; for get, gets, gat and gats it is whichever of
// request.keys the caller looked up, one call per key. `limits` are those of the
// key's cache. Replies, as memcached's:
//   set/add/replace/cas: STORED; add of a present key and replace of an absent
//     one: NOT_STORED; cas of an absent key: NOT_FOUND, of a present key whose
//     cas unique differs: EXISTS. A value over limits.max_entry_bytes (or
//     request.value_too_large) is "SERVER_ERROR object too large for cache", and
//     a set that fails so also deletes the key's old value (as memcached does,
//     so that no stale value survives a failed set).
//   append/prepend: STORED, or NOT_STORED for an absent key or when the joined
//     value would be over the limit; the record keeps its flags and expiry.
//   delete: DELETED or NOT_FOUND. touch: TOUCHED or NOT_FOUND.
//   incr/decr: the new value, or NOT_FOUND, or "CLIENT_ERROR cannot increment or
//     decrement non-numeric value" unless the value is a decimal number below
//     2^64 (after optional leading white space and '+'; anything after the digits
//     must start with white space, which memcached's decr pads with). incr wraps
//     around at 2^64, decr stops at 0; the value stored is the plain number.
// Any other command (flush_all, version, stats, verbosity, quit) is not
// key-level: the reply is "ERROR\r\n" and nothing is written.
Outcome Execute(const Request& request, const std::optional<store::Record>& current,
                int64_t now_unix_ms, const CacheLimits& limits);

// memcached's "SERVER_ERROR <why>\r\n": the server could not carry the request out.
std::string ServerErrorReply(std::string_view why);

// One key of a get reply: the key as the client sent it (cache prefix included)
// and its record, or nullptr for a miss.
struct ValueHit {
  std::string_view key;
  const store::Record* record = nullptr;
};

// Appends "VALUE <key> <flags> <bytes>[ <cas unique>]\r\n<data>\r\n".
void AppendValue(std::string& out, std::string_view key, const store::Record& record,
                 bool with_cas);

// The reply to get/gets/gat/gats: a VALUE block for each hit with a record, in
// order, then "END\r\n" unless more requests of the same line follow
// (Request::more_keys). `with_cas` for gets and gats.
std::string ValueLines(std::span<const ValueHit> hits, bool with_cas, bool more_keys = false);

}  // namespace cb::memcache

#endif  // CLUSTER_BALANCE_SIDECAR_MEMCACHE_COMMANDS_H_
