// Dynamic servers: who hands out which index (admission.h) and how Membership
// admits, spreads, frees and restores their identities.
#include "sidecar/membership/admission.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "sidecar/membership/membership.h"
#include "sidecar/testing/test_cluster_config.h"

namespace cb::membership {
namespace {

constexpr int64_t kStart = 1'700'000'000'000;
constexpr int64_t kDynamicTimeoutMs = 10'000;  // dynamic_server_timeout below

// `count` static servers s0.. at 127.0.0.1:7000+i (cluster) and :8000+i (http).
ClusterConfig StaticServers(int count) {
  return testing_support::StaticServersConfig(
      count,
      "heartbeat_interval = \"1s\"\nheartbeat_timeout = \"3s\"\ndynamic_server_timeout = \"10s\"");
}

ClusterConfig FiveServers() { return StaticServers(5); }

// A join request of dynamic server `id` at 10.0.1.<n>:7000 (cluster) and :8000 (http).
protocol::JoinRequest Join(const std::string& id, int n, int previous_index = -1) {
  protocol::JoinRequest request;
  request.server_id = id;
  request.cluster_address = "10.0.1." + std::to_string(n) + ":7000";
  request.http_address = "10.0.1." + std::to_string(n) + ":8000";
  request.weight = 100;
  request.previous_index = previous_index;
  return request;
}

// Admits `request` and returns its index; -1 (and a test failure) when refused.
int AdmitOk(Membership& triad, const protocol::JoinRequest& request, int64_t now = kStart) {
  Result<int> index = triad.Admit(request, now);
  EXPECT_TRUE(index.ok()) << request.server_id << ": " << index.status().ToString();
  return index.ok() ? index.value() : -1;
}

// An identity for dynamic index `index` as a triad server would publish it.
protocol::ServerRecord Identity(int index, const std::string& id, uint64_t admission, int n) {
  protocol::ServerRecord record;
  record.index = index;
  record.id = id;
  if (!id.empty()) {
    record.cluster_address = "10.0.1." + std::to_string(n) + ":7000";
    record.http_address = "10.0.1." + std::to_string(n) + ":8000";
  }
  record.weight = id.empty() ? 0 : 100;
  record.dynamic = true;
  record.admission = admission;
  return record;
}

ServerState StateIn(const Membership& membership, int index) {
  return membership.ToView(kStart).state(index);
}

const protocol::ServerRecord* RecordAt(const protocol::ViewUpdate& update, int index) {
  for (const protocol::ServerRecord& record : update.servers) {
    if (record.index == index) return &record;
  }
  return nullptr;
}

// --- admission.h ----------------------------------------------------------------

TEST(AdmissionTest, FirstDynamicIndexFollowsTheStaticServers) {
  EXPECT_EQ(FirstDynamicIndex(1), 3);
  EXPECT_EQ(FirstDynamicIndex(2), 3);
  EXPECT_EQ(FirstDynamicIndex(3), 3);
  EXPECT_EQ(FirstDynamicIndex(4), 4);
  EXPECT_EQ(FirstDynamicIndex(5), 5);
  EXPECT_EQ(Membership(FiveServers(), 0, 1, kStart).first_dynamic_index(), 5);
  EXPECT_EQ(Membership(StaticServers(1), 0, 1, kStart).first_dynamic_index(), 3);
}

TEST(AdmissionTest, SharesAreSplitByIndexModuloTheTriadSize) {
  // One static server: it is the whole triad and owns every dynamic index.
  for (int index = FirstDynamicIndex(1); index < kMaxServers; ++index) {
    EXPECT_EQ(AdmitterOf(index, 1), 0) << index;
  }
  // Two: the indices alternate between them.
  EXPECT_EQ(AdmitterOf(3, 2), 1);
  EXPECT_EQ(AdmitterOf(4, 2), 0);
  EXPECT_EQ(AdmitterOf(5, 2), 1);
  EXPECT_EQ(AdmitterOf(6, 2), 0);
  // Three or more: index mod 3.
  EXPECT_EQ(AdmitterOf(5, 5), 2);
  EXPECT_EQ(AdmitterOf(6, 5), 0);
  EXPECT_EQ(AdmitterOf(7, 5), 1);
  EXPECT_EQ(AdmitterOf(63, 5), 0);
  EXPECT_EQ(AdmitterOf(3, 3), 0);
  for (int static_count = 1; static_count <= 5; ++static_count) {
    for (int index = FirstDynamicIndex(static_count); index < kMaxServers; ++index) {
      const int admitter = AdmitterOf(index, static_count);
      EXPECT_GE(admitter, 0);
      EXPECT_LT(admitter, std::min(3, static_count)) << index << " of " << static_count;
    }
  }
}

TEST(AdmissionTest, AcceptsAGoodRequest) {
  const ClusterConfig config = FiveServers();
  EXPECT_TRUE(CheckJoinRequest(Join("d-a", 1), config).ok());
  protocol::JoinRequest named = Join(std::string(kMaxIdLength, 'a'), 2);  // 63 characters
  named.weight = static_cast<uint32_t>(kMaxWeight);
  named.cluster_address = "cache-7.example.com:7000";
  named.http_address = "[::1]:8080";
  EXPECT_TRUE(CheckJoinRequest(named, config).ok()) << CheckJoinRequest(named, config).ToString();
  protocol::JoinRequest weightless = Join("Node_3.b-c", 3);
  weightless.weight = 0;
  EXPECT_TRUE(CheckJoinRequest(weightless, config).ok());
}

TEST(AdmissionTest, RefusesInvalidIds) {
  const ClusterConfig config = FiveServers();
  for (const std::string& id :
       {std::string(), std::string(".hidden"), std::string("-dash"), std::string("has space"),
        std::string("slash/id"), std::string(kMaxIdLength + 1, 'a')}) {
    const Status status = CheckJoinRequest(Join(id, 1), config);
    EXPECT_EQ(status.code(), Status::Code::kInvalidArgument) << "\"" << id << "\"";
    EXPECT_NE(status.message().find("id"), std::string::npos) << status.message();
  }
}

TEST(AdmissionTest, RefusesTheIdOfAStaticServer) {
  const ClusterConfig config = FiveServers();
  for (const char* id : {"s0", "s3", "s4"}) {
    const Status status = CheckJoinRequest(Join(id, 1), config);
    EXPECT_EQ(status.code(), Status::Code::kInvalidArgument) << id;
    EXPECT_NE(status.message().find(id), std::string::npos) << status.message();
  }
}

TEST(AdmissionTest, RefusesUnparsableOrOverlongAddresses) {
  const ClusterConfig config = FiveServers();
  const std::string overlong = std::string(kMaxAddressLength, 'h') + ".example:7000";
  for (const std::string& address :
       {std::string(), std::string("10.0.0.1"), std::string("10.0.0.1:0"),
        std::string("10.0.0.1:70000"), std::string("10.0.0.1 :7000"), std::string(":7000"),
        overlong}) {
    protocol::JoinRequest cluster = Join("d-a", 1);
    cluster.cluster_address = address;
    Status status = CheckJoinRequest(cluster, config);
    EXPECT_EQ(status.code(), Status::Code::kInvalidArgument) << "cluster \"" << address << "\"";
    EXPECT_NE(status.message().find("cluster address"), std::string::npos) << status.message();

    protocol::JoinRequest http = Join("d-a", 1);
    http.http_address = address;
    status = CheckJoinRequest(http, config);
    EXPECT_EQ(status.code(), Status::Code::kInvalidArgument) << "http \"" << address << "\"";
    EXPECT_NE(status.message().find("http address"), std::string::npos) << status.message();
  }
}

TEST(AdmissionTest, RefusesAnAddressOfAStaticServer) {
  const ClusterConfig config = FiveServers();
  // Each of the four combinations: our cluster/http address equals a static
  // server's cluster/http address.
  protocol::JoinRequest request = Join("d-a", 1);
  request.cluster_address = "127.0.0.1:7002";
  EXPECT_EQ(CheckJoinRequest(request, config).code(), Status::Code::kInvalidArgument);
  EXPECT_NE(CheckJoinRequest(request, config).message().find("s2"), std::string::npos);

  request = Join("d-a", 1);
  request.cluster_address = "127.0.0.1:8004";
  EXPECT_EQ(CheckJoinRequest(request, config).code(), Status::Code::kInvalidArgument);

  request = Join("d-a", 1);
  request.http_address = "127.0.0.1:8000";
  EXPECT_EQ(CheckJoinRequest(request, config).code(), Status::Code::kInvalidArgument);

  request = Join("d-a", 1);
  request.http_address = "127.0.0.1:7001";
  EXPECT_EQ(CheckJoinRequest(request, config).code(), Status::Code::kInvalidArgument);

  // Another port on the same host is fine.
  request = Join("d-a", 1);
  request.cluster_address = "127.0.0.1:7100";
  request.http_address = "127.0.0.1:8100";
  EXPECT_TRUE(CheckJoinRequest(request, config).ok());
}

TEST(AdmissionTest, RefusesAWeightOverTheMaximum) {
  const ClusterConfig config = FiveServers();
  protocol::JoinRequest request = Join("d-a", 1);
  request.weight = static_cast<uint32_t>(kMaxWeight) + 1;
  const Status status = CheckJoinRequest(request, config);
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(status.message().find("weight"), std::string::npos) << status.message();
  request.weight = 4'000'000'000u;
  EXPECT_FALSE(CheckJoinRequest(request, config).ok());
  request.weight = static_cast<uint32_t>(kMaxWeight);
  EXPECT_TRUE(CheckJoinRequest(request, config).ok());
}

// --- Membership::Admit -------------------------------------------------------------

TEST(DynamicMembershipTest, EachTriadServerAdmitsFromItsOwnShare) {
  const ClusterConfig config = FiveServers();  // dynamic indices 5..63
  Membership triad0(config, 0, 1, kStart);
  Membership triad1(config, 1, 1, kStart);
  Membership triad2(config, 2, 1, kStart);
  EXPECT_EQ(AdmitOk(triad0, Join("d-a", 1)), 6);
  EXPECT_EQ(AdmitOk(triad0, Join("d-b", 2)), 9);
  EXPECT_EQ(AdmitOk(triad1, Join("d-c", 3)), 7);
  EXPECT_EQ(AdmitOk(triad1, Join("d-d", 4)), 10);
  EXPECT_EQ(AdmitOk(triad2, Join("d-e", 5)), 5);
  EXPECT_EQ(AdmitOk(triad2, Join("d-f", 6)), 8);

  // One static server: it owns everything from 3 on.
  Membership alone(StaticServers(1), 0, 1, kStart);
  EXPECT_EQ(AdmitOk(alone, Join("d-a", 1)), 3);
  EXPECT_EQ(AdmitOk(alone, Join("d-b", 2)), 4);
  EXPECT_EQ(AdmitOk(alone, Join("d-c", 3)), 5);

  // Two: they alternate.
  const ClusterConfig two = StaticServers(2);
  Membership pair0(two, 0, 1, kStart);
  Membership pair1(two, 1, 1, kStart);
  EXPECT_EQ(AdmitOk(pair0, Join("d-a", 1)), 4);
  EXPECT_EQ(AdmitOk(pair1, Join("d-b", 2)), 3);
  EXPECT_EQ(AdmitOk(pair0, Join("d-c", 3)), 6);
  EXPECT_EQ(AdmitOk(pair1, Join("d-d", 4)), 5);
}

// Partitioned triad servers, each admitting as many servers as it can: no index is
// given twice, and together they hand out every dynamic index.
TEST(DynamicMembershipTest, TriadServersAdmittingAtTheSameTimeNeverShareAnIndex) {
  const ClusterConfig config = FiveServers();
  std::vector<std::unique_ptr<Membership>> triad;
  for (int i = 0; i < 3; ++i) triad.push_back(std::make_unique<Membership>(config, i, 1, kStart));
  std::set<int> given;
  int admitted = 0;
  for (int round = 0; round < 25; ++round) {
    for (int i = 0; i < 3; ++i) {
      const std::string id = "d-" + std::to_string(i) + "-" + std::to_string(round);
      Result<int> index = triad[i]->Admit(Join(id, 3 * round + i + 1), kStart);
      if (!index.ok()) continue;
      ++admitted;
      EXPECT_EQ(AdmitterOf(index.value(), 5), i) << id << " got " << index.value();
      EXPECT_TRUE(given.insert(index.value()).second) << id << " got taken " << index.value();
    }
  }
  EXPECT_EQ(admitted, kMaxServers - 5);
  EXPECT_EQ(static_cast<int>(given.size()), kMaxServers - 5);
  EXPECT_EQ(*given.begin(), 5);
  EXPECT_EQ(*given.rbegin(), kMaxServers - 1);

  // Once they talk, everyone knows everyone, each at the index it was given.
  for (int from = 0; from < 3; ++from) {
    for (int to = 0; to < 3; ++to) {
      if (from != to) triad[to]->OnViewUpdate(from, triad[from]->FullUpdate(), kStart + 1);
    }
  }
  for (int i = 0; i < 3; ++i) {
    for (int index = 5; index < kMaxServers; ++index) {
      EXPECT_TRUE(triad[i]->Known(index)) << i << " knows " << index;
      EXPECT_EQ(triad[i]->record(index).id, triad[AdmitterOf(index, 5)]->record(index).id);
    }
  }
}

TEST(DynamicMembershipTest, AFullShareIsRefusedWithTheReason) {
  const ClusterConfig config = FiveServers();
  Membership triad0(config, 0, 1, kStart);
  int expected = 6;
  for (int n = 1; expected < kMaxServers; ++n, expected += 3) {
    EXPECT_EQ(AdmitOk(triad0, Join("d-" + std::to_string(n), n)), expected);
  }
  const uint64_t identities = triad0.identity_generation();
  Result<int> refused = triad0.Admit(Join("d-late", 200), kStart);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("no free index"), std::string::npos)
      << refused.status().message();
  EXPECT_EQ(triad0.IndexOf("d-late"), -1);
  EXPECT_EQ(triad0.identity_generation(), identities);
  // Another triad server's share is not affected.
  Membership triad1(config, 1, 1, kStart);
  triad1.OnViewUpdate(0, triad0.FullUpdate(), kStart);
  EXPECT_EQ(AdmitOk(triad1, Join("d-late", 200)), 7);
}

TEST(DynamicMembershipTest, ASpokeOrADynamicServerRefusesToAdmit) {
  const ClusterConfig config = FiveServers();
  Membership spoke(config, 3, 1, kStart);
  const uint64_t generation = spoke.generation();
  Result<int> refused = spoke.Admit(Join("d-a", 1), kStart);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(spoke.IndexOf("d-a"), -1);
  EXPECT_EQ(spoke.generation(), generation);
  EXPECT_EQ(spoke.identity_generation(), 0u);
  for (int index = spoke.first_dynamic_index(); index < kMaxServers; ++index) {
    EXPECT_FALSE(spoke.Known(index)) << index;
  }

  protocol::ServerRecord self = Identity(6, "d-a", 1, 1);
  Membership dynamic(config, self, 1, kStart);
  EXPECT_FALSE(dynamic.Admit(Join("d-b", 2), kStart).ok());
}

TEST(DynamicMembershipTest, ABadRequestChangesNothing) {
  Membership triad0(FiveServers(), 0, 1, kStart);
  const uint64_t generation = triad0.generation();
  EXPECT_FALSE(triad0.Admit(Join("s3", 1), kStart).ok());
  EXPECT_FALSE(triad0.Admit(Join(".x", 1), kStart).ok());
  protocol::JoinRequest heavy = Join("d-a", 1);
  heavy.weight = 2'000'000;
  EXPECT_FALSE(triad0.Admit(heavy, kStart).ok());
  protocol::JoinRequest clash = Join("d-a", 1);
  clash.http_address = "127.0.0.1:8003";
  EXPECT_FALSE(triad0.Admit(clash, kStart).ok());
  EXPECT_EQ(triad0.generation(), generation);
  EXPECT_EQ(triad0.identity_generation(), 0u);
  EXPECT_FALSE(triad0.Known(6));
  EXPECT_EQ(StateIn(triad0, 3), ServerState::kDown);  // s3 untouched
  EXPECT_FALSE(triad0.record(3).dynamic);
}

TEST(DynamicMembershipTest, AnAdmittedServerIsDownUntilItsConnectionIsAuthenticated) {
  const ClusterConfig config = FiveServers();
  Membership triad0(config, 0, 1, kStart);
  protocol::JoinRequest request = Join("d-a", 1);
  request.weight = 250;
  const int index = AdmitOk(triad0, request);
  ASSERT_EQ(index, 6);
  EXPECT_TRUE(triad0.Known(index));
  EXPECT_EQ(triad0.IndexOf("d-a"), index);
  const protocol::ServerRecord& record = triad0.record(index);
  EXPECT_EQ(record.index, index);
  EXPECT_EQ(record.id, "d-a");
  EXPECT_TRUE(record.dynamic);
  EXPECT_FALSE(record.alive);
  EXPECT_GT(record.admission, 0u);
  EXPECT_EQ(record.weight, 250u);

  ClusterView view = triad0.ToView(kStart);
  ASSERT_TRUE(view.Validate().ok());
  EXPECT_EQ(view.state(index), ServerState::kDown);
  EXPECT_EQ(view.server(index).flags & ViewServer::kFlagDynamic, ViewServer::kFlagDynamic);
  EXPECT_EQ(view.server(index).id_view(), "d-a");
  EXPECT_EQ(view.server(index).http_address_view(), "10.0.1.1:8000");
  EXPECT_EQ(view.server(index).cluster_address_view(), "10.0.1.1:7000");
  EXPECT_EQ(view.server(index).weight, 250u);
  EXPECT_EQ(view.server(4).flags & ViewServer::kFlagDynamic, 0);  // static servers are not
  EXPECT_TRUE(triad0.MayConnect(index));

  EXPECT_TRUE(triad0.OnPeerAuthenticated(index, 4, kStart + 100));
  view = triad0.ToView(kStart + 200);
  ASSERT_TRUE(view.Validate().ok());
  EXPECT_EQ(view.state(index), ServerState::kUp);
  EXPECT_EQ(view.server(index).incarnation, 4u);
  EXPECT_EQ(view.server(index).up_since_unix_ms, kStart + 100);
  EXPECT_EQ(view.server(index).flags & ViewServer::kFlagDynamic, ViewServer::kFlagDynamic);
}

TEST(DynamicMembershipTest, ANeverAdmittedDynamicIndexCannotConnect) {
  Membership triad0(FiveServers(), 0, 1, kStart);
  EXPECT_FALSE(triad0.MayConnect(6));
  EXPECT_FALSE(triad0.OnPeerAuthenticated(6, 1, kStart));
  EXPECT_FALSE(triad0.Known(6));
  EXPECT_EQ(StateIn(triad0, 6), ServerState::kAbsent);
}

TEST(DynamicMembershipTest, TheSameIdAdmittedAgainKeepsItsIndex) {
  const ClusterConfig config = FiveServers();
  Membership triad0(config, 0, 1, kStart);
  const protocol::JoinRequest request = Join("d-a", 1);
  ASSERT_EQ(AdmitOk(triad0, request), 6);
  ASSERT_EQ(AdmitOk(triad0, Join("d-b", 2)), 9);
  const uint64_t admission = triad0.record(6).admission;
  const uint64_t identities = triad0.identity_generation();
  triad0.OnPeerAuthenticated(6, 2, kStart + 1);

  // Nothing changed: same index, same admission, nothing to save.
  EXPECT_EQ(AdmitOk(triad0, request, kStart + 2), 6);
  EXPECT_EQ(triad0.record(6).admission, admission);
  EXPECT_EQ(triad0.identity_generation(), identities);
  // Another previous index (free, of our share; or taken) does not move it.
  for (int previous : {12, 9, 63, -1}) {
    protocol::JoinRequest moved = request;
    moved.previous_index = previous;
    EXPECT_EQ(AdmitOk(triad0, moved, kStart + 3), 6) << previous;
  }
  // One of another share that we never heard of: what we know may be stale (that
  // admitter may have moved it meanwhile), so it is asked to come back later.
  for (int previous : {7, 5}) {
    protocol::JoinRequest moved = request;
    moved.previous_index = previous;
    Result<int> refused = triad0.Admit(moved, kStart + 3);
    ASSERT_FALSE(refused.ok()) << previous;
    EXPECT_NE(refused.status().message().find("not known here yet"), std::string::npos);
  }
  EXPECT_EQ(triad0.record(6).admission, admission);
  EXPECT_EQ(triad0.identity_generation(), identities);
  EXPECT_FALSE(triad0.Known(12));

  // New addresses while it is connected at the old ones: the same id on two
  // machines, refused.
  protocol::JoinRequest changed = request;
  changed.cluster_address = "10.0.9.9:7000";
  changed.http_address = "10.0.9.9:8000";
  changed.weight = 40;
  Result<int> twice = triad0.Admit(changed, kStart + 4);
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.status().message().find("two machines"), std::string::npos)
      << twice.status().message();
  EXPECT_EQ(triad0.record(6).cluster_address, "10.0.1.1:7000");

