#include "sidecar/store/record_store.h"

#include <leveldb/db.h>
#include <leveldb/iterator.h>
#include <leveldb/options.h>
#include <leveldb/write_batch.h>
#include <xxhash.h>

#include <algorithm>
#include <cassert>
#include <unordered_map>
#include <utility>

#include "sidecar/store/hybrid_clock.h"
#include "sidecar/store/quiet_background_env.h"

namespace cb::store {

namespace {

constexpr char kRecordTag = 'R';

struct ParsedKey {
  std::string_view cache;
  uint32_t bucket = 0;
  std::string_view key;
};

std::optional<ParsedKey> ParseStorageKey(std::string_view storage_key) {
  if (storage_key.size() < 2 || storage_key[0] != kRecordTag) {
    return std::nullopt;
  }
  const std::size_t name_size = static_cast<uint8_t>(storage_key[1]);
  if (name_size == 0 || storage_key.size() < 2 + name_size + 1) {
    return std::nullopt;
  }
  ParsedKey parsed;
  parsed.cache = storage_key.substr(2, name_size);
  parsed.bucket = static_cast<uint8_t>(storage_key[2 + name_size]);
  parsed.key = storage_key.substr(2 + name_size + 1);
  return parsed;
}

std::string CachePrefix(std::string_view cache) {
  std::string prefix;
  prefix.reserve(2 + cache.size());
  prefix.push_back(kRecordTag);
  prefix.push_back(static_cast<char>(cache.size()));
  prefix.append(cache);
  return prefix;
}

std::string_view ToView(const leveldb::Slice& slice) {
  return std::string_view(slice.data(), slice.size());
}

// A key or cache name for a message: printable ASCII as is, the rest as \xNN,
// cut after 80 bytes.
std::string Printable(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  constexpr std::size_t kMaxShown = 80;
  std::string out = "\"";
  for (std::size_t i = 0; i < bytes.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  out.push_back('"');
  if (bytes.size() > kMaxShown) {
    out += "...";
  }
  return out;
}

leveldb::ReadOptions ScanOptions() {
  leveldb::ReadOptions options;
  options.fill_cache = false;  // a scan should not evict what requests read
  return options;
}

}  // namespace

RecordStore::RecordStore(std::string dir, const RecordStoreOptions& options,
                         std::unique_ptr<leveldb::DB> db)
    : dir_(std::move(dir)), options_(options), db_(std::move(db)) {}

RecordStore::~RecordStore() = default;

Result<std::unique_ptr<RecordStore>> RecordStore::Open(const std::string& dir,
                                                       const RecordStoreOptions& options) {
  leveldb::Options db_options;
  db_options.create_if_missing = true;
  db_options.write_buffer_size = options.write_buffer_bytes;
  // LevelDB's flushes and compactions kept out of the way of the writes that
  // wait for the disk and of the event loop.
  db_options.env = QuietBackgroundEnv::Shared();
  leveldb::DB* raw = nullptr;
  const leveldb::Status status = leveldb::DB::Open(db_options, dir, &raw);
  if (!status.ok()) {
    std::string message = "store " + dir + ": cannot open: " + status.ToString();
    if (status.IsIOError() && status.ToString().find("LOCK") != std::string::npos) {
      message +=
          " (another process, or another store in this one, has it open: is a second "
          "cluster-sidecar using this data dir?)";
    }
    return Status::IoError(std::move(message));
  }
  RecordStoreOptions effective = options;
  effective.tombstone_grace_ms = std::max<int64_t>(effective.tombstone_grace_ms, 0);
  effective.flush_batch_records = std::max<std::size_t>(effective.flush_batch_records, 1);
  std::unique_ptr<RecordStore> store(
      new RecordStore(dir, effective, std::unique_ptr<leveldb::DB>(raw)));
  if (Status loaded = store->LoadState(); !loaded.ok()) {
    return loaded;
  }
  return store;
}

std::string RecordStore::StorageKey(std::string_view cache, std::string_view key) {
  assert(!cache.empty() && cache.size() <= kMaxCacheNameBytes);
  std::string storage_key = CachePrefix(cache);
  storage_key.reserve(storage_key.size() + 1 + key.size());
  storage_key.push_back(static_cast<char>(BucketOf(key)));
  storage_key.append(key);
  return storage_key;
}

uint32_t RecordStore::BucketOf(std::string_view key) {
  return static_cast<uint32_t>(XXH3_64bits(key.data(), key.size()) >> 56);
}

uint64_t RecordStore::DigestEntry(std::string_view key, const Version& version) {
  unsigned char bytes[12];
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<unsigned char>(version.clock >> (8 * i));
  }
  for (int i = 0; i < 4; ++i) {
    bytes[8 + i] = static_cast<unsigned char>(version.server >> (8 * i));
  }
  return XXH3_64bits_withSeed(bytes, sizeof(bytes), XXH3_64bits(key.data(), key.size()));
}

Status RecordStore::CheckCacheName(std::string_view cache) const {
  if (cache.empty()) {
    return Status::InvalidArgument("store " + dir_ + ": empty cache name");
  }
  if (cache.size() > kMaxCacheNameBytes) {
    return Status::InvalidArgument("store " + dir_ + ": cache name " + Printable(cache) +
                                   " is longer than " + std::to_string(kMaxCacheNameBytes) +
                                   " bytes");
  }
  return Status::Ok();
}

Status RecordStore::IoErrorFrom(std::string_view what, const std::string& leveldb_message) const {
  return Status::IoError("store " + dir_ + ": " + std::string(what) + ": " + leveldb_message);
}

Status RecordStore::LoadState() {
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(ScanOptions()));
  for (it->Seek(std::string(1, kRecordTag)); it->Valid(); it->Next()) {
    const std::string_view storage_key = ToView(it->key());
    if (storage_key.empty() || storage_key[0] != kRecordTag) {
      break;
    }
    const std::optional<ParsedKey> parsed = ParseStorageKey(storage_key);
    if (!parsed) {
      continue;  // not a key this code writes; left alone
    }
    Result<RecordHeader> header = DecodeRecordHeader(ToView(it->value()));
    EntryInfo info;
    info.corrupt = !header.ok();
    if (header.ok()) {
      info.header = *header;
    }
    Account(parsed->cache, parsed->key, info, +1);
  }
  if (!it->status().ok()) {
    return IoErrorFrom("scan on open", it->status().ToString());
  }
  return Status::Ok();
}

