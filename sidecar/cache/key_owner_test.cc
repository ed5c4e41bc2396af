#include "sidecar/cache/key_owner.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "sidecar/store/record_codec.h"
#include "sidecar/testing/temp_dir.h"
#include "sidecar/testing/test_cluster_config.h"

namespace cb::cache {
namespace {

constexpr int64_t kNow = 1'700'000'000'000;
constexpr int64_t kMinute = 60'000;

// Server 0 of a triad; caches "default", "session" (idle 30 min), "short"
// (ttl 1 min) and "small" (entries of 10 bytes at most).
ClusterConfig Triad() {
  return testing_support::StaticServersConfig(
      3, "", "[cache.session]\n[cache.short]\nttl = \"1m\"\n[cache.small]\nmax_entry_size = 10");
}

class RecordingLink : public PeerLink {
 public:
  bool Send(int index, const protocol::Message& message) override {
    sent.emplace_back(index, message);
    return true;
  }
  void AnnounceStoreState() override {}
  std::vector<std::pair<int, protocol::Message>> sent;
};

protocol::CacheOp Op(std::string cache, std::string key, memcache::Command command,
                     std::string data = "", uint64_t sequence = 0) {
  protocol::CacheOp op;
  op.id = 1;
  op.cache = std::move(cache);
  op.key = std::move(key);
  op.key_command.command = command;
  op.key_command.data = std::move(data);
  if (sequence != 0) op.request = protocol::RequestId{3, 1, sequence};
  return op;
}

class KeyOwnerTest : public ::testing::Test {
 protected:
  KeyOwnerTest() : config_(Triad()) {
    Result<std::unique_ptr<store::RecordStore>> opened =
        store::RecordStore::Open(dir_.path() + "/db");
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
    const auto now = [this] { return now_; };
    replicator_ = std::make_unique<Replicator>(config_, 0, store_.get(), ownership_, link_, clock_,
                                               applied_, now, stats_);
    owner_ = std::make_unique<KeyOwner>(config_, 0, store_.get(), *replicator_, clock_, applied_,
                                        now, stats_);
  }
  ~KeyOwnerTest() override {
    owner_.reset();
    replicator_.reset();
    store_.reset();
  }

  // Runs `op` and returns its answer, which must come at once (no triad peer
  // is connected unless the test connects one).
  protocol::CacheOpReply RunNow(const protocol::CacheOp& op) {
    std::optional<protocol::CacheOpReply> answer;
    owner_->Run(op, [&](const protocol::CacheOpReply& reply) { answer = reply; });
    EXPECT_TRUE(answer.has_value());
    return answer.value_or(protocol::CacheOpReply{});
  }

  std::optional<store::Record> Stored(const std::string& cache, const std::string& key) {
    Result<std::optional<store::Record>> got = store_->Get(cache, key);
    EXPECT_TRUE(got.ok());
    return got.ok() ? *got : std::nullopt;
  }

  ClusterConfig config_;
  testing_support::TempDir dir_{"key_owner_test"};
  std::unique_ptr<store::RecordStore> store_;
  Ownership ownership_{0, true, 1};
  RecordingLink link_;
  store::HybridClock clock_{0};
  AppliedRequests applied_{10'000, 100};
  int64_t now_ = kNow;
  CacheNodeStats stats_;
  std::unique_ptr<Replicator> replicator_;
  std::unique_ptr<KeyOwner> owner_;
};

TEST_F(KeyOwnerTest, SetThenGetWithTheVersionTheSenderKnows) {
  EXPECT_EQ(RunNow(Op("default", "k", memcache::Command::kSet, "value", 1)).reply, "STORED\r\n");
  const std::optional<store::Record> stored = Stored("default", "k");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->value, "value");
  EXPECT_EQ(stored->version.server, 0u);
  EXPECT_EQ(stats_.writes, 1u);

  protocol::CacheOpReply got = RunNow(Op("default", "k", memcache::Command::kGet));
  EXPECT_TRUE(got.found);
  EXPECT_FALSE(got.unchanged);
  Result<store::Record> record = store::DecodeRecord(got.record);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->value, "value");

  protocol::CacheOp known = Op("default", "k", memcache::Command::kGet);
  known.known_clock = stored->version.clock;
  known.known_server = stored->version.server;
  got = RunNow(known);
  EXPECT_TRUE(got.found);
  EXPECT_TRUE(got.unchanged);
  EXPECT_TRUE(got.record.empty());