  // Once it is gone, new addresses and weight are taken, with a raised admission.
  triad0.OnPeerClosed(6, kStart + 4);
  EXPECT_EQ(AdmitOk(triad0, changed, kStart + 4), 6);
  EXPECT_EQ(triad0.record(6).cluster_address, "10.0.9.9:7000");
  EXPECT_EQ(triad0.record(6).http_address, "10.0.9.9:8000");
  EXPECT_EQ(triad0.record(6).weight, 40u);
  EXPECT_GT(triad0.record(6).admission, admission);
  EXPECT_GT(triad0.identity_generation(), identities);
  EXPECT_EQ(triad0.ToView(kStart + 4).server(6).http_address_view(), "10.0.9.9:8000");
  EXPECT_EQ(triad0.IndexOf("d-a"), 6);

  // Only the weight: still a change.
  const uint64_t readmitted = triad0.record(6).admission;
  changed.weight = 41;
  EXPECT_EQ(AdmitOk(triad0, changed, kStart + 5), 6);
  EXPECT_GT(triad0.record(6).admission, readmitted);
  EXPECT_EQ(triad0.record(9).id, "d-b");  // the other one untouched
}

// A server admitted by one triad server rejoins through another: that one confirms
// the index by id, although it is not of its own share.
TEST(DynamicMembershipTest, AnyTriadServerConfirmsAKnownServersIndex) {
  const ClusterConfig config = FiveServers();
  Membership triad0(config, 0, 1, kStart);
  Membership triad1(config, 1, 1, kStart);
  ASSERT_EQ(AdmitOk(triad0, Join("d-a", 1)), 6);
  triad1.OnViewUpdate(0, triad0.FullUpdate(), kStart + 1);
  EXPECT_EQ(AdmitOk(triad1, Join("d-a", 1, 6)), 6);
  EXPECT_EQ(AdmitOk(triad1, Join("d-a", 1)), 6);
  EXPECT_EQ(triad1.record(6).admission, triad0.record(6).admission);
  EXPECT_FALSE(triad1.Known(7));
}

