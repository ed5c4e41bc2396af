// CacheNode as the cluster runs it: five nodes in one process (0, 1, 2 the triad,
// each with a real RecordStore in a temp dir; 3 and 4 spokes), wired by a fake
// PeerLink that queues every message per (from, to). The test pumps the queues
// itself, so it decides the order of deliveries, holds messages back, drops them
// and kills nodes between any two of them; it plays the daemon's part too
// (OnPeerUp/OnPeerDown for connections, OnPeerStoreState for heartbeats). Time is
// an injected clock (per node, with an optional offset); timers run on one
// io_context in bounded steps.
#include "sidecar/cache/cache_node.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "shared/rendezvous.h"
#include "sidecar/memcache/parser.h"
#include "sidecar/store/record_codec.h"
#include "sidecar/testing/temp_dir.h"
#include "sidecar/testing/test_cluster_config.h"

namespace cb::cache {
namespace {

using memcache::Request;
using protocol::Message;

constexpr int64_t kT0 = 1'700'000'000'000;
constexpr int64_t kMinute = 60'000;
constexpr int kNodes = 5;  // 0, 1, 2: the triad; 3, 4: spokes
constexpr int kSpokeA = 3;
constexpr int kSpokeB = 4;

// Five static servers (0..2 the triad), a short heartbeat timeout, caches
// "default", "session" (idle 30 min by default) and "objects".
ClusterConfig FiveServers() {
  return testing_support::StaticServersConfig(kNodes,
                                              "heartbeat_interval = \"10ms\"\n"
                                              "heartbeat_timeout = \"50ms\"\n"
                                              "dynamic_server_timeout = \"10s\"",
                                              "[cache.objects]");
}

Request Parse(std::string_view text) {
  memcache::RequestParser parser;
  std::vector<memcache::ParseResult> results = parser.Feed(text);
  if (results.size() != 1 || !std::holds_alternative<Request>(results[0])) {
    ADD_FAILURE() << "not exactly one request: " << text;
    return Request{};
  }
  return std::get<Request>(std::move(results[0]));
}

std::string Set(std::string_view key, std::string_view value, uint32_t flags = 0,
                int64_t exptime = 0, std::string_view command = "set") {
  return std::string(command) + " " + std::string(key) + " " + std::to_string(flags) + " " +
         std::to_string(exptime) + " " + std::to_string(value.size()) + "\r\n" +
         std::string(value) + "\r\n";
}

std::string Cas(std::string_view key, std::string_view value, uint64_t token) {
  return "cas " + std::string(key) + " 0 0 " + std::to_string(value.size()) + " " +
         std::to_string(token) + "\r\n" + std::string(value) + "\r\n";
}

std::string Hit(std::string_view key, std::string_view value, uint32_t flags = 0) {
  return "VALUE " + std::string(key) + " " + std::to_string(flags) + " " +
         std::to_string(value.size()) + "\r\n" + std::string(value) + "\r\n";
}

std::string OneHit(std::string_view key, std::string_view value, uint32_t flags = 0) {
  return Hit(key, value, flags) + "END\r\n";
}

// The cas unique of the first VALUE line of a gets reply; 0 when there is none.
uint64_t CasOf(const std::string& reply) {
  const std::size_t eol = reply.find("\r\n");
  if (!reply.starts_with("VALUE ") || eol == std::string::npos) return 0;
  const std::size_t space = reply.rfind(' ', eol);
  return std::strtoull(reply.substr(space + 1, eol - space - 1).c_str(), nullptr, 10);
}

std::string Describe(const store::Record& record) {
  return "{value \"" + record.value + "\" version " + std::to_string(record.version.clock) + "/" +
         std::to_string(record.version.server) + " expiry " +
         std::to_string(record.expiry_unix_ms) + " flags " + std::to_string(record.flags) +
         (record.deleted ? " deleted}" : "}");
}

// What a client gets from Handle: how often Done was called, and the last reply.
struct Answer {
  int calls = 0;
  std::string text;
};
using AnswerPtr = std::shared_ptr<Answer>;

template <typename T>
bool Is(const Message& message) {
  return std::holds_alternative<T>(message);
}

class Cluster;

class FakeLink : public PeerLink {
 public:
  FakeLink(Cluster& cluster, int self) : cluster_(cluster), self_(self) {}
  bool Send(int index, const Message& message) override;
  // The tests send heartbeats themselves (Cluster::Heartbeats).
  void AnnounceStoreState() override {}

 private:
  Cluster& cluster_;
  int self_;
};

class Cluster {
 public:
  Cluster() : config_(FiveServers()) {
    for (int i = 0; i < kNodes; ++i) links_[i] = std::make_unique<FakeLink>(*this, i);
  }
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;
  ~Cluster() {
    for (auto& node : nodes_) node.reset();
    for (auto& store : stores_) store.reset();
  }

  // A node's wall clock: the shared one plus its offset.
  int64_t Now(int index = 0) const { return now_ms_ + offsets_[index]; }
  void Advance(int64_t ms) { now_ms_ += ms; }
  void SetClockOffset(int index, int64_t ms) { offsets_[index] = ms; }

  // Starts node `index`; a triad node (re)opens the store in its directory.
  void StartNode(int index) {
    ASSERT_EQ(nodes_[index], nullptr) << index;
    CacheNodeOptions options;
    options.self_index = index;
    options.pull_page_bytes = pull_page_bytes;
    if (index < 3) {
      Result<std::unique_ptr<store::RecordStore>> opened =
          store::RecordStore::Open(StoreDir(index));
      ASSERT_TRUE(opened.ok()) << opened.status().ToString();
      stores_[index] = std::move(opened).value();
      options.store = stores_[index].get();
    }
    nodes_[index] = std::make_unique<CacheNode>(io_, config_, options, *links_[index],
                                                [this, index] { return Now(index); });
    nodes_[index]->Start();
  }

  // Deletes a stopped triad node's store.
  void WipeStore(int index) {
    ASSERT_EQ(stores_[index], nullptr);
    std::filesystem::remove_all(StoreDir(index));
  }

  bool Running(int index) const { return nodes_[index] != nullptr; }

  void Connect(int a, int b) {
    ASSERT_TRUE(Running(a) && Running(b));
    ASSERT_FALSE(up_[a][b]);
    up_[a][b] = up_[b][a] = true;
    nodes_[a]->OnPeerUp(b);
    nodes_[b]->OnPeerUp(a);
    // The daemon sends a heartbeat as soon as a connection is authenticated.
    nodes_[b]->OnPeerStoreState(a, HeartbeatOf(a));
    nodes_[a]->OnPeerStoreState(b, HeartbeatOf(b));
  }

  // Connects every pair of running nodes that is not connected yet.
  void ConnectAll() {
    for (int a = 0; a < kNodes; ++a) {
      for (int b = a + 1; b < kNodes; ++b) {
        if (Running(a) && Running(b) && !up_[a][b]) Connect(a, b);
      }
    }
  }

  // The connection closes: what was in flight on it is lost.
  void Disconnect(int a, int b) {
    ASSERT_TRUE(up_[a][b]);
    up_[a][b] = up_[b][a] = false;
    queues_[a][b].clear();
    queues_[b][a].clear();
    if (Running(a)) nodes_[a]->OnPeerDown(b);
    if (Running(b)) nodes_[b]->OnPeerDown(a);
  }

  // The process dies: the node (and its store) goes, then its peers see its
  // connections close.
  void Kill(int index) {
    nodes_[index].reset();
    stores_[index].reset();
    for (int other = 0; other < kNodes; ++other) {
      if (up_[index][other]) Disconnect(index, other);
    }
  }

  protocol::Heartbeat HeartbeatOf(int index) const {
    protocol::Heartbeat heartbeat;
    nodes_[index]->StampHeartbeat(heartbeat);
    return heartbeat;
  }

  // Every node tells every connected peer whether its store is ready and whom it
  // has seen ready; three rounds, so that what one round taught comes back as the
  // acknowledgement a server needs before it owns keys, even when the spokes'
  // word (whom they reach), heard last in a round, is what restores a quorum.
  void Heartbeats() {
    for (int round = 0; round < 3; ++round) {
      for (int a = 0; a < kNodes; ++a) {
        for (int b = 0; b < kNodes; ++b) {
          if (up_[a][b]) {
            nodes_[b]->OnPeerStoreState(a, HeartbeatOf(a));
          }
        }
      }
    }
  }

  // Starts every node, connects them all, lets the triad catch up and everybody
  // hear the heartbeats.
  void StartAll() {
    for (int i = 0; i < kNodes; ++i) StartNode(i);
    ConnectAll();
    Pump();
    Heartbeats();
    Pump();
    // A new cluster: nobody is ready to vouch for anybody, so each triad node
    // becomes ready with what it has once the heartbeat timeout has passed.
    RunTimers(std::chrono::milliseconds(120));
    Heartbeats();
    Pump();
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(node(i).store_ready()) << i;
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(node(i).owning()) << i;
    EXPECT_EQ(node(kSpokeA).ReadyTriad(), ServerSet::Triad());
  }

