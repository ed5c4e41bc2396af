#include "sidecar/cache/catch_up.h"
#include "sidecar/testing/temp_dir.h"
#include "sidecar/testing/test_cluster_config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <array>
#include <deque>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace cb::cache {
namespace {

constexpr int64_t kNow = 1'700'000'000'000;

// Caches "default" and "objects" on two servers.
ClusterConfig TwoServers() {
  return testing_support::StaticServersConfig(2, "", "[cache.objects]");
}

store::Record Value(std::string value, uint64_t clock, uint32_t server = 0) {
  store::Record record;
  record.value = std::move(value);
  record.version = store::Version{clock, server};
  return record;
}

class Pair;

class QueueLink : public PeerLink {
 public:
  QueueLink(Pair& pair, int self) : pair_(pair), self_(self) {}
  bool Send(int index, const protocol::Message& message) override;
  void AnnounceStoreState() override {}

 private:
  Pair& pair_;
  int self_;
};

// Servers 0 and 1, each with a store (or, `spoke`, none) and a CatchUp; the
// test delivers the messages between them.
class Pair {
 public:
  explicit Pair(std::size_t page_bytes = 4 * 1024 * 1024, std::array<bool, 2> spoke = {})
      : config_(TwoServers()) {
    for (int i = 0; i < 2; ++i) {
      Side& side = sides_[i];
      side.link = std::make_unique<QueueLink>(*this, i);
      side.clock = std::make_unique<store::HybridClock>(static_cast<uint32_t>(i));
      if (!spoke[i]) {
        Result<std::unique_ptr<store::RecordStore>> opened =
            store::RecordStore::Open(dir_.path() + "/" + std::to_string(i));
        EXPECT_TRUE(opened.ok()) << opened.status().ToString();
        side.store = std::move(opened).value();
      }
      side.catch_up = std::make_unique<CatchUp>(
          config_, side.store.get(), *side.link, *side.clock, side.flush_markers,
          [this] { return now_; }, page_bytes, side.stats,
          [this, i](int peer) { sides_[i].finished.push_back(peer); });
    }
  }
  Pair(const Pair&) = delete;
  Pair& operator=(const Pair&) = delete;
  ~Pair() {
    for (Side& side : sides_) {
      side.catch_up.reset();
      side.store.reset();
    }
  }

  struct Side {
    std::unique_ptr<QueueLink> link;
    std::unique_ptr<store::HybridClock> clock;
    std::unique_ptr<store::RecordStore> store;
    FlushMarkers flush_markers;
    CacheNodeStats stats;
    std::unique_ptr<CatchUp> catch_up;
    std::vector<int> finished;  // PullFinished calls
  };
  Side& side(int i) { return sides_[i]; }
  CatchUp& catch_up(int i) { return *sides_[i].catch_up; }

  void Put(int i, const std::string& cache, const std::string& key, const store::Record& record) {
    ASSERT_TRUE(sides_[i].store->Apply(cache, key, record).ok());
  }
  std::optional<store::Record> Get(int i, const std::string& cache, const std::string& key) {
    Result<std::optional<store::Record>> got = sides_[i].store->Get(cache, key);
    EXPECT_TRUE(got.ok());
    return got.ok() ? *got : std::nullopt;
  }

  void Queue(int from, int to, const protocol::Message& message) {
    queue_.push_back({from, to, message});
    // A bucket is in flight from its first request to its last page.
    if (const auto* request = std::get_if<protocol::BucketRequest>(&message);
        request != nullptr && !request->resume) {
      const int in_flight = ++bucket_requests_in_flight_[from];
      max_bucket_requests_in_flight_ = std::max(max_bucket_requests_in_flight_, in_flight);
    }
  }
  bool refuse_sends = false;