void RecordStore::Account(std::string_view cache, std::string_view key, const EntryInfo& info,
                          int sign) {
  auto found = caches_.find(cache);
  if (found == caches_.end()) {
    assert(sign > 0);
    found = caches_.emplace(std::string(cache), CacheState{}).first;
  }
  CacheState& state = found->second;
  const auto delta = static_cast<uint64_t>(static_cast<int64_t>(sign));  // +1 or 2^64-1
  if (info.corrupt) {
    state.stats.corrupt += delta;
  } else {
    if (info.header.deleted) {
      state.stats.tombstones += delta;
    } else {
      state.stats.records += delta;
      state.stats.bytes += delta * (key.size() + info.header.value_size);
    }
    state.digests[BucketOf(key)] += delta * DigestEntry(key, info.header.version);
    if (!info.header.deleted && cache == options_.counted_cache) {
      if (sign > 0) {
        live_keys_.Add(key, info.header.expiry_unix_ms);
      } else {
        live_keys_.Remove(key, info.header.expiry_unix_ms);
      }
    }
  }
  if (state.stats == CacheStats{}) {
    caches_.erase(found);
  }
}

Result<std::optional<RecordStore::EntryInfo>> RecordStore::ReadEntry(
    const std::string& storage_key) const {
  std::string value;
  const leveldb::Status status = db_->Get(leveldb::ReadOptions(), storage_key, &value);
  if (status.IsNotFound()) {
    return std::optional<EntryInfo>();
  }
  if (!status.ok()) {
    return IoErrorFrom("read", status.ToString());
  }
  Result<RecordHeader> header = DecodeRecordHeader(value);
  EntryInfo info;
  info.corrupt = !header.ok();
  if (header.ok()) {
    info.header = *header;
  }
  return std::optional<EntryInfo>(info);
}

