// A set of server indices 0..63 as one 64-bit word: the eligible servers of a
// routing or ownership decision. A value type; thread-safe as any integer.
#ifndef CLUSTER_BALANCE_SHARED_SERVER_SET_H_
#define CLUSTER_BALANCE_SHARED_SERVER_SET_H_

#include <bit>
#include <cstdint>

#include "shared/route_codec.h"

namespace cb {

// The triad is the cluster file's first three servers: each holds every stored
// record, and sessions and keys are owned among them (DESIGN.md "Triad").
inline constexpr int kTriadSize = 3;

class ServerSet {
 public:
  constexpr ServerSet() = default;
  static constexpr ServerSet FromBits(uint64_t bits) { return ServerSet(bits); }
  // Indices 0..count-1 (count is clamped to 0..64).
  static constexpr ServerSet FirstN(int count) {
    if (count <= 0) return ServerSet();
    if (count >= kMaxServers) return ServerSet(~uint64_t{0});
    return ServerSet((uint64_t{1} << count) - 1);
  }
  // The triad: indices 0 .. kTriadSize-1.
  static constexpr ServerSet Triad() { return FirstN(kTriadSize); }

  // Indices outside 0..63 are ignored by Add/Remove and never contained.
  constexpr void Add(int index) {
    if (InRange(index)) bits_ |= Bit(index);
  }
  constexpr void Remove(int index) {
    if (InRange(index)) bits_ &= ~Bit(index);
  }
  constexpr bool Contains(int index) const { return InRange(index) && (bits_ & Bit(index)) != 0; }
  constexpr bool empty() const { return bits_ == 0; }
  constexpr int size() const { return std::popcount(bits_); }
  constexpr uint64_t bits() const { return bits_; }
  // The lowest index in the set; -1 when empty.
  constexpr int First() const { return bits_ == 0 ? -1 : std::countr_zero(bits_); }

  constexpr ServerSet operator&(ServerSet other) const { return ServerSet(bits_ & other.bits_); }
  constexpr ServerSet operator|(ServerSet other) const { return ServerSet(bits_ | other.bits_); }
  constexpr ServerSet Without(ServerSet other) const { return ServerSet(bits_ & ~other.bits_); }
  constexpr bool operator==(const ServerSet&) const = default;

  // Visits indices in increasing order.
  template <typename Visitor>
  constexpr void ForEach(Visitor&& visit) const {
    for (uint64_t rest = bits_; rest != 0; rest &= rest - 1) visit(std::countr_zero(rest));
  }

 private:
  constexpr explicit ServerSet(uint64_t bits) : bits_(bits) {}
  static constexpr bool InRange(int index) { return index >= 0 && index < kMaxServers; }
  static constexpr uint64_t Bit(int index) { return uint64_t{1} << index; }

  uint64_t bits_ = 0;
};

}  // namespace cb

#endif  // CLUSTER_BALANCE_SHARED_SERVER_SET_H_