TEST(DynamicMembershipTest, APreviousIndexIsHonouredOnlyWhenFreeAndInTheShare) {
  const ClusterConfig config = FiveServers();
  Membership triad0(config, 0, 1, kStart);
  EXPECT_EQ(AdmitOk(triad0, Join("d-a", 1, 12)), 12);  // free, ours
  EXPECT_EQ(AdmitOk(triad0, Join("d-c", 3, 12)), 6);   // taken
  EXPECT_EQ(AdmitOk(triad0, Join("d-e", 5, 3)), 9);    // a static index
  EXPECT_EQ(AdmitOk(triad0, Join("d-f", 6, 0)), 15);   // triad0 itself
  EXPECT_EQ(AdmitOk(triad0, Join("d-g", 7, 64)), 18);  // out of range
  EXPECT_EQ(AdmitOk(triad0, Join("d-h", 8, 63)), 63);  // the last one, ours
  EXPECT_EQ(AdmitOk(triad0, Join("d-i", 9, -7)), 21);
  // An index of another share that this server has never heard of: its admitter
  // has not told us yet, so the server is asked to come back rather than given a
  // second index.
  for (int foreign : {7, 5}) {
    Result<int> refused = triad0.Admit(Join("d-b", 2, foreign), kStart);
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.status().message().find("not known here yet"), std::string::npos)
        << refused.status().message();
  }
  EXPECT_FALSE(triad0.Known(7));
  EXPECT_FALSE(triad0.Known(5));

  Membership triad2(config, 2, 1, kStart);
  EXPECT_EQ(AdmitOk(triad2, Join("d-x", 20, 62)), 62);
  EXPECT_FALSE(triad2.Admit(Join("d-y", 21, 63), kStart).ok());
  // Once triad0's word arrives, 63 is known to be d-h's: d-y gets one of triad2's.
  triad2.OnViewUpdate(0, triad0.FullUpdate(), kStart + 1);
  EXPECT_EQ(AdmitOk(triad2, Join("d-y", 21, 63)), 5);
  // And a server triad0 admitted is confirmed by triad2 at its index.
  EXPECT_EQ(AdmitOk(triad2, Join("d-h", 8, 63)), 63);
}

