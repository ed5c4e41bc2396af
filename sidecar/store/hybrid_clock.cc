#include "sidecar/store/hybrid_clock.h"

#include <algorithm>
#include <limits>

namespace cb::store {

namespace {
constexpr int64_t kMaxPhysicalMs = (int64_t{1} << (64 - HybridClock::kLogicalBits)) - 1;
}  // namespace

uint64_t HybridClock::Compose(int64_t physical_ms, uint32_t logical) {
  const int64_t physical = std::clamp<int64_t>(physical_ms, 0, kMaxPhysicalMs);
  return (static_cast<uint64_t>(physical) << kLogicalBits) | (logical & kLogicalMask);
}

Version HybridClock::Tick(int64_t now_ms) {
  const uint64_t now_clock = Compose(now_ms, 0);
  if (now_clock > last_) {
    last_ = now_clock;
  } else if (last_ != std::numeric_limits<uint64_t>::max()) {
    ++last_;  // a logical overflow carries into the physical part
  }
  return Version{last_, server_};
}

void HybridClock::Observe(const Version& remote) { last_ = std::max(last_, remote.clock); }

bool HybridClock::IsPlausible(const Version& version, int64_t now_ms, int64_t max_ahead_ms) {
  const int64_t physical = PhysicalMs(version.clock);
  const int64_t now = std::clamp<int64_t>(now_ms, 0, kMaxPhysicalMs);
  const int64_t ahead = std::max<int64_t>(max_ahead_ms, 0);
  return physical <= now || physical - now <= ahead;
}

}  // namespace cb::store