  // Delivers queued messages, one per (from, to) per round, in order, until
  // nothing can move; a queue whose first message `hold` matches waits.
  std::size_t Pump() {
    std::size_t delivered = 0;
    for (int round = 0; round < 1'000'000; ++round) {
      bool moved = false;
      for (int from = 0; from < kNodes; ++from) {
        for (int to = 0; to < kNodes; ++to) {
          std::deque<Message>& queue = queues_[from][to];
          if (queue.empty() || (hold && hold(from, to, queue.front()))) continue;
          Message message = std::move(queue.front());
          queue.pop_front();
          Deliver(from, to, message);
          ++delivered;
          moved = true;
        }
      }
      if (!moved) return delivered;
    }
    ADD_FAILURE() << "the messages never stop";
    return delivered;
  }

  // Delivers the first (or, with `last`, the last: out of order) message queued
  // from `from` to `to`.
  bool DeliverOne(int from, int to, bool last = false) {
    std::deque<Message>& queue = queues_[from][to];
    if (queue.empty()) return false;
    Message message = std::move(last ? queue.back() : queue.front());
    if (last) {
      queue.pop_back();
    } else {
      queue.pop_front();
    }
    Deliver(from, to, message);
    return true;
  }

  template <typename T>
  std::size_t Queued(int from, int to) const {
    std::size_t count = 0;
    for (const Message& message : queues_[from][to]) count += Is<T>(message) ? 1 : 0;
    return count;
  }
  template <typename T>
  std::size_t QueuedTo(int to) const {
    std::size_t count = 0;
    for (int from = 0; from < kNodes; ++from) count += Queued<T>(from, to);
    return count;
  }

  // Runs the io_context's timers for about `duration` of real time.
  void RunTimers(std::chrono::milliseconds duration) {
    io_.restart();
    io_.run_for(duration);
  }

  // Hands a request to a node; the answer arrives whenever the node calls Done.
  AnswerPtr Send(int index, std::string_view text) {
    auto answer = std::make_shared<Answer>();
    nodes_[index]->Handle(Parse(text), [answer](std::string reply) {
      ++answer->calls;
      answer->text = std::move(reply);
    });
    return answer;
  }

  // Send, then Pump: the reply (a test failure unless exactly one came).
  std::string Do(int index, std::string_view text) {
    AnswerPtr answer = Send(index, text);
    Pump();
    EXPECT_EQ(answer->calls, 1) << "node " << index << ": " << text;
    return answer->text;
  }