TEST(DynamicMembershipTest, AnAddressOfALiveDynamicServerIsRefused) {
  const ClusterConfig config = FiveServers();
  Membership triad0(config, 0, 1, kStart);
  ASSERT_EQ(AdmitOk(triad0, Join("d-a", 1)), 6);
  triad0.OnPeerAuthenticated(6, 1, kStart);

  protocol::JoinRequest same_cluster = Join("d-b", 2);
  same_cluster.cluster_address = "10.0.1.1:7000";
  Result<int> refused = triad0.Admit(same_cluster, kStart + 1);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("d-a"), std::string::npos)
      << refused.status().message();

  protocol::JoinRequest same_http = Join("d-b", 2);
  same_http.http_address = "10.0.1.1:8000";
  EXPECT_FALSE(triad0.Admit(same_http, kStart + 1).ok());
  EXPECT_EQ(triad0.IndexOf("d-b"), -1);
  EXPECT_FALSE(triad0.Known(9));

  // Its own addresses are its own.
  EXPECT_EQ(AdmitOk(triad0, Join("d-a", 1), kStart + 2), 6);
  // Other addresses: fine.
  EXPECT_EQ(AdmitOk(triad0, Join("d-b", 2), kStart + 3), 9);

  // Down, d-a does not hold its addresses against a newcomer.
  triad0.OnPeerClosed(6, kStart + 4);
  EXPECT_EQ(AdmitOk(triad0, same_http, kStart + 5), 9);  // d-b moves to d-a's http address
  protocol::JoinRequest reuse = Join("d-c", 1);
  EXPECT_EQ(AdmitOk(triad0, reuse, kStart + 6), 12);
}

// An address is in use whichever role it has: nobody else can listen on the http
// port of a live server, so a cluster address equal to it is as wrong (the static
// servers' addresses are checked that way too).
TEST(DynamicMembershipTest, AnAddressOfALiveDynamicServerIsRefusedInEitherRole) {
  Membership triad0(FiveServers(), 0, 1, kStart);
  ASSERT_EQ(AdmitOk(triad0, Join("d-a", 1)), 6);
  triad0.OnPeerAuthenticated(6, 1, kStart);

  protocol::JoinRequest cluster_on_http = Join("d-b", 2);
  cluster_on_http.cluster_address = "10.0.1.1:8000";  // d-a's http address
  EXPECT_FALSE(triad0.Admit(cluster_on_http, kStart + 1).ok());
  protocol::JoinRequest http_on_cluster = Join("d-c", 3);
  http_on_cluster.http_address = "10.0.1.1:7000";  // d-a's cluster address
  EXPECT_FALSE(triad0.Admit(http_on_cluster, kStart + 1).ok());
  EXPECT_EQ(triad0.IndexOf("d-b"), -1);
  EXPECT_EQ(triad0.IndexOf("d-c"), -1);
}

// --- Spreading ---------------------------------------------------------------------

TEST(DynamicMembershipTest, TheIdentitySpreadsFromTheAdmittingTriadServer) {
  const ClusterConfig config = FiveServers();
  Membership triad0(config, 0, 1, kStart);
  Membership triad1(config, 1, 1, kStart);
  Membership spoke(config, 3, 1, kStart);
  spoke.OnPeerAuthenticated(0, 1, kStart);
  ASSERT_EQ(AdmitOk(triad0, Join("d-a", 1)), 6);

  EXPECT_TRUE(triad1.OnViewUpdate(0, triad0.FullUpdate(), kStart + 1));
  EXPECT_TRUE(spoke.OnViewUpdate(0, triad0.FullUpdate(), kStart + 1));
  for (const Membership* member : {&triad1, &spoke}) {
    EXPECT_TRUE(member->Known(6));
    EXPECT_EQ(member->IndexOf("d-a"), 6);
    EXPECT_TRUE(member->record(6).dynamic);
    EXPECT_EQ(member->record(6).admission, triad0.record(6).admission);
    const ClusterView view = member->ToView(kStart + 1);
    ASSERT_TRUE(view.Validate().ok());
    EXPECT_EQ(view.state(6), ServerState::kDown);
    EXPECT_EQ(view.server(6).id_view(), "d-a");
    EXPECT_EQ(view.server(6).http_address_view(), "10.0.1.1:8000");
    EXPECT_EQ(view.server(6).flags & ViewServer::kFlagDynamic, ViewServer::kFlagDynamic);
  }
  EXPECT_FALSE(spoke.MayConnect(6));  // spokes never talk to each other
  EXPECT_TRUE(triad1.MayConnect(6));

  // It connects to triad0: the spoke learns that it is up from triad0.
  triad0.OnPeerAuthenticated(6, 5, kStart + 2);
  EXPECT_TRUE(spoke.OnViewUpdate(0, triad0.FullUpdate(), kStart + 3));
  EXPECT_EQ(StateIn(spoke, 6), ServerState::kUp);
  EXPECT_EQ(spoke.record(6).incarnation, 5u);
  // A triad server trusts its own connections only.
  triad1.OnViewUpdate(0, triad0.FullUpdate(), kStart + 3);
  EXPECT_EQ(StateIn(triad1, 6), ServerState::kDown);
  EXPECT_TRUE(triad1.OnPeerAuthenticated(6, 5, kStart + 4));
  EXPECT_EQ(StateIn(triad1, 6), ServerState::kUp);

  // A merged identity is not merged twice.
  const uint64_t identities = spoke.identity_generation();
  EXPECT_FALSE(spoke.OnViewUpdate(0, triad0.FullUpdate(), kStart + 5));
  EXPECT_EQ(spoke.identity_generation(), identities);
}

TEST(DynamicMembershipTest, ChangedAddressesSpreadAndTheRestartedServerIsUp) {
  const ClusterConfig config = FiveServers();
  Membership triad0(config, 0, 1, kStart);
  Membership spoke(config, 3, 1, kStart);
  ASSERT_EQ(AdmitOk(triad0, Join("d-a", 1)), 6);
  triad0.OnPeerAuthenticated(6, 2, kStart);
  spoke.OnViewUpdate(0, triad0.FullUpdate(), kStart + 1);
  ASSERT_EQ(StateIn(spoke, 6), ServerState::kUp);

  // It restarts on another machine: the old connection is gone first.
  triad0.OnPeerClosed(6, kStart + 2);
  protocol::JoinRequest moved = Join("d-a", 9);
  ASSERT_EQ(AdmitOk(triad0, moved, kStart + 2), 6);
  triad0.OnPeerAuthenticated(6, 3, kStart + 2);
  EXPECT_TRUE(spoke.OnViewUpdate(0, triad0.FullUpdate(), kStart + 3));
  EXPECT_EQ(spoke.record(6).http_address, "10.0.1.9:8000");
  EXPECT_EQ(spoke.record(6).admission, triad0.record(6).admission);
  EXPECT_EQ(StateIn(spoke, 6), ServerState::kUp);
  EXPECT_EQ(spoke.record(6).incarnation, 3u);
}

// --- Freeing -----------------------------------------------------------------------

