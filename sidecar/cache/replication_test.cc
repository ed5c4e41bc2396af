#include "sidecar/cache/replication.h"

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

// Three triad servers and a spoke (index 3); caches "default" and "objects".
ClusterConfig ThreeAndASpoke() {
  return testing_support::StaticServersConfig(4, "", "[cache.objects]");
}

store::Record Value(std::string value, uint64_t clock, uint32_t server = 1) {
  store::Record record;
  record.value = std::move(value);
  record.version = store::Version{clock, server};
  return record;
}

class RecordingLink : public PeerLink {
 public:
  bool Send(int index, const protocol::Message& message) override {
    if (refuse == index) return false;
    sent.emplace_back(index, message);
    return true;
  }
  void AnnounceStoreState() override {}

  std::vector<std::pair<int, protocol::Message>> sent;
  int refuse = -1;
};

// Server 0 of the triad, with its store in a temp dir, connected to `peers`.
class ReplicationTest : public ::testing::Test {
 protected:
  ReplicationTest() : config_(ThreeAndASpoke()) {
    Result<std::unique_ptr<store::RecordStore>> opened =
        store::RecordStore::Open(dir_.path() + "/db");
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
    replicator_ = std::make_unique<Replicator>(
        config_, 0, store_.get(), ownership_, link_, clock_, applied_, [this] { return now_; },
        stats_);
    for (int peer : {1, 2, 3}) ownership_.PeerConnected(peer);
  }
  ~ReplicationTest() override {
    replicator_.reset();
    store_.reset();
  }

  // The Replicate messages sent, by index, since the last call.
  std::vector<std::pair<int, protocol::Replicate>> TakeReplicates() {
    std::vector<std::pair<int, protocol::Replicate>> out;
    for (auto& [index, message] : link_.sent) {
      if (const auto* replicate = std::get_if<protocol::Replicate>(&message)) {
        out.emplace_back(index, *replicate);
      }
    }
    link_.sent.clear();
    return out;
  }

  std::optional<protocol::ReplicateAck> LastAck() const {
    if (link_.sent.empty()) return std::nullopt;
    const auto* ack = std::get_if<protocol::ReplicateAck>(&link_.sent.back().second);
    return ack == nullptr ? std::nullopt : std::optional(*ack);
  }

