#include "sidecar/cache/spoke_cache.h"

#include <utility>
#include <vector>

#include "sidecar/store/record_codec.h"

namespace cb::cache {
namespace {

std::string Joined(std::string_view cache, std::string_view key) {
  std::string joined(cache);
  joined += '\0';
  joined += key;
  return joined;
}

}  // namespace

SpokeCache::SpokeCache(uint64_t max_bytes) : max_bytes_(max_bytes) {}

const store::Record* SpokeCache::Find(std::string_view cache, std::string_view key) {
  const auto found = index_.find(Joined(cache, key));
  if (found == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, found->second);
  return &found->second->record;
}

void SpokeCache::Remember(std::string_view cache, std::string_view key, store::Record record) {
  std::string cache_key = Joined(cache, key);
  ForgetJoined(cache_key);
  const uint64_t size = cache_key.size() + record.value.size();
  if (size > max_bytes_) return;
  lru_.push_front(Entry{cache_key, std::move(record)});
  index_[std::move(cache_key)] = lru_.begin();
  bytes_ += size;
  while (bytes_ > max_bytes_ && !lru_.empty()) ForgetJoined(lru_.back().cache_key);
}

void SpokeCache::Forget(std::string_view cache, std::string_view key) {
  ForgetJoined(Joined(cache, key));
}

void SpokeCache::ForgetCache(std::string_view cache) {
  const std::string prefix = Joined(cache, "");
  std::vector<std::string> doomed;
  for (const Entry& entry : lru_) {
    if (entry.cache_key.starts_with(prefix)) doomed.push_back(entry.cache_key);
  }
  for (const std::string& cache_key : doomed) ForgetJoined(cache_key);
}

protocol::CacheOpReply SpokeCache::OnOwnerReply(std::string_view cache, std::string_view key,
                                                memcache::Command command,
                                                const std::optional<store::Record>& known,
                                                const protocol::CacheOpReply& reply) {
  if (!memcache::IsRead(command) || reply.reply.starts_with("SERVER_ERROR")) {
    Forget(cache, key);
    return reply;
  }
  if (reply.unchanged && known) {
    ++validated_;
    Remember(cache, key, *known);
    protocol::CacheOpReply full = reply;
    full.found = true;
    full.unchanged = false;
    full.record = store::EncodeRecord(*known);
    return full;
  }
  if (reply.found) {
    if (Result<store::Record> record = store::DecodeRecord(reply.record); record.ok()) {
      Remember(cache, key, std::move(record).value());
    }
  } else {
    Forget(cache, key);
  }
  return reply;
}

void SpokeCache::ForgetJoined(const std::string& cache_key) {
  const auto found = index_.find(cache_key);
  if (found == index_.end()) return;
  bytes_ -= found->second->cache_key.size() + found->second->record.value.size();
  lru_.erase(found->second);
  index_.erase(found);
}

}  // namespace cb::cache