TEST(DynamicMembershipTest, AServerDownForTheTimeoutIsFreedEverywhere) {
  const ClusterConfig config = FiveServers();
  ASSERT_EQ(config.dynamic_server_timeout.count(), kDynamicTimeoutMs);
  Membership triad0(config, 0, 1, kStart);
  Membership triad1(config, 1, 1, kStart);
  Membership spoke(config, 3, 1, kStart);
  ASSERT_EQ(AdmitOk(triad0, Join("d-a", 1)), 6);
  ASSERT_EQ(AdmitOk(triad0, Join("d-b", 2)), 9);
  triad0.OnPeerAuthenticated(6, 3, kStart + 1000);
  triad0.OnPeerAuthenticated(9, 1, kStart + 1000);
  const int64_t closed = kStart + 2000;
  triad0.OnPeerClosed(6, closed);
  triad1.OnViewUpdate(0, triad0.FullUpdate(), closed);
  spoke.OnViewUpdate(0, triad0.FullUpdate(), closed);
  ASSERT_TRUE(triad1.Known(6));
  ASSERT_TRUE(spoke.Known(6));
  const uint64_t admission = triad0.record(6).admission;
  const uint64_t identities = triad0.identity_generation();

  EXPECT_TRUE(triad0.FreeLongDownDynamicServers(closed).empty());
  EXPECT_TRUE(triad0.FreeLongDownDynamicServers(closed + kDynamicTimeoutMs - 1).empty());
  EXPECT_TRUE(triad0.Known(6));
  EXPECT_EQ(triad0.identity_generation(), identities);
  EXPECT_TRUE(spoke.FreeLongDownDynamicServers(closed + 10 * kDynamicTimeoutMs).empty());
  EXPECT_TRUE(spoke.Known(6));  // only the triad frees

  const int64_t later = closed + kDynamicTimeoutMs + 1;
  EXPECT_EQ(triad0.FreeLongDownDynamicServers(later), std::vector<std::string>{"d-a"});
  EXPECT_FALSE(triad0.Known(6));
  EXPECT_EQ(triad0.IndexOf("d-a"), -1);
  EXPECT_FALSE(triad0.MayConnect(6));
  EXPECT_EQ(triad0.ToView(later).state(6), ServerState::kAbsent);
  EXPECT_TRUE(triad0.ToView(later).Validate().ok());
  EXPECT_GT(triad0.identity_generation(), identities);
  EXPECT_TRUE(triad0.Known(9));                                       // up: stays
  EXPECT_TRUE(triad0.FreeLongDownDynamicServers(later + 1).empty());  // once

  // The tombstone travels.
  const protocol::ViewUpdate update = triad0.FullUpdate();
  const protocol::ServerRecord* tombstone = RecordAt(update, 6);
  ASSERT_NE(tombstone, nullptr);
  EXPECT_TRUE(tombstone->id.empty());
  EXPECT_GT(tombstone->admission, admission);
  for (Membership* member : {&triad1, &spoke}) {
    const uint64_t before = member->identity_generation();
    EXPECT_TRUE(member->OnViewUpdate(0, update, later + 1));
    EXPECT_FALSE(member->Known(6));
    EXPECT_EQ(member->IndexOf("d-a"), -1);
    EXPECT_EQ(member->ToView(later + 1).state(6), ServerState::kAbsent);
    EXPECT_TRUE(member->ToView(later + 1).Validate().ok());
    EXPECT_GT(member->identity_generation(), before);
    EXPECT_EQ(member->record(6).admission, tombstone->admission);
    EXPECT_TRUE(member->Known(9));
  }
  // And the old identity, arriving late, does not bring it back.
  protocol::ServerRecord stale = Identity(6, "d-a", admission, 1);
  stale.alive = true;
  stale.incarnation = 3;
  EXPECT_FALSE(spoke.OnViewUpdate(1, protocol::ViewUpdate{{stale}}, later + 2));
  EXPECT_FALSE(spoke.Known(6));
}

TEST(DynamicMembershipTest, AServerThatNeverConnectsIsFreedAfterTheTimeout) {
  Membership triad0(FiveServers(), 0, 1, kStart);
  ASSERT_EQ(AdmitOk(triad0, Join("d-a", 1)), 6);
  EXPECT_TRUE(triad0.FreeLongDownDynamicServers(kStart + kDynamicTimeoutMs - 1).empty());
  EXPECT_EQ(triad0.FreeLongDownDynamicServers(kStart + kDynamicTimeoutMs + 1),
            std::vector<std::string>{"d-a"});
  EXPECT_FALSE(triad0.Known(6));
}

TEST(DynamicMembershipTest, AConnectedServerIsNeverFreed) {
  Membership triad0(FiveServers(), 0, 1, kStart);
  ASSERT_EQ(AdmitOk(triad0, Join("d-a", 1)), 6);
  triad0.OnPeerAuthenticated(6, 1, kStart + 5);
  for (int64_t hours = 1; hours <= 48; hours *= 2) {
    EXPECT_TRUE(triad0.FreeLongDownDynamicServers(kStart + hours * 3'600'000).empty()) << hours;
  }
  EXPECT_TRUE(triad0.Known(6));
  EXPECT_TRUE(triad0.connected(6));
  EXPECT_EQ(StateIn(triad0, 6), ServerState::kUp);

  // Silent: marked down; the timeout counts from then.
  const int64_t silent = kStart + 100 * 3'600'000LL;
  EXPECT_EQ(triad0.Tick(silent), std::vector<int>{6});
  EXPECT_TRUE(triad0.FreeLongDownDynamicServers(silent + kDynamicTimeoutMs - 1).empty());
  EXPECT_EQ(triad0.FreeLongDownDynamicServers(silent + kDynamicTimeoutMs + 1),
            std::vector<std::string>{"d-a"});
}

TEST(DynamicMembershipTest, AServerBackBeforeTheTimeoutIsNotFreed) {
  Membership triad0(FiveServers(), 0, 1, kStart);
  ASSERT_EQ(AdmitOk(triad0, Join("d-a", 1)), 6);
  triad0.OnPeerAuthenticated(6, 1, kStart);
  triad0.OnPeerClosed(6, kStart + 1000);
  triad0.OnPeerAuthenticated(6, 2, kStart + 1000 + kDynamicTimeoutMs - 10);
  triad0.OnPeerClosed(6, kStart + 1000 + kDynamicTimeoutMs - 5);
  // Down twice, never for the whole timeout.
  EXPECT_TRUE(triad0.FreeLongDownDynamicServers(kStart + 1000 + kDynamicTimeoutMs + 1).empty());
  EXPECT_TRUE(triad0.Known(6));
}

TEST(DynamicMembershipTest, AFreedIndexIsGivenToTheNextServer) {
  const ClusterConfig config = FiveServers();
  Membership triad0(config, 0, 1, kStart);
  ASSERT_EQ(AdmitOk(triad0, Join("d-a", 1)), 6);
  const uint64_t first = triad0.record(6).admission;
  const int64_t later = kStart + kDynamicTimeoutMs + 1;
  ASSERT_EQ(triad0.FreeLongDownDynamicServers(later).size(), 1u);
  const uint64_t tombstone = triad0.record(6).admission;
  EXPECT_GT(tombstone, first);

  EXPECT_EQ(AdmitOk(triad0, Join("d-b", 2), later + 1), 6);
  EXPECT_EQ(triad0.record(6).id, "d-b");
  EXPECT_GT(triad0.record(6).admission, tombstone);
  EXPECT_FALSE(triad0.record(6).alive);
  EXPECT_FALSE(triad0.record(6).draining);
  // d-a returns, asking for its old index: taken, so it gets another.
  EXPECT_EQ(AdmitOk(triad0, Join("d-a", 1, 6), later + 2), 9);

  // Another sidecar that knew d-a at 6 follows: d-b replaces it.
  Membership spoke(config, 3, 1, kStart);
  spoke.OnViewUpdate(0, protocol::ViewUpdate{{Identity(6, "d-a", first, 1)}}, kStart);
  ASSERT_EQ(spoke.record(6).id, "d-a");
  spoke.OnViewUpdate(0, triad0.FullUpdate(), later + 3);
  EXPECT_EQ(spoke.record(6).id, "d-b");
  EXPECT_EQ(spoke.record(9).id, "d-a");
}

TEST(DynamicMembershipTest, ANewOccupantInheritsNothingOfTheOldOne) {
  const ClusterConfig config = FiveServers();
  Membership triad0(config, 0, 1, kStart);
  Membership spoke(config, 3, 1, kStart);
  ASSERT_EQ(AdmitOk(triad0, Join("d-a", 1)), 6);
  triad0.OnPeerAuthenticated(6, 9, kStart);
  ASSERT_TRUE(triad0.SetDraining("d-a", true).ok());
  spoke.OnViewUpdate(0, triad0.FullUpdate(), kStart + 1);
  ASSERT_EQ(StateIn(spoke, 6), ServerState::kDraining);
  triad0.OnPeerClosed(6, kStart + 2);
  ASSERT_EQ(triad0.FreeLongDownDynamicServers(kStart + 3 + kDynamicTimeoutMs).size(), 1u);
  ASSERT_EQ(AdmitOk(triad0, Join("d-b", 2), kStart + 4 + kDynamicTimeoutMs), 6);
  // The spoke learns of the new occupant without the tombstone in between.
  spoke.OnViewUpdate(0, triad0.FullUpdate(), kStart + 4 + kDynamicTimeoutMs);
  EXPECT_EQ(spoke.record(6).id, "d-b");
  EXPECT_FALSE(spoke.record(6).draining);
  EXPECT_FALSE(spoke.record(6).alive);
  EXPECT_EQ(StateIn(spoke, 6), ServerState::kDown);
  // Its first start (a low incarnation) is believed.
  triad0.OnPeerAuthenticated(6, 1, kStart + 5 + kDynamicTimeoutMs);
  spoke.OnViewUpdate(0, triad0.FullUpdate(), kStart + 6 + kDynamicTimeoutMs);
  EXPECT_EQ(StateIn(spoke, 6), ServerState::kUp);
  EXPECT_EQ(spoke.record(6).incarnation, 1u);
}

