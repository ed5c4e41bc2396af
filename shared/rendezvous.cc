#include "shared/rendezvous.h"

#include <xxhash.h>

#include <algorithm>

namespace cb {
namespace {

constexpr std::string_view kSaltInput = "cluster-balance/rendezvous";

uint64_t Fmix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

std::array<uint64_t, kMaxServers> ComputeSalts() {
  std::array<uint64_t, kMaxServers> salts{};
  for (int i = 0; i < kMaxServers; ++i) {
    salts[static_cast<std::size_t>(i)] =
        XXH3_64bits_withSeed(kSaltInput.data(), kSaltInput.size(), static_cast<uint64_t>(i));
  }
  return salts;
}

const std::array<uint64_t, kMaxServers>& Salts() {
  static const std::array<uint64_t, kMaxServers> salts = ComputeSalts();
  return salts;
}

}  // namespace

uint64_t RendezvousKeyHash(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

uint64_t RendezvousScore(uint64_t key_hash, int server_index) {
  return Fmix64(key_hash ^ Salts()[static_cast<std::size_t>(server_index)]);
}

int RendezvousFirst(uint64_t key_hash, ServerSet eligible) {
  int best = -1;
  uint64_t best_score = 0;
  eligible.ForEach([&](int index) {
    const uint64_t score = RendezvousScore(key_hash, index);
    if (best < 0 || score > best_score) {
      best = index;
      best_score = score;
    }
  });
  return best;
}

RendezvousOrder RendezvousRank(uint64_t key_hash, ServerSet eligible) {
  std::array<uint64_t, kMaxServers> scores{};
  RendezvousOrder order;
  eligible.ForEach([&](int index) {
    scores[static_cast<std::size_t>(index)] = RendezvousScore(key_hash, index);
    order.indices[order.count++] = static_cast<uint8_t>(index);
  });
  std::sort(order.indices.begin(), order.indices.begin() + static_cast<std::ptrdiff_t>(order.count),
            [&](uint8_t a, uint8_t b) { return scores[a] > scores[b]; });
  return order;
}

int OwnerAmongLiveTriad(std::string_view key, ServerSet live) {
  return RendezvousFirst(RendezvousKeyHash(key), live & ServerSet::Triad());
}

}  // namespace cb
