#include "sidecar/store/live_key_counter.h"

#include <cassert>

namespace cb::store {
namespace {

int64_t ExpiryKey(int64_t expiry_unix_ms) {
  return expiry_unix_ms == 0 ? std::numeric_limits<int64_t>::max() : expiry_unix_ms;
}

}  // namespace

LiveKeyCounter::ByFirstByte& LiveKeyCounter::For(std::string_view key) {
  return counts_[key.empty() ? 0 : static_cast<unsigned char>(key.front())];
}

void LiveKeyCounter::Add(std::string_view key, int64_t expiry_unix_ms) {
  ByFirstByte& counts = For(key);
  const int64_t expiry = ExpiryKey(expiry_unix_ms);
  ++counts.expiries[expiry];
  if (expiry > cursor_) ++counts.live;
}

void LiveKeyCounter::Remove(std::string_view key, int64_t expiry_unix_ms) {
  ByFirstByte& counts = For(key);
  const int64_t expiry = ExpiryKey(expiry_unix_ms);
  auto found = counts.expiries.find(expiry);
  assert(found != counts.expiries.end());
  if (found == counts.expiries.end()) return;
  if (--found->second == 0) counts.expiries.erase(found);
  if (expiry > cursor_) --counts.live;
}

LiveKeyCounter::Counts LiveKeyCounter::LiveAt(int64_t now_unix_ms) {
  Counts live{};
  for (size_t byte = 0; byte < counts_.size(); ++byte) {
    ByFirstByte& counts = counts_[byte];
    if (now_unix_ms > cursor_) {
      // The expiries in (cursor_, now]: they lapse now.
      for (auto it = counts.expiries.upper_bound(cursor_);
           it != counts.expiries.end() && it->first <= now_unix_ms; ++it) {
        counts.live -= it->second;
      }
    }
    live[byte] = counts.live;
  }
  if (now_unix_ms > cursor_) cursor_ = now_unix_ms;
  return live;
}

}  // namespace cb::store