Result<std::optional<Record>> RecordStore::Get(std::string_view cache, std::string_view key) const {
  if (Status checked = CheckCacheName(cache); !checked.ok()) {
    return checked;
  }
  std::string value;
  const leveldb::Status status = db_->Get(leveldb::ReadOptions(), StorageKey(cache, key), &value);
  if (status.IsNotFound()) {
    return std::optional<Record>();
  }
  if (!status.ok()) {
    return IoErrorFrom("cache " + Printable(cache) + " key " + Printable(key), status.ToString());
  }
  Result<Record> record = DecodeRecord(value);
  if (!record.ok()) {
    return Status::IoError("store " + dir_ + ": cache " + Printable(cache) + " key " +
                           Printable(key) + ": unreadable entry: " + record.status().message());
  }
  return std::optional<Record>(std::move(record).value());
}

Result<bool> RecordStore::Apply(std::string_view cache, std::string_view key,
                                const Record& record) {
  const RecordWrite write{cache, key, &record};
  Result<std::vector<bool>> applied = ApplyBatch(std::span<const RecordWrite>(&write, 1));
  if (!applied.ok()) {
    return applied.status();
  }
  return bool{applied->front()};
}

Result<std::vector<bool>> RecordStore::ApplyBatch(std::span<const RecordWrite> writes) {
  for (const RecordWrite& write : writes) {
    if (Status checked = CheckCacheName(write.cache); !checked.ok()) {
      return checked;
    }
    assert(write.record != nullptr);
    if (write.record->version.is_null()) {
      return Status::InvalidArgument("store " + dir_ + ": cache " + Printable(write.cache) +
                                     " key " + Printable(write.key) + ": null version");
    }
    if (write.record->value.size() > kMaxRecordValueBytes) {
      return Status::TooLarge("store " + dir_ + ": cache " + Printable(write.cache) + " key " +
                              Printable(write.key) + ": value of " +
                              std::to_string(write.record->value.size()) + " bytes");
    }
  }

  struct Change {
    const RecordWrite* write;
    std::optional<EntryInfo> before;
    EntryInfo after;
  };
  std::vector<bool> applied(writes.size(), false);
  std::vector<Change> changes;
  std::unordered_map<std::string, EntryInfo> pending;  // what the batch leaves at a key
  leveldb::WriteBatch batch;
  std::string encoded;
  for (std::size_t i = 0; i < writes.size(); ++i) {
    const RecordWrite& write = writes[i];
    std::string storage_key = StorageKey(write.cache, write.key);
    std::optional<EntryInfo> current;
    if (auto found = pending.find(storage_key); found != pending.end()) {
      current = found->second;
    } else {
      Result<std::optional<EntryInfo>> read = ReadEntry(storage_key);
      if (!read.ok()) {
        return read.status();
      }
      current = *read;
    }
    if (current && !current->corrupt && write.record->version <= current->header.version) {
      continue;
    }
    encoded.clear();
    AppendRecord(encoded, *write.record);
    batch.Put(storage_key, encoded);
    EntryInfo after;
    after.header =
        RecordHeader{write.record->version, write.record->expiry_unix_ms, write.record->flags,
                     write.record->deleted, static_cast<uint32_t>(write.record->value.size())};
    changes.push_back(Change{&write, current, after});
    pending[std::move(storage_key)] = after;
    applied[i] = true;
  }
  if (changes.empty()) {
    return applied;
  }
  leveldb::WriteOptions write_options;
  write_options.sync = options_.sync;
  const leveldb::Status status = db_->Write(write_options, &batch);
  if (!status.ok()) {
    return IoErrorFrom("write", status.ToString());
  }
  for (const Change& change : changes) {
    if (change.before) {
      Account(change.write->cache, change.write->key, *change.before, -1);
    }
    Account(change.write->cache, change.write->key, change.after, +1);
  }
  return applied;
}

