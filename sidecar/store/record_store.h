// The session and cache store of one server: the records of every named cache,
// in LevelDB in the server's data dir (doc/store.md "The record store").
//
// Versions decide: Apply keeps the record of the highest version for each
// (cache, key), so replicas that receive the same records in any order, any
// number of times, end up alike. Deletes are records too (tombstones); Get
// returns tombstones and expired records as stored, and whether one is visible
// is the reader's call (Record::IsGoneAt). Apply, ApplyBatch and FlushCache
// return once their write is in LevelDB's log, and with `sync` (the default)
// only once that is synced to disk; SweepExpired never syncs.
// An unreadable entry affects its own key only (Get fails for it, the rest
// skip it, Apply replaces it).
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
#include "sidecar/store/live_key_counter.h"
#include "sidecar/store/record.h"
#include "sidecar/store/record_codec.h"

namespace leveldb {
class DB;
}  // namespace leveldb

namespace cb::store {

struct RecordStoreOptions {
  // How long a deleted or expired record stays before SweepExpired removes it
  // (doc/store.md "Removal"). Negative counts as 0.
  int64_t tombstone_grace_ms = 60 * 60 * 1000;
  // FlushCache writes its tombstones in batches of this many (at least 1).
  std::size_t flush_batch_records = 1000;
  // Whether Apply, ApplyBatch and FlushCache wait for the disk (fdatasync of
  // LevelDB's log) before they return: cluster file `durability = "fsync"`.
  // Without it a write has reached the operating system when they return: it
  // survives the kill of the process, not the crash of the machine.
  bool sync = true;
  // LevelDB's memtable: written out as a level-0 table when full. LevelDB's 4 MiB
  // default makes a stream of 4 KiB sessions flush every thousand writes, and
  // writes stall while level 0 is compacted behind them; a larger one flushes
  // less often, for that much more memory under write load (none when idle).
  std::size_t write_buffer_bytes = 16 * 1024 * 1024;
  // The cache whose live keys are counted by first byte (LiveKeysByFirstByte):
  // the sessions, whose ids begin with their server's route character.
  std::string counted_cache = "session";
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
  // lower version, stored or unreadable (doc/store.md "Flush"). Synced per flush_batch_records
  // entries: if it fails halfway, part of the cache is flushed, and flushing again with the same
  // version completes it. Time proportional to the size of the cache.
  Status FlushCache(std::string_view cache, Version version);

  // Looks at up to `max_records` entries from where the previous call stopped and
  // removes those that IsSweepable(now_ms); a full pass over N entries takes
  // about N / max_records calls.
  Result<SweepResult> SweepExpired(int64_t now_ms, std::size_t max_records);

  // Whether `record` has been gone for at least the grace period at `now_ms`:
  // a tombstone since the physical time of its version, an expired record since
  // its expiry.
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
  // The digest of one bucket of a cache: the sum (mod 2^64) of DigestEntry over
  // its readable entries, tombstones and expired records included (0 when the
  // bucket is empty), so two stores holding the same (key, version) pairs agree
  // whatever order they were written in. Kept in memory: no I/O.
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

  // The live records (not tombstones, not expired at `now_unix_ms`) of
  // options().counted_cache, by their key's first byte. Kept in memory: no I/O.
  // Not const: it moves the counter's clock on (live_key_counter.h).
  LiveKeyCounter::Counts LiveKeysByFirstByte(int64_t now_unix_ms) {
    return live_keys_.LiveAt(now_unix_ms);
  }

  const std::string& dir() const { return dir_; }
  const RecordStoreOptions& options() const { return options_; }

  // The LevelDB key of (cache, key): 'R', the cache name's length (one byte),
  // the name, the key's bucket byte, the key (doc/store.md "Storage key"); for
  // tools and tests. Precondition: 1 <= cache.size() <= kMaxCacheNameBytes.
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
  LiveKeyCounter live_keys_;  // of options_.counted_cache
  std::string sweep_cursor_;  // the next storage key to sweep; empty = from the start
};

}  // namespace cb::store

#endif  // CLUSTER_BALANCE_SIDECAR_STORE_RECORD_STORE_H_
