// The session and cache store of one server (DESIGN.md "Sessions and caches"):
// the records of every named cache, in LevelDB in the server's data dir.
//
// Versions decide. Apply stores a record only if its version is higher than the
// version stored for that (cache, key), so replicas that receive the same records
// in any order, any number of times, end up with the same contents. A delete is a
// record too (a tombstone, Record::deleted), and Get returns tombstones and
// expired records as stored: whether a record is visible is the reader's call,
// Record::IsGoneAt(now), the same on every replica.
//
// Durability: Apply, ApplyBatch and FlushCache return only after LevelDB has
// synced their write to disk (WriteOptions::sync), so an acknowledgement that
// waits for them survives a crash of the machine. SweepExpired does not sync: a
// removal lost in a crash is simply made again.
//
// Removal (SweepExpired). A record that is gone is kept for a grace period
// (RecordStoreOptions::tombstone_grace_ms) before it is removed, because while it
// is there it stops an older write of the same key that arrives late (a slow
// replica, a retry, anti-entropy with a server that was away) from bringing the
// key back. A record has been gone since:
//   - a tombstone: the physical time of its version (HybridClock::PhysicalMs);
//   - an expired record: its expiry_unix_ms;
// and is removed once now_ms - gone_since >= tombstone_grace_ms (IsSweepable).
// Consequently a write older than a delete or expiry is refused only if it
// arrives within the grace period; a server that was away longer must drop its
// records rather than offer them to its peers. The sweep visits the keys in
// order, up to max_records per call, and resumes after the last key it visited;
// a full pass over N stored entries takes about N / max_records calls.
//
// Flush (FlushCache) writes a tombstone with the given version over every entry
// of the cache whose version is lower, including older tombstones and unreadable
// entries, so every replica that flushes with the same version ends up with the
// same entries; entries written with a higher version (after the flush) stay.
// Keys this replica does not hold are not covered: an older write of such a key
// that arrives later is stored. The tombstones go away with the sweep.
//
// Anti-entropy. The keys of a cache fall into kBuckets buckets by the top byte of
// XXH3-64 of the key (BucketOf). BucketDigest(cache, b) is the sum (mod 2^64) of
// DigestEntry(key, version) over the readable entries of the bucket, tombstones
// and expired records included: two stores holding the same (key, version)
// pairs have equal digests whatever order they were written in, and differ (with
// overwhelming probability) otherwise. Replicas compare the digests and exchange
// only the buckets that differ (ForEachInBucket lists one bucket with a range
// scan). A sender should skip entries that IsSweepable(now), which the receiver
// would only store to remove again; digests of two replicas may differ for a
// while because they sweep at different times.
//
// Storage key: 'R', one byte n = the cache name's length (1..255), the n bytes of
// the name, the key's bucket byte, then the key bytes. The length prefix keeps
// caches apart ("a" is not a prefix of "ab"), so one cache, or one bucket of it,
// is a contiguous range. Keys of other prefixes are left alone.
//
// Counts and digests are kept in memory: computed by one scan of the store in
// Open (time proportional to its size) and kept up to date by every write, so
// Stats, Caches and BucketDigest cost no I/O.
//
// Unreadable entries (a value that does not decode, e.g. disk corruption) affect
// their own key only: Get returns an IoError naming the cache and key; Stats
// counts them as `corrupt`; SweepExpired and ForEachInBucket skip them; they are
// not part of the digests (so anti-entropy brings the peers' copy), and Apply
// replaces them with any record, whatever its version.
//
// Errors are values: IoError for LevelDB failures (the message names the
// directory), InvalidArgument for a bad cache name, a null version or a bucket out
// of range. Open fails with an IoError that names the directory when LevelDB
// cannot open it, including when another process (or another RecordStore in this
// one) has it open: LevelDB locks the directory.
//
// Thread-safety: not thread-safe. The sidecar's event loop is the only user; a
// multi-threaded user must serialise every call, const ones included.
#ifndef CLUSTER_BALANCE_SIDECAR_STORE_RECORD_STORE_H_
#define CLUSTER_BALANCE_SIDECAR_STORE_RECORD_STORE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shared/status.h"
#include "sidecar/store/record.h"
#include "sidecar/store/record_codec.h"

namespace leveldb {
class DB;
}  // namespace leveldb

namespace cb::store {

struct RecordStoreOptions {
  // How long a deleted or expired record stays before SweepExpired removes it
  // (see "Removal" above). Negative counts as 0.
  int64_t tombstone_grace_ms = 60 * 60 * 1000;
  // FlushCache writes its tombstones in synced batches of this many (at least 1).
  std::size_t flush_batch_records = 1000;
};

// What a cache holds. An entry is one stored (cache, key).
struct CacheStats {
  uint64_t records = 0;     // entries with a value (not tombstones), expired ones included
  uint64_t tombstones = 0;  // deleted entries not yet swept
  uint64_t bytes = 0;       // key + value bytes of `records`
  uint64_t corrupt = 0;     // entries whose value does not decode

  bool operator==(const CacheStats&) const = default;
};

struct SweepResult {
  std::size_t examined = 0;  // entries looked at (at most max_records)
  std::size_t removed = 0;
  std::size_t corrupt = 0;  // unreadable entries seen and skipped
  bool wrapped = false;     // reached the end of the store; the next call starts over
};

// One write of ApplyBatch; the views and the record must outlive the call.
struct RecordWrite {
  std::string_view cache;
  std::string_view key;
  const Record* record = nullptr;
};

class RecordStore {
 public:
  static constexpr uint32_t kBuckets = 256;
  static constexpr std::size_t kMaxCacheNameBytes = 255;

