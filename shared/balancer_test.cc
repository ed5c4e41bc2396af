#include "shared/balancer.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shared/balancer_options.h"
#include "shared/cluster_view.h"
#include "shared/published_view_test_support.h"
#include "shared/rendezvous.h"
#include "shared/route_codec.h"
#include "shared/routing.h"
#include "shared/server_set.h"
#include "shared/socket_address.h"
#include "shared/sticky_cookie.h"
#include "shared/view_file.h"

namespace cb {
namespace {

constexpr int64_t kNowUnixMs = 1'700'000'000'000;

// Up 0, 1, 2; down 3.
ClusterView TestView() {
  ClusterView view;
  view.generation = 1;
  EXPECT_TRUE(view.SetClusterName("shop").ok());
  AddServer(view, 0, ServerState::kUp);
  AddServer(view, 1, ServerState::kUp);
  AddServer(view, 2, ServerState::kUp);
  AddServer(view, 3, ServerState::kDown);
  return view;
}

// The cookie value in a Set-Cookie header value ("NAME=value; Path=/...").
std::string ValueOf(std::string_view header) {
  const std::size_t equals = header.find('=');
  const std::size_t end = header.find(';');
  if (equals == std::string_view::npos || end == std::string_view::npos || end < equals) return {};
  return std::string(header.substr(equals + 1, end - equals - 1));
}

class BalancerTest : public PublishedViewTest {
 protected:
  BalancerOptions Options(StickyMode mode = StickyMode::kRoute) const {
    BalancerOptions options;
    options.view_path = path_;
    options.mode = mode;
    return options;
  }

