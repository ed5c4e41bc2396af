#include "shared/view_tracker.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "shared/cluster_view.h"
#include "shared/published_view_test_support.h"
#include "shared/rendezvous.h"
#include "shared/route_codec.h"
#include "shared/routing.h"
#include "shared/server_set.h"
#include "shared/socket_address.h"
#include "shared/view_file.h"

namespace cb {
namespace {

constexpr int64_t kRecheckMs = 100;
constexpr int64_t kNowUnixMs = 1'700'000'000'000;

ClusterView NamedView(uint64_t generation) {
  ClusterView view;
  view.generation = generation;
  EXPECT_TRUE(view.SetClusterName("shop").ok());
  return view;
}

// Up 0, 1, 2; nothing else.
ClusterView ThreeUp(uint64_t generation = 1) {
  ClusterView view = NamedView(generation);
  AddServer(view, 0, ServerState::kUp);
  AddServer(view, 1, ServerState::kUp);
  AddServer(view, 2, ServerState::kUp);
  return view;
}

// Up 0, 1, 2, 4; draining 3; down 5.
ClusterView MixedView(uint64_t generation = 1) {
  ClusterView view = ThreeUp(generation);
  AddServer(view, 3, ServerState::kDraining);
  AddServer(view, 4, ServerState::kUp);
  AddServer(view, 5, ServerState::kDown);
  return view;
}

SocketAddress Numeric(std::string_view text) {
  Result<SocketAddress> address = ParseNumericSocketAddress(text);
  EXPECT_TRUE(address.ok()) << address.status().ToString();
  return address.ok() ? *address : SocketAddress{};
}

bool Contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

class ViewTrackerTest : public PublishedViewTest {
 protected:
  std::unique_ptr<ViewTracker> MakeTracker(std::vector<SocketAddress> configured = Configured(3)) {
    return std::make_unique<ViewTracker>(path_, std::move(configured), kRecheckMs);
  }

  // Replaces the view file by rename, as a sidecar would, with `bytes`.
  void ReplaceFile(const std::string& bytes) {
    const std::string temporary = dir_ + "/replacement";
    {
      std::ofstream out(temporary, std::ios::binary);
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      ASSERT_TRUE(out.good());
    }
    ASSERT_EQ(std::rename(temporary.c_str(), path_.c_str()), 0) << std::strerror(errno);
  }

