#include "sidecar/cache/key_owner.h"

#include <spdlog/spdlog.h>

#include <memory>
#include <optional>
#include <utility>

#include "sidecar/memcache/commands.h"
#include "sidecar/store/record_codec.h"

namespace cb::cache {
namespace {

// How far apart the triad servers' clocks may be (NTP keeps them within
// milliseconds): see TriadPeerLost.
constexpr int64_t kClockSkewMs = 1000;

memcache::CacheLimits LimitsOf(const ClusterConfig& config, std::string_view cache) {
  memcache::CacheLimits limits;
  if (const CacheConfig* found = config.FindCache(cache)) {
    limits.max_entry_bytes = found->max_entry_bytes;
  }
  return limits;
}

}  // namespace

KeyOwner::KeyOwner(const ClusterConfig& config, int self_index, store::RecordStore* store,
                   Replicator& replicator, store::HybridClock& clock, AppliedRequests& applied,
                   std::function<int64_t()> now, CacheNodeStats& stats)
    : config_(config),
      self_index_(self_index),
      store_(store),
      replicator_(replicator),
      clock_(clock),
      applied_(applied),
      now_(std::move(now)),
      stats_(stats) {}

void KeyOwner::TriadPeerLost() {
  if (store_ == nullptr) return;
  // This server may now own keys of the lost one, whose last records may have
  // reached one replica and not this one. Writing above any version the lost
  // server can have stamped (its clock within kClockSkewMs of this one) keeps
  // them from winning over what is written here from now on.
  clock_.Observe(store::Version{
      store::HybridClock::Compose(now_() + kClockSkewMs, store::HybridClock::kLogicalMask),
      static_cast<uint32_t>(self_index_)});
}

void KeyOwner::Run(const protocol::CacheOp& op, Done done) {
  using memcache::Command;
  protocol::CacheOpReply reply;
  reply.id = op.id;
  const Command command = op.key_command.command;
  if (static_cast<uint32_t>(command) > static_cast<uint32_t>(Command::kQuit)) {
    reply.reply = "ERROR\r\n";
    done(reply);
    return;
  }
  if (command == Command::kFlushAll) {
    replicator_.Flush(op.cache, [done, reply](bool ok) mutable {
      reply.reply = ok ? "OK\r\n" : memcache::ServerErrorReply("a triad server could not flush");
      done(reply);
    });
    return;
  }
  const int64_t now = now_();
  if (const std::string* answered = applied_.Find(op.request, now)) {
    ++stats_.answered_again;
    AnswerAgain(op, *answered, std::move(done));
    return;
  }
  Result<std::optional<store::Record>> current = store_->Get(op.cache, op.key);
  if (!current.ok()) {
    spdlog::error("store: {}", current.status().message());
    ++stats_.failed;
    reply.reply = memcache::ServerErrorReply("cannot read the record");
    done(reply);
    return;
  }
  memcache::Request request;
  static_cast<memcache::KeyCommand&>(request) = op.key_command;
  request.keys = {op.key};
  request.bytes = op.key_command.data.size();
  const memcache::Outcome outcome =
      memcache::Execute(request, *current, now, LimitsOf(config_, op.cache));
  reply.reply = outcome.reply;

  if (memcache::IsRead(command)) {
    ++stats_.gets;
    CacheCounters& counters = stats_.per_cache[op.cache];
    if (outcome.found) {
      ++stats_.hits;
      ++counters.hits;
      const store::Record& record = **current;
      reply.found = true;
      if (record.version.clock == op.known_clock && record.version.server == op.known_server) {
        reply.unchanged = true;
      } else {
        reply.record = store::EncodeRecord(record);
      }
      RefreshIdle(op.cache, op.key, record, now);
    } else {
      ++stats_.misses;
      ++counters.misses;
    }
    done(reply);
    return;
  }
  if (!outcome.write) {
    done(reply);
    return;
  }
  store::Record write = *outcome.write;
  ApplyCachePolicy(op.cache, command, write, now);
  // A restarted owner, or one whose clock is behind, must still write above what
  // its store holds.
  if (*current) clock_.Observe((*current)->version);
  write.version = clock_.Tick(now);
  ++stats_.writes;
  if (outcome.found) {  // gat, gats: the touched record is shown
    reply.found = true;
    reply.record = store::EncodeRecord(write);
  }
  applied_.Remember(op.request, reply.reply, now);
  // The replicas sync while this server does: the answer waits for the slowest
  // disk, not for the sum of two. It goes out once both sides are done.
  struct Join {
    bool local_done = false, local_ok = false, replicas_done = false, replicas_ok = false;
  };
  auto join = std::make_shared<Join>();
  auto finish = [this, join, done, reply, request = op.request]() mutable {
    if (!join->local_done || !join->replicas_done) return;
    if (!join->local_ok || !join->replicas_ok) {
      ++stats_.failed;
      applied_.Forget(request);  // a retry must not be told it worked
      reply = protocol::CacheOpReply{
          reply.id,
          memcache::ServerErrorReply(join->local_ok ? "a triad server could not store it"
                                                    : "cannot store the record"),
          false, false, ""};
    }
    done(reply);
  };
  replicator_.Replicate(
      op.cache, op.key, write,
      [join, finish](bool ok) mutable {
        join->replicas_done = true;
        join->replicas_ok = ok;
        finish();
      },
      op.request, reply.reply);
  Result<bool> applied = store_->Apply(op.cache, op.key, write);
  if (!applied.ok()) spdlog::error("store: {}", applied.status().message());
  join->local_done = true;
  join->local_ok = applied.ok() && *applied;
  finish();
}

void KeyOwner::AnswerAgain(const protocol::CacheOp& op, const std::string& reply, Done done) {
  protocol::CacheOpReply answer{op.id, reply, false, false, ""};
  Result<std::optional<store::Record>> current = store_->Get(op.cache, op.key);
  if (!current.ok() || !*current) {
    // Swept since (an expired record, a tombstone): nothing left to make sure of.
    done(answer);
    return;
  }
  // The lost owner may have died before the record reached every replica.
  replicator_.Replicate(
      op.cache, op.key, **current,
      [this, answer, done = std::move(done)](bool ok) mutable {
        if (!ok) {
          ++stats_.failed;
          answer.reply = memcache::ServerErrorReply("a triad server could not store it");
        }
        done(answer);
      },
      op.request, reply);
}

void KeyOwner::ApplyCachePolicy(std::string_view cache, memcache::Command command,
                                store::Record& record, int64_t now) const {
  const CacheConfig* config = config_.FindCache(cache);
  if (config == nullptr || record.deleted) return;
  if (config->idle_timeout.count() > 0 &&
      (command == memcache::Command::kIncr || command == memcache::Command::kDecr ||
       command == memcache::Command::kAppend || command == memcache::Command::kPrepend)) {
    // These keep the record's old expiry; a write is a use: the idle time starts over.
    record.expiry_unix_ms = now + config->idle_timeout.count();
    return;
  }
  const int64_t limit =
      config->idle_timeout.count() > 0 ? config->idle_timeout.count() : config->ttl.count();
  if (limit <= 0) return;
  // The cache's timeout caps what the client asked for (0 = never).
  if (record.expiry_unix_ms == 0 || record.expiry_unix_ms > now + limit) {
    record.expiry_unix_ms = now + limit;
  }
}

void KeyOwner::RefreshIdle(const std::string& cache, const std::string& key,
                           const store::Record& record, int64_t now) {
  const CacheConfig* config = config_.FindCache(cache);
  if (config == nullptr || config->idle_timeout.count() <= 0 || record.expiry_unix_ms == 0) return;
  const int64_t idle = config->idle_timeout.count();
  // Refreshing at most every half timeout keeps reads from becoming writes; the
  // record then lives between half and all of the idle timeout after its last use.
  if (record.expiry_unix_ms - now > idle / 2) return;
  store::Record refreshed = record;
  refreshed.expiry_unix_ms = now + idle;
  clock_.Observe(record.version);
  refreshed.version = clock_.Tick(now);
  if (Result<bool> applied = store_->Apply(cache, key, refreshed); !applied.ok()) {
    spdlog::warn("store: refreshing {}:{}: {}", cache, key, applied.status().message());
    return;
  }
  replicator_.Replicate(cache, key, refreshed, [](bool) {});
}

}  // namespace cb::cache