  std::unique_ptr<Balancer> MakeBalancer(BalancerOptions options, uint64_t seed = 1) const {
    return std::make_unique<Balancer>(std::move(options), Configured(3), seed);
  }
};

// --- Sessions ---------------------------------------------------------------------

TEST_F(BalancerTest, RouteModeTakesTheSessionCookie) {
  auto balancer = MakeBalancer(Options(StickyMode::kRoute));
  EXPECT_EQ(balancer->SessionFromCookieHeader("a=1; JSESSIONID=Cabc; CBROUTE=DAAAAAAAAAAA"),
            "Cabc");
  EXPECT_EQ(balancer->SessionFromCookieHeader("JSESSIONID=anything-goes"), "anything-goes");
  // The insert mode's cookie is not a session in route mode.
  EXPECT_EQ(balancer->SessionFromCookieHeader("CBROUTE=DAAAAAAAAAAA"), "");
  EXPECT_EQ(balancer->SessionFromCookieHeader(""), "");
  EXPECT_EQ(balancer->SessionFromCookieHeader("jsessionid=Cabc"), "");  // names are case-sensitive
}

TEST_F(BalancerTest, RouteModeWithAnotherCookieName) {
  BalancerOptions options = Options(StickyMode::kRoute);
  options.session_cookie = "SID";
  auto balancer = MakeBalancer(std::move(options));
  EXPECT_EQ(balancer->SessionFromCookieHeader("JSESSIONID=Cabc; SID=Bxyz"), "Bxyz");
  EXPECT_EQ(balancer->SessionFromCookieHeader("JSESSIONID=Cabc"), "");
}

TEST_F(BalancerTest, InsertModeTakesOnlyItsOwnCookieOfItsOwnForm) {
  auto balancer = MakeBalancer(Options(StickyMode::kInsert));
  const std::string value = StickyCookieValue(2, 0xabcdef);
  EXPECT_EQ(balancer->SessionFromCookieHeader("a=1; CBROUTE=" + value + "; b=2"), value);
  EXPECT_EQ(balancer->SessionFromCookieHeader("CBROUTE=\"" + value + "\""), value);
  for (std::string_view garbage :
       {"CBROUTE=garbage", "CBROUTE=Cabc", "CBROUTE=CAAAAAAAAAA.", "CBROUTE=CAAAAAAAAAAAA",
        "CBROUTE=", "JSESSIONID=CAAAAAAAAAAA", "JSESSIONID=Cabc"}) {
    EXPECT_EQ(balancer->SessionFromCookieHeader(garbage), "") << garbage;
  }
}

TEST_F(BalancerTest, InsertModeWithAnotherCookieName) {
  BalancerOptions options = Options(StickyMode::kInsert);
  options.insert_cookie.name = "SRV";
  auto balancer = MakeBalancer(std::move(options));
  const std::string value = StickyCookieValue(1, 99);
  EXPECT_EQ(balancer->SessionFromCookieHeader("SRV=" + value), value);
  EXPECT_EQ(balancer->SessionFromCookieHeader("CBROUTE=" + value), "");
}

TEST_F(BalancerTest, SessionFromPathInRouteMode) {
  auto balancer = MakeBalancer(Options(StickyMode::kRoute));
  EXPECT_EQ(balancer->SessionFromPath("/cart;jsessionid=Cxyz?x=1"), "Cxyz");
  EXPECT_EQ(balancer->SessionFromPath("/cart;jsessionid=Cxyz/more"), "Cxyz");
  EXPECT_EQ(balancer->SessionFromPath("/cart?jsessionid=Cxyz"), "");  // the query is not the path
  EXPECT_EQ(balancer->SessionFromPath("/cart"), "");

  BalancerOptions options = Options(StickyMode::kRoute);
  options.path_parameter = "sid";
  auto other = MakeBalancer(std::move(options));
  EXPECT_EQ(other->SessionFromPath("/a;sid=Bq"), "Bq");
  EXPECT_EQ(other->SessionFromPath("/a;jsessionid=Bq"), "");
}

TEST_F(BalancerTest, SessionFromPathOffOrInInsertMode) {
  BalancerOptions off = Options(StickyMode::kRoute);
  off.path_parameter.clear();  // path_parameter=off
  EXPECT_EQ(MakeBalancer(std::move(off))->SessionFromPath("/cart;jsessionid=Cxyz"), "");
  // With the parsed option too.
  BalancerOptions parsed;
  const std::vector<std::string_view> words = {path_, "path_parameter=off"};
  ASSERT_TRUE(ParseBalancerWords(words, parsed).ok());
  EXPECT_EQ(MakeBalancer(std::move(parsed))->SessionFromPath("/cart;jsessionid=Cxyz"), "");

  auto insert = MakeBalancer(Options(StickyMode::kInsert));
  EXPECT_EQ(insert->SessionFromPath("/cart;jsessionid=Cxyz"), "");
  EXPECT_EQ(insert->SessionFromPath("/cart;jsessionid=" + StickyCookieValue(2, 5)), "");
}

// Yields `headers` one by one, as a web server's glue does with its Cookie headers.
auto HeadersOf(const std::vector<std::string_view>& headers) {
  return [&headers, next = std::size_t{0}]() mutable -> std::optional<std::string_view> {
    if (next == headers.size()) return std::nullopt;
    return headers[next++];
  };
}

TEST_F(BalancerTest, SessionOfRequestTakesTheFirstCookieHeaderWithOneElseThePath) {
  auto balancer = MakeBalancer(Options(StickyMode::kRoute));
  const std::vector<std::string_view> none = {};
  const std::vector<std::string_view> second = {"a=1", "JSESSIONID=Bfirst", "JSESSIONID=Csecond"};
  const std::vector<std::string_view> unusable = {"JSESSIONID=\"unbalanced", "b=2"};
  EXPECT_EQ(balancer->SessionOfRequest(HeadersOf(second), "/a;jsessionid=Dpath"), "Bfirst");
  EXPECT_EQ(balancer->SessionOfRequest(HeadersOf(none), "/a;jsessionid=Dpath"), "Dpath");
  EXPECT_EQ(balancer->SessionOfRequest(HeadersOf(unusable), "/a;jsessionid=Dpath"), "Dpath");
  EXPECT_EQ(balancer->SessionOfRequest(HeadersOf(none), "/a"), "");
  // As the client sent it: a percent-encoded parameter is none.
  EXPECT_EQ(balancer->SessionOfRequest(HeadersOf(none), "/a%3Bjsessionid=Dpath"), "");
  // The path is not read once a header holds the session; none after the last.
  int calls = 0;
  const std::vector<std::string_view> first = {"JSESSIONID=Bfirst", "JSESSIONID=Csecond"};
  auto counted = [&, next = HeadersOf(first)]() mutable {
    ++calls;
    return next();
  };
  EXPECT_EQ(balancer->SessionOfRequest(counted, "/a;jsessionid=Dpath"), "Bfirst");
  EXPECT_EQ(calls, 1);
}

// --- The insert mode's cookie ---------------------------------------------------------

TEST_F(BalancerTest, InsertCookieIsNeverSetInRouteMode) {
  auto balancer = MakeBalancer(Options(StickyMode::kRoute));
  EXPECT_EQ(balancer->InsertCookieFor("", 1), "");
  EXPECT_EQ(balancer->InsertCookieFor(SessionOf(2), 1), "");
  EXPECT_EQ(balancer->InsertCookieFor(StickyCookieValue(2, 5), 1), "");
}

TEST_F(BalancerTest, InsertCookieNotNeededWhenTheSessionNamesTheServer) {
  auto balancer = MakeBalancer(Options(StickyMode::kInsert));
  for (int index : {0, 2, 63}) {
    EXPECT_EQ(balancer->InsertCookieFor(StickyCookieValue(index, 77), index), "") << index;
  }
}

TEST_F(BalancerTest, InsertCookieRepinsKeepingTheTokenOnlyWhenItsServerIsGone) {
  StartWriterWith(TestView());  // 0, 1, 2 up; 3 down
  auto balancer = MakeBalancer(Options(StickyMode::kInsert));
  const std::string on_down = StickyCookieValue(3, 0x1234567890ULL);
  const std::string on_up = StickyCookieValue(0, 0x1234567890ULL);
  // Without a view nothing says a server is gone: the pin stays.
  EXPECT_EQ(balancer->InsertCookieFor(on_down, 2), "");
  ASSERT_TRUE(balancer->Refresh(0));

  const std::string header = balancer->InsertCookieFor(on_down, 2);
  EXPECT_EQ(header, "CBROUTE=C" + on_down.substr(1) + "; Path=/; HttpOnly; SameSite=Lax");
  // The same answer every time: the token does not depend on the generator.
  EXPECT_EQ(balancer->InsertCookieFor(on_down, 2), header);
  // Pinned to a server still up: another server answered after a failure the view
  // does not show; the client goes back to its own server next time.
  EXPECT_EQ(balancer->InsertCookieFor(on_up, 2), "");
  // Pinned to a server no view has (an index nobody holds): re-pinned.
  EXPECT_EQ(ValueOf(balancer->InsertCookieFor(StickyCookieValue(40, 9), 1)).front(), 'B');
}

TEST_F(BalancerTest, InsertCookieForANewSession) {
  auto balancer = MakeBalancer(Options(StickyMode::kInsert), 42);
  const std::string first = balancer->InsertCookieFor("", 1);
  ASSERT_EQ(first.rfind("CBROUTE=", 0), 0u) << first;
  const std::string value = ValueOf(first);
  EXPECT_TRUE(IsStickyCookieValue(value)) << first;
  EXPECT_EQ(value.front(), RouteCharForIndex(1));
  EXPECT_EQ(first, SetCookieHeader(StickyCookie(), value));
  // The balancer's own cookie reads back as the session that names the server.
  EXPECT_EQ(balancer->SessionFromCookieHeader("CBROUTE=" + value), value);
  EXPECT_EQ(balancer->InsertCookieFor(value, 1), "");

  // Each new session gets its own token; the seed makes the sequence repeatable.
  const std::string second = balancer->InsertCookieFor("", 1);
  EXPECT_NE(ValueOf(second), value);
  auto same_seed = MakeBalancer(Options(StickyMode::kInsert), 42);
  EXPECT_EQ(same_seed->InsertCookieFor("", 1), first);
  auto other_seed = MakeBalancer(Options(StickyMode::kInsert), 43);
  EXPECT_NE(other_seed->InsertCookieFor("", 1), first);
}

TEST_F(BalancerTest, InsertCookieUsesTheConfiguredAttributes) {
  BalancerOptions options = Options(StickyMode::kInsert);
  const std::vector<std::string_view> words = {"name=SRV", "path=/shop", "max_age=1h", "secure",
                                               "samesite=none"};
  ASSERT_TRUE(ParseStickyCookieWords(words, options.insert_cookie).ok());
  StartWriterWith(TestView());
  auto balancer = MakeBalancer(std::move(options));
  ASSERT_TRUE(balancer->Refresh(0));
  const std::string session = StickyCookieValue(3, 1);  // on the down server
  EXPECT_EQ(
      balancer->InsertCookieFor(session, 2),
      "SRV=C" + session.substr(1) + "; Path=/shop; Max-Age=3600; Secure; HttpOnly; SameSite=None");
  // With a max_age, a pin that stays is sent again: it lasts max_age after the
  // client's last request, not after its first.
  const std::string kept = StickyCookieValue(2, 1);
  EXPECT_EQ(balancer->InsertCookieFor(kept, 2),
            "SRV=" + kept + "; Path=/shop; Max-Age=3600; Secure; HttpOnly; SameSite=None");
}

TEST_F(BalancerTest, InsertCookieForAnIndexWithoutRouteCharacterIsEmpty) {
  auto balancer = MakeBalancer(Options(StickyMode::kInsert));
  EXPECT_EQ(balancer->InsertCookieFor("", -1), "");
  EXPECT_EQ(balancer->InsertCookieFor("", 64), "");
}

// --- Choosing -------------------------------------------------------------------

TEST_F(BalancerTest, ChooseWithoutAViewIsNoServer) {
  auto balancer = MakeBalancer(Options());
  EXPECT_FALSE(balancer->Refresh(0));
  const std::vector<ViewNotice> notices = balancer->TakeNotices();
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].level, ViewNotice::Level::kWarning);
  EXPECT_NE(notices[0].text.find(path_), std::string::npos) << notices[0].text;
  const RouteChoice choice = balancer->Choose(SessionOf(1), ServerSet(), kNowUnixMs);
  EXPECT_EQ(choice.index, -1);
  EXPECT_EQ(choice.reason, RouteReason::kNoServer);
  EXPECT_EQ(balancer->Candidates().size(), 0);
}

