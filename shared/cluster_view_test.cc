#include "shared/cluster_view.h"

#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <functional>
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
  EXPECT_EQ(kViewFormatVersion, 1);
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

}  // namespace
}  // namespace cb
