// Capped exponential backoff with jitter, for reconnecting to a peer.
//
// The n-th delay (n = 0, 1, ...) is drawn from [ceiling/2, ceiling] where
// ceiling = min(cap, initial * 2^n): "equal jitter" (half fixed, half random),
// never below 1 ms.
// Equal rather than full jitter (which draws from [0, ceiling]) because a
// reconnecting sidecar must never spin: full jitter can draw a delay near zero at
// any step and hammer a peer that is down, while equal jitter keeps a floor that
// grows with every failure yet still spreads the reconnects of many servers that
// lost the same peer at the same moment. A side effect the tests use: the delays
// never decrease until Reset() or until the cap is reached.
//
// Deterministic for a given seed (the generator is splitmix64, the same on every
// platform), so tests can fix it; the daemon seeds from std::random_device.
//
// Thread-safety: not thread-safe (one per dialer); a plain value otherwise.
#ifndef CLUSTER_BALANCE_SIDECAR_TRANSPORT_BACKOFF_H_
#define CLUSTER_BALANCE_SIDECAR_TRANSPORT_BACKOFF_H_

#include <chrono>
#include <cstdint>

namespace cb::transport {

class Backoff {
 public:
  // A seed from std::random_device.
  static uint64_t RandomSeed();

  // `initial` below 1 ms is raised to 1 ms; `cap` below `initial` is raised to it.
  explicit Backoff(std::chrono::milliseconds initial = std::chrono::milliseconds(100),
                   std::chrono::milliseconds cap = std::chrono::seconds(5),
                   uint64_t seed = RandomSeed());
  Backoff(const Backoff&) = delete;
  Backoff& operator=(const Backoff&) = delete;

  // The delay before the next attempt; every call moves one step up (until the cap).
  std::chrono::milliseconds Next();

  // Back to the first step (after a connection that proved healthy).
  void Reset() { attempt_ = 0; }

  // The upper bound of what the next Next() returns.
  std::chrono::milliseconds ceiling() const;
  // How many Next() calls since construction or the last Reset().
  uint32_t attempt() const { return attempt_; }
  std::chrono::milliseconds initial() const { return initial_; }
  std::chrono::milliseconds cap() const { return cap_; }

 private:
  uint64_t NextRandom();

  std::chrono::milliseconds initial_;
  std::chrono::milliseconds cap_;
  uint64_t state_;
  uint32_t attempt_ = 0;
};

}  // namespace cb::transport

#endif  // CLUSTER_BALANCE_SIDECAR_TRANSPORT_BACKOFF_H_