TEST_F(BalancerTest, ChooseDelegatesToTheView) {
  const ClusterView view = TestView();
  StartWriterWith(view);
  auto balancer = MakeBalancer(Options());
  ASSERT_TRUE(balancer->Refresh(0));
  const std::vector<ViewNotice> notices = balancer->TakeNotices();
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].level, ViewNotice::Level::kInfo);
  EXPECT_EQ(balancer->Candidates().size(), 3);
  ASSERT_NE(balancer->AddressOf(1), nullptr);
  EXPECT_EQ(balancer->AddressOf(1)->text, HttpAddressOf(1));

  // Sticky to an up server.
  for (int index : {0, 1, 2}) {
    const RouteChoice sticky = balancer->Choose(SessionOf(index), ServerSet(), kNowUnixMs);
    EXPECT_EQ(sticky.index, index);
    EXPECT_EQ(sticky.reason, RouteReason::kSticky);
  }
  // A down server's session goes to its backup, an excluded one too.
  const ServerSet up = view.ServersIn(ServerState::kUp);
  const RouteChoice backup = balancer->Choose(SessionOf(3), ServerSet(), kNowUnixMs);
  EXPECT_EQ(backup.reason, RouteReason::kBackup);
  EXPECT_EQ(backup.index, RendezvousFirst(RendezvousKeyHash(SessionOf(3)), up));
  ServerSet exclude;
  exclude.Add(2);
  const RouteChoice retried = balancer->Choose(SessionOf(2), exclude, kNowUnixMs);
  EXPECT_EQ(retried.reason, RouteReason::kBackup);
  EXPECT_EQ(retried.index, RendezvousFirst(RendezvousKeyHash(SessionOf(2)), up.Without(exclude)));

  // New sessions: spread over the up servers by the balancer's own generator.
  std::set<int> chosen;
  for (int i = 0; i < 300; ++i) {
    const RouteChoice balanced = balancer->Choose("", ServerSet(), kNowUnixMs);
    ASSERT_EQ(balanced.reason, RouteReason::kBalanced);
    chosen.insert(balanced.index);
  }
  EXPECT_EQ(chosen, (std::set<int>{0, 1, 2}));
  EXPECT_EQ(balancer->Choose("", up, kNowUnixMs).reason, RouteReason::kNoServer);
}