Status RecordStore::FlushCache(std::string_view cache, Version version) {
  if (Status checked = CheckCacheName(cache); !checked.ok()) {
    return checked;
  }
  if (version.is_null()) {
    return Status::InvalidArgument("store " + dir_ + ": flush of cache " + Printable(cache) +
                                   " with a null version");
  }
  Record tombstone;
  tombstone.version = version;
  tombstone.deleted = true;
  const std::string encoded = EncodeRecord(tombstone);
  EntryInfo tombstone_info;
  tombstone_info.header = RecordHeader{version, 0, 0, true, 0};

  const std::string prefix = CachePrefix(cache);
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(ScanOptions()));
  leveldb::WriteBatch batch;
  // (key within the cache, what was there)
  std::vector<std::pair<std::string, EntryInfo>> replaced;
  leveldb::WriteOptions write_options;
  write_options.sync = options_.sync;
  auto write_batch = [&]() -> Status {
    if (replaced.empty()) {
      return Status::Ok();
    }
    const leveldb::Status status = db_->Write(write_options, &batch);
    if (!status.ok()) {
      return IoErrorFrom("flush of cache " + Printable(cache), status.ToString());
    }
    for (const auto& [key, before] : replaced) {
      Account(cache, key, before, -1);
      Account(cache, key, tombstone_info, +1);
    }
    replaced.clear();
    batch.Clear();
    return Status::Ok();
  };

  for (it->Seek(prefix); it->Valid(); it->Next()) {
    const std::string_view storage_key = ToView(it->key());
    if (!storage_key.starts_with(prefix)) {
      break;
    }
    const std::optional<ParsedKey> parsed = ParseStorageKey(storage_key);
    if (!parsed) {
      continue;
    }
    Result<RecordHeader> header = DecodeRecordHeader(ToView(it->value()));
    EntryInfo before;
    before.corrupt = !header.ok();
    if (header.ok()) {
      if (header->version >= version) {
        continue;
      }
      before.header = *header;
    }
    batch.Put(it->key(), encoded);
    replaced.emplace_back(std::string(parsed->key), before);
    if (replaced.size() >= options_.flush_batch_records) {
      if (Status written = write_batch(); !written.ok()) {
        return written;
      }
    }
  }
  if (!it->status().ok()) {
    return IoErrorFrom("flush of cache " + Printable(cache), it->status().ToString());
  }
  return write_batch();
}

bool RecordStore::IsSweepable(const RecordHeader& header, int64_t now_ms) const {
  int64_t gone_since = 0;
  if (header.deleted) {
    gone_since = HybridClock::PhysicalMs(header.version.clock);
  } else if (header.expiry_unix_ms != 0) {
    gone_since = header.expiry_unix_ms;
  } else {
    return false;
  }
  if (now_ms < gone_since) {
    return false;
  }
  // now_ms >= gone_since, so the unsigned difference is exact.
  const uint64_t gone_for = static_cast<uint64_t>(now_ms) - static_cast<uint64_t>(gone_since);
  return gone_for >= static_cast<uint64_t>(options_.tombstone_grace_ms);
}

bool RecordStore::IsSweepable(const Record& record, int64_t now_ms) const {
  return IsSweepable(
      RecordHeader{record.version, record.expiry_unix_ms, record.flags, record.deleted, 0}, now_ms);
}