  // Do, for a request that finds no owner: it is asked again until the heartbeat
  // timeout (of the injected clock) has passed, then answered with an error.
  std::string DoPastDeadline(int index, std::string_view text) {
    AnswerPtr answer = Send(index, text);
    Pump();
    EXPECT_EQ(answer->calls, 0) << "answered before its deadline: " << answer->text;
    Advance(10'000);
    RunTimers(std::chrono::milliseconds(60));
    Pump();
    EXPECT_EQ(answer->calls, 1) << "node " << index << ": " << text;
    return answer->text;
  }

  CacheNode& node(int index) { return *nodes_[index]; }
  store::RecordStore& store(int index) { return *stores_[index]; }

  std::optional<store::Record> Stored(int index, std::string_view cache, std::string_view key) {
    Result<std::optional<store::Record>> record = stores_[index]->Get(cache, key);
    EXPECT_TRUE(record.ok()) << record.status().ToString();
    return record.ok() ? *record : std::nullopt;
  }

  // Every entry of every configured cache of a triad node's store, by cache '\0' key.
  std::map<std::string, store::Record> Dump(int index) {
    std::map<std::string, store::Record> out;
    for (const CacheConfig& cache : config_.caches) {
      for (uint32_t bucket = 0; bucket < store::RecordStore::kBuckets; ++bucket) {
        const Status listed = stores_[index]->ForEachInBucket(
            cache.name, bucket, [&](std::string_view key, const store::Record& record) {
              out[cache.name + '\0' + std::string(key)] = record;
              return true;
            });
        EXPECT_TRUE(listed.ok()) << listed.ToString();
      }
    }
    return out;
  }

  // The stores of `triad` hold exactly the same records (digests and contents).
  void ExpectSameStores(const std::vector<int>& triad) {
    ASSERT_FALSE(triad.empty());
    const int first = triad[0];
    const std::map<std::string, store::Record> reference = Dump(first);
    for (std::size_t n = 1; n < triad.size(); ++n) {
      const int other = triad[n];
      for (const CacheConfig& cache : config_.caches) {
        EXPECT_TRUE(store(first).BucketDigests(cache.name) ==
                    store(other).BucketDigests(cache.name))
            << "digests of cache " << cache.name << " differ between " << first << " and " << other;
      }
      const std::map<std::string, store::Record> dump = Dump(other);
      for (const auto& [key, record] : reference) {
        const auto found = dump.find(key);
        if (found == dump.end()) {
          ADD_FAILURE() << "node " << other << " lacks " << Printable(key) << " "
                        << Describe(record) << " of node " << first;
        } else if (!(found->second == record)) {
          ADD_FAILURE() << Printable(key) << ": node " << first << " " << Describe(record)
                        << ", node " << other << " " << Describe(found->second);
        }
      }
      for (const auto& [key, record] : dump) {
        if (!reference.contains(key)) {
          ADD_FAILURE() << "node " << other << " has " << Printable(key) << " " << Describe(record)
                        << " that node " << first << " lacks";
        }
      }
    }
  }

  // The owner of (cache, key) as `viewer` sees the ready triad now: the rendezvous
  // choice over the key as CacheNode hashes it (cache, '\0', key).
  int OwnerOf(std::string_view cache, std::string_view key, int viewer = kSpokeA) {
    std::string joined(cache);
    joined += '\0';
    joined += key;
    return OwnerAmongLiveTriad(joined, node(viewer).ReadyTriad());
  }

  // A key "<prefix><n>" of `cache` that `owner` owns with the whole triad ready.
  static std::string KeyOwnedBy(int owner, std::string_view cache, std::string_view prefix) {
    for (int n = 0; n < 10'000; ++n) {
      std::string key = std::string(prefix) + std::to_string(n);
      std::string joined(cache);
      joined += '\0';
      joined += key;
      if (OwnerAmongLiveTriad(joined, ServerSet::Triad()) == owner) return key;
    }
    ADD_FAILURE() << "no key for owner " << owner;
    return std::string(prefix);
  }

  // For the nodes started next.
  std::size_t pull_page_bytes = 4 * 1024 * 1024;

  // Holds back the messages it matches (see Pump).
  std::function<bool(int from, int to, const Message& message)> hold;

 private:
  friend class FakeLink;

  static std::string Printable(const std::string& key) {
    std::string out = key;
    for (char& c : out) {
      if (c == '\0') c = ':';
    }
    return out;
  }

  std::string StoreDir(int index) const { return root_.path() + "/store" + std::to_string(index); }

  bool Enqueue(int from, int to, const Message& message) {
    if (to < 0 || to >= kNodes || !up_[from][to]) return false;
    queues_[from][to].push_back(message);
    return true;
  }

  void Deliver(int from, int to, const Message& message) {
    if (Running(to) && up_[from][to]) nodes_[to]->OnPeerMessage(from, message);
  }

  boost::asio::io_context io_;
  ClusterConfig config_;
  testing_support::TempDir root_{"cache_node_test"};
  int64_t now_ms_ = kT0;
  std::array<int64_t, kNodes> offsets_{};
  std::array<std::unique_ptr<FakeLink>, kNodes> links_;
  std::array<std::unique_ptr<store::RecordStore>, 3> stores_;
  std::array<std::unique_ptr<CacheNode>, kNodes> nodes_;
  std::array<std::array<bool, kNodes>, kNodes> up_{};
  std::array<std::array<std::deque<Message>, kNodes>, kNodes> queues_;
};

bool FakeLink::Send(int index, const Message& message) {
  return cluster_.Enqueue(self_, index, message);
}

// The two triad servers other than `index`.
std::vector<int> OthersOf(int index) {
  std::vector<int> others;
  for (int i = 0; i < 3; ++i) {
    if (i != index) others.push_back(i);
  }
  return others;
}

ServerSet TriadWithout(int index) {
  ServerSet set = ServerSet::Triad();
  set.Remove(index);
  return set;
}

// --- Replication before the answer.

TEST(CacheNodeTest, SetViaSpokeIsStoredOnlyAfterBothReplicasAcked) {
  Cluster c;
  c.StartAll();
  const int owner = c.OwnerOf("default", "k1");
  ASSERT_GE(owner, 0);
  const std::vector<int> replicas = OthersOf(owner);
  const std::string value("bin\0ary\r\nEND\r\n\xff", 15);

  c.hold = [](int, int, const Message& message) { return Is<protocol::ReplicateAck>(message); };
  AnswerPtr set = c.Send(kSpokeA, Set("k1", value, 42));
  c.Pump();
  EXPECT_EQ(set->calls, 0);
  EXPECT_EQ(c.node(kSpokeA).stats().forwarded, 1u);
  EXPECT_EQ(c.node(owner).stats().writes, 1u);  // the rendezvous owner executed it
  EXPECT_EQ(c.node(owner).stats().writes_waiting, 1u);
  for (int replica : replicas) {
    EXPECT_EQ(c.node(replica).stats().writes, 0u);
    EXPECT_EQ(c.Queued<protocol::ReplicateAck>(replica, owner), 1u);
    const std::optional<store::Record> record = c.Stored(replica, "default", "k1");
    ASSERT_TRUE(record.has_value());
    EXPECT_EQ(record->value, value);
  }

  // One ack is not enough.
  c.hold = [&](int from, int, const Message& message) {
    return from == replicas[1] && Is<protocol::ReplicateAck>(message);
  };
  c.Pump();
  EXPECT_EQ(set->calls, 0);
  EXPECT_EQ(c.node(owner).stats().writes_waiting, 1u);

  c.hold = nullptr;
  c.Pump();
  EXPECT_EQ(set->calls, 1);
  EXPECT_EQ(set->text, "STORED\r\n");
  EXPECT_EQ(c.node(owner).stats().writes_waiting, 0u);
  EXPECT_EQ(c.node(owner).stats().replicated, 1u);

  EXPECT_EQ(c.Do(kSpokeB, "get k1\r\n"), OneHit("k1", value, 42));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.Do(i, "get k1\r\n"), OneHit("k1", value, 42)) << i;
  c.ExpectSameStores({0, 1, 2});
}

// Runs the retries a lost owner left behind (each waits a short timer) until
// `answer` came, with the triad's heartbeats in between.
void SettleRetries(Cluster& c, const AnswerPtr& answer) {
  for (int round = 0; round < 50 && answer->calls == 0; ++round) {
    c.Heartbeats();
    c.Pump();
    c.RunTimers(std::chrono::milliseconds(25));
    c.Pump();
  }
}

TEST(CacheNodeTest, OwnerDyingWhileAnAckIsPendingIsAnsweredByTheNextOwner) {
  Cluster c;
  c.StartAll();
  const int owner = c.OwnerOf("default", "k2");
  c.hold = [](int, int, const Message& message) { return Is<protocol::ReplicateAck>(message); };
  AnswerPtr set = c.Send(kSpokeA, Set("k2", "new"));
  c.Pump();
  EXPECT_EQ(set->calls, 0);

  // The replicas have the record; its owner dies before it could answer. The
  // spoke asks the next in rendezvous order, which answers as the lost one would
  // have, without writing the record again.
  const std::optional<store::Record> replicated = c.Stored(OthersOf(owner)[0], "default", "k2");
  ASSERT_TRUE(replicated.has_value());
  c.Kill(owner);
  c.hold = nullptr;
  EXPECT_EQ(set->calls, 0) << set->text;
  SettleRetries(c, set);
  EXPECT_EQ(set->calls, 1);
  EXPECT_EQ(set->text, "STORED\r\n");
  EXPECT_EQ(c.node(kSpokeA).stats().failed, 0u);
  EXPECT_EQ(c.node(kSpokeA).stats().retried, 1u);
  EXPECT_EQ(c.node(kSpokeA).ReadyTriad(), TriadWithout(owner));
  const int next = c.OwnerOf("default", "k2");
  EXPECT_NE(next, owner);
  EXPECT_GE(next, 0);
  EXPECT_EQ(c.node(next).stats().answered_again, 1u);
  for (int survivor : OthersOf(owner)) {
    EXPECT_EQ(c.Stored(survivor, "default", "k2"), replicated) << "written once: " << survivor;
  }
  EXPECT_EQ(c.Do(kSpokeB, "get k2\r\n"), OneHit("k2", "new"));
  EXPECT_EQ(c.Do(kSpokeA, Set("k2", "newer")), "STORED\r\n");
  EXPECT_EQ(c.Do(kSpokeB, "get k2\r\n"), OneHit("k2", "newer"));
  c.ExpectSameStores(OthersOf(owner));
}

// incr, decr, append, prepend, add, delete and cas, retried after their owner
// was lost, take effect once and answer what the first try would have.
TEST(CacheNodeTest, RetriedWritesTakeEffectExactlyOnce) {
  struct Case {
    std::string before;  // a set that prepares the key, or empty
    std::string write;
    std::string answer;
    std::string after;  // the key's get afterwards
  };
  const std::vector<Case> cases = {
      {Set("x", "10"), "incr x 5\r\n", "15\r\n", OneHit("x", "15")},
      {Set("x", "10"), "decr x 3\r\n", "7\r\n", OneHit("x", "7")},
      {Set("x", "ab"), Set("x", "cd", 0, 0, "append"), "STORED\r\n", OneHit("x", "abcd")},
      {Set("x", "ab"), Set("x", "cd", 0, 0, "prepend"), "STORED\r\n", OneHit("x", "cdab")},
      {"", Set("x", "new", 0, 0, "add"), "STORED\r\n", OneHit("x", "new")},
      {Set("x", "old"), "delete x\r\n", "DELETED\r\n", "END\r\n"},
      {Set("x", "old"), Set("x", "new", 0, 0, "replace"), "STORED\r\n", OneHit("x", "new")},
  };
  for (const Case& test : cases) {
    SCOPED_TRACE(test.write);
    Cluster c;
    c.StartAll();
    const int owner = c.OwnerOf("default", "x");
    if (!test.before.empty()) {
      ASSERT_EQ(c.Do(kSpokeA, test.before), "STORED\r\n");
    }
    c.hold = [](int, int, const Message& message) { return Is<protocol::ReplicateAck>(message); };
    AnswerPtr write = c.Send(kSpokeA, test.write);
    c.Pump();
    ASSERT_EQ(write->calls, 0);
    c.Kill(owner);
    c.hold = nullptr;
    SettleRetries(c, write);
    EXPECT_EQ(write->calls, 1);
    EXPECT_EQ(write->text, test.answer);
    EXPECT_EQ(c.Do(kSpokeB, "get x\r\n"), test.after);
  }
  // cas: the token of the record before it; a second apply would say EXISTS.
  Cluster c;
  c.StartAll();
  const int owner = c.OwnerOf("default", "x");
  ASSERT_EQ(c.Do(kSpokeA, Set("x", "v1")), "STORED\r\n");
  const uint64_t token = CasOf(c.Do(kSpokeA, "gets x\r\n"));
  c.hold = [](int, int, const Message& message) { return Is<protocol::ReplicateAck>(message); };
  AnswerPtr cas = c.Send(kSpokeA, Cas("x", "v2", token));
  c.Pump();
  c.Kill(owner);
  c.hold = nullptr;
  SettleRetries(c, cas);
  EXPECT_EQ(cas->text, "STORED\r\n");
  EXPECT_EQ(c.Do(kSpokeB, "get x\r\n"), OneHit("x", "v2"));
}

// The lost owner got the record to one replica only: if that one is the next
// owner, it makes sure the other has it before it answers; if the other is, it
// applies the write itself (once, in the world that is left).
TEST(CacheNodeTest, RetryAfterTheRecordReachedOneReplicaLeavesBothWithIt) {
  for (int reached : {0, 1}) {
    SCOPED_TRACE("the record reached replica " + std::to_string(reached));
    Cluster c;
    c.StartAll();
    const int owner = c.OwnerOf("default", "n");
    const std::vector<int> replicas = OthersOf(owner);
    ASSERT_EQ(c.Do(kSpokeA, Set("n", "100")), "STORED\r\n");
    const int missed = replicas[1 - reached];
    c.hold = [&](int from, int to, const Message& message) {
      return Is<protocol::ReplicateAck>(message) ||
             (from == owner && to == missed && Is<protocol::Replicate>(message));
    };
    AnswerPtr incr = c.Send(kSpokeA, "incr n 1\r\n");
    c.Pump();
    ASSERT_TRUE(c.Stored(replicas[reached], "default", "n").has_value());
    ASSERT_EQ(c.Stored(replicas[reached], "default", "n")->value, "101");
    ASSERT_EQ(c.Stored(missed, "default", "n")->value, "100");
    c.Kill(owner);
    c.hold = nullptr;
    SettleRetries(c, incr);
    EXPECT_EQ(incr->text, "101\r\n");
    EXPECT_EQ(c.Stored(replicas[0], "default", "n")->value, "101");
    EXPECT_EQ(c.Stored(replicas[1], "default", "n")->value, "101");
    EXPECT_EQ(c.Do(kSpokeB, "get n\r\n"), OneHit("n", "101"));
  }
}

// The lost owner's clock was ahead: its last record, on one replica only, has a
// version above what the next owner's clock gives. The next owner still writes
// above it (it moves its clock past any the lost one can have), so neither the
// retried write nor one made meanwhile is undone when the replicas compare.
TEST(CacheNodeTest, WritesAfterAnOwnerWithAClockAheadWasLostStayOnTop) {
  std::string key;
  int owner = -1, next = -1;
  for (int n = 0; n < 1000 && next < 0; ++n) {
    key = "skew" + std::to_string(n);
    owner = OwnerAmongLiveTriad(std::string("default") + '\0' + key, ServerSet::Triad());
    next = OwnerAmongLiveTriad(std::string("default") + '\0' + key, TriadWithout(owner));
  }
  const int reached = 3 - owner - next;  // the replica the last record reached
  Cluster c;
  c.SetClockOffset(owner, 500);
  c.StartAll();
  ASSERT_EQ(c.Do(kSpokeA, Set(key, "100")), "STORED\r\n");
  c.Advance(100);  // the next owner's clock, behind by 500 ms, is still below the lost one's
  c.hold = [&](int from, int to, const Message& message) {
    return Is<protocol::ReplicateAck>(message) ||
           (from == owner && to == next && Is<protocol::Replicate>(message));
  };
  AnswerPtr first = c.Send(kSpokeA, "incr " + key + " 1\r\n");
  c.Pump();
  ASSERT_EQ(c.Stored(reached, "default", key)->value, "101");
  c.Kill(owner);
  c.hold = nullptr;
  c.Heartbeats();
  // Another client's increment reaches the next owner before the retry does.
  EXPECT_EQ(c.Do(kSpokeB, "incr " + key + " 1\r\n"), "101\r\n");
  SettleRetries(c, first);
  EXPECT_EQ(first->text, "102\r\n");
  EXPECT_EQ(c.Stored(next, "default", key)->value, "102");
  EXPECT_EQ(c.Stored(reached, "default", key)->value, "102");
  c.ExpectSameStores({next, reached});
}

// A lost owner with nobody to take over: asked again until the retry timeout,
// then SERVER_ERROR.
TEST(CacheNodeTest, LostOwnerWithNoSuccessorIsAnErrorAtTheRetryTimeout) {
  Cluster c;
  c.StartAll();
  c.hold = [](int, int, const Message& message) { return Is<protocol::ReplicateAck>(message); };
  AnswerPtr set = c.Send(kSpokeA, Set("lonely", "v"));
  c.Pump();
  for (int triad = 0; triad < 3; ++triad) c.Kill(triad);
  c.hold = nullptr;
  c.RunTimers(std::chrono::milliseconds(60));
  c.Pump();
  EXPECT_EQ(set->calls, 0) << "still within the retry timeout: " << set->text;
  c.Advance(2001);
  c.RunTimers(std::chrono::milliseconds(60));
  c.Pump();
  EXPECT_EQ(set->calls, 1);
  EXPECT_TRUE(set->text.starts_with("SERVER_ERROR")) << set->text;
  EXPECT_EQ(c.node(kSpokeA).stats().failed, 1u);
}

// A get whose owner is lost is simply asked again.
TEST(CacheNodeTest, ReadWhoseOwnerIsLostIsAskedAgain) {
  Cluster c;
  c.StartAll();
  const int owner = c.OwnerOf("default", "r");
  ASSERT_EQ(c.Do(kSpokeA, Set("r", "value")), "STORED\r\n");
  c.hold = [&](int from, int, const Message&) { return from == owner; };
  AnswerPtr get = c.Send(kSpokeB, "get r\r\n");
  c.Pump();
  ASSERT_EQ(get->calls, 0);
  c.Kill(owner);
  c.hold = nullptr;
  SettleRetries(c, get);
  EXPECT_EQ(get->text, OneHit("r", "value"));
}

TEST(CacheNodeTest, ReplicaDyingWhileTheOwnerWaitsCompletesTheWrite) {
  Cluster c;
  c.StartAll();
  const int owner = c.OwnerOf("default", "k3");
  const std::vector<int> replicas = OthersOf(owner);
  c.hold = [&](int from, int, const Message& message) {
    return from == replicas[0] && Is<protocol::ReplicateAck>(message);
  };
  AnswerPtr set = c.Send(kSpokeA, Set("k3", "value"));
  c.Pump();
  EXPECT_EQ(set->calls, 0);

  c.Kill(replicas[0]);
  c.Pump();
  // Acknowledged once the owner has heard a quorum after the loss.
  EXPECT_EQ(set->calls, 0);
  c.Heartbeats();
  c.Pump();  // the owner's answer to the spoke
  EXPECT_EQ(set->calls, 1);
  EXPECT_EQ(set->text, "STORED\r\n");
  c.hold = nullptr;
  c.Heartbeats();
  EXPECT_EQ(c.Do(kSpokeB, "get k3\r\n"), OneHit("k3", "value"));
  c.ExpectSameStores({owner, replicas[1]});
}

TEST(CacheNodeTest, OwnersOwnClientIsAnsweredWhenBothReplicasDie) {
  Cluster c;
  c.StartAll();
  const std::string key = Cluster::KeyOwnedBy(0, "default", "own");
  c.hold = [](int, int, const Message& message) { return Is<protocol::ReplicateAck>(message); };
  AnswerPtr set = c.Send(0, Set(key, "mine"));
  c.Pump();
  EXPECT_EQ(set->calls, 0);
  c.Kill(1);
  EXPECT_EQ(set->calls, 0);
  c.Kill(2);
  EXPECT_EQ(set->calls, 0);
  c.Heartbeats();  // the two spokes: 0 is on the majority's side
  EXPECT_EQ(set->calls, 1);
  EXPECT_EQ(set->text, "STORED\r\n");
}

TEST(CacheNodeTest, SurvivorOfTwoDeadTriadServersHasEveryAcknowledgedRecord) {
  for (int survivor = 0; survivor < 3; ++survivor) {
    SCOPED_TRACE("survivor " + std::to_string(survivor));
    Cluster c;
    c.StartAll();
    std::vector<std::string> keys;
    for (int n = 0; n < 24; ++n) {
      const std::string key = (n % 3 == 0   ? "objects:o"
                               : n % 3 == 1 ? "session:s"
                                            : "d") +
                              std::to_string(n);
      keys.push_back(key);
      ASSERT_EQ(c.Do(n % 2 == 0 ? kSpokeA : kSpokeB, Set(key, "v" + key)), "STORED\r\n");
    }
    const std::vector<int> others = OthersOf(survivor);
    c.Kill(others[0]);
    c.Pump();
    c.Kill(others[1]);
    c.Pump();
    c.Heartbeats();
    EXPECT_EQ(c.node(kSpokeA).ReadyTriad(), ServerSet::Triad().Without(TriadWithout(survivor)));
    for (const std::string& key : keys) {
      EXPECT_EQ(c.Do(kSpokeB, "get " + key + "\r\n"), OneHit(key, "v" + key));
      EXPECT_EQ(c.Do(survivor, "get " + key + "\r\n"), OneHit(key, "v" + key));
    }
    // Alone, it answers writes at once.
    EXPECT_EQ(c.Do(kSpokeA, Set("after", "x")), "STORED\r\n");
    EXPECT_EQ(c.Do(kSpokeB, "get after\r\n"), OneHit("after", "x"));
  }
}

TEST(CacheNodeTest, ConcurrentSetsEndWithTheHighestVersionEverywhere) {
  Cluster c;
  c.StartAll();
  const int owner = c.OwnerOf("default", "race");
  const std::vector<int> replicas = OthersOf(owner);
  AnswerPtr a = c.Send(kSpokeA, Set("race", "from-a"));
  AnswerPtr b = c.Send(kSpokeB, Set("race", "from-b"));
  ASSERT_TRUE(c.DeliverOne(kSpokeA, owner));
  ASSERT_TRUE(c.DeliverOne(kSpokeB, owner));
  // One replica receives the newer write first, the other in order.
  ASSERT_EQ(c.Queued<protocol::Replicate>(owner, replicas[0]), 2u);
  ASSERT_TRUE(c.DeliverOne(owner, replicas[0], /*last=*/true));
  c.Pump();
  EXPECT_EQ(a->text, "STORED\r\n");
  EXPECT_EQ(b->text, "STORED\r\n");
  c.ExpectSameStores({0, 1, 2});
  for (int i = 0; i < 3; ++i) {
    const std::optional<store::Record> record = c.Stored(i, "default", "race");
    ASSERT_TRUE(record.has_value());
    EXPECT_EQ(record->value, "from-b") << i;
  }
  EXPECT_EQ(c.Do(kSpokeA, "get race\r\n"), OneHit("race", "from-b"));
  EXPECT_EQ(c.Do(kSpokeB, "get race\r\n"), OneHit("race", "from-b"));
}

// --- Catch-up.

TEST(CacheNodeTest, RestartedServerPullsOnlyTheBucketsThatDiffer) {
  Cluster c;
  c.StartAll();
  for (int n = 0; n < 40; ++n) {
    ASSERT_EQ(c.Do(kSpokeA, Set("k" + std::to_string(n), "v" + std::to_string(n))), "STORED\r\n");
  }
  c.Kill(2);
  c.Heartbeats();
  // Five keys change while server 2 is away.
  for (int n = 0; n < 3; ++n) {
    ASSERT_EQ(c.Do(kSpokeB, Set("new" + std::to_string(n), "fresh")), "STORED\r\n");
  }
  ASSERT_EQ(c.Do(kSpokeB, Set("k5", "changed")), "STORED\r\n");
  ASSERT_EQ(c.Do(kSpokeB, "delete k7\r\n"), "DELETED\r\n");

  c.StartNode(2);
  c.ConnectAll();
  EXPECT_FALSE(c.node(2).store_ready());
  c.hold = [](int, int to, const Message& message) {
    return to == 2 && Is<protocol::BucketRecords>(message);
  };
  c.Pump();
  EXPECT_GT(c.QueuedTo<protocol::BucketRecords>(2), 0u);
  EXPECT_FALSE(c.node(2).store_ready());
  c.Heartbeats();
  EXPECT_EQ(c.node(kSpokeA).ReadyTriad(), TriadWithout(2));

  c.hold = nullptr;
  c.Pump();
  EXPECT_TRUE(c.node(2).store_ready());
  const CacheNodeStats& stats = c.node(2).stats();
  EXPECT_GT(stats.buckets_pulled, 0u);
  EXPECT_LE(stats.buckets_pulled, 10u);  // five keys, from each of two peers
  EXPECT_LT(stats.buckets_pulled, store::RecordStore::kBuckets);
  EXPECT_EQ(stats.records_pulled, 5u);
  c.ExpectSameStores({0, 1, 2});

  c.Heartbeats();
  EXPECT_EQ(c.node(kSpokeA).ReadyTriad(), ServerSet::Triad());
  EXPECT_EQ(c.Do(kSpokeA, "get k5 k7 new1 k8\r\n"),
            Hit("k5", "changed") + Hit("new1", "fresh") + Hit("k8", "v8") + "END\r\n");
}

TEST(CacheNodeTest, EmptyServerCatchesUpWhileWritesGoOn) {
  Cluster c;
  for (int i : {0, 1, kSpokeA, kSpokeB}) c.StartNode(i);
  c.ConnectAll();
  c.Pump();
  c.RunTimers(std::chrono::milliseconds(120));  // new cluster: ready after the timeout
  c.Heartbeats();
  c.Pump();
  ASSERT_TRUE(c.node(0).store_ready());
  ASSERT_TRUE(c.node(1).store_ready());
  std::vector<std::string> keys;
  for (int n = 0; n < 60; ++n) {
    const std::string key = (n % 3 == 0   ? "objects:o"
                             : n % 3 == 1 ? "session:s"
                                          : "d") +
                            std::to_string(n);
    keys.push_back(key);
    ASSERT_EQ(c.Do(n % 2 == 0 ? kSpokeA : kSpokeB, Set(key, "v" + key)), "STORED\r\n");
  }

  c.StartNode(2);
  c.ConnectAll();
  EXPECT_FALSE(c.node(2).store_ready());
  c.hold = [](int, int to, const Message& message) {
    return to == 2 && Is<protocol::BucketRecords>(message);
  };
  c.Pump();
  EXPECT_FALSE(c.node(2).store_ready());
  c.Heartbeats();
  EXPECT_EQ(c.node(kSpokeB).ReadyTriad(), TriadWithout(2));
  // A write during the catch-up goes to the catching-up server too (behind the
  // records it is pulling on the same connection).
  keys.push_back("during");
  AnswerPtr during = c.Send(kSpokeB, Set("during", "vduring"));
  c.Pump();
  EXPECT_FALSE(c.node(2).store_ready());

  c.hold = nullptr;
  c.Pump();
  EXPECT_EQ(during->calls, 1);
  EXPECT_EQ(during->text, "STORED\r\n");
  EXPECT_TRUE(c.Stored(2, "default", "during").has_value());
  EXPECT_TRUE(c.node(2).store_ready());
  EXPECT_LT(c.node(2).stats().buckets_pulled, 3u * 2u * store::RecordStore::kBuckets);
  c.ExpectSameStores({0, 1, 2});
  c.Heartbeats();
  EXPECT_EQ(c.node(kSpokeB).ReadyTriad(), ServerSet::Triad());
  for (const std::string& key : keys) {
    EXPECT_EQ(c.Do(kSpokeA, "get " + key + "\r\n"), OneHit(key, "v" + key));
  }
}

TEST(CacheNodeTest, WipedServerIsRebuilt) {
  Cluster c;
  c.StartAll();
  for (int n = 0; n < 20; ++n) {
    ASSERT_EQ(c.Do(kSpokeA, Set("session:w" + std::to_string(n), "v")), "STORED\r\n");
  }
  c.Kill(1);
  c.WipeStore(1);
  c.StartNode(1);
  c.ConnectAll();
  c.Pump();
  EXPECT_TRUE(c.node(1).store_ready());
  c.ExpectSameStores({0, 1, 2});
}

// A triad server on the minority side of a partition serves nothing (README
// "Partitions"): its spoke gets errors, not what the cut-off server alone holds,
// while the majority side goes on; on return it pulls what it missed.
TEST(CacheNodeTest, ServerCutOffFromTheMajorityServesNothingAndCatchesUpOnReturn) {
  Cluster c;
  c.StartAll();
  ASSERT_EQ(c.Do(kSpokeA, Set("base", "b")), "STORED\r\n");
  // Server 2 and spoke B on one side (2 of 5), servers 0, 1 and spoke A on the other.
  c.Disconnect(2, 0);
  c.Disconnect(2, 1);
  c.Disconnect(2, kSpokeA);
  c.Disconnect(0, kSpokeB);
  c.Disconnect(1, kSpokeB);
  c.Heartbeats();
  EXPECT_FALSE(c.node(2).quorum());
  EXPECT_FALSE(c.node(2).owning());
  EXPECT_EQ(c.node(2).voters_reached(), 2);
  EXPECT_TRUE(c.node(kSpokeB).ReadyTriad().empty());
  EXPECT_EQ(c.node(kSpokeA).ReadyTriad(), TriadWithout(2));
  EXPECT_EQ(c.DoPastDeadline(2, "get base\r\n"),
            "SERVER_ERROR cut off from the cluster: this triad server reaches 2 of the 5 servers "
            "of the cluster file that count and serves no key until it reaches more than "
            "half\r\n");
  EXPECT_EQ(c.DoPastDeadline(kSpokeB, Set("p1", "side-2")),
            "SERVER_ERROR no triad server is ready\r\n");
  EXPECT_EQ(c.Do(kSpokeA, Set("q1", "side-01")), "STORED\r\n");

  c.ConnectAll();
  c.Pump();
  c.Heartbeats();
  c.ExpectSameStores({0, 1, 2});
  for (int spoke : {kSpokeA, kSpokeB}) {
    EXPECT_EQ(c.Do(spoke, "get p1 q1 base\r\n"),
              Hit("q1", "side-01") + Hit("base", "b") + "END\r\n");
  }
}

// The loss of a write's last replica may be the first sign that this server is
// the one cut off: it acknowledges the write, held by itself alone, only once it
// has heard a quorum after the loss, and fails it when its other links go too.
TEST(CacheNodeTest, WriteWhoseReplicasAreLostWaitsForAQuorumHeardAfterTheLoss) {
  for (const bool majority_still_there : {true, false}) {
    SCOPED_TRACE(majority_still_there ? "replicas died" : "server cut off");
    Cluster c;
    c.StartAll();
    const std::string key = Cluster::KeyOwnedBy(0, "default", "lost-replicas");
    c.hold = [](int, int, const Message& message) { return Is<protocol::Replicate>(message); };
    AnswerPtr answer = c.Send(0, Set(key, "v"));
    c.Pump();
    EXPECT_EQ(answer->calls, 0);
    if (majority_still_there) {
      c.Kill(1);
      c.Kill(2);
    } else {
      // Cut off from 1 and 2, which the spokes still reach.
      c.Disconnect(0, 1);
      c.Disconnect(0, 2);
    }
    c.hold = nullptr;
    c.Pump();
    EXPECT_EQ(answer->calls, 0) << "acknowledged before a quorum was heard: " << answer->text;
    c.Heartbeats();
    if (majority_still_there) {
      // The spokes, which reach 0 alone now: 3 of 5.
      EXPECT_EQ(answer->calls, 1);
      EXPECT_EQ(answer->text, "STORED\r\n");
    } else {
      // The spokes reach both sides: they count for neither. Failed once the
      // loss has lasted a heartbeat timeout.
      EXPECT_EQ(answer->calls, 0);
      c.RunTimers(std::chrono::milliseconds(200));
      c.Pump();
      EXPECT_EQ(answer->calls, 1);
      EXPECT_TRUE(answer->text.starts_with("SERVER_ERROR")) << answer->text;
    }
  }
}

TEST(CacheNodeTest, LoneTriadServerIsReadyAfterTheHeartbeatTimeout) {
  Cluster c;
  c.StartNode(0);
  EXPECT_FALSE(c.node(0).store_ready());
  c.RunTimers(std::chrono::milliseconds(200));
  EXPECT_TRUE(c.node(0).store_ready());
  // Ready with what it holds, but 1 of 5 is no quorum.
  EXPECT_FALSE(c.node(0).owning());
  EXPECT_TRUE(c.DoPastDeadline(0, Set("alone", "no")).starts_with("SERVER_ERROR cut off"));
  // The two spokes make it 3 of 5, while the rest of the triad is still away.
  c.StartNode(kSpokeA);
  c.StartNode(kSpokeB);
  c.Connect(0, kSpokeA);
  c.Connect(0, kSpokeB);
  c.Heartbeats();
  EXPECT_TRUE(c.node(0).owning());
  EXPECT_EQ(c.Do(kSpokeA, Set("alone", "yes")), "STORED\r\n");
  EXPECT_EQ(c.Do(0, "get alone\r\n"), OneHit("alone", "yes"));
}

// Two servers of a new cluster have nothing to vouch for each other: once the
// timeout has passed, each is ready with what it has, answered pulls or not.
TEST(CacheNodeTest, ServersStartingTogetherAreReadyAfterTheTimeout) {
  Cluster c;
  c.StartNode(0);
  c.StartNode(1);
  c.Connect(0, 1);
  EXPECT_FALSE(c.node(0).store_ready());
  c.RunTimers(std::chrono::milliseconds(200));
  EXPECT_TRUE(c.node(0).store_ready());
  EXPECT_TRUE(c.node(1).store_ready());
}

// A pull from a READY peer that goes unanswered keeps a server not ready past the
// timeout: that peer has what it lacks.
TEST(CacheNodeTest, UnansweredPullFromAReadyPeerKeepsAServerNotReady) {
  Cluster c;
  c.StartAll();
  c.Kill(2);
  c.StartNode(2);
  c.Connect(2, 0);  // its pull from ready server 0 stays queued: never pumped
  c.RunTimers(std::chrono::milliseconds(200));
  EXPECT_FALSE(c.node(2).store_ready());
  c.Pump();
  EXPECT_TRUE(c.node(2).store_ready());
}

// A server catching up from its only connected triad peer, which dies mid-pull,
// must not own keys before it has caught up with the one that is still alive.
TEST(CacheNodeTest, PullCutShortDoesNotMakeAServerOwnKeysItNeverPulled) {
  Cluster c;
  c.StartAll();
  const std::string key = Cluster::KeyOwnedBy(2, "default", "cut");
  ASSERT_EQ(c.Do(kSpokeA, Set(key, "acknowledged")), "STORED\r\n");
  c.Kill(2);
  c.WipeStore(2);
  c.StartNode(2);
  c.hold = [](int, int to, const Message& message) {
    return to == 2 && Is<protocol::BucketRecords>(message);
  };
  c.Connect(2, 0);
  c.Pump();
  c.Kill(0);  // mid-pull
  c.hold = nullptr;
  c.Connect(2, 1);
  c.Connect(2, kSpokeA);
  c.Connect(2, kSpokeB);
  c.Heartbeats();
  // Before the pull from server 1 completes, a get of the key must not be a miss.
  AnswerPtr get = c.Send(kSpokeA, "get " + key + "\r\n");
  c.Pump();
  ASSERT_EQ(get->calls, 1);
  EXPECT_TRUE(get->text == OneHit(key, "acknowledged") || get->text.starts_with("SERVER_ERROR"))
      << get->text;
  c.Heartbeats();
  EXPECT_EQ(c.Do(kSpokeA, "get " + key + "\r\n"), OneHit(key, "acknowledged"));
}

// Servers 1 and 2 miss a write, then restart together. Server 0 has not dialed 1
// again yet, so 1 hears of no ready peer and becomes ready alone with its old
// record, while 2 catches up from 0. Server 1 owns no key before it has pulled from 2 what 2
// brought from 0: never the old record.
TEST(CacheNodeTest, ServerReadyAloneOwnsNothingBeforeItHasWhatAPeerCaughtUpElsewhere) {
  Cluster c;
  c.StartAll();
  const std::string key = Cluster::KeyOwnedBy(1, "default", "late");
  ASSERT_EQ(c.Do(kSpokeA, Set(key, "old")), "STORED\r\n");
  c.Kill(1);
  c.Kill(2);
  c.Heartbeats();
  ASSERT_EQ(c.Do(kSpokeA, Set(key, "new")), "STORED\r\n");  // on 0 alone

  c.StartNode(1);
  c.StartNode(2);
  c.Connect(1, 2);
  c.Pump();
  c.hold = [](int, int to, const Message& message) {
    return (to == 1 || to == 2) && Is<protocol::BucketRecords>(message);
  };
  c.Connect(2, 0);
  c.Pump();
  c.RunTimers(std::chrono::milliseconds(120));
  ASSERT_TRUE(c.node(1).store_ready());   // alone: it heard of no ready peer
  ASSERT_FALSE(c.node(2).store_ready());  // its pull from 0 is held
  for (int spoke : {kSpokeA, kSpokeB}) {
    for (int triad : {1, 2}) c.Connect(triad, spoke);
  }
  c.Heartbeats();
  c.Pump();
  c.hold = [](int, int to, const Message& message) {
    return to == 1 && Is<protocol::BucketRecords>(message);
  };
  c.Pump();
  ASSERT_TRUE(c.node(2).store_ready());
  c.Heartbeats();
  c.Pump();
  EXPECT_FALSE(c.node(1).synced());  // its pull from 2 is held
  EXPECT_FALSE(c.node(kSpokeA).ReadyTriad().Contains(1));
  EXPECT_EQ(c.Do(kSpokeA, "get " + key + "\r\n"), OneHit(key, "new"));

  c.hold = nullptr;
  c.Connect(0, 1);  // at last
  c.Pump();
  c.Heartbeats();
  EXPECT_TRUE(c.node(1).owning());
  EXPECT_EQ(c.node(kSpokeA).ReadyTriad(), ServerSet::Triad());
  EXPECT_EQ(c.Do(kSpokeA, "get " + key + "\r\n"), OneHit(key, "new"));
  c.ExpectSameStores({0, 1, 2});
}

// Two ready servers that were cut off from each other both took writes: once
// they see each other again, neither owns a key before it has pulled the other's.
TEST(CacheNodeTest, ServersMeetingAgainOwnNothingBeforeTheyPulledEachOther) {
  Cluster c;
  c.StartAll();
  // Servers 1 and 2 cut off: 0 and the spokes hold the quorum and take k.
  for (int cut : {1, 2}) {
    for (int other : {0, kSpokeA, kSpokeB}) c.Disconnect(cut, other);
  }
  c.Heartbeats();
  ASSERT_EQ(c.Do(kSpokeA, Set("k", "on-0")), "STORED\r\n");
  // Then 0 cut off, and 1, 2 and the spokes take j.
  c.Disconnect(0, kSpokeA);
  c.Disconnect(0, kSpokeB);
  for (int returned : {1, 2}) {
    for (int spoke : {kSpokeA, kSpokeB}) c.Connect(returned, spoke);
  }
  c.Pump();
  c.Heartbeats();
  ASSERT_EQ(c.Do(kSpokeB, Set("j", "on-1")), "STORED\r\n");

  c.hold = [](int, int, const Message& message) { return Is<protocol::BucketRecords>(message); };
  c.ConnectAll();
  c.Pump();
  c.Heartbeats();
  EXPECT_FALSE(c.node(0).synced());
  EXPECT_FALSE(c.node(1).synced());
  EXPECT_TRUE(c.node(kSpokeA).ReadyTriad().empty());

  c.hold = nullptr;
  c.Pump();
  c.Heartbeats();
  EXPECT_TRUE(c.node(0).owning());
  EXPECT_TRUE(c.node(1).owning());
  for (int spoke : {kSpokeA, kSpokeB}) {
    EXPECT_EQ(c.Do(spoke, "get k j\r\n"), Hit("k", "on-0") + Hit("j", "on-1") + "END\r\n");
  }
  c.ExpectSameStores({0, 1, 2});
}

// A store far larger than a page comes over in pages, asked for one at a time
// with at most two buckets in flight: what a peer queues for a catching-up server
// stays bounded whatever the size of the store.
TEST(CacheNodeTest, WipedServerPullsInPagesWithFewInFlight) {
  Cluster c;
  c.pull_page_bytes = 300;  // a page: a couple of records
  c.StartAll();
  constexpr int kKeys = 600;
  for (int n = 0; n < kKeys; ++n) {
    ASSERT_EQ(c.Do(kSpokeA, Set("p" + std::to_string(n), std::string(100, 'v'))), "STORED\r\n");
  }
  c.Kill(2);
  c.WipeStore(2);
  c.StartNode(2);
  std::size_t most_queued = 0;
  std::size_t pages = 0, oversized = 0;
  c.hold = [&](int from, int to, const Message& message) {
    if (to != 2) return false;
    most_queued = std::max(most_queued, c.Queued<protocol::BucketRecords>(from, 2));
    if (const auto* page = std::get_if<protocol::BucketRecords>(&message)) {
      std::size_t bytes = 0;
      for (std::size_t i = 0; i < page->keys.size(); ++i) {
        bytes += page->keys[i].size() + page->records[i].size();
      }
      ++pages;
      if (page->keys.size() > 1 && bytes > 300) ++oversized;
    }
    return false;
  };
  c.ConnectAll();
  c.Pump();
  c.hold = nullptr;
  EXPECT_TRUE(c.node(2).store_ready());
  EXPECT_GE(most_queued, 1u);
  EXPECT_LE(most_queued, 2u);
  EXPECT_GT(pages, 256u);    // more pages than buckets: they were split
  EXPECT_EQ(oversized, 0u);  // a page goes over its size only with a single record
  EXPECT_EQ(c.node(2).stats().records_pulled, static_cast<uint64_t>(kKeys));
  c.ExpectSameStores({0, 1, 2});
}

TEST(CacheNodeTest, EmptyKeyOfANamedCacheCatchesUp) {
  Cluster c;
  c.StartAll();
  ASSERT_EQ(c.Do(kSpokeA, Set("session:", "empty-key")), "STORED\r\n");
  EXPECT_EQ(c.Do(kSpokeB, "get session:\r\n"), OneHit("session:", "empty-key"));
  c.Kill(2);
  c.WipeStore(2);
  c.StartNode(2);
  c.ConnectAll();
  c.Pump();
  c.ExpectSameStores({0, 1, 2});
}

// --- Spokes.

TEST(CacheNodeTest, SpokeValidatesItsCopyAndNeverAnswersFromAStaleOne) {
  Cluster c;
  c.StartAll();
  const std::string value = "the value";
  ASSERT_EQ(c.Do(kSpokeA, Set("s", value, 5)), "STORED\r\n");
  EXPECT_EQ(c.Do(kSpokeA, "get s\r\n"), OneHit("s", value, 5));
  EXPECT_EQ(c.node(kSpokeA).stats().spoke_cache_validated, 0u);
  EXPECT_GT(c.node(kSpokeA).stats().spoke_cache_bytes, 0u);
  EXPECT_EQ(c.Do(kSpokeA, "get s\r\n"), OneHit("s", value, 5));
  EXPECT_EQ(c.node(kSpokeA).stats().spoke_cache_validated, 1u);
  // gets from the copy shows the same cas unique as the owner's record.
  const std::string from_copy = c.Do(kSpokeA, "gets s\r\n");
  EXPECT_EQ(c.node(kSpokeA).stats().spoke_cache_validated, 2u);
  const std::string fresh = c.Do(kSpokeB, "gets s\r\n");
  EXPECT_EQ(from_copy, fresh);
  EXPECT_NE(CasOf(fresh), 0u);

  ASSERT_EQ(c.Do(kSpokeB, Set("s", "the new value", 6)), "STORED\r\n");
  EXPECT_EQ(c.Do(kSpokeA, "get s\r\n"), OneHit("s", "the new value", 6));
  EXPECT_EQ(c.node(kSpokeA).stats().spoke_cache_validated, 2u);
  EXPECT_EQ(c.Do(kSpokeA, "get s\r\n"), OneHit("s", "the new value", 6));
  EXPECT_EQ(c.node(kSpokeA).stats().spoke_cache_validated, 3u);

  // Cut off from the triad: no answer from the copy.
  for (int i = 0; i < 3; ++i) c.Disconnect(kSpokeA, i);
  const std::string cut_off = c.DoPastDeadline(kSpokeA, "get s\r\n");
  EXPECT_TRUE(cut_off.starts_with("SERVER_ERROR")) << cut_off;
  // Deleted meanwhile: back in touch, the spoke says it is gone.
  ASSERT_EQ(c.Do(kSpokeB, "delete s\r\n"), "DELETED\r\n");
  for (int i = 0; i < 3; ++i) c.Connect(kSpokeA, i);
  c.Heartbeats();
  EXPECT_EQ(c.Do(kSpokeA, "get s\r\n"), "END\r\n");
}

TEST(CacheNodeTest, SpokeCopyIsValidatedByTheNextOwnerAfterFailover) {
  Cluster c;
  c.StartAll();
  const int owner = c.OwnerOf("default", "f");
  ASSERT_EQ(c.Do(kSpokeA, Set("f", "before")), "STORED\r\n");
  EXPECT_EQ(c.Do(kSpokeA, "get f\r\n"), OneHit("f", "before"));
  c.Kill(owner);
  c.Heartbeats();
  ASSERT_EQ(c.Do(kSpokeB, Set("f", "after")), "STORED\r\n");
  EXPECT_EQ(c.Do(kSpokeA, "get f\r\n"), OneHit("f", "after"));
}

// --- memcached semantics across the cluster.

TEST(CacheNodeTest, CasRaceHasExactlyOneWinner) {
  Cluster c;
  c.StartAll();
  ASSERT_EQ(c.Do(kSpokeA, Set("c", "0")), "STORED\r\n");
  const uint64_t token_a = CasOf(c.Do(kSpokeA, "gets c\r\n"));
  const uint64_t token_b = CasOf(c.Do(kSpokeB, "gets c\r\n"));
  ASSERT_NE(token_a, 0u);
  ASSERT_EQ(token_a, token_b);
  AnswerPtr a = c.Send(kSpokeA, Cas("c", "A", token_a));
  AnswerPtr b = c.Send(kSpokeB, Cas("c", "B", token_b));
  c.Pump();
  ASSERT_EQ(a->calls, 1);
  ASSERT_EQ(b->calls, 1);
  const bool a_won = a->text == "STORED\r\n";
  EXPECT_EQ(a_won ? b->text : a->text, "EXISTS\r\n");
  EXPECT_EQ(a_won ? a->text : b->text, "STORED\r\n");
  const std::string winner = a_won ? "A" : "B";
  c.ExpectSameStores({0, 1, 2});
  EXPECT_EQ(c.Stored(0, "default", "c")->value, winner);
  EXPECT_EQ(c.Do(kSpokeB, "get c\r\n"), OneHit("c", winner));
}

TEST(CacheNodeTest, FlushAllOfOneCacheFlushesItOnEveryTriadStoreOnly) {
  Cluster c;
  c.StartAll();
  ASSERT_EQ(c.Do(kSpokeA, Set("objects:a", "1")), "STORED\r\n");
  ASSERT_EQ(c.Do(kSpokeA, Set("objects:b", "2")), "STORED\r\n");
  ASSERT_EQ(c.Do(kSpokeA, Set("x", "3")), "STORED\r\n");
  ASSERT_EQ(c.Do(kSpokeA, Set("session:s", "4")), "STORED\r\n");
  // Spoke B holds a copy of objects:a.
  EXPECT_EQ(c.Do(kSpokeB, "get objects:a\r\n"), OneHit("objects:a", "1"));
  EXPECT_EQ(c.Do(kSpokeB, "get objects:a\r\n"), OneHit("objects:a", "1"));
  ASSERT_EQ(c.node(kSpokeB).stats().spoke_cache_validated, 1u);

  EXPECT_EQ(c.Do(kSpokeA, "flush_all objects\r\n"), "OK\r\n");
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE("triad " + std::to_string(i));
    for (const char* key : {"a", "b"}) {
      const std::optional<store::Record> record = c.Stored(i, "objects", key);
      EXPECT_TRUE(!record || record->IsGoneAt(c.Now())) << key;
    }
    const std::optional<store::Record> x = c.Stored(i, "default", "x");
    ASSERT_TRUE(x.has_value());
    EXPECT_FALSE(x->IsGoneAt(c.Now()));
    const std::optional<store::Record> s = c.Stored(i, "session", "s");
    ASSERT_TRUE(s.has_value());
    EXPECT_FALSE(s->IsGoneAt(c.Now()));
  }
  c.ExpectSameStores({0, 1, 2});
  EXPECT_EQ(c.Do(kSpokeB, "get objects:a objects:b x session:s\r\n"),
            Hit("x", "3") + Hit("session:s", "4") + "END\r\n");
  // The cache works on after the flush.
  EXPECT_EQ(c.Do(kSpokeB, Set("objects:a", "5")), "STORED\r\n");
  EXPECT_EQ(c.Do(kSpokeA, "get objects:a\r\n"), OneHit("objects:a", "5"));
}

// A write and a flush of the same cache by different owners cross on the wire:
// whatever the outcome, the replicas must agree on it.
TEST(CacheNodeTest, FlushCrossingAWriteLeavesTheReplicasAgreeing) {
  Cluster c;
  c.StartAll();
  const int flusher = c.OwnerOf("objects", "");
  const int writer = flusher == 0 ? 1 : 0;
  const int third = 3 - flusher - writer;
  const std::string key = Cluster::KeyOwnedBy(writer, "objects", "w");
  AnswerPtr set = c.Send(kSpokeA, Set("objects:" + key, "written"));
  ASSERT_TRUE(c.DeliverOne(kSpokeA, writer));  // the writer stores it, replicates it
  c.Advance(1);
  AnswerPtr flush = c.Send(kSpokeB, "flush_all objects\r\n");
  ASSERT_TRUE(c.DeliverOne(kSpokeB, flusher));  // the flusher flushes, replicates it
  // The flush overtakes the write on its way to the third server and the flusher.
  ASSERT_TRUE(c.DeliverOne(flusher, third));
  c.Pump();
  EXPECT_EQ(set->text, "STORED\r\n");
  EXPECT_EQ(flush->text, "OK\r\n");
  c.ExpectSameStores({0, 1, 2});
  // The key looks the same whichever server owns it.
  const std::string before = c.Do(kSpokeA, "get objects:" + key + "\r\n");
  c.Kill(writer);
  c.Heartbeats();
  EXPECT_EQ(c.Do(kSpokeA, "get objects:" + key + "\r\n"), before);
}

TEST(CacheNodeTest, IdleTimeoutCacheRefreshesOnReadAndExpiresWhenIdle) {
  Cluster c;
  c.StartAll();
  const int64_t t0 = c.Now();
  ASSERT_EQ(c.Do(kSpokeA, Set("session:u", "user")), "STORED\r\n");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(c.Stored(i, "session", "u")->expiry_unix_ms, t0 + 30 * kMinute) << i;
  }
  // A longer exptime is capped by the idle timeout.
  ASSERT_EQ(c.Do(kSpokeA, Set("session:long", "x", 0, 7200)), "STORED\r\n");
  EXPECT_EQ(c.Stored(0, "session", "long")->expiry_unix_ms, t0 + 30 * kMinute);

