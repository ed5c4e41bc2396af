#include "sidecar/cache/replication.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "sidecar/store/record_codec.h"

namespace cb::cache {

void FlushMarkers::Note(const std::string& cache, const store::Version& version) {
  store::Version& flushed = flushed_at_[cache];
  flushed = std::max(flushed, version);
}

void FlushMarkers::Settle(const std::string& cache, store::Record& record) const {
  const auto found = flushed_at_.find(cache);
  if (found == flushed_at_.end() || !(record.version < found->second)) return;
  store::Record tombstone;
  tombstone.deleted = true;
  tombstone.version = found->second;
  record = std::move(tombstone);
}

Replicator::Replicator(const ClusterConfig& config, int self_index, store::RecordStore* store,
                       Ownership& ownership, PeerLink& link, store::HybridClock& clock,
                       AppliedRequests& applied, std::function<int64_t()> now,
                       CacheNodeStats& stats)
    : config_(config),
      self_index_(self_index),
      store_(store),
      ownership_(ownership),
      link_(link),
      clock_(clock),
      applied_(applied),
      now_(std::move(now)),
      stats_(stats) {}

void Replicator::Replicate(const std::string& cache, const std::string& key,
                           const store::Record& record, Done done,
                           const protocol::RequestId& request, const std::string& reply) {
  Send(cache, key, record, false, std::move(done), request, reply);
}

void Replicator::Flush(const std::string& cache, Done done) {
  store::Record marker;
  marker.deleted = true;
  marker.version = clock_.Tick(now_());
  flush_markers_.Note(cache, marker.version);
  if (Status flushed = store_->FlushCache(cache, marker.version); !flushed.ok()) {
    spdlog::error("store: flushing {}: {}", cache, flushed.message());
    done(false);
    return;
  }
  spdlog::info("cache {} flushed", cache);
  Send(cache, "", marker, true, std::move(done), {}, {});
}

void Replicator::Send(const std::string& cache, const std::string& key, const store::Record& record,
                      bool flush, Done done, const protocol::RequestId& request,
                      const std::string& reply) {
  const uint64_t id = next_id_++;
  const protocol::Replicate message{id,    cache,   key,  store::EncodeRecord(record),
                                    flush, request, reply};
  ServerSet replicas;
  bool closing = false;
  ownership_.TriadPeers().ForEach([&](int index) {
    if (index == self_index_) return;
    if (link_.Send(index, message)) {
      replicas.Add(index);
    } else {
      closing = true;
    }
  });
  if (replicas.empty() && !closing) {
    ++stats_.replicated;
    done(true);
    return;
  }
  ++stats_.writes_waiting;
  Waiting write{replicas, now_(), true, std::move(done)};
  if (replicas.empty()) {
    // Each replica's connection is closing: lost before the write left, as in
    // PeerLost, and its loss may be the first sign of a cut.
    AwaitQuorum(std::move(write));
    return;
  }
  waiting_[id] = std::move(write);
}

void Replicator::Receive(int peer, const protocol::Replicate& replicate) {
  bool ok = false;
  Result<store::Record> record = store::DecodeRecord(replicate.record);
  if (store_ == nullptr || config_.FindCache(replicate.cache) == nullptr) {
    spdlog::warn("replicated record for cache \"{}\" from index {} refused",
                 replicate.cache.substr(0, 64), peer);
  } else if (!record.ok() || record->version.is_null()) {
    spdlog::warn("malformed replicated record from index {}", peer);
  } else if (replicate.flush) {
    clock_.Observe(record->version);
    flush_markers_.Note(replicate.cache, record->version);
    Status flushed = store_->FlushCache(replicate.cache, record->version);
    if (!flushed.ok()) spdlog::error("store: {}", flushed.message());
    ok = flushed.ok();
  } else {
    clock_.Observe(record->version);
    // A write that a flush overtook becomes what the flush would have made of it
    // had it arrived first: the flush's tombstone, the same on every replica.
    flush_markers_.Settle(replicate.cache, *record);
    Result<bool> applied = store_->Apply(replicate.cache, replicate.key, *record);
    if (!applied.ok()) spdlog::error("store: {}", applied.status().message());
    ok = applied.ok();
    // Even when a newer record kept this one out: the write was made.
    if (ok) applied_.Remember(replicate.request, replicate.reply, now_());
  }
  link_.Send(peer, protocol::ReplicateAck{replicate.id, ok});
}

void Replicator::Receive(int peer, const protocol::ReplicateAck& ack) {
  const auto found = waiting_.find(ack.id);
  if (found == waiting_.end() || !found->second.replicas.Contains(peer)) return;
  if (!ack.ok) found->second.ok = false;
  found->second.replicas.Remove(peer);
  if (!found->second.replicas.empty()) return;
  Waiting finished = std::move(found->second);
  waiting_.erase(found);
  if (!ownership_.quorum()) {
    // The replicas that answered may all be on this server's side of a cut:
    // done only once a quorum is heard (or failed when the loss is settled).
    AwaitQuorum(std::move(finished));
    return;
  }
  Finish(finished, finished.ok);
}

void Replicator::Finish(Waiting& write, bool ok) {
  --stats_.writes_waiting;
  ++stats_.replicated;
  write.done(ok);
}

void Replicator::PeerLost(int peer) {
  std::vector<Waiting> finished;
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    it->second.replicas.Remove(peer);
    if (it->second.replicas.empty()) {
      finished.push_back(std::move(it->second));
      it = waiting_.erase(it);
    } else {
      ++it;
    }
  }
  if (finished.empty()) return;
  // The write is on every live triad server without it, if this server is on
  // the majority's side: that is known once a quorum is heard after the loss.
  const uint64_t mark = ownership_.Mark();
  for (Waiting& write : finished) {
    write.lost_mark = mark;
    confirming_.push_back(std::move(write));
  }
  ConfirmQuorum();
}

void Replicator::AwaitQuorum(Waiting write) {
  write.lost_mark = ownership_.Mark();
  confirming_.push_back(std::move(write));
  ConfirmQuorum();
}

void Replicator::ConfirmQuorum() {
  std::vector<Waiting> confirmed;
  std::erase_if(confirming_, [&](Waiting& write) {
    if (!ownership_.QuorumHeardSince(write.lost_mark)) return false;
    confirmed.push_back(std::move(write));
    return true;
  });
  for (Waiting& write : confirmed) Finish(write, write.ok);
}

void Replicator::QuorumLost() {
  std::vector<Waiting> failed = std::move(confirming_);
  confirming_.clear();
  if (!failed.empty()) {
    spdlog::warn(
        "store: {} writes whose replicas were lost are answered with an error: this "
        "server lost its quorum before it could confirm them",
        failed.size());
  }
  for (Waiting& write : failed) Finish(write, false);
}

void Replicator::FailAll() {
  std::map<uint64_t, Waiting> waiting = std::move(waiting_);
  waiting_.clear();
  std::vector<Waiting> confirming = std::move(confirming_);
  confirming_.clear();
  for (auto& [id, write] : waiting) write.done(false);
  for (Waiting& write : confirming) write.done(false);
}

int64_t Replicator::OldestWaitMs() const {
  int64_t oldest = 0;
  const int64_t now = now_();
  for (const auto& [id, write] : waiting_) oldest = std::max(oldest, now - write.started_unix_ms);
  for (const Waiting& write : confirming_) oldest = std::max(oldest, now - write.started_unix_ms);
  return oldest;
}

}  // namespace cb::cache
