#include "sidecar/transport/backoff.h"

#include <algorithm>
#include <random>

namespace cb::transport {

uint64_t Backoff::RandomSeed() {
  std::random_device device;
  return (uint64_t{device()} << 32) ^ uint64_t { device() };
}

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds cap, uint64_t seed)
    : initial_(std::max(initial, std::chrono::milliseconds(1))),
      cap_(std::max(cap, initial_)),
      state_(seed) {}

std::chrono::milliseconds Backoff::ceiling() const {
  // initial << attempt_ without overflow: past the cap once initial > cap >> attempt_.
  if (attempt_ >= 62) return cap_;
  const int64_t initial = initial_.count();
  if (initial > (cap_.count() >> attempt_)) return cap_;
  return std::chrono::milliseconds(initial << attempt_);
}

std::chrono::milliseconds Backoff::Next() {
  const int64_t ceiling_ms = ceiling().count();
  const int64_t floor_ms = std::max<int64_t>(ceiling_ms / 2, 1);       // never 0: no spinning
  const auto span = static_cast<uint64_t>(ceiling_ms - floor_ms) + 1;  // [floor, ceiling]
  if (attempt_ < UINT32_MAX) ++attempt_;
  return std::chrono::milliseconds(floor_ms + static_cast<int64_t>(NextRandom() % span));
}

uint64_t Backoff::NextRandom() {
  // splitmix64 (Steele, Lea, Flood 2014).
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace cb::transport