// --- Conflicts ---------------------------------------------------------------------

// Two sidecars receive the same competing identities for one index in opposite
// orders: they end with the same one.
// Partitioned triad servers that both admitted one server (each from its own
// share): once they talk, every sidecar keeps the lower index and frees the other.
TEST(DynamicMembershipTest, AServerAdmittedTwiceKeepsTheLowerIndexEverywhere) {
  const ClusterConfig config = FiveServers();
  Membership triad0(config, 0, 1, kStart);
  Membership triad1(config, 1, 1, kStart);
  Membership spoke(config, 3, 1, kStart);
  ASSERT_EQ(AdmitOk(triad0, Join("d-a", 1)), 6);
  ASSERT_EQ(AdmitOk(triad1, Join("d-a", 1)), 7);
  triad0.OnViewUpdate(1, triad1.FullUpdate(), kStart + 1);
  triad1.OnViewUpdate(0, triad0.FullUpdate(), kStart + 1);
  spoke.OnViewUpdate(1, triad1.FullUpdate(), kStart + 2);  // the other order
  spoke.OnViewUpdate(0, triad0.FullUpdate(), kStart + 2);
  for (const Membership* sidecar : {&triad0, &triad1, &spoke}) {
    EXPECT_EQ(sidecar->IndexOf("d-a"), 6);
    EXPECT_FALSE(sidecar->Known(7));
    EXPECT_EQ(sidecar->ToView(kStart).state(7), ServerState::kAbsent);
  }
  // The server, claiming the freed index, is told its index.
  EXPECT_EQ(AdmitOk(triad1, Join("d-a", 1, 7)), 6);
}

// Admitted by two partitioned triad servers, the server never bounces between
// them: each refuses an index it has not heard of instead of moving it back.
TEST(DynamicMembershipTest, AServerAdmittedTwiceIsNotBouncedBetweenIndices) {
  const ClusterConfig config = FiveServers();
  Membership triad0(config, 0, 1, kStart);
  Membership triad1(config, 1, 1, kStart);
  ASSERT_EQ(AdmitOk(triad0, Join("d-a", 1)), 6);  // its answer was lost
  ASSERT_EQ(AdmitOk(triad1, Join("d-a", 1)), 7);
  Result<int> at_triad0 = triad0.Admit(Join("d-a", 1, 7), kStart);
  EXPECT_FALSE(at_triad0.ok());  // not moved back to 6 while 7 is unheard of
  EXPECT_EQ(AdmitOk(triad1, Join("d-a", 1, 7)), 7);
}

// A triad server that cannot reach a dynamic server, while its admitter can,
// leaves its index alone.
TEST(DynamicMembershipTest, OnlyTheAdmitterFreesAnIndex) {
  const ClusterConfig config = FiveServers();
  Membership triad0(config, 0, 1, kStart);
  Membership triad1(config, 1, 1, kStart);
  int64_t now = kStart;
  const int index = AdmitOk(triad0, Join("d-a", 1));
  triad0.OnPeerAuthenticated(index, 5, now);
  triad1.OnViewUpdate(0, triad0.FullUpdate(), now);
  for (int cycle = 0; cycle < 3; ++cycle) {
    now += kDynamicTimeoutMs + 1;
    triad0.OnHeartbeat(index, protocol::Heartbeat{5, 1, now}, now);
    EXPECT_TRUE(triad1.FreeLongDownDynamicServers(now).empty()) << cycle;
    EXPECT_TRUE(triad0.FreeLongDownDynamicServers(now).empty()) << cycle;
    triad0.OnViewUpdate(1, triad1.FullUpdate(), now);
    EXPECT_EQ(triad0.record(index).id, "d-a");
    EXPECT_EQ(StateIn(triad0, index), ServerState::kUp);
  }
}

// Records no triad server of ours would send are ignored.
TEST(DynamicMembershipTest, ImpossibleDynamicRecordsAreIgnored) {
  const ClusterConfig config = FiveServers();
  Membership spoke(config, 3, 1, kStart);
  protocol::ServerRecord record;
  record.index = 6;
  record.id = "d-a";
  record.cluster_address = "10.0.1.1:7000";
  record.http_address = "10.0.1.1:8000";
  record.weight = 100;
  record.admission = 1;
  record.dynamic = true;
  protocol::ServerRecord bad_id = record;
  bad_id.id = ".hidden";
  protocol::ServerRecord static_id = record;
  static_id.id = "s1";
  protocol::ServerRecord heavy = record;
  heavy.weight = 2'000'000;
  protocol::ServerRecord worn_out = record;
  worn_out.admission = ~uint64_t{0};
  for (const protocol::ServerRecord& odd : {bad_id, static_id, heavy, worn_out}) {
    EXPECT_FALSE(spoke.OnViewUpdate(0, protocol::ViewUpdate{{odd}}, kStart));
    EXPECT_FALSE(spoke.Known(6));
  }
  EXPECT_TRUE(spoke.OnViewUpdate(0, protocol::ViewUpdate{{record}}, kStart));
  EXPECT_EQ(spoke.record(6).id, "d-a");
}

TEST(DynamicMembershipTest, CompetingIdentitiesConvergeWhateverTheOrder) {
  const ClusterConfig config = FiveServers();
  struct Case {
    protocol::ServerRecord first, second;
  };
  const std::vector<Case> cases = {
      {Identity(6, "d-a", 2, 1), Identity(6, "d-b", 3, 2)},  // higher admission
      {Identity(6, "d-b", 3, 2), Identity(6, "d-a", 2, 1)},
      {Identity(6, "d-a", 2, 1), Identity(6, "d-c", 2, 3)},  // equal admissions
      {Identity(6, "d-c", 2, 3), Identity(6, "d-a", 2, 1)},
      {Identity(6, "d-a", 2, 1), Identity(6, "d-a", 2, 4)},  // same id, other address
      {Identity(6, "", 2, 0), Identity(6, "d-a", 2, 1)},     // a tombstone
      {Identity(6, "", 5, 0), Identity(6, "d-a", 4, 1)},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    Membership spoke3(config, 3, 1, kStart);
    Membership spoke4(config, 4, 1, kStart);
    Membership triad2(config, 2, 1, kStart);
    spoke3.OnViewUpdate(0, protocol::ViewUpdate{{c.first}}, kStart);
    spoke3.OnViewUpdate(1, protocol::ViewUpdate{{c.second}}, kStart + 1);
    spoke4.OnViewUpdate(1, protocol::ViewUpdate{{c.second}}, kStart);
    spoke4.OnViewUpdate(0, protocol::ViewUpdate{{c.first}}, kStart + 1);
    triad2.OnViewUpdate(1, protocol::ViewUpdate{{c.second, c.first}}, kStart);
    for (const Membership* member : {&spoke4, &triad2}) {
      EXPECT_EQ(member->record(6).id, spoke3.record(6).id) << "case " << i;
      EXPECT_EQ(member->record(6).admission, spoke3.record(6).admission) << "case " << i;
      EXPECT_EQ(member->record(6).http_address, spoke3.record(6).http_address) << "case " << i;
    }
    const uint64_t highest = std::max(c.first.admission, c.second.admission);
    EXPECT_EQ(spoke3.record(6).admission, highest) << "case " << i;
    if (c.first.admission != c.second.admission) {
      const protocol::ServerRecord& winner =
          c.first.admission > c.second.admission ? c.first : c.second;
      EXPECT_EQ(spoke3.record(6).id, winner.id) << "case " << i;
    }
  }
}

