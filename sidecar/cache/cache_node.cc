#include "sidecar/cache/cache_node.h"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <utility>

#include "sidecar/memcache/commands.h"
#include "sidecar/memcache/info_replies.h"
#include "sidecar/store/record_codec.h"

namespace cb::cache {
namespace {

constexpr int64_t kThirtyDaysSeconds = 30 * 24 * 3600;
constexpr int64_t kAppliedMarginMs = 1000;
using memcache::ServerErrorReply;

}  // namespace

CacheNode::CacheNode(boost::asio::io_context& io, const ClusterConfig& config,
                     CacheNodeOptions options, PeerLink& link, Clock now)
    : io_(io),
      config_(config),
      options_(options),
      link_(link),
      now_(std::move(now)),
      clock_(static_cast<uint32_t>(options.self_index)),
      ownership_(options.self_index, options.store != nullptr,
                 static_cast<int>(config.servers.size())),
      // No retry comes later than retry_timeout after its first try; the margin
      // covers the timers' own lateness.
      applied_(config.retry_timeout.count() + kAppliedMarginMs, options.max_applied_requests),
      replicator_(config, options.self_index, options.store, ownership_, link, clock_, applied_,
                  now_, stats_),
      catch_up_(config, options.store, link, clock_, replicator_.flush_markers(), now_,
                options.pull_page_bytes, stats_, [this](int peer) { OnPullFinished(peer); }),
      key_owner_(config, options.self_index, options.store, replicator_, clock_, applied_, now_,
                 stats_),
      spoke_cache_(options.spoke_cache_bytes),
      alone_timer_(io),
      sweep_timer_(io),
      quorum_timer_(io) {}

CacheNode::~CacheNode() { Stop(); }

void CacheNode::Start() {
  started_unix_ms_ = static_cast<uint64_t>(now_());
  if (!is_triad()) return;
  if (config_.servers.size() == 1) {
    BecomeReady("the only server");
  } else {
    ArmAloneTimer();
  }
  OnSweepTimer();
}

void CacheNode::ArmAloneTimer() {
  // A live triad peer dials a restarted one again within reconnect_cap() (unless
  // a connect attempt hangs on a lossy network) and says whether it is ready in
  // its first heartbeat; a peer not heard of within that and the heartbeat
  // timeout is taken for down, and this server carries on alone with what it
  // has. If that was wrong, the peer's records still come before this server
  // owns keys beside it (synced()).
  alone_timer_.expires_after(config_.alone_wait());
  alone_timer_.async_wait([this](const boost::system::error_code& error) {
    if (error || stopped_ || ownership_.ready() || ownership_.awaiting_pulls()) return;
    bool pulling = false;
    ownership_.ReadyPeers().ForEach([&](int peer) { pulling = StartPull(peer, true) || pulling; });
    if (!pulling) BecomeReady("no ready triad server to catch up from");
  });
}

void CacheNode::BecomeReady(const char* why) {
  if (!ownership_.BecomeReady()) return;
  spdlog::info("store ready: {} ({} buckets, {} records pulled)", why, stats_.buckets_pulled,
               stats_.records_pulled);
  link_.AnnounceStoreState();
}

void CacheNode::Stop() {
  if (stopped_) return;
  stopped_ = true;
  alone_timer_.cancel();
  sweep_timer_.cancel();
  quorum_timer_.cancel();
  for (const auto& timer : delayed_flushes_) timer->cancel();
  delayed_flushes_.clear();
  std::map<uint64_t, Forwarded> forwarded = std::move(forwarded_);
  for (auto& [id, pending] : forwarded) {
    pending.done(
        protocol::CacheOpReply{id, ServerErrorReply("sidecar stopping"), false, false, ""});
  }
  replicator_.FailAll();
  std::map<uint64_t, PendingRetry> retries = std::move(retries_);
  for (auto& [id, pending] : retries) {
    pending.timer->cancel();
    pending.done(protocol::CacheOpReply{pending.op.id, ServerErrorReply("sidecar stopping"), false,
                                        false, ""});
  }
}

void CacheNode::Handle(memcache::Request request, Done done) {
  using memcache::Command;
  if (stopped_) {
    done(ServerErrorReply("sidecar stopping"));
    return;
  }
  const auto is_cache = [this](std::string_view name) {
    return config_.FindCache(name) != nullptr;
  };
  if (memcache::IsInfoCommand(request.command)) {
    done(memcache::InfoReply(request, [this] { return ServerStats(); }));
    return;
  }
  switch (request.command) {
    case Command::kQuit:
      done("");
      return;
    case Command::kFlushAll: {
      if (!is_cache(request.cache)) {
        done(request.noreply ? "" : "CLIENT_ERROR no such cache\r\n");
        return;
      }
      int64_t delay_s = request.delay.value_or(0);
      if (delay_s > kThirtyDaysSeconds) delay_s -= now_() / 1000;  // an absolute unix time
      if (delay_s <= 0) {
        const bool noreply = request.noreply;
        Flush(request.cache, [done, noreply](std::string reply) {
          done(noreply ? std::string() : std::move(reply));
        });
        return;
      }
      // memcached answers a delayed flush at once.
      auto timer = std::make_shared<boost::asio::steady_timer>(io_, std::chrono::seconds(delay_s));
      delayed_flushes_.push_back(timer);  // Stop() cancels it: the node may be gone by then
      timer->async_wait([this, timer, cache = request.cache](const boost::system::error_code& e) {
        if (e || stopped_) return;
        std::erase(delayed_flushes_, timer);
        Flush(cache, [](const std::string&) {});
      });
      done(request.noreply ? "" : "OK\r\n");
      return;
    }
    default:
      break;
  }

  if (memcache::IsRetrieval(request.command)) {
    struct Gather {
      std::vector<std::string> keys;
      std::vector<std::optional<store::Record>> records;
      std::string error;
      std::size_t remaining = 0;
      bool with_cas = false;
      bool more_keys = false;
      Done done;
    };
    auto gather = std::make_shared<Gather>();
    gather->keys = std::move(request.keys);
    gather->records.resize(gather->keys.size());
    gather->remaining = gather->keys.size();
    gather->with_cas = request.command == Command::kGets || request.command == Command::kGats;
    gather->more_keys = request.more_keys;
    gather->done = std::move(done);
    if (gather->remaining == 0) {
      gather->done(memcache::ValueLines({}, gather->with_cas, gather->more_keys));
      return;
    }
    for (std::size_t i = 0; i < gather->keys.size(); ++i) {
      const memcache::KeyTarget target = memcache::SplitKey(gather->keys[i], is_cache);
      protocol::CacheOp op;
      op.cache = std::string(target.cache);
      op.key = std::string(target.key);
      op.key_command = request;  // the request's key command, the same for each key
      Run(std::move(op), [gather, i](const protocol::CacheOpReply& reply) {
        if (reply.reply.starts_with("SERVER_ERROR")) {
          gather->error = reply.reply;
        } else if (reply.found) {
          Result<store::Record> record = store::DecodeRecord(reply.record);
          if (record.ok()) gather->records[i] = std::move(record).value();
        }
        if (--gather->remaining > 0) return;
        if (!gather->error.empty()) {
          gather->done(gather->error);
          return;
        }
        std::vector<memcache::ValueHit> hits;
        for (std::size_t k = 0; k < gather->keys.size(); ++k) {
          hits.push_back({gather->keys[k], gather->records[k] ? &*gather->records[k] : nullptr});
        }
        gather->done(memcache::ValueLines(hits, gather->with_cas, gather->more_keys));
      });
    }
    return;
  }

  // A key-level command: exactly one key.
  if (request.keys.size() != 1) {
    done("ERROR\r\n");
    return;
  }
  const memcache::KeyTarget target = memcache::SplitKey(request.keys[0], is_cache);
  protocol::CacheOp op;
  op.cache = std::string(target.cache);
  op.key = std::string(target.key);
  const bool noreply = request.noreply;
  op.key_command = std::move(request);  // the request's key command
  op.request = protocol::RequestId{static_cast<uint32_t>(options_.self_index),
                                   options_.self_incarnation, next_request_++};
  Run(std::move(op), [done = std::move(done), noreply](const protocol::CacheOpReply& reply) {
    done(noreply ? std::string() : reply.reply);
  });
}

void CacheNode::Run(protocol::CacheOp op, OpDone done, int64_t deadline) {
  if (deadline == 0) deadline = now_() + config_.retry_timeout.count();
  const int owner = ownership_.OwnerOf(op.cache, op.key);
  if (owner < 0) {
    // Transient when a triad server has just returned or caught up; permanent
    // (an error at the deadline) when the whole triad is down.
    RetryLater(std::move(op), std::move(done), deadline);
    return;
  }
  if (owner == options_.self_index) {
    if (owning()) {
      key_owner_.Run(op, std::move(done));
    } else {
      RetryLater(std::move(op), std::move(done), deadline);
    }
    return;
  }
  op.known_clock = 0;
  op.known_server = 0;
  const memcache::Command command = op.key_command.command;
  std::optional<store::Record> known;
  if (!is_triad() && memcache::IsRead(command)) {
    if (const store::Record* cached = spoke_cache_.Find(op.cache, op.key)) {
      known = *cached;
      op.known_clock = cached->version.clock;
      op.known_server = cached->version.server;
    }
  }
  op.id = next_id_++;
  if (!link_.Send(owner, op)) {
    // Its connection is closing: the owner is being lost. Ask the next one.
    ++stats_.retried;
    RetryLater(std::move(op), std::move(done), deadline);
    return;
  }
  const uint64_t id = op.id;
  ++stats_.forwarded;
  forwarded_[id] = Forwarded{
      owner, [this, done = std::move(done), known = std::move(known), command, retry_op = op,
              deadline](const protocol::CacheOpReply& reply) {
        if (reply.retry) {
          RetryLater(retry_op, done, deadline);
          return;
        }
        done(is_triad()
                 ? reply
                 : spoke_cache_.OnOwnerReply(retry_op.cache, retry_op.key, command, known, reply));
      }};
}

void CacheNode::RetryLater(protocol::CacheOp op, OpDone done, int64_t deadline) {
  if (stopped_ || now_() >= deadline) {
    ++stats_.failed;
    done(protocol::CacheOpReply{op.id, ServerErrorReply(NoOwnerReason()), false, false, ""});
    return;
  }
  const uint64_t id = next_id_++;
  auto timer = std::make_shared<boost::asio::steady_timer>(io_, std::chrono::milliseconds(20));
  retries_[id] = PendingRetry{std::move(op), std::move(done), deadline, timer};
  timer->async_wait([this, id](const boost::system::error_code& error) {
    if (error || stopped_) return;
    const auto found = retries_.find(id);
    if (found == retries_.end()) return;
    PendingRetry retry = std::move(found->second);
    retries_.erase(found);
    Run(std::move(retry.op), std::move(retry.done), retry.deadline);
  });
}

void CacheNode::Flush(const std::string& cache, Done done) {
  spoke_cache_.ForgetCache(cache);
  // Only a triad server in quorum flushes its own store; a cut-off one asks the
  // owners it may still reach, and answers their error when there are none.
  if (is_triad() && ownership_.ready() && ownership_.quorum()) {
    replicator_.Flush(cache, [done](bool ok) {
      done(ok ? "OK\r\n" : ServerErrorReply("a triad server could not flush"));
    });
    return;
  }
  protocol::CacheOp op;
  op.cache = cache;
  op.key_command.command = memcache::Command::kFlushAll;
  Run(std::move(op), [done](const protocol::CacheOpReply& reply) { done(reply.reply); });
}

std::string CacheNode::NoOwnerReason() const {
  if (is_triad() && !ownership_.quorum()) {
    return "cut off from the cluster: this triad server reaches " +
           std::to_string(ownership_.voters_reached()) + " of the " +
           std::to_string(ownership_.voters()) +
           " servers of the cluster file that count and serves no key until it reaches more "
           "than half";
  }
  return ReadyTriad().empty() ? "no triad server is ready" : "the key has no owner yet; try again";
}

void CacheNode::NoteQuorumChange(bool had_quorum) {
  if (!is_triad() || had_quorum == ownership_.quorum()) return;
  if (had_quorum) {
    // When a triad peer goes, what the spokes last said of the triad servers
    // they reach is stale until their next heartbeat (sent at once for a closed
    // connection, within a timeout for a silent one), and meanwhile they count
    // for no side. Only a loss that outlasts that is a cut: then the writes that
    // wait for the quorum fail, and the operator hears of it.
    quorum_timer_.expires_after(config_.heartbeat_timeout);
    quorum_timer_.async_wait([this](const boost::system::error_code& error) {
      if (error || stopped_ || ownership_.quorum()) return;
      quorum_lost_ = true;
      spdlog::warn(
          "store: cut off: this triad server reaches {} of the {} servers of the cluster file "
          "that count; it serves no key (requests get an error) until it reaches more than half",
          ownership_.voters_reached(), ownership_.voters());
      replicator_.QuorumLost();
    });
    return;
  }
  quorum_timer_.cancel();
  if (!quorum_lost_) return;
  quorum_lost_ = false;
  spdlog::info(
      "store: quorum again: this triad server reaches {} of the {} servers of the "
      "cluster file that count; it owns keys once it has pulled from the triad servers it reaches",
      ownership_.voters_reached(), ownership_.voters());
}

void CacheNode::OnPeerUp(int index) {
  // The pull from a triad peer starts with its first heartbeat, which says whether
  // it is ready (whether its data can make this server ready).
  const bool had_quorum = ownership_.quorum();
  const uint64_t counted_before = ready_seen();
  const uint64_t vote_before = ownership_.QuorumVote();
  ownership_.PeerConnected(index);
  NoteQuorumChange(had_quorum);
  // A spoke reached may complete the quorum: the others count this server at
  // once. The triad servers hear at once whom a spoke votes for.
  if (ready_seen() != counted_before || ownership_.QuorumVote() != vote_before) {
    link_.AnnounceStoreState();
  }
}

void CacheNode::OnPeerDown(int index) {
  if (index >= 0 && index < 3) key_owner_.TriadPeerLost();
  const bool had_quorum = ownership_.quorum();
  const uint64_t counted_before = ready_seen();
  const uint64_t vote_before = ownership_.QuorumVote();
  const bool catch_up_again = ownership_.PeerLost(index);
  NoteQuorumChange(had_quorum);
  std::vector<std::pair<uint64_t, Forwarded>> lost;
  for (auto it = forwarded_.begin(); it != forwarded_.end();) {
    if (it->second.owner == index) {
      lost.emplace_back(it->first, std::move(it->second));
      it = forwarded_.erase(it);
    } else {
      ++it;
    }
  }
  catch_up_.PeerLost(index);
  if (catch_up_again) {
    // A pull cut short proves nothing: pull again from the ready triad servers
    // still here, or, with none, wait out the timeout as at the start.
    ownership_.ReadyPeers().ForEach([&](int peer) { StartPull(peer, true); });
    if (!ownership_.awaiting_pulls()) ArmAloneTimer();
  }
  // Its going may leave this server synced with every ready peer still here.
  if (ready_seen() != counted_before || ownership_.QuorumVote() != vote_before) {
    link_.AnnounceStoreState();
  }
  // A server that dies while we wait is no longer live: the write is on every
  // live triad server without it (once a quorum is heard: replication.h).
  replicator_.PeerLost(index);
  if (quorum_lost_) replicator_.QuorumLost();
  // Asked again of the new owner (the forwarding's own answer handling retries).
  for (auto& [id, pending] : lost) {
    ++stats_.retried;
    protocol::CacheOpReply retry{
        id, ServerErrorReply("the key's owner was lost before it answered"), false, false, ""};
    retry.retry = true;
    pending.done(retry);
  }
}

void CacheNode::StampHeartbeat(protocol::Heartbeat& heartbeat) const {
  ownership_.Stamp(heartbeat);
}

void CacheNode::OnPeerStoreState(int index, const protocol::Heartbeat& heartbeat) {
  const bool had_quorum = ownership_.quorum();
  const uint64_t counted_before = ready_seen();
  const uint64_t vote_before = ownership_.QuorumVote();
  ownership_.Heard(index);
  const Ownership::Pull pull = ownership_.OnHeartbeat(index, heartbeat, catch_up_.pulling(index));
  // A spoke's heartbeat says whom it votes for: it may make or break the quorum.
  NoteQuorumChange(had_quorum);
  replicator_.ConfirmQuorum();
  if (pull.start) StartPull(index, pull.counts);
  // Tell it at once that we count it ready (it owns keys only after that), and
  // the triad whom this spoke now votes for.
  if (ready_seen() != counted_before || ownership_.QuorumVote() != vote_before) {
    link_.AnnounceStoreState();
  }
}

void CacheNode::OnPeerMessage(int index, const protocol::Message& message) {
  if (stopped_) return;
  std::visit(
      [&](const auto& body) {
        // Every store message has its Receive: a new one without does not compile.
        if constexpr (protocol::kIsStoreMessage<std::decay_t<decltype(body)>>) Receive(index, body);
      },
      message);
}

void CacheNode::Receive(int peer, const protocol::CacheOp& op) {
  if (!owning() || ownership_.OwnerOf(op.cache, op.key) != options_.self_index) {
    protocol::CacheOpReply retry{op.id, ServerErrorReply("not the key's owner now"), false, false,
                                 ""};
    retry.retry = true;
    link_.Send(peer, retry);
    return;
  }
  key_owner_.Run(op, [this, peer](const protocol::CacheOpReply& reply) {
    if (!stopped_) link_.Send(peer, reply);
  });
}

void CacheNode::Receive(int peer, const protocol::CacheOpReply& reply) {
  const auto found = forwarded_.find(reply.id);
  if (found == forwarded_.end() || found->second.owner != peer) return;
  OpDone done = std::move(found->second.done);
  forwarded_.erase(found);
  done(reply);
}

void CacheNode::Receive(int peer, const protocol::Replicate& replicate) {
  replicator_.Receive(peer, replicate);
}

void CacheNode::Receive(int peer, const protocol::ReplicateAck& ack) {
  replicator_.Receive(peer, ack);
  if (quorum_lost_) replicator_.QuorumLost();
}

bool CacheNode::StartPull(int peer, bool counts) {
  if (!catch_up_.StartPull(peer) || !counts) return false;
  ownership_.CountPull(peer);
  return true;
}

void CacheNode::OnPullFinished(int peer) {
  const uint64_t counted_before = ready_seen();
  if (ownership_.PullFinished(peer)) BecomeReady("caught up with the triad");
  if (ready_seen() != counted_before) link_.AnnounceStoreState();
}

void CacheNode::Receive(int peer, const protocol::DigestRequest& request) {
  catch_up_.Receive(peer, request);
}

void CacheNode::Receive(int peer, const protocol::DigestReply& reply) {
  catch_up_.Receive(peer, reply);
}

void CacheNode::Receive(int peer, const protocol::BucketRequest& request) {
  catch_up_.Receive(peer, request);
}

void CacheNode::Receive(int peer, const protocol::BucketRecords& records) {
  catch_up_.Receive(peer, records);
}

void CacheNode::OnSweepTimer() {
  if (stopped_ || !is_triad()) return;
  std::chrono::milliseconds next(1000);
  Result<store::SweepResult> swept = options_.store->SweepExpired(now_(), options_.sweep_batch);
  if (!swept.ok()) {
    spdlog::warn("store: sweeping: {}", swept.status().message());
  } else if (!swept->wrapped) {
    next = std::chrono::milliseconds(10);  // more to look at: go on soon, in small steps
  }
  sweep_timer_.expires_after(next);
  sweep_timer_.async_wait([this](const boost::system::error_code& error) {
    if (!error) OnSweepTimer();
  });
}

memcache::ServerStats CacheNode::ServerStats() const {
  const int64_t now = now_();
  memcache::ServerStats out;
  if (is_triad()) {
    options_.store->ForEachCache([&](const std::string&, const store::CacheStats& cache) {
      out.curr_items += cache.records;
      out.bytes += cache.bytes;
    });
  }
  out.pid = static_cast<int64_t>(getpid());
  out.uptime_s = (now - static_cast<int64_t>(started_unix_ms_)) / 1000;
  out.unix_time_s = now / 1000;
  out.cmd_get = stats_.gets;
  out.cmd_set = stats_.writes;
  out.get_hits = stats_.hits;
  out.get_misses = stats_.misses;
  return out;
}

CacheNodeStats CacheNode::stats() const {
  CacheNodeStats stats = stats_;
  stats.spoke_cache_bytes = spoke_cache_.bytes();
  stats.spoke_cache_validated = spoke_cache_.validated();
  return stats;
}

}  // namespace cb::cache