  ClusterConfig config_;
  testing_support::TempDir dir_{"replication_test"};
  std::unique_ptr<store::RecordStore> store_;
  Ownership ownership_{0, true, 1};
  RecordingLink link_;
  store::HybridClock clock_{0};
  AppliedRequests applied_{10'000, 100};
  int64_t now_ = kNow;
  CacheNodeStats stats_;
  std::unique_ptr<Replicator> replicator_;
};

TEST(FlushMarkersTest, OlderRecordsBecomeTheFlushTombstone) {
  FlushMarkers markers;
  store::Record untouched = Value("v", 5);
  markers.Settle("objects", untouched);  // no flush seen
  EXPECT_EQ(untouched.value, "v");

  markers.Note("objects", store::Version{10, 2});
  markers.Note("objects", store::Version{7, 1});  // older: changes nothing
  store::Record older = Value("old", 9, 0);
  markers.Settle("objects", older);
  EXPECT_TRUE(older.deleted);
  EXPECT_EQ(older.value, "");
  EXPECT_EQ(older.version, (store::Version{10, 2}));

  store::Record newer = Value("new", 10, 3);
  markers.Settle("objects", newer);
  EXPECT_FALSE(newer.deleted);
  store::Record elsewhere = Value("other", 1);
  markers.Settle("default", elsewhere);
  EXPECT_FALSE(elsewhere.deleted);
}

TEST_F(ReplicationTest, WriteIsDoneOnceEveryTriadPeerAcknowledged) {
  std::optional<bool> result;
  replicator_->Replicate(
      "objects", "k", Value("v", 100, 0), [&](bool ok) { result = ok; },
      protocol::RequestId{3, 1, 7}, "STORED\r\n");
  const auto sent = TakeReplicates();
  ASSERT_EQ(sent.size(), 2u);  // the triad peers, not the spoke
  EXPECT_EQ(sent[0].first, 1);
  EXPECT_EQ(sent[1].first, 2);
  EXPECT_EQ(sent[0].second.key, "k");
  EXPECT_FALSE(sent[0].second.flush);
  EXPECT_EQ(sent[0].second.request, (protocol::RequestId{3, 1, 7}));
  EXPECT_EQ(sent[0].second.reply, "STORED\r\n");
  EXPECT_EQ(stats_.writes_waiting, 1u);
  now_ += 250;
  EXPECT_EQ(replicator_->OldestWaitMs(), 250);

  const uint64_t id = sent[0].second.id;
  replicator_->Receive(1, protocol::ReplicateAck{id, true});
  replicator_->Receive(1, protocol::ReplicateAck{id, true});  // again: no effect
  replicator_->Receive(3, protocol::ReplicateAck{id, true});  // not asked: no effect
  EXPECT_FALSE(result.has_value());
  replicator_->Receive(2, protocol::ReplicateAck{id, false});
  ASSERT_TRUE(result.has_value());
  EXPECT_FALSE(*result);  // one replica could not store it
  EXPECT_EQ(stats_.writes_waiting, 0u);
  EXPECT_EQ(stats_.replicated, 1u);
  EXPECT_EQ(replicator_->OldestWaitMs(), 0);
}

TEST_F(ReplicationTest, WriteWithNoTriadPeerIsDoneAtOnce) {
  ownership_.PeerLost(1);
  link_.refuse = 2;  // its connection is closing
  std::optional<bool> result;
  replicator_->Replicate("objects", "k", Value("v", 100, 0), [&](bool ok) { result = ok; });
  EXPECT_EQ(result, std::optional<bool>(true));
  EXPECT_EQ(stats_.replicated, 1u);
  EXPECT_EQ(stats_.writes_waiting, 0u);
}

TEST_F(ReplicationTest, LostPeerIsNoLongerWaitedFor) {
  std::vector<bool> results;
  replicator_->Replicate("objects", "a", Value("v", 100, 0),
                         [&](bool ok) { results.push_back(ok); });
  replicator_->Replicate("objects", "b", Value("v", 101, 0),
                         [&](bool ok) { results.push_back(ok); });
  const auto sent = TakeReplicates();
  ASSERT_EQ(sent.size(), 4u);
  replicator_->Receive(2, protocol::ReplicateAck{sent[0].second.id, true});  // "a" from 2
  replicator_->PeerLost(1);
  EXPECT_EQ(results, std::vector<bool>{true});  // "a" waited only for 1 still
  replicator_->PeerLost(2);
  EXPECT_EQ(results, (std::vector<bool>{true, true}));
  EXPECT_EQ(stats_.writes_waiting, 0u);
}

TEST_F(ReplicationTest, FailAllAnswersEveryWaitingWrite) {
  std::vector<bool> results;
  replicator_->Replicate("objects", "a", Value("v", 100, 0),
                         [&](bool ok) { results.push_back(ok); });
  replicator_->FailAll();
  EXPECT_EQ(results, std::vector<bool>{false});
  replicator_->PeerLost(1);
  EXPECT_EQ(results.size(), 1u);
}

TEST_F(ReplicationTest, ReplicaAppliesRemembersAndAcknowledges) {
  const store::Record record = Value("v", 500, 1);
  replicator_->Receive(1, protocol::Replicate{9, "objects", "k", store::EncodeRecord(record), false,
                                              protocol::RequestId{3, 1, 7}, "STORED\r\n"});
  ASSERT_TRUE(LastAck().has_value());
  EXPECT_EQ(LastAck()->id, 9u);
  EXPECT_TRUE(LastAck()->ok);
  EXPECT_EQ(link_.sent.back().first, 1);
  Result<std::optional<store::Record>> stored = store_->Get("objects", "k");
  ASSERT_TRUE(stored.ok());
  ASSERT_TRUE(stored->has_value());
  EXPECT_EQ((*stored)->value, "v");
  const std::string* answer = applied_.Find(protocol::RequestId{3, 1, 7}, now_);
  ASSERT_NE(answer, nullptr);
  EXPECT_EQ(*answer, "STORED\r\n");
  // What this server stamps from now on is above what it received.
  EXPECT_GT(clock_.Tick(1).clock, 500u);
}

TEST_F(ReplicationTest, ReplicaRefusesUnknownCachesAndMalformedRecords) {
  replicator_->Receive(
      1, protocol::Replicate{1, "nope", "k", store::EncodeRecord(Value("v", 5)), false, {}, ""});
  ASSERT_TRUE(LastAck().has_value());
  EXPECT_FALSE(LastAck()->ok);
  replicator_->Receive(1, protocol::Replicate{2, "objects", "k", "garbage", false, {}, ""});
  EXPECT_EQ(LastAck()->id, 2u);
  EXPECT_FALSE(LastAck()->ok);
  replicator_->Receive(
      1, protocol::Replicate{3, "objects", "k", store::EncodeRecord(Value("v", 0)), false, {}, ""});
  EXPECT_FALSE(LastAck()->ok);  // a null version
}

TEST_F(ReplicationTest, WriteThatAFlushOvertookBecomesItsTombstone) {
  store::Record marker;
  marker.deleted = true;
  marker.version = store::Version{1000, 2};
  replicator_->Receive(
      2, protocol::Replicate{1, "objects", "", store::EncodeRecord(marker), true, {}, ""});
  EXPECT_TRUE(LastAck()->ok);
  replicator_->Receive(
      1, protocol::Replicate{
             2, "objects", "late", store::EncodeRecord(Value("v", 900, 1)), false, {}, ""});
  EXPECT_TRUE(LastAck()->ok);
  Result<std::optional<store::Record>> stored = store_->Get("objects", "late");
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_TRUE((*stored)->deleted);
  EXPECT_EQ((*stored)->version, (store::Version{1000, 2}));
}

TEST_F(ReplicationTest, FlushHereThenOnTheTriadPeers) {
  ASSERT_TRUE(store_->Apply("objects", "k", Value("v", 5, 0)).ok());
  std::optional<bool> result;
  replicator_->Flush("objects", [&](bool ok) { result = ok; });
  Result<std::optional<store::Record>> stored = store_->Get("objects", "k");
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_TRUE((*stored)->deleted);
  const auto sent = TakeReplicates();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_TRUE(sent[0].second.flush);
  EXPECT_EQ(sent[0].second.key, "");
  for (const auto& [index, replicate] : sent) {
    replicator_->Receive(index, protocol::ReplicateAck{replicate.id, true});
  }
  EXPECT_EQ(result, std::optional<bool>(true));
  // The flush is remembered: an older write that comes later is its tombstone.
  store::Record late = Value("late", 6, 1);
  replicator_->flush_markers().Settle("objects", late);
  EXPECT_TRUE(late.deleted);
}

}  // namespace
}  // namespace cb::cache