// The real race: triad0 frees d-a and gives its index to d-b while triad1, not yet
// told, re-admits d-a with a new address. Every sidecar ends with d-b.
TEST(DynamicMembershipTest, AReallocatedIndexWinsOverAConcurrentReadmission) {
  const ClusterConfig config = FiveServers();
  Membership triad0(config, 0, 1, kStart);
  Membership triad1(config, 1, 1, kStart);
  ASSERT_EQ(AdmitOk(triad0, Join("d-a", 1)), 6);
  triad1.OnViewUpdate(0, triad0.FullUpdate(), kStart + 1);
  const int64_t later = kStart + kDynamicTimeoutMs + 1;
  ASSERT_EQ(triad0.FreeLongDownDynamicServers(later), std::vector<std::string>{"d-a"});
  ASSERT_EQ(AdmitOk(triad0, Join("d-b", 2), later + 1), 6);
  ASSERT_EQ(AdmitOk(triad1, Join("d-a", 3), later + 1), 6);  // moved; triad1 knows it

  Membership spoke3(config, 3, 1, kStart);
  Membership spoke4(config, 4, 1, kStart);
  spoke3.OnViewUpdate(0, triad0.FullUpdate(), later + 2);
  spoke3.OnViewUpdate(1, triad1.FullUpdate(), later + 3);
  spoke4.OnViewUpdate(1, triad1.FullUpdate(), later + 2);
  spoke4.OnViewUpdate(0, triad0.FullUpdate(), later + 3);
  const protocol::ViewUpdate from0 = triad0.FullUpdate();
  const protocol::ViewUpdate from1 = triad1.FullUpdate();
  triad0.OnViewUpdate(1, from1, later + 4);
  triad1.OnViewUpdate(0, from0, later + 4);
  for (const Membership* member : {&triad0, &triad1, &spoke3, &spoke4}) {
    EXPECT_EQ(member->record(6).id, "d-b") << member->self_index();
    EXPECT_EQ(member->IndexOf("d-a"), -1) << member->self_index();
  }
  // d-a asks again at triad1: it gets a fresh index of triad1's share.
  EXPECT_EQ(AdmitOk(triad1, Join("d-a", 3, 6), later + 5), 7);
}

// --- Restart of a triad server -----------------------------------------------------

TEST(DynamicMembershipTest, ARestartedTriadServerRestoresItsDynamicServers) {
  const ClusterConfig config = FiveServers();
  Membership triad0(config, 0, 1, kStart);
  ASSERT_EQ(AdmitOk(triad0, Join("d-a", 1)), 6);
  protocol::JoinRequest heavy = Join("d-b", 2);
  heavy.weight = 700;
  ASSERT_EQ(AdmitOk(triad0, heavy), 9);
  ASSERT_EQ(AdmitOk(triad0, Join("d-c", 3)), 12);
  triad0.OnPeerAuthenticated(6, 4, kStart + 1);
  triad0.OnPeerAuthenticated(9, 2, kStart + 1);
  ASSERT_TRUE(triad0.SetDraining("d-b", true).ok());
  // d-c never came: freed, which leaves a tombstone at 12.
  ASSERT_EQ(triad0.FreeLongDownDynamicServers(kStart + kDynamicTimeoutMs + 1),
            std::vector<std::string>{"d-c"});
  const uint64_t tombstone = triad0.record(12).admission;

  const std::vector<protocol::ServerRecord> saved = triad0.DynamicIdentities();
  EXPECT_EQ(saved.size(), 3u);  // d-a, d-b and the tombstone
  for (const protocol::ServerRecord& record : saved) {
    EXPECT_TRUE(record.dynamic);
    EXPECT_GE(record.index, 5);
  }

  const int64_t restart = kStart + 2 * kDynamicTimeoutMs;
  Membership restarted(config, 0, 2, restart);
  restarted.RestoreDynamicIdentities(saved, restart);
  EXPECT_TRUE(restarted.Known(6));
  EXPECT_TRUE(restarted.Known(9));
  EXPECT_FALSE(restarted.Known(12));
  EXPECT_EQ(restarted.record(6).id, "d-a");
  EXPECT_EQ(restarted.record(6).http_address, "10.0.1.1:8000");
  EXPECT_EQ(restarted.record(9).weight, 700u);
  EXPECT_EQ(restarted.record(6).admission, triad0.record(6).admission);
  EXPECT_EQ(restarted.record(9).admission, triad0.record(9).admission);
  EXPECT_EQ(restarted.record(12).admission, tombstone);
  EXPECT_TRUE(restarted.record(9).draining);
  EXPECT_FALSE(restarted.record(6).draining);
  const ClusterView view = restarted.ToView(restart);
  ASSERT_TRUE(view.Validate().ok());
  EXPECT_EQ(view.state(6), ServerState::kDown);  // all down until they connect
  EXPECT_EQ(view.state(9), ServerState::kDown);
  EXPECT_EQ(view.state(12), ServerState::kAbsent);
  EXPECT_EQ(view.server(6).flags & ViewServer::kFlagDynamic, ViewServer::kFlagDynamic);
  EXPECT_EQ(restarted.DynamicIdentities().size(), saved.size());

  // They come back to their indices; the drain flag holds.
  EXPECT_EQ(AdmitOk(restarted, Join("d-a", 1), restart + 1), 6);
  EXPECT_EQ(restarted.record(6).admission, triad0.record(6).admission);
  EXPECT_EQ(AdmitOk(restarted, heavy, restart + 1), 9);
  restarted.OnPeerAuthenticated(9, 3, restart + 2);
  EXPECT_EQ(StateIn(restarted, 9), ServerState::kDraining);
  // The tombstone's index is free again, with a higher admission.
  EXPECT_EQ(AdmitOk(restarted, Join("d-d", 4), restart + 3), 12);
  EXPECT_GT(restarted.record(12).admission, tombstone);

  // The down-timer restarts with the restart: not freed at once.
  EXPECT_TRUE(restarted.FreeLongDownDynamicServers(restart + kDynamicTimeoutMs - 1).empty());
}

TEST(DynamicMembershipTest, ARestoredDrainFlagSurvivesAnOlderPeer) {
  const ClusterConfig config = FiveServers();
  Membership triad0(config, 0, 1, kStart);
  Membership triad1(config, 1, 1, kStart);
  ASSERT_EQ(AdmitOk(triad0, Join("d-a", 1)), 6);
  triad1.OnViewUpdate(0, triad0.FullUpdate(), kStart);  // before the drain
  ASSERT_TRUE(triad0.SetDraining("d-a", true).ok());
  const std::vector<protocol::ServerRecord> saved = triad0.DynamicIdentities();

  Membership restarted(config, 0, 2, kStart + 10);
  restarted.RestoreDynamicIdentities(saved, kStart + 10);
  ASSERT_TRUE(restarted.record(6).draining);
  restarted.OnViewUpdate(1, triad1.FullUpdate(), kStart + 11);
  EXPECT_TRUE(restarted.record(6).draining);
  EXPECT_EQ(restarted.record(6).id, "d-a");
  // And it hands it to triad1.
  triad1.OnViewUpdate(0, restarted.FullUpdate(), kStart + 12);
  EXPECT_TRUE(triad1.record(6).draining);
}

TEST(DynamicMembershipTest, RestoreSkipsRecordsThatCannotBeDynamic) {
  const ClusterConfig config = FiveServers();
  Membership triad0(config, 0, 1, kStart);
  std::vector<protocol::ServerRecord> saved = {
      Identity(3, "d-static", 1, 1),            // a static index
      Identity(64, "d-out", 1, 2),              // out of range
      Identity(7, std::string(100, 'x'), 1, 3)  // overlong id
  };
  triad0.RestoreDynamicIdentities(saved, kStart);
  EXPECT_EQ(triad0.record(3).id, "s3");
  EXPECT_FALSE(triad0.record(3).dynamic);
  EXPECT_FALSE(triad0.Known(7));
  EXPECT_TRUE(triad0.ToView(kStart).Validate().ok());
}

// --- A dynamic server's own view ---------------------------------------------------

