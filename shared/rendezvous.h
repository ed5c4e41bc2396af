// Rendezvous (highest-random-weight) hashing: who owns a cache key, and which
// server is a session's backup. Every nginx worker, httpd child and sidecar on every
// machine must compute the same answer from the same inputs, so the hash is pinned:
//
//   key_hash        = XXH3_64bits(key)                         (xxHash >= 0.8, seed 0)
//   server_salt(i)  = XXH3_64bits_withSeed("cluster-balance/rendezvous", 26, i)
//   score(key, i)   = fmix64(key_hash ^ server_salt(i))        (MurmurHash3's finalizer)
//
// The server with the highest score comes first. Scores of one key never tie:
// fmix64 is a bijection and the 64 salts are distinct (a test checks both), so the
// order is total. The key is hashed once per decision, which keeps a choice among
// 64 servers to a few dozen nanoseconds. rendezvous_test.cc pins known vectors:
// changing any of this is a protocol change that splits a running cluster.
//
// All functions are pure and thread-safe.
#ifndef CLUSTER_BALANCE_SHARED_RENDEZVOUS_H_
#define CLUSTER_BALANCE_SHARED_RENDEZVOUS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "shared/server_set.h"

namespace cb {

uint64_t RendezvousKeyHash(std::string_view key);

// Precondition: 0 <= server_index < kMaxServers.
uint64_t RendezvousScore(uint64_t key_hash, int server_index);

// The member of `eligible` with the highest score; -1 when `eligible` is empty.
int RendezvousFirst(uint64_t key_hash, ServerSet eligible);

// The members of `eligible`, highest score first.
struct RendezvousOrder {
  std::array<uint8_t, kMaxServers> indices{};
  std::size_t count = 0;
};
RendezvousOrder RendezvousRank(uint64_t key_hash, ServerSet eligible);

// The owner of a cache key: the rendezvous choice among the live triad servers
// (indices 0..2 in `live`); -1 when no triad server is live.
int OwnerAmongLiveTriad(std::string_view key, ServerSet live);

}  // namespace cb

#endif  // CLUSTER_BALANCE_SHARED_RENDEZVOUS_H_