  // Opens the store in `dir`, creating the directory (not its parents) and an
  // empty store if missing, and scans it to compute the counts and digests.
  static Result<std::unique_ptr<RecordStore>> Open(const std::string& dir,
                                                   const RecordStoreOptions& options = {});

  RecordStore(const RecordStore&) = delete;
  RecordStore& operator=(const RecordStore&) = delete;
  ~RecordStore();

  // The stored record of (cache, key), tombstones and expired records included;
  // std::nullopt when there is none. IoError when the stored bytes are unreadable.
  Result<std::optional<Record>> Get(std::string_view cache, std::string_view key) const;

  // Stores `record` if its version is higher than the stored one (or nothing, or
  // something unreadable, is stored); returns whether it did. Synced. The version
  // must not be null; the value at most kMaxRecordValueBytes.
  Result<bool> Apply(std::string_view cache, std::string_view key, const Record& record);

  // Apply for each write, in order (a later write of the same key is compared
  // with an earlier one of the batch), in one synced LevelDB write: all or
  // nothing. Returns whether each write was applied. Every write is checked
  // before anything is written.
  Result<std::vector<bool>> ApplyBatch(std::span<const RecordWrite> writes);

  // Writes a tombstone of `version` (not null) over every entry of `cache` with a
  // lower version (see "Flush" above). Synced per flush_batch_records entries: if
  // it fails halfway, part of the cache is flushed, and flushing again with the
  // same version completes it. Time proportional to the size of the cache.
  Status FlushCache(std::string_view cache, Version version);

  // Looks at up to `max_records` entries from where the previous call stopped and
  // removes those that IsSweepable(now_ms) (see "Removal" above).
  Result<SweepResult> SweepExpired(int64_t now_ms, std::size_t max_records);

  // Whether `record` has been gone (deleted or expired) for at least the grace
  // period at `now_ms`.
  bool IsSweepable(const Record& record, int64_t now_ms) const;
  bool IsSweepable(const RecordHeader& header, int64_t now_ms) const;

  // All zero for a cache with no entries.
  CacheStats Stats(std::string_view cache) const;
  // The caches holding at least one entry (tombstones and unreadable ones count),
  // in byte order.
  std::vector<std::string> Caches() const;
  // Calls fn for each cache of Caches() with its stats. fn must not write to the
  // store.
  void ForEachCache(
      const std::function<void(const std::string& cache, const CacheStats& stats)>& fn) const;

  // The bucket of a key in every cache: the top byte of XXH3-64 of the key.
  static uint32_t BucketOf(std::string_view key);
  // One entry's share of its bucket's digest: XXH3-64, seeded with XXH3-64 of the
  // key, of the version's clock (8 bytes) and server (4 bytes), little-endian.
  static uint64_t DigestEntry(std::string_view key, const Version& version);
  // The digest of one bucket of a cache (0 when the bucket is empty).
  // Precondition: bucket < kBuckets.
  uint64_t BucketDigest(std::string_view cache, uint32_t bucket) const;
  // The digests of all buckets of a cache.
  std::array<uint64_t, kBuckets> BucketDigests(std::string_view cache) const;

  // Calls fn(key, record) for each readable entry of one bucket of a cache, in
  // key order, tombstones and expired records included, until fn returns false.
  // fn sees the bucket as it was when the call began and may write to the store.
  // InvalidArgument for a bucket >= kBuckets.
  Status ForEachInBucket(
      std::string_view cache, uint32_t bucket,
      const std::function<bool(std::string_view key, const Record& record)>& fn) const;
  // The same for the keys after `after` only (byte order): a listing resumed
  // where an earlier one stopped.
  Status ForEachInBucketAfter(
      std::string_view cache, uint32_t bucket, std::string_view after,
      const std::function<bool(std::string_view key, const Record& record)>& fn) const;

  const std::string& dir() const { return dir_; }
  const RecordStoreOptions& options() const { return options_; }

  // The LevelDB key of (cache, key) (see "Storage key" above); for tools and
  // tests. Precondition: 1 <= cache.size() <= kMaxCacheNameBytes.
  static std::string StorageKey(std::string_view cache, std::string_view key);

 private:
  // ForEachInBucket (after == nullptr) and ForEachInBucketAfter.
  Status ScanBucket(
      std::string_view cache, uint32_t bucket, const std::string_view* after,
      const std::function<bool(std::string_view key, const Record& record)>& fn) const;

  // What one stored entry contributes to its cache's counts and digest.
  struct EntryInfo {
    bool corrupt = false;
    RecordHeader header;  // meaningful when !corrupt
  };
  struct CacheState {
    CacheStats stats;
    std::array<uint64_t, kBuckets> digests{};
  };

  RecordStore(std::string dir, const RecordStoreOptions& options, std::unique_ptr<leveldb::DB> db);

  Status LoadState();
  Result<std::optional<EntryInfo>> ReadEntry(const std::string& storage_key) const;
  // Adds (sign > 0) or removes (sign < 0) an entry's contribution.
  void Account(std::string_view cache, std::string_view key, const EntryInfo& info, int sign);
  Status CheckCacheName(std::string_view cache) const;
  Status IoErrorFrom(std::string_view what, const std::string& leveldb_message) const;

  const std::string dir_;
  const RecordStoreOptions options_;
  std::unique_ptr<leveldb::DB> db_;
  std::map<std::string, CacheState, std::less<>> caches_;
  std::string sweep_cursor_;  // the next storage key to sweep; empty = from the start
};

}  // namespace cb::store

#endif  // CLUSTER_BALANCE_SIDECAR_STORE_RECORD_STORE_H_
