// The writes a triad server applied recently, by request id, with the answer each
// got: so that a command retried after its owner was lost (doc/store.md) is
// answered as it was the first time instead of being applied twice. The owner
// remembers a write when it applies it, and every replica when the record
// arrives (protocol::Replicate carries the id and the answer), so the new owner
// knows whether the lost one got that far.
//
// Bounded: an entry is kept for `keep_for_ms` (the retry timeout and a margin:
// no retry of it can come later) and at most `max_entries` are kept; when more
// writes than that come within the time, the oldest are forgotten early
// (counted in forgotten_early(): a retry of one of them would be applied again).
//
// Thread-safety: none; the sidecar's io_context thread only.
#ifndef CLUSTER_BALANCE_SIDECAR_CACHE_APPLIED_REQUESTS_H_
#define CLUSTER_BALANCE_SIDECAR_CACHE_APPLIED_REQUESTS_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>

#include "sidecar/protocol/messages.h"

namespace cb::cache {

class AppliedRequests {
 public:
  AppliedRequests(int64_t keep_for_ms, std::size_t max_entries);
  AppliedRequests(const AppliedRequests&) = delete;
  AppliedRequests& operator=(const AppliedRequests&) = delete;

  // Remembers that `id` (not RequestId::none()) was applied and answered
  // `reply`, at `now_ms` (any clock that does not go back). A second call for
  // the same id keeps the first answer.
  void Remember(const protocol::RequestId& id, std::string reply, int64_t now_ms);

  // The answer of `id` if it was applied within keep_for_ms of `now_ms`;
  // nullptr otherwise. Valid until the next call of Remember or Forget.
  const std::string* Find(const protocol::RequestId& id, int64_t now_ms);

  // The write of `id` did not take effect after all (it could not be stored): a
  // retry must run it again.
  void Forget(const protocol::RequestId& id);

  std::size_t size() const { return replies_.size(); }
  uint64_t forgotten_early() const { return forgotten_early_; }

 private:
  struct Hash {
    std::size_t operator()(const protocol::RequestId& id) const;
  };
  struct Applied {
    protocol::RequestId id;
    int64_t at_ms = 0;
  };
  struct Reply {
    std::string text;
    int64_t at_ms = 0;  // tells this entry from an older one of a forgotten id
  };
  void Expire(int64_t now_ms);
  // Drops the oldest entry of order_, and its reply unless the id was forgotten
  // (and perhaps remembered again) since; returns whether a reply went.
  bool DropOldest();

  const int64_t keep_for_ms_;
  const std::size_t max_entries_;
  std::unordered_map<protocol::RequestId, Reply, Hash> replies_;
  std::deque<Applied> order_;  // oldest first
  uint64_t forgotten_early_ = 0;
};

}  // namespace cb::cache

#endif  // CLUSTER_BALANCE_SIDECAR_CACHE_APPLIED_REQUESTS_H_
