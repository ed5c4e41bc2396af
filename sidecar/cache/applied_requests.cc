#include "sidecar/cache/applied_requests.h"

#include <algorithm>
#include <functional>
#include <utility>

namespace cb::cache {

std::size_t AppliedRequests::Hash::operator()(const protocol::RequestId& id) const {
  // The sequence alone is nearly unique; the rest tells servers and starts apart.
  const std::size_t sequence = std::hash<uint64_t>()(id.sequence);
  const std::size_t origin = std::hash<uint64_t>()(id.incarnation * 64 + id.origin);
  return sequence ^ (origin + 0x9e3779b97f4a7c15ULL + (sequence << 6) + (sequence >> 2));
}

AppliedRequests::AppliedRequests(int64_t keep_for_ms, std::size_t max_entries)
    : keep_for_ms_(keep_for_ms), max_entries_(std::max<std::size_t>(max_entries, 1)) {}

bool AppliedRequests::DropOldest() {
  const Applied& oldest = order_.front();
  const auto found = replies_.find(oldest.id);
  const bool current = found != replies_.end() && found->second.at_ms == oldest.at_ms;
  if (current) replies_.erase(found);
  order_.pop_front();
  return current;
}

void AppliedRequests::Expire(int64_t now_ms) {
  while (!order_.empty() && now_ms - order_.front().at_ms > keep_for_ms_) DropOldest();
}

void AppliedRequests::Remember(const protocol::RequestId& id, std::string reply, int64_t now_ms) {
  if (id.none()) return;
  Expire(now_ms);
  if (!replies_.emplace(id, Reply{std::move(reply), now_ms}).second) return;
  order_.push_back(Applied{id, now_ms});
  while (replies_.size() > max_entries_) {
    if (DropOldest()) ++forgotten_early_;
  }
}

const std::string* AppliedRequests::Find(const protocol::RequestId& id, int64_t now_ms) {
  if (id.none()) return nullptr;
  Expire(now_ms);
  const auto found = replies_.find(id);
  return found == replies_.end() ? nullptr : &found->second.text;
}

void AppliedRequests::Forget(const protocol::RequestId& id) { replies_.erase(id); }

}  // namespace cb::cache