Result<SweepResult> RecordStore::SweepExpired(int64_t now_ms, std::size_t max_records) {
  SweepResult result;
  if (max_records == 0) {
    return result;
  }
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(ScanOptions()));
  it->Seek(sweep_cursor_.empty() ? std::string(1, kRecordTag) : sweep_cursor_);
  const leveldb::Slice record_tag(&kRecordTag, 1);
  auto in_records = [&] { return it->Valid() && it->key().starts_with(record_tag); };
  leveldb::WriteBatch batch;
  // (cache, key, what was there)
  std::vector<std::tuple<std::string, std::string, EntryInfo>> removed;
  while (result.examined < max_records && in_records()) {
    ++result.examined;
    const std::optional<ParsedKey> parsed = ParseStorageKey(ToView(it->key()));
    if (parsed) {
      Result<RecordHeader> header = DecodeRecordHeader(ToView(it->value()));
      if (!header.ok()) {
        ++result.corrupt;
      } else if (IsSweepable(*header, now_ms)) {
        batch.Delete(it->key());
        EntryInfo info;
        info.header = *header;
        removed.emplace_back(std::string(parsed->cache), std::string(parsed->key), info);
      }
    }
    it->Next();
  }
  if (!it->status().ok()) {
    return IoErrorFrom("sweep", it->status().ToString());
  }
  if (in_records()) {
    sweep_cursor_.assign(it->key().data(), it->key().size());
  } else {
    sweep_cursor_.clear();
    result.wrapped = true;
  }
  if (!removed.empty()) {
    // Not synced: a removal lost in a crash is made again by a later sweep.
    const leveldb::Status status = db_->Write(leveldb::WriteOptions(), &batch);
    if (!status.ok()) {
      return IoErrorFrom("sweep", status.ToString());
    }
    for (const auto& [cache, key, info] : removed) {
      Account(cache, key, info, -1);
    }
  }
  result.removed = removed.size();
  return result;
}

CacheStats RecordStore::Stats(std::string_view cache) const {
  const auto found = caches_.find(cache);
  return found == caches_.end() ? CacheStats{} : found->second.stats;
}

std::vector<std::string> RecordStore::Caches() const {
  std::vector<std::string> names;
  names.reserve(caches_.size());
  for (const auto& [name, state] : caches_) {
    names.push_back(name);
  }
  return names;
}

void RecordStore::ForEachCache(
    const std::function<void(const std::string& cache, const CacheStats& stats)>& fn) const {
  for (const auto& [name, state] : caches_) {
    fn(name, state.stats);
  }
}

uint64_t RecordStore::BucketDigest(std::string_view cache, uint32_t bucket) const {
  assert(bucket < kBuckets);
  const auto found = caches_.find(cache);
  return found == caches_.end() || bucket >= kBuckets ? 0 : found->second.digests[bucket];
}

std::array<uint64_t, RecordStore::kBuckets> RecordStore::BucketDigests(
    std::string_view cache) const {
  const auto found = caches_.find(cache);
  return found == caches_.end() ? std::array<uint64_t, kBuckets>{} : found->second.digests;
}

Status RecordStore::ForEachInBucket(
    std::string_view cache, uint32_t bucket,
    const std::function<bool(std::string_view key, const Record& record)>& fn) const {
  return ScanBucket(cache, bucket, nullptr, fn);
}

Status RecordStore::ForEachInBucketAfter(
    std::string_view cache, uint32_t bucket, std::string_view after,
    const std::function<bool(std::string_view key, const Record& record)>& fn) const {
  return ScanBucket(cache, bucket, &after, fn);
}

Status RecordStore::ScanBucket(
    std::string_view cache, uint32_t bucket, const std::string_view* after,
    const std::function<bool(std::string_view key, const Record& record)>& fn) const {
  if (Status checked = CheckCacheName(cache); !checked.ok()) {
    return checked;
  }
  if (bucket >= kBuckets) {
    return Status::InvalidArgument("store " + dir_ + ": bucket " + std::to_string(bucket) +
                                   " out of range (" + std::to_string(kBuckets) + " buckets)");
  }
  std::string prefix = CachePrefix(cache);
  prefix.push_back(static_cast<char>(bucket));
  std::string start = prefix;
  if (after != nullptr) start.append(*after);
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(ScanOptions()));
  for (it->Seek(start); it->Valid(); it->Next()) {
    const std::string_view storage_key = ToView(it->key());
    if (!storage_key.starts_with(prefix)) {
      break;
    }
    const std::string_view key = storage_key.substr(prefix.size());
    if (after != nullptr && key == *after) {
      continue;
    }
    Result<Record> record = DecodeRecord(ToView(it->value()));
    if (!record.ok()) {
      continue;
    }
    if (!fn(key, *record)) {
      break;
    }
  }
  if (!it->status().ok()) {
    return IoErrorFrom("scan of cache " + Printable(cache), it->status().ToString());
  }
  return Status::Ok();
}

}  // namespace cb::store