  // Read early: no refresh (no write).
  c.Advance(10 * kMinute);
  EXPECT_EQ(c.Do(kSpokeB, "get session:u\r\n"), OneHit("session:u", "user"));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(c.Stored(i, "session", "u")->expiry_unix_ms, t0 + 30 * kMinute) << i;
  }
  // Read after more than half the timeout: refreshed on every triad store.
  c.Advance(6 * kMinute);
  const uint64_t writes_before = c.node(c.OwnerOf("session", "u")).stats().replicated;
  EXPECT_EQ(c.Do(kSpokeB, "get session:u\r\n"), OneHit("session:u", "user"));
  c.Pump();
  EXPECT_EQ(c.node(c.OwnerOf("session", "u")).stats().replicated, writes_before + 1);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(c.Stored(i, "session", "u")->expiry_unix_ms, t0 + 46 * kMinute) << i;
  }
  c.ExpectSameStores({0, 1, 2});
  // 29 minutes later it is still there (and refreshed again)...
  c.Advance(29 * kMinute);
  EXPECT_EQ(c.Do(kSpokeA, "get session:u\r\n"), OneHit("session:u", "user"));
  c.Pump();
  // ...and after 31 minutes without access it is gone, everywhere.
  c.Advance(31 * kMinute);
  EXPECT_EQ(c.Do(kSpokeA, "get session:u\r\n"), "END\r\n");
  EXPECT_EQ(c.Do(kSpokeB, "get session:u\r\n"), "END\r\n");
  for (int i = 0; i < 3; ++i) {
    const std::optional<store::Record> record = c.Stored(i, "session", "u");
    EXPECT_TRUE(!record || record->IsGoneAt(c.Now())) << i;
  }
  // The never-read key went at its first expiry.
  EXPECT_EQ(c.Do(kSpokeA, "get session:long\r\n"), "END\r\n");
}