TEST_F(BalancerTest, InsertModeSessionIsStickyAndRepinnedAfterAFailover) {
  StartWriterWith(TestView());
  auto balancer = MakeBalancer(Options(StickyMode::kInsert), 7);
  ASSERT_TRUE(balancer->Refresh(0));

  // First request: no cookie; the answering server pins the client.
  const RouteChoice first = balancer->Choose("", ServerSet(), kNowUnixMs);
  ASSERT_EQ(first.reason, RouteReason::kBalanced);
  const std::string pinned = ValueOf(balancer->InsertCookieFor("", first.index));
  const std::string cookie_header = "CBROUTE=" + pinned;  // the session points into it
  const std::string_view session = balancer->SessionFromCookieHeader(cookie_header);
  ASSERT_EQ(session, pinned);

  // Next requests stick to it and need no new cookie.
  const RouteChoice again = balancer->Choose(session, ServerSet(), kNowUnixMs);
  EXPECT_EQ(again.index, first.index);
  EXPECT_EQ(again.reason, RouteReason::kSticky);
  EXPECT_EQ(balancer->InsertCookieFor(session, again.index), "");

  // Its server fails this request but the view still has it: the backup answers
  // and the pin stays, so the client returns to its server.
  ServerSet exclude;
  exclude.Add(first.index);
  const RouteChoice retry = balancer->Choose(session, exclude, kNowUnixMs);
  ASSERT_EQ(retry.reason, RouteReason::kBackup);
  ASSERT_NE(retry.index, first.index);
  EXPECT_EQ(balancer->InsertCookieFor(session, retry.index), "");

  // The view marks it down: the backup answers and the cookie moves there.
  ClusterView down = TestView();
  down.generation = 2;
  AddServer(down, first.index, ServerState::kDown);
  Publish(down);
  ASSERT_TRUE(balancer->Refresh(1));
  const RouteChoice failover = balancer->Choose(session, ServerSet(), kNowUnixMs);
  ASSERT_EQ(failover.reason, RouteReason::kBackup);
  EXPECT_EQ(failover.index, retry.index);
  const std::string repinned = ValueOf(balancer->InsertCookieFor(session, failover.index));
  EXPECT_EQ(repinned.front(), RouteCharForIndex(failover.index));
  EXPECT_EQ(repinned.substr(1), pinned.substr(1));
}

