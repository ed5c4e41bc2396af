// A hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014) that
// stamps this server's writes with store::Version values.
//
// A clock reading is (physical_ms << 16) | logical: the upper 48 bits are
// milliseconds since the Unix epoch, the lower 16 a counter for writes within one
// millisecond. Readings compare as plain integers, so a later write on any
// server gets a higher version as long as the clocks are roughly in sync, and a
// write made after a version was observed (read or replicated) always gets a
// higher one, whatever the local clock says.
//
// Contract:
//   - Tick(now) returns a version whose clock is strictly greater than every
//     clock this object issued or observed before, and never null; the local
//     time going backwards only slows the physical part down (the logical part
//     grows instead). If the logical part overflows it carries into the physical
//     part, which stays correct: readings only have to be ordered.
//   - Observe(v) makes every later Tick greater than v.clock. An absurd remote
//     clock (far in the future) drags this clock along; replication should reject
//     such versions first (IsPlausible). The one case Tick cannot honour is a
//     clock observed at the very top of the 64-bit range: it then saturates at
//     UINT64_MAX (more than 8000 years from now, so only garbage gets there).
//
// Pure: time is passed in, nothing is read from the system.
//
// Thread-safety: not thread-safe. The sidecar is single-threaded (one event loop
// owns the clock); a multi-threaded user must serialise calls itself.
#ifndef CLUSTER_BALANCE_SIDECAR_STORE_HYBRID_CLOCK_H_
#define CLUSTER_BALANCE_SIDECAR_STORE_HYBRID_CLOCK_H_

#include <cstdint>

#include "sidecar/store/record.h"

namespace cb::store {

class HybridClock {
 public:
  static constexpr int kLogicalBits = 16;
  static constexpr uint64_t kLogicalMask = (uint64_t{1} << kLogicalBits) - 1;

  // `server` is this server's index; it goes into every version Tick returns.
  explicit HybridClock(uint32_t server) : server_(server) {}

  HybridClock(const HybridClock&) = delete;
  HybridClock& operator=(const HybridClock&) = delete;

  // A version for a local write at wall-clock time `now_ms` (Unix ms; negative
  // values count as 0).
  Version Tick(int64_t now_ms);

  // Takes in a version seen from another server (or read back from disk).
  void Observe(const Version& remote);

  uint32_t server() const { return server_; }
  // The highest clock issued or observed so far (0 before the first).
  uint64_t last() const { return last_; }

  // The reading for `physical_ms` with logical part `logical` (< 2^16);
  // physical_ms is clamped to [0, 2^48).
  static uint64_t Compose(int64_t physical_ms, uint32_t logical);
  // The physical (Unix ms) part of a clock reading.
  static int64_t PhysicalMs(uint64_t clock) { return static_cast<int64_t>(clock >> kLogicalBits); }
  static uint32_t Logical(uint64_t clock) { return static_cast<uint32_t>(clock & kLogicalMask); }

  // Whether `version`'s physical time is at most `max_ahead_ms` ahead of
  // `now_ms`: what a receiver should check before Observe or storing a remote
  // version, so that one server with a wild clock cannot push every clock ahead.
  static bool IsPlausible(const Version& version, int64_t now_ms, int64_t max_ahead_ms);

 private:
  const uint32_t server_;
  uint64_t last_ = 0;
};

}  // namespace cb::store

#endif  // CLUSTER_BALANCE_SIDECAR_STORE_HYBRID_CLOCK_H_
