#include "sidecar/cache/catch_up.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <string_view>
#include <utility>

#include "sidecar/store/record_codec.h"

namespace cb::cache {
namespace {

// Buckets asked for at once from one peer: its replies queue at most this many
// pages (of page_bytes) on the connection, far below the connection's send-queue
// limit, whatever the size of the store.
constexpr int kBucketsInFlight = 2;
// What msgpack adds to a page per key and record (their length headers), with room.
constexpr std::size_t kPageEntryOverhead = 16;

}  // namespace

CatchUp::CatchUp(const ClusterConfig& config, store::RecordStore* store, PeerLink& link,
                 store::HybridClock& clock, const FlushMarkers& flush_markers,
                 std::function<int64_t()> now, std::size_t page_bytes, CacheNodeStats& stats,
                 PullFinished pull_finished)
    : config_(config),
      store_(store),
      link_(link),
      clock_(clock),
      flush_markers_(flush_markers),
      now_(std::move(now)),
      page_bytes_(page_bytes),
      stats_(stats),
      pull_finished_(std::move(pull_finished)) {}

bool CatchUp::StartPull(int peer) {
  int& outstanding = outstanding_[peer];
  int sent = 0;
  for (const CacheConfig& cache : config_.caches) {
    if (link_.Send(peer, protocol::DigestRequest{cache.name})) ++sent;
  }
  outstanding += sent;
  if (outstanding == 0) outstanding_.erase(peer);
  return sent > 0;
}

void CatchUp::PeerLost(int peer) {
  outstanding_.erase(peer);
  bucket_pulls_.erase(peer);
}

void CatchUp::FinishStep(int peer) {
  const auto found = outstanding_.find(peer);
  if (found == outstanding_.end()) return;
  if (--found->second > 0) return;
  outstanding_.erase(found);
  pull_finished_(peer);
}

void CatchUp::Receive(int peer, const protocol::DigestRequest& request) {
  protocol::DigestReply reply;
  reply.cache = request.cache;
  if (store_ != nullptr && config_.FindCache(request.cache) != nullptr) {
    const auto digests = store_->BucketDigests(request.cache);
    reply.digests.assign(digests.begin(), digests.end());
  }
  link_.Send(peer, reply);
}

void CatchUp::Receive(int peer, const protocol::DigestReply& reply) {
  if (store_ == nullptr || config_.FindCache(reply.cache) == nullptr ||
      reply.digests.size() != store::RecordStore::kBuckets) {
    FinishStep(peer);
    return;
  }
  const auto mine = store_->BucketDigests(reply.cache);
  int& outstanding = outstanding_[peer];
  BucketPulls& pulls = bucket_pulls_[peer];
  for (uint32_t bucket = 0; bucket < store::RecordStore::kBuckets; ++bucket) {
    if (reply.digests[bucket] != 0 && reply.digests[bucket] != mine[bucket]) {
      pulls.waiting.push_back(protocol::BucketRequest{reply.cache, bucket, false, ""});
      ++outstanding;
    }
  }
  AskForBuckets(peer);
  FinishStep(peer);
}

void CatchUp::AskForBuckets(int peer) {
  const auto found = bucket_pulls_.find(peer);
  if (found == bucket_pulls_.end()) return;
  BucketPulls& pulls = found->second;
  while (pulls.in_flight < kBucketsInFlight && !pulls.waiting.empty()) {
    // A failed send means the connection is closing; PeerLost drops the rest.
    if (!link_.Send(peer, pulls.waiting.front())) return;
    pulls.waiting.pop_front();
    ++pulls.in_flight;
  }
  if (pulls.in_flight == 0 && pulls.waiting.empty()) bucket_pulls_.erase(found);
}

void CatchUp::Receive(int peer, const protocol::BucketRequest& request) {
  protocol::BucketRecords out;
  out.cache = request.cache;
  out.bucket = request.bucket;
  if (store_ != nullptr && config_.FindCache(request.cache) != nullptr &&
      request.bucket < store::RecordStore::kBuckets) {
    const int64_t now = now_();
    // Half a frame at most: a page of several records always fits one, and a
    // lone record fits by the config's rule (an entry fits a frame).
    const std::size_t budget = std::min<std::size_t>(page_bytes_, config_.max_frame_bytes / 2);
    std::size_t bytes = 0;
    const auto add = [&](std::string_view key, const store::Record& record) {
      if (store_->IsSweepable(record, now)) return true;
      std::string encoded = store::EncodeRecord(record);
      const std::size_t size = key.size() + encoded.size() + kPageEntryOverhead;
      if (!out.keys.empty() && bytes + size > budget) {
        out.last = false;  // a full page: the puller asks for the rest
        return false;
      }
      out.keys.emplace_back(key);
      out.records.push_back(std::move(encoded));
      bytes += size;
      return true;
    };
    const Status listed =
        request.resume
            ? store_->ForEachInBucketAfter(request.cache, request.bucket, request.after, add)
            : store_->ForEachInBucket(request.cache, request.bucket, add);
    if (!listed.ok()) {
      spdlog::error("store: {}", listed.message());
      out.last = true;  // what was listed; the next anti-entropy pass brings the rest
    }
  }
  if (!link_.Send(peer, out) && !out.keys.empty()) {
    // Still refused (the connection is closing, or the page broke a limit): an
    // empty last page, so that a puller still connected does not wait for ever.
    spdlog::error("store: a page of bucket {} of cache \"{}\" could not be sent to index {}",
                  request.bucket, request.cache.substr(0, 64), peer);
    out.keys.clear();
    out.records.clear();
    out.last = true;
    link_.Send(peer, out);
  }
}

void CatchUp::Receive(int peer, const protocol::BucketRecords& records) {
  if (store_ != nullptr && config_.FindCache(records.cache) != nullptr &&
      records.keys.size() == records.records.size()) {
    std::vector<store::Record> decoded;
    std::vector<std::size_t> positions;  // of each decoded record in the message
    decoded.reserve(records.records.size());
    for (std::size_t i = 0; i < records.records.size(); ++i) {
      Result<store::Record> record = store::DecodeRecord(records.records[i]);
      if (!record.ok() || record->version.is_null()) continue;
      clock_.Observe(record->version);
      flush_markers_.Settle(records.cache, *record);
      decoded.push_back(std::move(record).value());
      positions.push_back(i);
    }
    std::vector<store::RecordWrite> writes;
    writes.reserve(decoded.size());
    for (std::size_t n = 0; n < decoded.size(); ++n) {
      writes.push_back({records.cache, records.keys[positions[n]], &decoded[n]});
    }
    if (Result<std::vector<bool>> applied = store_->ApplyBatch(writes); !applied.ok()) {
      spdlog::error("store: catching up: {}", applied.status().message());
    } else {
      stats_.records_pulled +=
          static_cast<uint64_t>(std::count(applied->begin(), applied->end(), true));
    }
  }
  const auto pulls = bucket_pulls_.find(peer);
  if (pulls == bucket_pulls_.end() || pulls->second.in_flight == 0) return;  // not asked for
  if (!records.last && !records.keys.empty()) {
    link_.Send(peer,
               protocol::BucketRequest{records.cache, records.bucket, true, records.keys.back()});
    return;
  }
  --pulls->second.in_flight;
  ++stats_.buckets_pulled;
  AskForBuckets(peer);
  FinishStep(peer);
}

}  // namespace cb::cache