  std::string FileBytes() const {
    std::ifstream in(path_, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
};

// The notices' texts, for a failure message.
std::string Texts(const std::vector<ViewNotice>& notices) {
  std::string texts;
  for (const ViewNotice& notice : notices) texts += "[" + notice.text + "] ";
  return texts;
}

// Takes the tracker's notices and requires exactly one, of `level`; returns its text.
std::string OnlyNotice(ViewTracker& tracker, ViewNotice::Level level) {
  const std::vector<ViewNotice> notices = tracker.TakeNotices();
  EXPECT_EQ(notices.size(), 1u) << Texts(notices);
  if (notices.size() != 1) return "";
  EXPECT_EQ(notices[0].level, level) << notices[0].text;
  return notices[0].text;
}

// Requires no new notice.
void ExpectNoNotice(ViewTracker& tracker) {
  const std::vector<ViewNotice> notices = tracker.TakeNotices();
  EXPECT_TRUE(notices.empty()) << Texts(notices);
}

RouteChoice ChooseIn(const ClusterView& view, std::string_view session, ServerSet exclude,
                     uint64_t random, int64_t now = kNowUnixMs) {
  RouteRequest request;
  request.session_id = session;
  request.exclude = exclude;
  request.random = random;
  request.now_unix_ms = now;
  return ChooseServer(view, request);
}

void ExpectUnusable(const ViewTracker& tracker) {
  EXPECT_FALSE(tracker.usable());
  EXPECT_EQ(tracker.Candidates().size(), 0);
  const RouteChoice choice = tracker.Choose(SessionOf(0), ServerSet(), kNowUnixMs, 1);
  EXPECT_EQ(choice.index, -1);
  EXPECT_EQ(choice.reason, RouteReason::kNoServer);
  EXPECT_EQ(tracker.Choose("", ServerSet(), kNowUnixMs, 1).reason, RouteReason::kNoServer);
}

// --- Following the file ----------------------------------------------------------

TEST_F(ViewTrackerTest, MissingFileIsUnusableWithOneWarning) {
  auto tracker = MakeTracker();
  EXPECT_EQ(tracker->path(), path_);
  EXPECT_FALSE(tracker->Refresh(0));
  const std::string warning = OnlyNotice(*tracker, ViewNotice::Level::kWarning);
  EXPECT_TRUE(Contains(warning, path_)) << warning;
  EXPECT_TRUE(Contains(warning, "no view file")) << warning;
  EXPECT_TRUE(Contains(warning, "the web server balances over its own servers")) << warning;
  ExpectUnusable(*tracker);

  // The same reason at the next rechecks: no second notice.
  EXPECT_FALSE(tracker->Refresh(1));
  EXPECT_FALSE(tracker->Refresh(kRecheckMs));
  EXPECT_FALSE(tracker->Refresh(3 * kRecheckMs));
  ExpectNoNotice(*tracker);
  ExpectUnusable(*tracker);
}

TEST_F(ViewTrackerTest, FileThatAppearsIsUsedAfterTheRecheckInterval) {
  auto tracker = MakeTracker();
  EXPECT_FALSE(tracker->Refresh(1000));
  (void)tracker->TakeNotices();

  StartWriterWith(ThreeUp());
  // Not looked at again before the interval is over.
  EXPECT_FALSE(tracker->Refresh(1000 + kRecheckMs - 1));
  ExpectNoNotice(*tracker);
  ExpectUnusable(*tracker);

  EXPECT_TRUE(tracker->Refresh(1000 + kRecheckMs));
  const std::string info = OnlyNotice(*tracker, ViewNotice::Level::kInfo);
  EXPECT_TRUE(Contains(info, path_)) << info;
  EXPECT_TRUE(Contains(info, "\"shop\"")) << info;
  EXPECT_TRUE(Contains(info, "3 up, 0 draining")) << info;
  EXPECT_TRUE(tracker->usable());
  EXPECT_EQ(tracker->Candidates().size(), 3);

  // Staying usable says nothing more.
  EXPECT_TRUE(tracker->Refresh(1000 + kRecheckMs + 1));
  EXPECT_TRUE(tracker->Refresh(1000 + 5 * kRecheckMs));
  ExpectNoNotice(*tracker);
}

TEST_F(ViewTrackerTest, ExistingFileIsUsedOnTheFirstRefresh) {
  StartWriterWith(MixedView());
  auto tracker = MakeTracker(Configured(6));
  EXPECT_FALSE(tracker->usable());
  EXPECT_TRUE(tracker->Refresh(0));
  const std::string info = OnlyNotice(*tracker, ViewNotice::Level::kInfo);
  EXPECT_TRUE(Contains(info, "4 up, 1 draining")) << info;
  EXPECT_EQ(tracker->Candidates().size(), 5);  // up and draining; not the down one
}

TEST_F(ViewTrackerTest, NewViewIsSeenWithoutWaitingForARecheck) {
  StartWriterWith(ThreeUp(1));
  auto tracker = MakeTracker();
  ASSERT_TRUE(tracker->Refresh(0));
  (void)tracker->TakeNotices();
  EXPECT_EQ(tracker->Choose(SessionOf(2), ServerSet(), kNowUnixMs, 0).reason, RouteReason::kSticky);

  ClusterView next = ThreeUp(2);
  AddServer(next, 2, ServerState::kDown);
  Publish(next);
  EXPECT_TRUE(tracker->Refresh(1));  // within the recheck interval
  const RouteChoice choice = tracker->Choose(SessionOf(2), ServerSet(), kNowUnixMs, 0);
  EXPECT_EQ(choice.reason, RouteReason::kBackup);
  EXPECT_NE(choice.index, 2);
  EXPECT_EQ(tracker->Candidates().size(), 2);
  ExpectNoNotice(*tracker);
}

TEST_F(ViewTrackerTest, UpSinceIsThatOfTheCurrentViewAndOnlyForUsableServers) {
  ClusterView view = MixedView();
  view.server(0).up_since_unix_ms = kNowUnixMs - 5000;
  view.server(3).up_since_unix_ms = kNowUnixMs - 7000;  // draining
  view.server(5).up_since_unix_ms = kNowUnixMs - 9000;  // down: not a usable server
  StartWriterWith(view);
  auto tracker = MakeTracker(Configured(6));
  EXPECT_EQ(tracker->UpSinceUnixMs(0), 0);  // nothing read yet
  ASSERT_TRUE(tracker->Refresh(0));
  EXPECT_EQ(tracker->UpSinceUnixMs(0), kNowUnixMs - 5000);
  EXPECT_EQ(tracker->UpSinceUnixMs(3), kNowUnixMs - 7000);
  EXPECT_EQ(tracker->UpSinceUnixMs(5), 0);
  EXPECT_EQ(tracker->UpSinceUnixMs(-1), 0);
  EXPECT_EQ(tracker->UpSinceUnixMs(64), 0);

  view.server(0).up_since_unix_ms = kNowUnixMs;  // it came back
  Publish(view);
  ASSERT_TRUE(tracker->Refresh(1));
  EXPECT_EQ(tracker->UpSinceUnixMs(0), kNowUnixMs);
}

TEST_F(ViewTrackerTest, IndexOfIdFollowsTheViewInEveryState) {
  ClusterView view = MixedView();
  StartWriterWith(view);
  auto tracker = MakeTracker(Configured(6));
  EXPECT_EQ(tracker->IndexOfId("app-0"), -1);  // nothing read yet
  ASSERT_TRUE(tracker->Refresh(0));
  EXPECT_EQ(tracker->IndexOfId("app-0"), 0);
  EXPECT_EQ(tracker->IndexOfId("app-3"), 3);  // draining
  EXPECT_EQ(tracker->IndexOfId("app-5"), 5);  // down: still that server's index
  EXPECT_EQ(tracker->IndexOfId("app-6"), -1);
  EXPECT_EQ(tracker->IndexOfId(""), -1);
  EXPECT_EQ(tracker->IndexOfId("app"), -1);

  view.server(5) = ViewServer{};  // server 5 left the cluster
  Publish(view);
  ASSERT_TRUE(tracker->Refresh(1));
  EXPECT_EQ(tracker->IndexOfId("app-5"), -1);
}

TEST_F(ViewTrackerTest, StoppedSidecarMakesTheViewUnusableUntilItIsBack) {
  StartWriterWith(ThreeUp());
  auto tracker = MakeTracker();
  ASSERT_TRUE(tracker->Refresh(0));
  (void)tracker->TakeNotices();

  writer_.reset();  // the sidecar stops: the view file stays, its lock is released
  ASSERT_TRUE(std::filesystem::exists(path_));
  EXPECT_TRUE(tracker->Refresh(kRecheckMs - 1));  // not checked yet
  ExpectNoNotice(*tracker);

  EXPECT_FALSE(tracker->Refresh(kRecheckMs));
  const std::string warning = OnlyNotice(*tracker, ViewNotice::Level::kWarning);
  EXPECT_TRUE(Contains(warning, "not running")) << warning;
  EXPECT_TRUE(Contains(warning, path_)) << warning;
  ExpectUnusable(*tracker);
  EXPECT_FALSE(tracker->Refresh(kRecheckMs + 1));
  EXPECT_FALSE(tracker->Refresh(2 * kRecheckMs));
  ExpectNoNotice(*tracker);

  // The sidecar restarts: it keeps the file (readers keep their mapping) and
  // publishes again.
  StartWriter();
  EXPECT_FALSE(tracker->Refresh(3 * kRecheckMs - 1));
  EXPECT_TRUE(tracker->Refresh(3 * kRecheckMs));
  const std::string info = OnlyNotice(*tracker, ViewNotice::Level::kInfo);
  EXPECT_TRUE(Contains(info, "3 up")) << info;
  EXPECT_EQ(tracker->Candidates().size(), 3);

  ClusterView next = ThreeUp(2);
  AddServer(next, 1, ServerState::kDraining);
  Publish(next);
  EXPECT_TRUE(tracker->Refresh(3 * kRecheckMs + 1));
  EXPECT_EQ(tracker->Choose(SessionOf(1), ServerSet(), kNowUnixMs, 0).reason, RouteReason::kSticky);
  for (uint64_t random = 0; random < 50; ++random) {
    EXPECT_NE(tracker->Choose("", ServerSet(), kNowUnixMs, random).index, 1);
  }
}

TEST_F(ViewTrackerTest, ViewWithNoServerUpOrDrainingIsUnusable) {
  StartWriter();  // the empty view a starting sidecar creates
  auto tracker = MakeTracker();
  EXPECT_FALSE(tracker->Refresh(0));
  std::string warning = OnlyNotice(*tracker, ViewNotice::Level::kWarning);
  EXPECT_TRUE(Contains(warning, "no server is up or draining")) << warning;
  ExpectUnusable(*tracker);

  // Only down servers: the same reason, no second notice.
  ClusterView down = NamedView(2);
  AddServer(down, 0, ServerState::kDown);
  AddServer(down, 1, ServerState::kDown);
  Publish(down);
  EXPECT_FALSE(tracker->Refresh(1));
  ExpectNoNotice(*tracker);
  ExpectUnusable(*tracker);

  // One draining server is enough: it keeps its sessions.
  ClusterView draining = NamedView(3);
  AddServer(draining, 0, ServerState::kDraining);
  AddServer(draining, 1, ServerState::kDown);
  Publish(draining);
  EXPECT_TRUE(tracker->Refresh(2));
  const std::string info = OnlyNotice(*tracker, ViewNotice::Level::kInfo);
  EXPECT_TRUE(Contains(info, "0 up, 1 draining")) << info;
  EXPECT_EQ(tracker->Candidates().size(), 1);
  EXPECT_EQ(tracker->Choose(SessionOf(0), ServerSet(), kNowUnixMs, 0).reason, RouteReason::kSticky);
  const RouteChoice moved = tracker->Choose(SessionOf(1), ServerSet(), kNowUnixMs, 0);
  EXPECT_EQ(moved.index, 0);
  EXPECT_EQ(moved.reason, RouteReason::kBackup);
  // New sessions never go to a draining server.
  EXPECT_EQ(tracker->Choose("", ServerSet(), kNowUnixMs, 0).reason, RouteReason::kNoServer);

  Publish(down);
  EXPECT_FALSE(tracker->Refresh(3));
  warning = OnlyNotice(*tracker, ViewNotice::Level::kWarning);
  EXPECT_TRUE(Contains(warning, "no server is up or draining")) << warning;
  ExpectUnusable(*tracker);
}

TEST_F(ViewTrackerTest, FileReplacedByATruncatedFileIsUnusable) {
  StartWriterWith(ThreeUp());
  auto tracker = MakeTracker();
  ASSERT_TRUE(tracker->Refresh(0));
  (void)tracker->TakeNotices();

  const std::string whole = FileBytes();
  ASSERT_EQ(whole.size(), sizeof(ViewImage));
  ReplaceFile(whole.substr(0, whole.size() / 2));  // a good header, half a view
  EXPECT_TRUE(tracker->Refresh(kRecheckMs - 1));   // the old mapping until the recheck
  ExpectNoNotice(*tracker);

  EXPECT_FALSE(tracker->Refresh(kRecheckMs));
  const std::string warning = OnlyNotice(*tracker, ViewNotice::Level::kWarning);
  EXPECT_TRUE(Contains(warning, path_ + ": truncated view file")) << warning;
  ExpectUnusable(*tracker);
  EXPECT_FALSE(tracker->Refresh(2 * kRecheckMs));
  ExpectNoNotice(*tracker);

  // The sidecar restarts: it replaces the file it cannot reuse, then publishes.
  writer_.reset();
  StartWriterWith(ThreeUp(5));
  EXPECT_TRUE(tracker->Refresh(3 * kRecheckMs));
  (void)OnlyNotice(*tracker, ViewNotice::Level::kInfo);
  EXPECT_EQ(tracker->Candidates().size(), 3);
}

TEST_F(ViewTrackerTest, FileOfAnotherKindOrRemovedIsUnusable) {
  StartWriterWith(ThreeUp());
  auto tracker = MakeTracker();
  ASSERT_TRUE(tracker->Refresh(0));
  (void)tracker->TakeNotices();

  ReplaceFile(std::string(sizeof(ViewImage), 'x'));
  EXPECT_FALSE(tracker->Refresh(kRecheckMs));
  std::string warning = OnlyNotice(*tracker, ViewNotice::Level::kWarning);
  EXPECT_TRUE(Contains(warning, "not a cluster view file")) << warning;

  ASSERT_EQ(std::remove(path_.c_str()), 0);
  EXPECT_FALSE(tracker->Refresh(2 * kRecheckMs));
  warning = OnlyNotice(*tracker, ViewNotice::Level::kWarning);  // a new reason
  EXPECT_TRUE(Contains(warning, "no view file")) << warning;
  ExpectUnusable(*tracker);
}

// --- Choosing -------------------------------------------------------------------

TEST_F(ViewTrackerTest, ChooseIsStickyBackupOrBalanced) {
  const ClusterView view = MixedView();
  StartWriterWith(view);
  auto tracker = MakeTracker(Configured(6));
  ASSERT_TRUE(tracker->Refresh(0));
  const ServerSet up = view.ServersIn(ServerState::kUp);

  for (int index : {0, 1, 2, 3, 4}) {
    const RouteChoice sticky = tracker->Choose(SessionOf(index), ServerSet(), kNowUnixMs, 7);
    EXPECT_EQ(sticky.index, index);
    EXPECT_EQ(sticky.reason, RouteReason::kSticky);
  }
  // Down, absent: the session's rendezvous backup among the up servers.
  for (int index : {5, 6, 63}) {
    const std::string session = SessionOf(index);
    const RouteChoice backup = tracker->Choose(session, ServerSet(), kNowUnixMs, 7);
    EXPECT_EQ(backup.reason, RouteReason::kBackup) << session;
    EXPECT_EQ(backup.index, RendezvousFirst(RendezvousKeyHash(session), up)) << session;
  }
  // Excluded (it just failed this request): the backup, never an excluded server.
  ServerSet exclude;
  exclude.Add(1);
  const RouteChoice retried = tracker->Choose(SessionOf(1), exclude, kNowUnixMs, 7);
  EXPECT_EQ(retried.reason, RouteReason::kBackup);
  EXPECT_EQ(retried.index, RendezvousFirst(RendezvousKeyHash(SessionOf(1)), up.Without(exclude)));
  // No session: up servers only, each for some random numbers.
  std::set<int> balanced;
  for (uint64_t random = 0; random < 400; ++random) {
    const RouteChoice choice = tracker->Choose("", ServerSet(), kNowUnixMs, random * 7919);
    ASSERT_EQ(choice.reason, RouteReason::kBalanced);
    ASSERT_TRUE(up.Contains(choice.index)) << choice.index;
    balanced.insert(choice.index);
  }
  EXPECT_EQ(balanced, (std::set<int>{0, 1, 2, 4}));
  // Everything up or draining excluded: nothing eligible.
  const ServerSet all = up | view.ServersIn(ServerState::kDraining);
  EXPECT_EQ(tracker->Choose(SessionOf(0), all, kNowUnixMs, 7).reason, RouteReason::kNoServer);
  EXPECT_EQ(tracker->Choose("", up, kNowUnixMs, 7).reason, RouteReason::kNoServer);
}

TEST_F(ViewTrackerTest, ChooseAgreesWithChooseServer) {
  ClusterView view = MixedView();
  view.slow_start_ms = 60'000;
  view.server(4).up_since_unix_ms = kNowUnixMs - 10'000;  // warming up
  view.server(1).weight = 300;
  StartWriterWith(view);
  auto tracker = MakeTracker(Configured(6));
  ASSERT_TRUE(tracker->Refresh(0));

  std::vector<ServerSet> excludes(5);
  excludes[1].Add(0);
  excludes[2].Add(1);
  excludes[2].Add(2);
  excludes[3].Add(3);
  excludes[3].Add(4);
  excludes[4] = ServerSet::FirstN(6);
  std::vector<std::string> sessions = {"", "!not-a-route-char", "~x"};
  for (int index = 0; index < 8; ++index) {
    sessions.push_back(SessionOf(index));
    sessions.push_back(SessionOf(index, "other-token"));
  }
  uint64_t random = 1;
  int compared = 0;
  for (const std::string& session : sessions) {
    for (ServerSet exclude : excludes) {
      for (int64_t now : {kNowUnixMs, kNowUnixMs + 3'600'000}) {
        for (int i = 0; i < 8; ++i) {
          random = random * 6364136223846793005ULL + 1442695040888963407ULL;
          const RouteChoice expected = ChooseIn(view, session, exclude, random, now);
          const RouteChoice actual = tracker->Choose(session, exclude, now, random);
          ASSERT_EQ(actual.index, expected.index)
              << "session \"" << session << "\" exclude " << exclude.bits() << " random " << random;
          ASSERT_EQ(actual.reason, expected.reason) << "session \"" << session << "\"";
          ++compared;
        }
      }
    }
  }
  EXPECT_EQ(compared, 19 * 5 * 2 * 8);
}

// --- Addresses ------------------------------------------------------------------

TEST_F(ViewTrackerTest, AddressesOfConfiguredAndDynamicServers) {
  ClusterView view = ThreeUp();
  AddServer(view, 3, ServerState::kUp, "10.0.1.3:8081");
  AddServer(view, 4, ServerState::kDraining, "[fd00::4]:8080");
  view.server(3).flags = ViewServer::kFlagDynamic;
  view.server(4).flags = ViewServer::kFlagDynamic;
  StartWriterWith(view);
  const std::vector<SocketAddress> configured = Configured(3);
  auto tracker = MakeTracker(configured);
  ASSERT_TRUE(tracker->Refresh(0));
  const std::vector<ViewNotice> notices = tracker->TakeNotices();
  ASSERT_EQ(notices.size(), 1u) << Texts(notices);  // no address warning
  EXPECT_EQ(notices[0].level, ViewNotice::Level::kInfo);

  for (int index = 0; index < 3; ++index) {
    const SocketAddress* address = tracker->AddressOf(index);
    ASSERT_NE(address, nullptr) << index;
    EXPECT_EQ(address->text, configured[static_cast<std::size_t>(index)].text);
    EXPECT_TRUE(SameSocketAddress(address->get(), address->length,
                                  configured[static_cast<std::size_t>(index)].get(),
                                  configured[static_cast<std::size_t>(index)].length));
  }
  const SocketAddress* dynamic_v4 = tracker->AddressOf(3);
  ASSERT_NE(dynamic_v4, nullptr);
  EXPECT_EQ(dynamic_v4->text, "10.0.1.3:8081");
  const SocketAddress expected_v4 = Numeric("10.0.1.3:8081");
  EXPECT_TRUE(SameSocketAddress(dynamic_v4->get(), dynamic_v4->length, expected_v4.get(),
                                expected_v4.length));
  const SocketAddress* dynamic_v6 = tracker->AddressOf(4);
  ASSERT_NE(dynamic_v6, nullptr);
  EXPECT_EQ(dynamic_v6->text, "[fd00::4]:8080");
  EXPECT_EQ(dynamic_v6->get()->sa_family, AF_INET6);

  EXPECT_EQ(tracker->AddressOf(5), nullptr);  // absent
  EXPECT_EQ(tracker->AddressOf(63), nullptr);
  EXPECT_EQ(tracker->AddressOf(-1), nullptr);
  EXPECT_EQ(tracker->AddressOf(64), nullptr);
  EXPECT_EQ(tracker->Candidates().size(), 5);
  const RouteChoice sticky = tracker->Choose(SessionOf(3), ServerSet(), kNowUnixMs, 0);
  EXPECT_EQ(sticky.index, 3);
  EXPECT_EQ(sticky.reason, RouteReason::kSticky);

  // The dynamic server leaves: no address for its index any more.
  ClusterView without = ThreeUp(2);
  AddServer(without, 4, ServerState::kUp, "[fd00::4]:8080");
  Publish(without);
  ASSERT_TRUE(tracker->Refresh(1));
  EXPECT_EQ(tracker->AddressOf(3), nullptr);
  ASSERT_NE(tracker->AddressOf(4), nullptr);
  EXPECT_EQ(tracker->Candidates().size(), 4);
}

TEST_F(ViewTrackerTest, DynamicServerWithAHostNameGetsNoRequests) {
  ClusterView view = ThreeUp();
  AddServer(view, 3, ServerState::kUp, "app-d.internal:8080");
  AddServer(view, 4, ServerState::kUp, "10.0.0.4:8080");
  StartWriterWith(view);
  auto tracker = MakeTracker(Configured(3));
  ASSERT_TRUE(tracker->Refresh(0));
  std::vector<ViewNotice> notices = tracker->TakeNotices();
  ASSERT_EQ(notices.size(), 2u) << Texts(notices);
  int warnings = 0;
  for (const ViewNotice& notice : notices) {
    if (notice.level != ViewNotice::Level::kWarning) continue;
    ++warnings;
    EXPECT_TRUE(Contains(notice.text, path_)) << notice.text;
    EXPECT_TRUE(Contains(notice.text, "server 3 (app-3)")) << notice.text;
    EXPECT_TRUE(Contains(notice.text, "app-d.internal:8080")) << notice.text;
    EXPECT_TRUE(Contains(notice.text, "numeric")) << notice.text;
  }
  EXPECT_EQ(warnings, 1);

  EXPECT_EQ(tracker->AddressOf(3), nullptr);
  ASSERT_NE(tracker->AddressOf(4), nullptr);
  EXPECT_EQ(tracker->Candidates(), ServerSet::FromBits(0b10111));  // 0, 1, 2 and 4
  const RouteChoice moved = tracker->Choose(SessionOf(3), ServerSet(), kNowUnixMs, 0);
  EXPECT_EQ(moved.reason, RouteReason::kBackup);
  EXPECT_NE(moved.index, 3);
  EXPECT_EQ(moved.index,
            RendezvousFirst(
                RendezvousKeyHash(SessionOf(3)),
                view.ServersIn(ServerState::kUp).Without(ServerSet::FromBits(uint64_t{1} << 3))));
  std::set<int> balanced;
  for (uint64_t random = 0; random < 500; ++random) {
    const RouteChoice choice = tracker->Choose("", ServerSet(), kNowUnixMs, random * 104729);
    ASSERT_EQ(choice.reason, RouteReason::kBalanced);
    ASSERT_NE(choice.index, 3);
    balanced.insert(choice.index);
  }
  EXPECT_EQ(balanced, (std::set<int>{0, 1, 2, 4}));

  // The same problem in the next view: not reported again.
  ClusterView again = view;
  again.generation = 2;
  Publish(again);
  ASSERT_TRUE(tracker->Refresh(1));
  ExpectNoNotice(*tracker);
  EXPECT_EQ(tracker->AddressOf(3), nullptr);

  // Fixed: it takes requests; broken again: reported again.
  ClusterView fixed = view;
  fixed.generation = 3;
  ASSERT_TRUE(fixed.server(3).SetHttpAddress("10.0.0.13:8080").ok());
  Publish(fixed);
  ASSERT_TRUE(tracker->Refresh(2));
  ExpectNoNotice(*tracker);
  ASSERT_NE(tracker->AddressOf(3), nullptr);
  EXPECT_EQ(tracker->AddressOf(3)->text, "10.0.0.13:8080");
  EXPECT_EQ(tracker->Candidates().size(), 5);
  EXPECT_EQ(tracker->Choose(SessionOf(3), ServerSet(), kNowUnixMs, 0).reason, RouteReason::kSticky);

  again.generation = 4;
  Publish(again);
  ASSERT_TRUE(tracker->Refresh(3));
  EXPECT_TRUE(Contains(OnlyNotice(*tracker, ViewNotice::Level::kWarning), "server 3"));
  EXPECT_EQ(tracker->AddressOf(3), nullptr);
}

TEST_F(ViewTrackerTest, OnlyUnreachableServersUpIsUnusable) {
  ClusterView view = NamedView(1);
  AddServer(view, 0, ServerState::kDown);
  AddServer(view, 1, ServerState::kUp, "app-b.internal:8080");
  StartWriterWith(view);
  auto tracker = MakeTracker(Configured(1));
  EXPECT_FALSE(tracker->Refresh(0));
  const std::vector<ViewNotice> notices = tracker->TakeNotices();
  ASSERT_EQ(notices.size(), 2u) << Texts(notices);
  EXPECT_EQ(notices[0].level, ViewNotice::Level::kWarning);
  EXPECT_TRUE(Contains(notices[0].text, "server 1")) << notices[0].text;
  EXPECT_EQ(notices[1].level, ViewNotice::Level::kWarning);
  EXPECT_TRUE(Contains(notices[1].text, "no usable cluster view")) << notices[1].text;
  ExpectUnusable(*tracker);
}

TEST_F(ViewTrackerTest, ConfiguredAddressThatDiffersFromTheViewIsReportedOnce) {
  std::vector<SocketAddress> configured = Configured(3);
  configured[1] = Numeric("10.0.0.99:8080");
  StartWriterWith(ThreeUp());
  auto tracker = MakeTracker(configured);
  ASSERT_TRUE(tracker->Refresh(0));
  const std::vector<ViewNotice> notices = tracker->TakeNotices();
  ASSERT_EQ(notices.size(), 2u) << Texts(notices);
  const ViewNotice& warning = notices[0];
  EXPECT_EQ(warning.level, ViewNotice::Level::kWarning);
  EXPECT_TRUE(Contains(warning.text, path_)) << warning.text;
  EXPECT_TRUE(Contains(warning.text, "server 1 (app-1)")) << warning.text;
  EXPECT_TRUE(Contains(warning.text, "10.0.0.1:8080")) << warning.text;
  EXPECT_TRUE(Contains(warning.text, "using 10.0.0.99:8080")) << warning.text;
  EXPECT_EQ(notices[1].level, ViewNotice::Level::kInfo);

  // The web server's own line wins; the server still takes requests.
  ASSERT_NE(tracker->AddressOf(1), nullptr);
  EXPECT_EQ(tracker->AddressOf(1)->text, "10.0.0.99:8080");
  EXPECT_EQ(tracker->Candidates().size(), 3);
  EXPECT_EQ(tracker->Choose(SessionOf(1), ServerSet(), kNowUnixMs, 0).index, 1);

  Publish(ThreeUp(2));
  ASSERT_TRUE(tracker->Refresh(1));
  ExpectNoNotice(*tracker);
}

TEST_F(ViewTrackerTest, ConfiguredAddressSpelledDifferentlyIsNotReported) {
  ClusterView view = ThreeUp();
  AddServer(view, 2, ServerState::kUp, "[fd00:0:0::2]:8080");
  StartWriterWith(view);
  std::vector<SocketAddress> configured = Configured(3);
  configured[2] = Numeric("[fd00::2]:8080");
  auto tracker = MakeTracker(configured);
  ASSERT_TRUE(tracker->Refresh(0));
  (void)OnlyNotice(*tracker, ViewNotice::Level::kInfo);
  EXPECT_EQ(tracker->AddressOf(2)->text, "[fd00::2]:8080");
}

// --- current_version_only --------------------------------------------------------

// ThreeUp with `names` deployed; each deployment's current commit runs on servers 0
// and 1, server 2 runs an older one.
ClusterView Deployed(std::initializer_list<std::string_view> names, uint64_t generation = 1) {
  constexpr std::string_view kNew = "3333333333333333333333333333333333333333";
  constexpr std::string_view kOld = "4444444444444444444444444444444444444444";
  ClusterView view = ThreeUp(generation);
  std::size_t slot = 0;
  for (std::string_view name : names) {
    ViewDeployment& deployment = view.deployments[slot++];
    EXPECT_TRUE(deployment.SetName(name).ok());
    EXPECT_TRUE(deployment.SetCommit(kNew).ok());
    EXPECT_TRUE(deployment.SetServerCommit(0, kNew).ok());
    EXPECT_TRUE(deployment.SetServerCommit(1, kNew).ok());
    EXPECT_TRUE(deployment.SetServerCommit(2, kOld).ok());
  }
  return view;
}

// The servers `draws` new sessions went to.
std::set<int> NewSessionServers(const ViewTracker& tracker, int draws = 200) {
  std::set<int> chosen;
  for (int n = 0; n < draws; ++n) {
    chosen.insert(
        tracker.Choose("", ServerSet(), kNowUnixMs, static_cast<uint64_t>(n) * 7919).index);
  }
  return chosen;
}

TEST_F(ViewTrackerTest, CurrentVersionOnlyFollowsTheViewsDeployments) {
  StartWriterWith(Deployed({"production/webapp/default/shop"}));
  auto tracker = MakeTracker();
  tracker->PreferCurrentVersion("shop");
  ASSERT_TRUE(tracker->Refresh(0));
  (void)OnlyNotice(*tracker, ViewNotice::Level::kInfo);
  EXPECT_EQ(NewSessionServers(*tracker), (std::set<int>{0, 1}));
  EXPECT_EQ(tracker->Choose(SessionOf(2), ServerSet(), kNowUnixMs, 0).index, 2);

  Publish(ThreeUp(2));  // no deployment (any more): every server, and nothing to report
  ASSERT_TRUE(tracker->Refresh(1));
  ExpectNoNotice(*tracker);
  EXPECT_EQ(NewSessionServers(*tracker), (std::set<int>{0, 1, 2}));
}

TEST_F(ViewTrackerTest, CurrentVersionOnlyReportsAMissingDeploymentOnce) {
  StartWriterWith(Deployed({"production/webapp/default/blog", "production/webapp/default/wiki"}));
  auto tracker = MakeTracker();
  tracker->PreferCurrentVersion("shop");
  ASSERT_TRUE(tracker->Refresh(0));
  const std::vector<ViewNotice> notices = tracker->TakeNotices();
  ASSERT_EQ(notices.size(), 2u) << Texts(notices);
  EXPECT_EQ(notices[0].level, ViewNotice::Level::kWarning);
  EXPECT_TRUE(Contains(notices[0].text, path_)) << notices[0].text;
  EXPECT_TRUE(Contains(notices[0].text, "\"shop\"")) << notices[0].text;
  EXPECT_TRUE(
      Contains(notices[0].text, "production/webapp/default/blog, production/webapp/default/wiki"))
      << notices[0].text;
  EXPECT_EQ(NewSessionServers(*tracker), (std::set<int>{0, 1, 2}));

  Publish(Deployed({"production/webapp/default/blog", "production/webapp/default/wiki"}, 2));
  ASSERT_TRUE(tracker->Refresh(1));
  ExpectNoNotice(*tracker);

  // Deployed after all: no notice, and the preference applies.
  Publish(Deployed({"production/webapp/default/shop", "production/webapp/default/wiki"}, 3));
  ASSERT_TRUE(tracker->Refresh(2));
  ExpectNoNotice(*tracker);
  EXPECT_EQ(NewSessionServers(*tracker), (std::set<int>{0, 1}));
}

TEST_F(ViewTrackerTest, CurrentVersionOnlyWithoutAWebappNeedsOneDeployment) {
  StartWriterWith(Deployed({"production/webapp/default/blog", "production/webapp/default/wiki"}));
  auto tracker = MakeTracker();
  tracker->PreferCurrentVersion("");
  ASSERT_TRUE(tracker->Refresh(0));
  const std::vector<ViewNotice> notices = tracker->TakeNotices();
  ASSERT_EQ(notices.size(), 2u) << Texts(notices);
  EXPECT_TRUE(Contains(notices[0].text, "without webapp= needs exactly one deployment"))
      << notices[0].text;

  Publish(Deployed({"production/webapp/default/blog"}, 2));
  ASSERT_TRUE(tracker->Refresh(1));
  ExpectNoNotice(*tracker);
  EXPECT_EQ(NewSessionServers(*tracker), (std::set<int>{0, 1}));
}

}  // namespace
}  // namespace cb