// --- current_version_only ------------------------------------------------------------

// TestView with a rollout of "shop" in progress: 0 and 1 run the new commit, 2 the old.
ClusterView RolloutView() {
  ClusterView view = TestView();
  ViewDeployment& shop = view.deployments[0];
  EXPECT_TRUE(shop.SetName("production/webapp/default/shop").ok());
  EXPECT_TRUE(shop.SetCommit("2222222222222222222222222222222222222222").ok());
  EXPECT_TRUE(shop.SetServerCommit(0, "2222222222222222222222222222222222222222").ok());
  EXPECT_TRUE(shop.SetServerCommit(1, "2222222222222222222222222222222222222222").ok());
  EXPECT_TRUE(shop.SetServerCommit(2, "1111111111111111111111111111111111111111").ok());
  return view;
}

TEST_F(BalancerTest, CurrentVersionOnlyComesFromTheOptions) {
  StartWriterWith(RolloutView());
  BalancerOptions on = Options();
  on.current_version_only = true;
  on.webapp = "shop";
  auto preferring = MakeBalancer(std::move(on));
  auto plain = MakeBalancer(Options());
  ASSERT_TRUE(preferring->Refresh(0));
  ASSERT_TRUE(plain->Refresh(0));
  std::set<int> preferring_chose;
  std::set<int> plain_chose;
  for (int n = 0; n < 300; ++n) {
    preferring_chose.insert(preferring->Choose("", ServerSet(), kNowUnixMs).index);
    plain_chose.insert(plain->Choose("", ServerSet(), kNowUnixMs).index);
  }
  EXPECT_EQ(preferring_chose, (std::set<int>{0, 1}));
  EXPECT_EQ(plain_chose, (std::set<int>{0, 1, 2}));
  EXPECT_EQ(preferring->Choose(SessionOf(2), ServerSet(), kNowUnixMs).index, 2);

  // The rollout completes: server 2 gets new sessions again with the next view.
  ClusterView done = RolloutView();
  ASSERT_TRUE(
      done.deployments[0].SetServerCommit(2, "2222222222222222222222222222222222222222").ok());
  done.generation = 2;
  Publish(done);
  ASSERT_TRUE(preferring->Refresh(1));
  std::set<int> after;
  for (int n = 0; n < 300; ++n) after.insert(preferring->Choose("", ServerSet(), kNowUnixMs).index);
  EXPECT_EQ(after, (std::set<int>{0, 1, 2}));
}

}  // namespace
}  // namespace cb