// idle_timeout: "expire after this long unread or unwritten". incr and append are
// writes.
TEST(CacheNodeTest, IdleTimeoutCacheRefreshesOnIncrAndAppend) {
  Cluster c;
  c.StartAll();
  const int64_t t0 = c.Now();
  ASSERT_EQ(c.Do(kSpokeA, Set("session:n", "1")), "STORED\r\n");
  ASSERT_EQ(c.Do(kSpokeA, Set("session:t", "a")), "STORED\r\n");
  c.Advance(20 * kMinute);
  EXPECT_EQ(c.Do(kSpokeA, "incr session:n 1\r\n"), "2\r\n");
  EXPECT_EQ(c.Do(kSpokeA, Set("session:t", "b", 0, 0, "append")), "STORED\r\n");
  EXPECT_EQ(c.Stored(0, "session", "n")->expiry_unix_ms, t0 + 50 * kMinute);
  EXPECT_EQ(c.Stored(0, "session", "t")->expiry_unix_ms, t0 + 50 * kMinute);
  c.Advance(15 * kMinute);  // 15 minutes after the last write
  EXPECT_EQ(c.Do(kSpokeB, "get session:n session:t\r\n"),
            Hit("session:n", "2") + Hit("session:t", "ab") + "END\r\n");
}

