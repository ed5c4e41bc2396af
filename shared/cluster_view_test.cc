#include "shared/cluster_view.h"

#include <gtest/gtest.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "shared/server_set.h"

namespace cb {
namespace {

using namespace std::string_view_literals;

void AddServer(ClusterView& view, int index, ServerState state) {
  ViewServer& server = view.server(index);
  server.state = static_cast<uint8_t>(state);
  server.index = static_cast<uint8_t>(index);
  server.weight = 100;
  ASSERT_TRUE(server.SetId("app-" + std::to_string(index)).ok());
}

ClusterView SampleView() {
  ClusterView view;
  EXPECT_TRUE(view.SetClusterName("prod").ok());
  view.generation = 7;
  view.publisher_index = 1;
  AddServer(view, 0, ServerState::kUp);
  AddServer(view, 1, ServerState::kUp);
  AddServer(view, 2, ServerState::kDraining);
  AddServer(view, 10, ServerState::kDown);
  AddServer(view, 63, ServerState::kUp);
  return view;
}

// --- ServerStateName -------------------------------------------------------------------------

TEST(ClusterViewTest, ServerStateNames) {
  EXPECT_EQ(ServerStateName(ServerState::kAbsent), "absent");
  EXPECT_EQ(ServerStateName(ServerState::kUp), "up");
  EXPECT_EQ(ServerStateName(ServerState::kDraining), "draining");
  EXPECT_EQ(ServerStateName(ServerState::kDown), "down");
}

TEST(ClusterViewTest, StateValuesArePartOfTheFormat) {
  EXPECT_EQ(static_cast<int>(ServerState::kAbsent), 0);
  EXPECT_EQ(static_cast<int>(ServerState::kUp), 1);
  EXPECT_EQ(static_cast<int>(ServerState::kDraining), 2);
  EXPECT_EQ(static_cast<int>(ServerState::kDown), 3);
  EXPECT_EQ(kViewMagic, 0x57564243u);
  if constexpr (std::endian::native == std::endian::little) {
    EXPECT_EQ(std::memcmp(&kViewMagic, "CBVW", 4), 0);
  }
  EXPECT_EQ(kViewFormatVersion, 2);
}

// --- Defaults --------------------------------------------------------------------------------

TEST(ClusterViewTest, DefaultViewIsValidAndEmpty) {
  const ClusterView view;
  EXPECT_TRUE(view.Validate().ok()) << view.Validate().ToString();
  EXPECT_EQ(view.generation, 0u);
  EXPECT_EQ(view.publisher_index, -1);
  EXPECT_EQ(view.cluster_name_view(), "");
  EXPECT_EQ(view.ServersIn(ServerState::kAbsent), ServerSet::FirstN(64));
  EXPECT_TRUE(view.ServersIn(ServerState::kUp).empty());
  EXPECT_TRUE(view.ServersIn(ServerState::kDraining).empty());
  EXPECT_TRUE(view.ServersIn(ServerState::kDown).empty());
  for (int i = 0; i < kMaxServers; ++i) {
    EXPECT_EQ(view.state(i), ServerState::kAbsent);
    EXPECT_EQ(view.server(i).id_view(), "");
  }
}

TEST(ClusterViewTest, DefaultFileHeader) {
  const ViewFileHeader header;
  EXPECT_EQ(header.magic, kViewMagic);
  EXPECT_EQ(header.format_version, kViewFormatVersion);
  EXPECT_EQ(header.server_capacity, static_cast<uint32_t>(kMaxServers));
  EXPECT_EQ(header.sequence, 0u);
}

// --- Setters ---------------------------------------------------------------------------------

struct StringField {
  const char* name;
  std::size_t capacity;
  std::function<Status(ViewServer&, std::string_view)> set;
  std::function<std::string_view(const ViewServer&)> get;
};

std::vector<StringField> ServerFields() {
  return {
      {"id", kViewIdCapacity, [](ViewServer& s, std::string_view t) { return s.SetId(t); },
       [](const ViewServer& s) { return s.id_view(); }},
      {"cluster_address", kViewAddressCapacity,
       [](ViewServer& s, std::string_view t) { return s.SetClusterAddress(t); },
       [](const ViewServer& s) { return s.cluster_address_view(); }},
      {"http_address", kViewAddressCapacity,
       [](ViewServer& s, std::string_view t) { return s.SetHttpAddress(t); },
       [](const ViewServer& s) { return s.http_address_view(); }},
      {"deployed_version", kViewVersionCapacity,
       [](ViewServer& s, std::string_view t) { return s.SetDeployedVersion(t); },
       [](const ViewServer& s) { return s.deployed_version_view(); }},
  };
}

TEST(ClusterViewServerTest, CapacitiesArePartOfTheFormat) {
  EXPECT_EQ(kViewIdCapacity, 64u);
  EXPECT_EQ(kViewAddressCapacity, 64u);
  EXPECT_EQ(kViewVersionCapacity, 48u);
  EXPECT_EQ(kViewClusterNameCapacity, 64u);
  EXPECT_EQ(sizeof(ViewServer::id), kViewIdCapacity);
  EXPECT_EQ(sizeof(ViewServer::cluster_address), kViewAddressCapacity);
  EXPECT_EQ(sizeof(ViewServer::http_address), kViewAddressCapacity);
  EXPECT_EQ(sizeof(ViewServer::deployed_version), kViewVersionCapacity);
  EXPECT_EQ(sizeof(ClusterView::cluster_name), kViewClusterNameCapacity);
}

TEST(ClusterViewServerTest, SettersStoreText) {
  for (const StringField& field : ServerFields()) {
    ViewServer server;
    ASSERT_TRUE(field.set(server, "app-a").ok()) << field.name;
    EXPECT_EQ(field.get(server), "app-a") << field.name;
    // The other fields are untouched.
    for (const StringField& other : ServerFields()) {
      if (std::string_view(other.name) != field.name) {
        EXPECT_EQ(other.get(server), "") << field.name << " / " << other.name;
      }
    }
  }
  ViewServer server;
  ASSERT_TRUE(server.SetId("app-a").ok());
  ASSERT_TRUE(server.SetClusterAddress("10.0.0.1:6800").ok());
  ASSERT_TRUE(server.SetHttpAddress("10.0.0.1:8080").ok());
  ASSERT_TRUE(server.SetDeployedVersion("0123456789abcdef0123456789abcdef01234567").ok());
  EXPECT_EQ(server.id_view(), "app-a");
  EXPECT_EQ(server.cluster_address_view(), "10.0.0.1:6800");
  EXPECT_EQ(server.http_address_view(), "10.0.0.1:8080");
  EXPECT_EQ(server.deployed_version_view(), "0123456789abcdef0123456789abcdef01234567");
}

TEST(ClusterViewServerTest, SettersAcceptExactlyCapacityMinusOne) {
  for (const StringField& field : ServerFields()) {
    ViewServer server;
    const std::string longest(field.capacity - 1, 'x');
    ASSERT_TRUE(field.set(server, longest).ok()) << field.name;
    EXPECT_EQ(field.get(server), longest) << field.name;
    EXPECT_EQ(field.get(server).size(), field.capacity - 1) << field.name;
  }
}

TEST(ClusterViewServerTest, SettersRefuseTextThatDoesNotFit) {
  for (const StringField& field : ServerFields()) {
    ViewServer server;
    EXPECT_FALSE(field.set(server, std::string(field.capacity, 'x')).ok()) << field.name;
    EXPECT_FALSE(field.set(server, std::string(field.capacity + 1, 'x')).ok()) << field.name;
    EXPECT_FALSE(field.set(server, std::string(1000, 'x')).ok()) << field.name;
    EXPECT_EQ(field.get(server), "") << field.name;
  }
}

TEST(ClusterViewServerTest, SettersRefuseNul) {
  for (const StringField& field : ServerFields()) {
    ViewServer server;
    EXPECT_FALSE(field.set(server, "ab\0cd"sv).ok()) << field.name;
    EXPECT_FALSE(field.set(server, "\0"sv).ok()) << field.name;
    EXPECT_FALSE(field.set(server, "abc\0"sv).ok()) << field.name;
    EXPECT_EQ(field.get(server), "") << field.name;
  }
}

TEST(ClusterViewServerTest, SettersAcceptEmptyText) {
  for (const StringField& field : ServerFields()) {
    ViewServer server;
    ASSERT_TRUE(field.set(server, "something").ok()) << field.name;
    EXPECT_TRUE(field.set(server, "").ok()) << field.name;
    EXPECT_EQ(field.get(server), "") << field.name;
  }
}

TEST(ClusterViewServerTest, ShorterTextReplacesLongerCompletely) {
  for (const StringField& field : ServerFields()) {
    ViewServer server;
    ASSERT_TRUE(field.set(server, std::string(field.capacity - 1, 'x')).ok()) << field.name;
    ASSERT_TRUE(field.set(server, "ab").ok()) << field.name;
    EXPECT_EQ(field.get(server), "ab") << field.name;
  }
  ViewServer server;
  ASSERT_TRUE(server.SetId("abcdef").ok());
  ASSERT_TRUE(server.SetId("xy").ok());
  // No trace of the old text after the terminator: the slot is byte-for-byte what a fresh
  // setter call would write (the file is compared and copied as bytes).
  ViewServer fresh;
  ASSERT_TRUE(fresh.SetId("xy").ok());
  EXPECT_EQ(std::memcmp(server.id, fresh.id, sizeof(server.id)), 0);
}

TEST(ClusterViewServerTest, ServerStateAccessor) {
  ViewServer server;
  EXPECT_EQ(server.server_state(), ServerState::kAbsent);
  server.state = 2;
  EXPECT_EQ(server.server_state(), ServerState::kDraining);
}

TEST(ClusterViewTest, ClusterNameSetter) {
  ClusterView view;
  ASSERT_TRUE(view.SetClusterName("prod-eu").ok());
  EXPECT_EQ(view.cluster_name_view(), "prod-eu");
  const std::string longest(kViewClusterNameCapacity - 1, 'n');
  ASSERT_TRUE(view.SetClusterName(longest).ok());
  EXPECT_EQ(view.cluster_name_view(), longest);
  EXPECT_FALSE(view.SetClusterName(std::string(kViewClusterNameCapacity, 'n')).ok());
  EXPECT_FALSE(view.SetClusterName("pr\0d"sv).ok());
  ASSERT_TRUE(view.SetClusterName("a").ok());
  EXPECT_EQ(view.cluster_name_view(), "a");
  ASSERT_TRUE(view.SetClusterName("").ok());
  EXPECT_EQ(view.cluster_name_view(), "");
  EXPECT_TRUE(view.Validate().ok());
}

// --- ServersIn -------------------------------------------------------------------------------

TEST(ClusterViewTest, ServersIn) {
  const ClusterView view = SampleView();
  EXPECT_EQ(view.ServersIn(ServerState::kUp).bits(), (uint64_t{1} << 63) | 0b11u);
  EXPECT_EQ(view.ServersIn(ServerState::kDraining).bits(), 0b100u);
  EXPECT_EQ(view.ServersIn(ServerState::kDown).bits(), uint64_t{1} << 10);
  const ServerSet present = view.ServersIn(ServerState::kUp) |
                            view.ServersIn(ServerState::kDraining) |
                            view.ServersIn(ServerState::kDown);
  EXPECT_EQ(view.ServersIn(ServerState::kAbsent), ServerSet::FirstN(64).Without(present));
  EXPECT_EQ(view.ServersIn(ServerState::kAbsent).size(), 59);
  EXPECT_EQ(view.state(0), ServerState::kUp);
  EXPECT_EQ(view.state(2), ServerState::kDraining);
  EXPECT_EQ(view.state(10), ServerState::kDown);
  EXPECT_EQ(view.state(11), ServerState::kAbsent);
  EXPECT_EQ(view.state(63), ServerState::kUp);
}

TEST(ClusterViewTest, ServersInAllSlotsOfOneState) {
  for (ServerState state : {ServerState::kUp, ServerState::kDraining, ServerState::kDown}) {
    ClusterView view;
    for (int i = 0; i < kMaxServers; ++i) AddServer(view, i, state);
    EXPECT_EQ(view.ServersIn(state), ServerSet::FirstN(64));
    EXPECT_TRUE(view.ServersIn(ServerState::kAbsent).empty());
    EXPECT_TRUE(view.Validate().ok());
  }
}

TEST(ClusterViewTest, ServersInIgnoresUnknownStates) {
  ClusterView view = SampleView();
  view.server(5).state = 9;
  view.server(5).index = 5;
  EXPECT_FALSE(view.ServersIn(ServerState::kUp).Contains(5));
  EXPECT_FALSE(view.ServersIn(ServerState::kDraining).Contains(5));
  EXPECT_FALSE(view.ServersIn(ServerState::kDown).Contains(5));
  EXPECT_FALSE(view.ServersIn(ServerState::kAbsent).Contains(5));
}

// --- Validate --------------------------------------------------------------------------------

TEST(ClusterViewValidateTest, SampleViewIsValid) {
  const ClusterView view = SampleView();
  EXPECT_TRUE(view.Validate().ok()) << view.Validate().ToString();
}

TEST(ClusterViewValidateTest, UnknownStateIsRefused) {
  for (uint8_t bad : {uint8_t{4}, uint8_t{5}, uint8_t{128}, uint8_t{255}}) {
    ClusterView view = SampleView();
    view.server(1).state = bad;
    const Status status = view.Validate();
    EXPECT_FALSE(status.ok()) << static_cast<int>(bad);
    EXPECT_FALSE(status.message().empty());
  }
  // Also in a slot that is otherwise empty.
  ClusterView view;
  view.server(40).state = 4;
  view.server(40).index = 40;
  ASSERT_TRUE(view.server(40).SetId("x").ok());
  EXPECT_FALSE(view.Validate().ok());
}

TEST(ClusterViewValidateTest, IndexMustEqualSlotForPresentServers) {
  for (ServerState state : {ServerState::kUp, ServerState::kDraining, ServerState::kDown}) {
    ClusterView view = SampleView();
    AddServer(view, 20, state);
    ASSERT_TRUE(view.Validate().ok());
    view.server(20).index = 21;
    EXPECT_FALSE(view.Validate().ok()) << ServerStateName(state);
    view.server(20).index = 0;
    EXPECT_FALSE(view.Validate().ok()) << ServerStateName(state);
    view.server(20).index = 255;
    EXPECT_FALSE(view.Validate().ok()) << ServerStateName(state);
  }
  ClusterView view = SampleView();
  view.server(63).index = 64;
  EXPECT_FALSE(view.Validate().ok());
}

TEST(ClusterViewValidateTest, AbsentSlotIndexIsNotChecked) {
  ClusterView view = SampleView();
  view.server(30).index = 7;  // absent: "index equals the slot number when state != kAbsent"
  EXPECT_TRUE(view.Validate().ok()) << view.Validate().ToString();
}

TEST(ClusterViewValidateTest, PresentServerNeedsAnId) {
  for (ServerState state : {ServerState::kUp, ServerState::kDraining, ServerState::kDown}) {
    ClusterView view = SampleView();
    AddServer(view, 20, state);
    ASSERT_TRUE(view.server(20).SetId("").ok());
    EXPECT_FALSE(view.Validate().ok()) << ServerStateName(state);
  }
  // An absent slot needs none.
  ClusterView view = SampleView();
  EXPECT_EQ(view.server(30).id_view(), "");
  EXPECT_TRUE(view.Validate().ok());
}

TEST(ClusterViewValidateTest, UnterminatedServerStringsAreRefused) {
  for (std::size_t field = 0; field < 4; ++field) {
    for (int slot : {0, 30}) {  // a present and an absent slot
      ClusterView view = SampleView();
      ViewServer& server = view.server(slot);
      switch (field) {
        case 0:
          std::memset(server.id, 'x', sizeof(server.id));
          break;
        case 1:
          std::memset(server.cluster_address, 'x', sizeof(server.cluster_address));
          break;
        case 2:
          std::memset(server.http_address, 'x', sizeof(server.http_address));
          break;
        default:
          std::memset(server.deployed_version, 'x', sizeof(server.deployed_version));
          break;
      }
      EXPECT_FALSE(view.Validate().ok()) << "field " << field << " slot " << slot;
    }
  }
}

TEST(ClusterViewValidateTest, StringTerminatedByTheLastByteIsAccepted) {
  ClusterView view = SampleView();
  ViewServer& server = view.server(0);
  std::memset(server.id, 'x', sizeof(server.id) - 1);
  server.id[sizeof(server.id) - 1] = '\0';
  EXPECT_TRUE(view.Validate().ok());
  EXPECT_EQ(server.id_view().size(), kViewIdCapacity - 1);
}

TEST(ClusterViewValidateTest, BytesAfterTheTerminatorAreIgnored) {
  // The views stop at the first NUL whatever follows.
  ClusterView view = SampleView();
  ViewServer& server = view.server(0);
  std::memcpy(server.http_address, "a:1\0garbage", 11);
  EXPECT_TRUE(view.Validate().ok());
  EXPECT_EQ(server.http_address_view(), "a:1");
}

TEST(ClusterViewValidateTest, UnterminatedClusterNameIsRefused) {
  ClusterView view = SampleView();
  std::memset(view.cluster_name, 'c', sizeof(view.cluster_name));
  EXPECT_FALSE(view.Validate().ok());
  view.cluster_name[sizeof(view.cluster_name) - 1] = '\0';
  EXPECT_TRUE(view.Validate().ok());
  EXPECT_EQ(view.cluster_name_view().size(), kViewClusterNameCapacity - 1);
}

TEST(ClusterViewValidateTest, PublisherIndexRange) {
  for (int32_t good : {-1, 0, 2, 63}) {
    ClusterView view = SampleView();
    view.publisher_index = good;
    EXPECT_TRUE(view.Validate().ok()) << good;
  }
  for (int32_t bad : {-2, 64, 1000, INT32_MIN, INT32_MAX}) {
    ClusterView view = SampleView();
    view.publisher_index = bad;
    EXPECT_FALSE(view.Validate().ok()) << bad;
  }
}

TEST(ClusterViewValidateTest, OtherFieldsAreFree) {
  ClusterView view = SampleView();
  view.generation = ~uint64_t{0};
  view.published_unix_ms = -5;
  view.slow_start_ms = 0xffffffffu;
  view.server(0).weight = 0;
  view.server(0).flags = ViewServer::kFlagDynamic;
  view.server(0).incarnation = ~uint64_t{0};
  view.server(0).up_since_unix_ms = 1'700'000'000'000;
  EXPECT_TRUE(view.Validate().ok()) << view.Validate().ToString();
}

TEST(ClusterViewValidateTest, CopyIsIndependentValue) {
  const ClusterView original = SampleView();
  ClusterView copy = original;
  ASSERT_TRUE(copy.server(0).SetId("changed").ok());
  copy.server(1).state = static_cast<uint8_t>(ServerState::kDown);
  EXPECT_EQ(original.server(0).id_view(), "app-0");
  EXPECT_EQ(original.state(1), ServerState::kUp);
  EXPECT_EQ(copy.server(0).id_view(), "changed");
  EXPECT_TRUE(copy.Validate().ok());
}

// --- Deployments -----------------------------------------------------------------------------

constexpr std::string_view kCommitA = "0123456789abcdef0123456789abcdef01234567";
constexpr std::string_view kCommitB = "fedcba9876543210fedcba9876543210fedcba98";

TEST(ViewDeploymentTest, LayoutIsPartOfTheFormat) {
  EXPECT_EQ(kViewMaxDeployments, 8u);
  EXPECT_EQ(kViewDeploymentNameCapacity, 128u);
  EXPECT_EQ(kViewCommitCapacity, 48u);
  EXPECT_EQ(offsetof(ViewDeployment, name), 0u);
  EXPECT_EQ(offsetof(ViewDeployment, commit), 128u);
  EXPECT_EQ(offsetof(ViewDeployment, current_servers), 176u);
  EXPECT_EQ(offsetof(ViewDeployment, reported_servers), 184u);
  EXPECT_EQ(offsetof(ViewDeployment, server_commits), 192u);
  // Version 1's layout is kept: the deployments follow the servers.
  EXPECT_EQ(offsetof(ClusterView, servers), 88u);
  EXPECT_EQ(offsetof(ClusterView, deployments), 88u + 64 * sizeof(ViewServer));
}

TEST(ViewDeploymentTest, DefaultIsAnEmptySlot) {
  const ViewDeployment deployment;
  EXPECT_FALSE(deployment.used());
  EXPECT_EQ(deployment.name_view(), "");
  EXPECT_EQ(deployment.commit_view(), "");
  EXPECT_TRUE(deployment.current().empty());
  EXPECT_TRUE(deployment.reported().empty());
  for (int i = 0; i < kMaxServers; ++i) {
    EXPECT_EQ(deployment.ServerCommitHex(i), "");
    EXPECT_FALSE(deployment.Runs(i));
  }
}

TEST(ViewDeploymentTest, NameSetter) {
  ViewDeployment deployment;
  ASSERT_TRUE(deployment.SetName("production/webapp/default/shop").ok());
  EXPECT_TRUE(deployment.used());
  EXPECT_EQ(deployment.name_view(), "production/webapp/default/shop");
  const std::string longest(kViewDeploymentNameCapacity - 1, 'n');
  EXPECT_TRUE(deployment.SetName(longest).ok());
  EXPECT_EQ(deployment.name_view(), longest);
  const Status too_long = deployment.SetName(std::string(kViewDeploymentNameCapacity, 'n'));
  EXPECT_FALSE(too_long.ok());
  EXPECT_NE(too_long.message().find("deployment name"), std::string::npos) << too_long.message();
  EXPECT_FALSE(deployment.SetName("sh\0p"sv).ok());
  EXPECT_EQ(deployment.name_view(), longest);  // unchanged by the refusals
}

TEST(ViewDeploymentTest, CommitSetterStoresLowerCaseHex) {
  ViewDeployment deployment;
  ASSERT_TRUE(deployment.SetCommit("0123456789ABCDEF0123456789abcdef01234567").ok());
  EXPECT_EQ(deployment.commit_view(), kCommitA);
  ASSERT_TRUE(deployment.SetCommit("").ok());
  EXPECT_EQ(deployment.commit_view(), "");
}

TEST(ViewDeploymentTest, CommitSettersRefuseWhatIsNotACommit) {
  const std::string bad_commits[] = {
      std::string(kCommitA.substr(0, 39)),        // too short
      std::string(kCommitA) + "0",                // too long
      std::string(kCommitA.substr(0, 39)) + "g",  // not hex
      std::string(kCommitA.substr(0, 39)) + " ",  // space
      std::string(kCommitA.substr(0, 20)) + std::string(1, '\0') + std::string(19, 'a'),
      std::string(64, 'a'),  // a SHA-256 id: not this format's
  };
  for (const std::string& bad : bad_commits) {
    ViewDeployment deployment;
    ASSERT_TRUE(deployment.SetCommit(kCommitB).ok());
    ASSERT_TRUE(deployment.SetServerCommit(4, kCommitB).ok());
    const Status commit = deployment.SetCommit(bad);
    EXPECT_FALSE(commit.ok()) << bad;
    EXPECT_EQ(commit.code(), Status::Code::kInvalidArgument);
    EXPECT_NE(commit.message().find("40 hex digits"), std::string::npos) << commit.message();
    EXPECT_FALSE(deployment.SetServerCommit(4, bad).ok()) << bad;
    // Nothing changed.
    EXPECT_EQ(deployment.commit_view(), kCommitB);
    EXPECT_EQ(deployment.ServerCommitHex(4), kCommitB);
    EXPECT_TRUE(deployment.Runs(4));
  }
}

TEST(ViewDeploymentTest, ServerCommitsKeepTheBitsInStep) {
  ViewDeployment deployment;
  ASSERT_TRUE(deployment.SetName("production/webapp/default/shop").ok());
  ASSERT_TRUE(deployment.SetServerCommit(0, kCommitA).ok());
  ASSERT_TRUE(deployment.SetServerCommit(1, "FEDCBA9876543210FEDCBA9876543210FEDCBA98").ok());
  ASSERT_TRUE(deployment.SetServerCommit(63, kCommitA).ok());
  EXPECT_EQ(deployment.ServerCommitHex(0), kCommitA);
  EXPECT_EQ(deployment.ServerCommitHex(1), kCommitB);
  EXPECT_EQ(deployment.ServerCommitHex(63), kCommitA);
  EXPECT_EQ(deployment.ServerCommitHex(2), "");
  EXPECT_EQ(deployment.reported_servers, (uint64_t{1} << 63) | 0b11u);
  EXPECT_TRUE(deployment.current().empty());  // no current commit yet

  // The current commit decides who runs it, whichever was set first.
  ASSERT_TRUE(deployment.SetCommit(kCommitA).ok());
  EXPECT_EQ(deployment.current_servers, (uint64_t{1} << 63) | 0b01u);
  EXPECT_TRUE(deployment.Runs(0));
  EXPECT_FALSE(deployment.Runs(1));
  EXPECT_TRUE(deployment.Runs(63));
  ASSERT_TRUE(deployment.SetServerCommit(1, kCommitA).ok());  // server 1 caught up
  EXPECT_TRUE(deployment.Runs(1));
  ASSERT_TRUE(deployment.SetCommit(kCommitB).ok());  // a new rollout
  EXPECT_TRUE(deployment.current().empty());
  ASSERT_TRUE(deployment.SetServerCommit(0, kCommitB).ok());
  EXPECT_EQ(deployment.current_servers, 0b01u);

  // Clearing a server's commit takes it out of both sets.
  ASSERT_TRUE(deployment.SetServerCommit(0, "").ok());
  EXPECT_EQ(deployment.ServerCommitHex(0), "");
  EXPECT_FALSE(deployment.Runs(0));
  EXPECT_FALSE(deployment.reported().Contains(0));
  EXPECT_TRUE(deployment.reported().Contains(1));
}

TEST(ViewDeploymentTest, ServerIndexOutOfRangeIsRefused) {
  ViewDeployment deployment;
  for (int bad : {-1, 64, 1000}) {
    const Status status = deployment.SetServerCommit(bad, kCommitA);
    EXPECT_FALSE(status.ok()) << bad;
    EXPECT_NE(status.message().find(std::to_string(bad)), std::string::npos) << status.message();
    EXPECT_EQ(deployment.ServerCommitHex(bad), "");
    EXPECT_FALSE(deployment.Runs(bad));
  }
}

ClusterView ViewWithDeployments(std::initializer_list<std::string_view> names) {
  ClusterView view = SampleView();
  std::size_t slot = 1;  // slot 0 stays empty: lookups skip empty slots
  for (std::string_view name : names) EXPECT_TRUE(view.deployments[slot++].SetName(name).ok());
  return view;
}

TEST(ClusterViewDeploymentTest, FindDeploymentByWebappOrFullName) {
  const ClusterView view =
      ViewWithDeployments({"production/webapp/default/shop", "production/webapp/default/blog"});
  EXPECT_EQ(view.FindDeployment("shop"), &view.deployments[1]);
  EXPECT_EQ(view.FindDeployment("blog"), &view.deployments[2]);
  EXPECT_EQ(view.FindDeployment("production/webapp/default/blog"), &view.deployments[2]);
  EXPECT_EQ(view.FindDeployment("cart"), nullptr);
  EXPECT_EQ(view.FindDeployment("default/shop"), nullptr);  // neither the full name nor the webapp
  EXPECT_EQ(view.FindDeployment("sho"), nullptr);
  EXPECT_EQ(view.FindDeployment("staging/webapp/default/shop"), nullptr);
  EXPECT_EQ(view.FindDeployment(""), nullptr);  // two deployments: name one
}

TEST(ClusterViewDeploymentTest, EmptyWebappFindsTheOnlyDeployment) {
  const ClusterView one = ViewWithDeployments({"production/webapp/default/shop"});
  EXPECT_EQ(one.FindDeployment(""), &one.deployments[1]);
  const ClusterView none = SampleView();
  EXPECT_EQ(none.FindDeployment(""), nullptr);
  EXPECT_EQ(none.FindDeployment("shop"), nullptr);
}

TEST(ClusterViewDeploymentTest, AmbiguousWebappFindsNone) {
  const ClusterView view =
      ViewWithDeployments({"production/webapp/default/shop", "staging/webapp/default/shop"});
  EXPECT_EQ(view.FindDeployment("shop"), nullptr);
  EXPECT_EQ(view.FindDeployment("staging/webapp/default/shop"), &view.deployments[2]);
  EXPECT_EQ(view.FindDeployment("production/webapp/default/shop"), &view.deployments[1]);
}

TEST(ClusterViewDeploymentTest, NameWithoutSlashesMatchesItself) {
  const ClusterView view = ViewWithDeployments({"shop"});
  EXPECT_EQ(view.FindDeployment("shop"), &view.deployments[1]);
}

TEST(ClusterViewValidateTest, DeploymentsAreChecked) {
  ClusterView view = ViewWithDeployments({"production/webapp/default/shop"});
  ASSERT_TRUE(view.deployments[1].SetCommit(kCommitA).ok());
  ASSERT_TRUE(view.deployments[1].SetServerCommit(0, kCommitA).ok());
  // Bits for absent servers are not the view's concern.
  view.deployments[1].current_servers |= uint64_t{1} << 40;
  EXPECT_TRUE(view.Validate().ok()) << view.Validate().ToString();

  for (int slot : {0, 1, 7}) {  // an empty and a used slot
    ClusterView bad = view;
    std::memset(bad.deployments[slot].name, 'x', kViewDeploymentNameCapacity);
    Status status = bad.Validate();
    EXPECT_FALSE(status.ok()) << slot;
    EXPECT_NE(status.message().find("deployment " + std::to_string(slot)), std::string::npos)
        << status.message();

    bad = view;
    std::memset(bad.deployments[slot].commit, 'a', kViewCommitCapacity);
    EXPECT_FALSE(bad.Validate().ok()) << slot;

    bad = view;
    std::memcpy(bad.deployments[slot].commit, "not-hex", 8);
    status = bad.Validate();
    EXPECT_FALSE(status.ok()) << slot;
    EXPECT_NE(status.message().find("40 hex digits"), std::string::npos) << status.message();

    bad = view;
    std::memcpy(bad.deployments[slot].commit, kCommitA.data(), 39);  // one digit short
    bad.deployments[slot].commit[39] = '\0';
    EXPECT_FALSE(bad.Validate().ok()) << slot;
  }
}

}  // namespace
}  // namespace cb