  // Delivers every message, in order, until none is left.
  void Pump() {
    while (!queue_.empty()) {
      Sent sent = std::move(queue_.front());
      queue_.pop_front();
      if (const auto* page = std::get_if<protocol::BucketRecords>(&sent.message)) {
        ++pages_;
        if (page->last) --bucket_requests_in_flight_[sent.to];
      }
      std::visit(
          [&](const auto& body) {
            using T = std::decay_t<decltype(body)>;
            if constexpr (std::is_same_v<T, protocol::DigestRequest> ||
                          std::is_same_v<T, protocol::DigestReply> ||
                          std::is_same_v<T, protocol::BucketRequest> ||
                          std::is_same_v<T, protocol::BucketRecords>) {
              catch_up(sent.to).Receive(sent.from, body);
            } else {
              ADD_FAILURE() << "unexpected message of type " << sent.message.index();
            }
          },
          sent.message);
    }
  }
  void DropQueue() { queue_.clear(); }
  int pages() const { return pages_; }
  int max_bucket_requests_in_flight() const { return max_bucket_requests_in_flight_; }
  std::size_t queued() const { return queue_.size(); }

  int64_t now_ = kNow;

 private:
  struct Sent {
    int from;
    int to;
    protocol::Message message;
  };
  ClusterConfig config_;
  testing_support::TempDir dir_{"catch_up_test"};
  std::array<Side, 2> sides_;
  std::deque<Sent> queue_;
  int pages_ = 0;
  std::array<int, 2> bucket_requests_in_flight_{};
  int max_bucket_requests_in_flight_ = 0;
};

bool QueueLink::Send(int index, const protocol::Message& message) {
  if (pair_.refuse_sends) return false;
  pair_.Queue(self_, index, message);
  return true;
}

TEST(CatchUpTest, EmptyServerPullsEverything) {
  Pair pair;
  for (int k = 0; k < 50; ++k)
    pair.Put(1, "objects", "key" + std::to_string(k), Value("v", 10 + k));
  pair.Put(1, "default", "d", Value("dv", 99));
  ASSERT_TRUE(pair.catch_up(0).StartPull(1));
  EXPECT_TRUE(pair.catch_up(0).pulling(1));
  pair.Pump();
  EXPECT_EQ(pair.side(0).finished, std::vector<int>{1});
  EXPECT_FALSE(pair.catch_up(0).pulling(1));
  for (int k = 0; k < 50; ++k) {
    const std::optional<store::Record> got = pair.Get(0, "objects", "key" + std::to_string(k));
    ASSERT_TRUE(got.has_value()) << k;
    EXPECT_EQ(got->version.clock, 10u + static_cast<uint64_t>(k));
  }
  EXPECT_EQ(pair.Get(0, "default", "d")->value, "dv");
  EXPECT_EQ(pair.side(0).stats.records_pulled, 51u);
  EXPECT_GT(pair.side(0).stats.buckets_pulled, 0u);
  EXPECT_LE(pair.max_bucket_requests_in_flight(), 2);
  // What it pulled moves its clock past those versions.
  EXPECT_GT(pair.side(0).clock->Tick(1).clock, 99u);
  // Nothing flowed the other way.
  EXPECT_EQ(pair.side(1).stats.records_pulled, 0u);
}

TEST(CatchUpTest, OnlyBucketsThatDifferAreAskedFor) {
  Pair pair;
  for (int k = 0; k < 20; ++k) {
    pair.Put(0, "objects", "key" + std::to_string(k), Value("v", 10));
    pair.Put(1, "objects", "key" + std::to_string(k), Value("v", 10));
  }
  ASSERT_TRUE(pair.catch_up(0).StartPull(1));
  pair.Pump();
  EXPECT_EQ(pair.side(0).finished, std::vector<int>{1});
  EXPECT_EQ(pair.pages(), 0);
  EXPECT_EQ(pair.side(0).stats.buckets_pulled, 0u);

  pair.Put(1, "objects", "key3", Value("newer", 11));
  ASSERT_TRUE(pair.catch_up(0).StartPull(1));
  pair.Pump();
  EXPECT_EQ(pair.side(0).stats.buckets_pulled, 1u);
  EXPECT_EQ(pair.side(0).stats.records_pulled, 1u);  // the others were there
  EXPECT_EQ(pair.Get(0, "objects", "key3")->value, "newer");
}

TEST(CatchUpTest, BucketsComeInPagesWithFewInFlight) {
  Pair pair(/*page_bytes=*/200);
  const std::string value(100, 'x');
  for (int k = 0; k < 300; ++k) pair.Put(1, "objects", "key" + std::to_string(k), Value(value, 5));
  ASSERT_TRUE(pair.catch_up(0).StartPull(1));
  pair.Pump();
  EXPECT_EQ(pair.side(0).finished, std::vector<int>{1});
  EXPECT_EQ(pair.side(0).stats.records_pulled, 300u);
  EXPECT_GT(pair.pages(), 150);  // about one record per page
  EXPECT_EQ(pair.max_bucket_requests_in_flight(), 2);
}

TEST(CatchUpTest, ExpiredRecordsBeyondTheGraceAreNotSent) {
  Pair pair;
  store::Record gone = Value("v", 5);
  gone.expiry_unix_ms = kNow - 2 * 60 * 60 * 1000;  // past the hour of grace
  pair.Put(1, "objects", "gone", gone);
  pair.Put(1, "objects", "kept", Value("v", 6));
  ASSERT_TRUE(pair.catch_up(0).StartPull(1));
  pair.Pump();
  EXPECT_FALSE(pair.Get(0, "objects", "gone").has_value());
  EXPECT_TRUE(pair.Get(0, "objects", "kept").has_value());
}

TEST(CatchUpTest, RecordsAFlushOvertookArriveAsItsTombstone) {
  Pair pair;
  pair.Put(1, "objects", "old", Value("v", 5, 1));
  pair.Put(1, "objects", "new", Value("v", 50, 1));
  pair.side(0).flush_markers.Note("objects", store::Version{10, 0});
  ASSERT_TRUE(pair.catch_up(0).StartPull(1));
  pair.Pump();
  const std::optional<store::Record> old = pair.Get(0, "objects", "old");
  ASSERT_TRUE(old.has_value());
  EXPECT_TRUE(old->deleted);
  EXPECT_EQ(old->version, (store::Version{10, 0}));
  EXPECT_FALSE(pair.Get(0, "objects", "new")->deleted);
}

TEST(CatchUpTest, SpokeHasNothingToOffer) {
  Pair pair(4 * 1024 * 1024, {false, true});
  ASSERT_TRUE(pair.catch_up(0).StartPull(1));
  pair.Pump();
  EXPECT_EQ(pair.side(0).finished, std::vector<int>{1});
  EXPECT_EQ(pair.pages(), 0);
}

TEST(CatchUpTest, LostPeerEndsThePullUnfinished) {
  Pair pair;
  pair.Put(1, "objects", "k", Value("v", 5));
  ASSERT_TRUE(pair.catch_up(0).StartPull(1));
  pair.DropQueue();  // the connection closed with the requests on it
  pair.catch_up(0).PeerLost(1);
  EXPECT_FALSE(pair.catch_up(0).pulling(1));
  pair.Pump();
  EXPECT_TRUE(pair.side(0).finished.empty());
  // A page nobody asked for (the connection is gone) is applied, and ends nothing.
  protocol::BucketRecords stray;
  stray.cache = "objects";
  stray.bucket = store::RecordStore::BucketOf("k");
  stray.keys = {"k"};
  stray.records = {store::EncodeRecord(Value("v", 5))};
  pair.catch_up(0).Receive(1, stray);
  EXPECT_TRUE(pair.side(0).finished.empty());
  EXPECT_TRUE(pair.Get(0, "objects", "k").has_value());
}

TEST(CatchUpTest, NoRequestSentNoPull) {
  Pair pair;
  pair.refuse_sends = true;
  EXPECT_FALSE(pair.catch_up(0).StartPull(1));
  EXPECT_FALSE(pair.catch_up(0).pulling(1));
}

}  // namespace
}  // namespace cb::cache