// A server restarted with its store keeps no memory of the versions in it; with a
// wall clock behind the other servers' its writes must still win over older ones.
TEST(CacheNodeTest, RestartedOwnerWithASlowClockStillOverwrites) {
  Cluster c;
  c.StartAll();
  const std::string key = Cluster::KeyOwnedBy(0, "default", "skew");
  c.SetClockOffset(0, -10'000);  // server 0's clock is 10 s behind
  c.Kill(0);
  c.Heartbeats();
  ASSERT_EQ(c.Do(kSpokeA, Set(key, "one")), "STORED\r\n");  // by server 1 or 2
  c.StartNode(0);
  c.ConnectAll();
  c.Pump();  // server 0 pulls the record
  c.Kill(0);
  c.StartNode(0);  // restarted again: its store is up to date, nothing to pull
  c.ConnectAll();
  c.Pump();
  c.Heartbeats();
  EXPECT_EQ(c.node(0).stats().buckets_pulled, 0u);
  ASSERT_EQ(c.OwnerOf("default", key), 0);
  c.Advance(1000);
  EXPECT_EQ(c.Do(kSpokeA, Set(key, "two")), "STORED\r\n");
  EXPECT_EQ(c.Do(kSpokeB, "get " + key + "\r\n"), OneHit(key, "two"));
}

// --- No owner, stopping.

TEST(CacheNodeTest, NoReadyTriadServerMeansServerErrorNotACrash) {
  Cluster c;
  c.StartNode(kSpokeA);
  for (const std::string& request :
       {std::string("get k\r\n"), std::string("gets a b c\r\n"), Set("k", "v"),
        std::string("delete k\r\n"), std::string("incr k 1\r\n"), std::string("touch k 10\r\n"),
        std::string("flush_all objects\r\n"), Set("session:x", "v")}) {
    const std::string reply = c.DoPastDeadline(kSpokeA, request);
    EXPECT_TRUE(reply.starts_with("SERVER_ERROR")) << request << " -> " << reply;
  }
  EXPECT_EQ(c.node(kSpokeA).stats().failed, 10u);  // "gets a b c" fails three keys
  EXPECT_TRUE(c.Do(kSpokeA, "version\r\n").starts_with("VERSION "));
  EXPECT_TRUE(c.Do(kSpokeA, "stats\r\n").starts_with("STAT "));

  // Triad servers that have not caught up own nothing either.
  c.StartNode(0);
  c.StartNode(1);
  c.Connect(0, 1);
  c.Connect(0, kSpokeA);
  c.Heartbeats();
  ASSERT_FALSE(c.node(0).store_ready());  // the timeout has not passed
  // They answer nothing from a store that has not caught up: the requests wait.
  AnswerPtr get = c.Send(0, "get k\r\n");
  AnswerPtr set = c.Send(kSpokeA, Set("k", "v"));
  c.Pump();
  EXPECT_EQ(get->calls, 0) << get->text;
  EXPECT_EQ(set->calls, 0) << set->text;

  // A spoke with a stale idea of server 0 is refused by it, asks again until the
  // heartbeat timeout, then answers the client with an error.
  protocol::Heartbeat stale;
  stale.store_ready = true;
  stale.ready_seen = 1;
  stale.triad_links = 1;
  c.node(kSpokeA).OnPeerStoreState(0, stale);
  get = c.Send(kSpokeA, "get k\r\n");
  ASSERT_TRUE(c.DeliverOne(kSpokeA, 0));
  ASSERT_TRUE(c.DeliverOne(0, kSpokeA));
  EXPECT_EQ(get->calls, 0);  // a retry is scheduled
  c.Advance(10'000);
  c.RunTimers(std::chrono::milliseconds(60));
  c.Pump();
  EXPECT_EQ(get->calls, 1);
  EXPECT_TRUE(get->text.starts_with("SERVER_ERROR")) << get->text;
}

TEST(CacheNodeTest, StopAnswersPendingRequestsWithAnError) {
  Cluster c;
  c.StartAll();
  AnswerPtr get = c.Send(kSpokeA, "get k\r\n");
  AnswerPtr multi = c.Send(kSpokeA, "get a b c\r\n");
  AnswerPtr set = c.Send(kSpokeA, Set("k2", "v"));
  EXPECT_EQ(get->calls + multi->calls + set->calls, 0);
  c.node(kSpokeA).Stop();
  for (const AnswerPtr& answer : {get, multi, set}) {
    EXPECT_EQ(answer->calls, 1);
    EXPECT_TRUE(answer->text.starts_with("SERVER_ERROR")) << answer->text;
  }
  AnswerPtr late = c.Send(kSpokeA, "get k\r\n");
  EXPECT_EQ(late->calls, 1);
  EXPECT_TRUE(late->text.starts_with("SERVER_ERROR")) << late->text;
  c.Pump();  // the owners' answers arrive at a stopped node: ignored
  for (const AnswerPtr& answer : {get, multi, set}) EXPECT_EQ(answer->calls, 1);

  // An owner stopping while it waits for replicas.
  const std::string key = Cluster::KeyOwnedBy(1, "default", "stop");
  c.hold = [](int, int, const Message& message) { return Is<protocol::ReplicateAck>(message); };
  AnswerPtr direct = c.Send(1, Set(key, "v"));
  AnswerPtr via_spoke = c.Send(kSpokeB, Set(key, "w"));
  c.Pump();
  EXPECT_EQ(direct->calls, 0);
  EXPECT_EQ(via_spoke->calls, 0);
  c.node(1).Stop();
  EXPECT_EQ(direct->calls, 1);
  EXPECT_TRUE(direct->text.starts_with("SERVER_ERROR")) << direct->text;
  c.hold = nullptr;
  c.Pump();
  EXPECT_EQ(direct->calls, 1);
  // The spoke learns when the connection closes, and asks the next owner, which
  // has the record already.
  c.Kill(1);
  EXPECT_EQ(via_spoke->calls, 0);
  SettleRetries(c, via_spoke);
  EXPECT_EQ(via_spoke->text, "STORED\r\n");
}

// A delayed flush_all's timer must not outlive the node it belongs to. Run in a
// child process: a use after free aborts the child (under ASan), not the tests.
void DestroyANodeWithADelayedFlushPending() {
  Cluster c;
  c.StartAll();
  const std::string reply = c.Do(0, "flush_all objects 1\r\n");
  c.Kill(0);
  c.RunTimers(std::chrono::milliseconds(1300));
  std::exit(reply == "OK\r\n" ? 0 : 3);
}

TEST(CacheNodeDeathTest, DelayedFlushDoesNotOutliveTheNode) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(DestroyANodeWithADelayedFlushPending(), ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace cb::cache