TEST(DynamicMembershipTest, ADynamicServerSeesItselfAndDialsTheTriad) {
  const ClusterConfig config = FiveServers();
  Membership triad0(config, 0, 1, kStart);
  protocol::JoinRequest request = Join("d-a", 1);
  request.weight = 50;
  ASSERT_EQ(AdmitOk(triad0, request), 6);
  ASSERT_EQ(AdmitOk(triad0, Join("d-b", 2)), 9);
  triad0.OnPeerAuthenticated(6, 3, kStart);
  triad0.OnPeerAuthenticated(9, 1, kStart);

  Membership self(config, triad0.record(6), 3, kStart + 1);
  EXPECT_EQ(self.self_index(), 6);
  EXPECT_EQ(self.self_incarnation(), 3u);
  ClusterView view = self.ToView(kStart + 1);
  ASSERT_TRUE(view.Validate().ok());
  EXPECT_EQ(view.state(6), ServerState::kUp);
  EXPECT_EQ(view.server(6).flags & ViewServer::kFlagDynamic, ViewServer::kFlagDynamic);
  EXPECT_EQ(view.server(6).id_view(), "d-a");
  EXPECT_EQ(view.server(6).weight, 50u);
  EXPECT_EQ(view.server(6).up_since_unix_ms, kStart + 1);
  EXPECT_EQ(view.publisher_index, 6);
  EXPECT_EQ(self.PeersToDial(), ServerSet::Triad());
  EXPECT_TRUE(self.MayConnect(0));
  EXPECT_TRUE(self.MayConnect(2));
  EXPECT_FALSE(self.MayConnect(3));
  EXPECT_FALSE(self.MayConnect(6));

  // It learns the others from the triad.
  self.OnPeerAuthenticated(0, 1, kStart + 2);
  self.OnViewUpdate(0, triad0.FullUpdate(), kStart + 2);
  EXPECT_EQ(self.record(9).id, "d-b");
  EXPECT_EQ(StateIn(self, 9), ServerState::kUp);
  EXPECT_EQ(self.record(6).id, "d-a");
  EXPECT_EQ(StateIn(self, 6), ServerState::kUp);
}

TEST(DynamicMembershipTest, ADynamicServerKeepsItsOwnIdentity) {
  const ClusterConfig config = FiveServers();
  protocol::ServerRecord own = Identity(6, "d-a", 1, 1);
  Membership self(config, own, 3, kStart);
  const uint64_t identities = self.identity_generation();

  protocol::ServerRecord intruder = Identity(6, "d-z", 99, 9);
  intruder.alive = true;
  intruder.incarnation = 50;
  self.OnViewUpdate(0, protocol::ViewUpdate{{intruder}}, kStart + 1);
  protocol::ServerRecord tombstone = Identity(6, "", 100, 0);
  self.OnViewUpdate(1, protocol::ViewUpdate{{tombstone}}, kStart + 2);

  EXPECT_EQ(self.record(6).id, "d-a");
  EXPECT_EQ(self.record(6).http_address, "10.0.1.1:8000");
  EXPECT_EQ(self.record(6).admission, 1u);
  EXPECT_EQ(self.self_incarnation(), 3u);
  EXPECT_EQ(StateIn(self, 6), ServerState::kUp);
  EXPECT_EQ(self.IndexOf("d-z"), -1);
  EXPECT_EQ(self.identity_generation(), identities);

  // Its own identity with a rumour of its death: refuted as by any server.
  protocol::ServerRecord rumour = own;
  rumour.alive = false;
  rumour.incarnation = 3;
  self.OnViewUpdate(0, protocol::ViewUpdate{{rumour}}, kStart + 3);
  EXPECT_EQ(self.self_incarnation(), 4u);
  EXPECT_EQ(StateIn(self, 6), ServerState::kUp);
}

// --- identity_generation -----------------------------------------------------------

TEST(DynamicMembershipTest, IdentityGenerationGrowsWithIdentitiesOnly) {
  const ClusterConfig config = FiveServers();
  Membership triad0(config, 0, 1, kStart);
  Membership triad1(config, 1, 1, kStart);
  Membership spoke(config, 3, 1, kStart);
  spoke.OnPeerAuthenticated(0, 1, kStart);

  uint64_t identities = triad0.identity_generation();
  ASSERT_EQ(AdmitOk(triad0, Join("d-a", 1)), 6);
  EXPECT_GT(triad0.identity_generation(), identities);
  identities = triad0.identity_generation();

  // Liveness: the view changes, the identities do not.
  uint64_t generation = triad0.generation();
  EXPECT_TRUE(triad0.OnPeerAuthenticated(6, 1, kStart + 1));
  EXPECT_TRUE(triad0.OnHeartbeat(6, protocol::Heartbeat{2, 0, kStart + 2}, kStart + 2));
  EXPECT_TRUE(triad0.OnPeerClosed(6, kStart + 3));
  triad0.OnPeerAuthenticated(6, 2, kStart + 4);
  EXPECT_EQ(triad0.Tick(kStart + 10'000), std::vector<int>{6});
  EXPECT_GT(triad0.generation(), generation);
  EXPECT_EQ(triad0.identity_generation(), identities);
  // The same request again: nothing.
  ASSERT_EQ(AdmitOk(triad0, Join("d-a", 1), kStart + 10'001), 6);
  EXPECT_EQ(triad0.identity_generation(), identities);
  // A changed one: grows.
  ASSERT_EQ(AdmitOk(triad0, Join("d-a", 2), kStart + 10'002), 6);
  EXPECT_GT(triad0.identity_generation(), identities);
  identities = triad0.identity_generation();

  // Merged elsewhere: grows there, once.
  uint64_t there = triad1.identity_generation();
  triad1.OnViewUpdate(0, triad0.FullUpdate(), kStart + 10'003);
  EXPECT_GT(triad1.identity_generation(), there);
  there = triad1.identity_generation();
  triad1.OnViewUpdate(0, triad0.FullUpdate(), kStart + 10'004);
  EXPECT_EQ(triad1.identity_generation(), there);
  // A spoke taking liveness only: no growth.
  spoke.OnViewUpdate(0, triad0.FullUpdate(), kStart + 10'005);
  uint64_t at_spoke = spoke.identity_generation();
  triad0.OnPeerAuthenticated(6, 3, kStart + 10'006);
  generation = spoke.generation();
  EXPECT_TRUE(spoke.OnViewUpdate(0, triad0.FullUpdate(), kStart + 10'007));
  EXPECT_GT(spoke.generation(), generation);
  EXPECT_EQ(spoke.identity_generation(), at_spoke);

  // Freed: grows, here and where the tombstone arrives.
  triad0.OnPeerClosed(6, kStart + 20'000);
  ASSERT_EQ(triad0.FreeLongDownDynamicServers(kStart + 20'001 + kDynamicTimeoutMs).size(), 1u);
  EXPECT_GT(triad0.identity_generation(), identities);
  spoke.OnViewUpdate(0, triad0.FullUpdate(), kStart + 40'000);
  EXPECT_GT(spoke.identity_generation(), at_spoke);
}

// DynamicIdentities() carries the drain flag of a dynamic server (restored at the
// next start), so a drain changes what a triad server must save: the daemon saves
// when identity_generation() grows.
TEST(DynamicMembershipTest, DrainingADynamicServerChangesWhatIsSaved) {
  const ClusterConfig config = FiveServers();
  Membership triad0(config, 0, 1, kStart);
  Membership triad1(config, 1, 1, kStart);
  ASSERT_EQ(AdmitOk(triad0, Join("d-a", 1)), 6);
  triad1.OnViewUpdate(0, triad0.FullUpdate(), kStart);

  uint64_t identities = triad0.identity_generation();
  ASSERT_TRUE(triad0.SetDraining("d-a", true).ok());
  EXPECT_GT(triad0.identity_generation(), identities) << "the drain of d-a would not be saved";
  // The same on the triad server that learns the drain from another.
  identities = triad1.identity_generation();
  triad1.OnViewUpdate(0, triad0.FullUpdate(), kStart + 1);
  ASSERT_TRUE(triad1.record(6).draining);
  EXPECT_GT(triad1.identity_generation(), identities) << "the drain of d-a would not be saved";
  // A static server's drain is no dynamic identity.
  identities = triad0.identity_generation();
  ASSERT_TRUE(triad0.SetDraining("s4", true).ok());
  EXPECT_EQ(triad0.identity_generation(), identities);
}

ServerConfig DynamicServerEntry() {
  ServerConfig self;
  self.id = "dyn-a";
  self.cluster_address = HostPort{"10.0.0.20", 6800};
  self.http_address = HostPort{"10.0.0.20", 8080};
  self.weight = 40;
  return self;
}

TEST(MakeJoinRequestTest, NamesTheServerItsAddressesWeightAndPreviousIndex) {
  const protocol::JoinRequest first = MakeJoinRequest(DynamicServerEntry(), -1);
  EXPECT_EQ(first.server_id, "dyn-a");
  EXPECT_EQ(first.cluster_address, "10.0.0.20:6800");
  EXPECT_EQ(first.http_address, "10.0.0.20:8080");
  EXPECT_EQ(first.weight, 40u);
  EXPECT_EQ(first.previous_index, -1);
  EXPECT_EQ(MakeJoinRequest(DynamicServerEntry(), 5).previous_index, 5);
}

}  // namespace
}  // namespace cb::membership