  EXPECT_FALSE(RunNow(Op("default", "missing", memcache::Command::kGet)).found);
  EXPECT_EQ(stats_.gets, 3u);
  EXPECT_EQ(stats_.hits, 2u);
  EXPECT_EQ(stats_.misses, 1u);
  EXPECT_EQ(stats_.per_cache["default"].hits, 2u);
}

TEST_F(KeyOwnerTest, RetriedWriteIsAnsweredAgainNotAppliedTwice) {
  RunNow(Op("default", "n", memcache::Command::kSet, "1", 1));
  protocol::CacheOp incr = Op("default", "n", memcache::Command::kIncr, "", 2);
  incr.key_command.delta = 5;
  EXPECT_EQ(RunNow(incr).reply, "6\r\n");
  EXPECT_EQ(RunNow(incr).reply, "6\r\n");
  EXPECT_EQ(Stored("default", "n")->value, "6");
  EXPECT_EQ(stats_.answered_again, 1u);
  incr.request.sequence = 3;  // a new write
  EXPECT_EQ(RunNow(incr).reply, "11\r\n");
}

TEST_F(KeyOwnerTest, TheCacheTimeoutCapsTheExpiry) {
  RunNow(Op("short", "k", memcache::Command::kSet, "v", 1));
  EXPECT_EQ(Stored("short", "k")->expiry_unix_ms, kNow + kMinute);
  RunNow(Op("session", "k", memcache::Command::kSet, "v", 2));
  EXPECT_EQ(Stored("session", "k")->expiry_unix_ms, kNow + 30 * kMinute);
  RunNow(Op("default", "k", memcache::Command::kSet, "v", 3));
  EXPECT_EQ(Stored("default", "k")->expiry_unix_ms, 0);
  EXPECT_EQ(RunNow(Op("small", "k", memcache::Command::kSet, "longer than ten", 4)).reply,
            "SERVER_ERROR object too large for cache\r\n");
}

TEST_F(KeyOwnerTest, ReadNearTheIdleTimeoutRefreshesTheRecord) {
  RunNow(Op("session", "k", memcache::Command::kSet, "v", 1));
  const store::Version written = Stored("session", "k")->version;
  now_ += 10 * kMinute;  // 20 minutes left: more than half, no refresh
  RunNow(Op("session", "k", memcache::Command::kGet));
  EXPECT_EQ(Stored("session", "k")->version, written);
  now_ += 10 * kMinute;  // 10 minutes left
  RunNow(Op("session", "k", memcache::Command::kGet));
  EXPECT_EQ(Stored("session", "k")->expiry_unix_ms, now_ + 30 * kMinute);
  EXPECT_GT(Stored("session", "k")->version, written);
}

TEST_F(KeyOwnerTest, AnswerWaitsForTheReplicasAndAFailedOneIsAnError) {
  ownership_.PeerConnected(1);
  std::optional<protocol::CacheOpReply> answer;
  owner_->Run(Op("default", "k", memcache::Command::kSet, "v", 1),
              [&](const protocol::CacheOpReply& reply) { answer = reply; });
  EXPECT_FALSE(answer.has_value());
  ASSERT_EQ(link_.sent.size(), 1u);
  const auto& replicate = std::get<protocol::Replicate>(link_.sent[0].second);
  EXPECT_EQ(replicate.reply, "STORED\r\n");
  replicator_->Receive(1, protocol::ReplicateAck{replicate.id, false});
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->reply, "SERVER_ERROR a triad server could not store it\r\n");
  EXPECT_EQ(stats_.failed, 1u);
  // The write did not take: its retry runs again instead of being told it worked.
  EXPECT_EQ(applied_.Find(protocol::RequestId{3, 1, 1}, now_), nullptr);
}

TEST_F(KeyOwnerTest, CommandsThatAreNotKeyLevel) {
  protocol::CacheOp unknown = Op("default", "k", memcache::Command::kGet);
  unknown.key_command.command = static_cast<memcache::Command>(1000);
  EXPECT_EQ(RunNow(unknown).reply, "ERROR\r\n");
  EXPECT_EQ(RunNow(Op("default", "k", memcache::Command::kStats)).reply, "ERROR\r\n");
  RunNow(Op("default", "k", memcache::Command::kSet, "v", 1));
  EXPECT_EQ(RunNow(Op("default", "", memcache::Command::kFlushAll)).reply, "OK\r\n");
  EXPECT_TRUE(Stored("default", "k")->deleted);
}

TEST_F(KeyOwnerTest, AfterATriadPeerIsLostVersionsAreAboveAnyItCanHaveStamped) {
  owner_->TriadPeerLost();
  RunNow(Op("default", "k", memcache::Command::kSet, "v", 1));
  EXPECT_GE(store::HybridClock::PhysicalMs(Stored("default", "k")->version.clock), kNow + 1000);
}

}  // namespace
}  // namespace cb::cache
