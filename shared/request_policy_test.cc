#include "shared/request_policy.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "shared/balancer.h"
#include "shared/balancer_options.h"
#include "shared/cluster_view.h"
#include "shared/published_view_test_support.h"
#include "shared/rendezvous.h"
#include "shared/route_codec.h"
#include "shared/routing.h"
#include "shared/server_set.h"
#include "shared/sticky_cookie.h"
#include "shared/view_tracker.h"

namespace cb {
namespace {

constexpr int64_t kNowUnixMs = 1'700'000'000'000;

ServerSet Servers(std::initializer_list<int> indices) {
  ServerSet set;
  for (int index : indices) set.Add(index);
  return set;
}

// Up 0..3; server 3 came up at kNowUnixMs - 10 s.
ClusterView FourUp() {
  ClusterView view;
  view.generation = 1;
  EXPECT_TRUE(view.SetClusterName("shop").ok());
  for (int index = 0; index < 4; ++index) AddServer(view, index, ServerState::kUp);
  view.server(3).up_since_unix_ms = kNowUnixMs - 10'000;
  return view;
}

// The rendezvous backup of `session` among `candidates`.
int BackupOf(const std::string& session, ServerSet candidates) {
  return RendezvousFirst(RendezvousKeyHash(session), candidates);
}

class RequestPolicyTest : public PublishedViewTest {
 protected:
  // A balancer following FourUp(), refreshed.
  void SetUp() override {
    PublishedViewTest::SetUp();
    StartWriterWith(FourUp());
    BalancerOptions options;
    options.view_path = path_;
    balancer_ = std::make_unique<Balancer>(std::move(options), Configured(4), 1);
    ASSERT_TRUE(balancer_->Refresh(0));
  }

  // The next try's choice with `held_out` and `unreachable` servers; counts the
  // calls of held_out().
  RouteChoice Next(const RequestPolicy& policy, std::string_view session, ServerSet held_out = {},
                   ServerSet unreachable = {}) {
    return policy.ChooseNext(
        *balancer_, session, unreachable,
        [&] {
          ++held_out_calls_;
          return held_out;
        },
        kNowUnixMs);
  }

  // Plans the first try as Next chooses.
  void PlanOf(RequestPolicy& policy, std::string_view session, ServerSet held_out = {},
              ServerSet unreachable = {}) {
    policy.Plan(
        *balancer_, session, unreachable,
        [&] {
          ++held_out_calls_;
          return held_out;
        },
        kNowUnixMs);
  }

  std::unique_ptr<Balancer> balancer_;
  int held_out_calls_ = 0;
};

TEST(ReasonNameTest, NamesEveryReason) {
  EXPECT_EQ(ReasonName(RouteReason::kSticky), "sticky");
  EXPECT_EQ(ReasonName(RouteReason::kBackup), "backup");
  EXPECT_EQ(ReasonName(RouteReason::kBalanced), "balanced");
  EXPECT_EQ(ReasonName(RouteReason::kNoServer), "fallback");
}

TEST_F(RequestPolicyTest, TriedServersAreNeverChosenAgain) {
  const std::string session = SessionOf(1);
  RequestPolicy policy;
  const RouteChoice first = Next(policy, session);
  EXPECT_EQ(first.index, 1);
  EXPECT_EQ(first.reason, RouteReason::kSticky);
  policy.StartTry(first);

  // The session's server failed: its backups follow, each server once.
  ServerSet left = Servers({0, 2, 3});
  while (!left.empty()) {
    const RouteChoice retry = Next(policy, session);
    ASSERT_EQ(retry.reason, RouteReason::kBackup);
    EXPECT_EQ(retry.index, BackupOf(session, left));
    policy.StartTry(retry);
    left.Remove(retry.index);
  }
  EXPECT_EQ(policy.tried(), Servers({0, 1, 2, 3}));

  // All tried: no server, and the request gives up while the view is usable.
  const RouteChoice none = Next(policy, session);
  EXPECT_EQ(none.index, -1);
  EXPECT_EQ(none.reason, RouteReason::kNoServer);
  EXPECT_EQ(policy.WhenNoServer(*balancer_), NoServerAction::kGiveUp);
}

TEST_F(RequestPolicyTest, HeldOutServersAreAvoidedWhileAnotherIsEligible) {
  const std::string session = SessionOf(1);
  RequestPolicy policy;
  // The session's own server just failed in the web server: its backup instead.
  const RouteChoice avoided = Next(policy, session, Servers({1}));
  EXPECT_EQ(avoided.reason, RouteReason::kBackup);
  EXPECT_EQ(avoided.index, BackupOf(session, Servers({0, 2, 3})));
  EXPECT_EQ(held_out_calls_, 1);

  // Every server is held out: better one of them than none, by the view's rules.
  const RouteChoice all_held_out = Next(policy, session, Servers({0, 1, 2, 3}));
  EXPECT_EQ(all_held_out.index, 1);
  EXPECT_EQ(all_held_out.reason, RouteReason::kSticky);

  // Tried beats held out: the rest of the held-out servers, never a tried one.
  policy.StartTry(all_held_out);
  const RouteChoice retry = Next(policy, session, Servers({0, 1, 2, 3}));
  EXPECT_EQ(retry.reason, RouteReason::kBackup);
  EXPECT_EQ(retry.index, BackupOf(session, Servers({0, 2, 3})));

  // New sessions avoid held-out servers too.
  RequestPolicy fresh;
  for (int i = 0; i < 50; ++i) {
    const RouteChoice balanced = Next(fresh, "", Servers({0, 1, 2}));
    EXPECT_EQ(balanced.index, 3);
    EXPECT_EQ(balanced.reason, RouteReason::kBalanced);
  }
}

TEST_F(RequestPolicyTest, UnreachableServersAreNeverChosen) {
  const ServerSet unreachable = Servers({3});
  RequestPolicy policy;
  policy.StartTries(*balancer_);
  EXPECT_EQ(policy.MaxTries(*balancer_, unreachable), 3);
  EXPECT_EQ(policy.MaxTries(*balancer_, Servers({3, 40})), 3);  // 40 is not in the view

  // The session's server cannot be reached: its backup among the others, then
  // the rest of them, and no try for server 3.
  const std::string session = SessionOf(3);
  ServerSet left = Servers({0, 1, 2});
  while (!left.empty()) {
    const RouteChoice choice = Next(policy, session, {}, unreachable);
    ASSERT_EQ(choice.reason, RouteReason::kBackup);
    EXPECT_EQ(choice.index, BackupOf(session, left));
    policy.StartTry(choice);
    left.Remove(choice.index);
  }
  EXPECT_EQ(Next(policy, session, {}, unreachable).index, -1);
  EXPECT_EQ(policy.WhenNoServer(*balancer_), NoServerAction::kGiveUp);

  // Unlike a held-out server, not even as the last resort: with every other server
  // held out, one of them.
  for (int i = 0; i < 50; ++i) {
    RequestPolicy fresh;
    const RouteChoice choice = Next(fresh, "", Servers({0, 1, 2}), unreachable);
    EXPECT_NE(choice.index, 3);
    EXPECT_GE(choice.index, 0);
    EXPECT_EQ(choice.reason, RouteReason::kBalanced);
  }
  // New sessions go to what is left.
  for (int i = 0; i < 50; ++i) {
    RequestPolicy fresh;
    EXPECT_EQ(Next(fresh, "", {}, Servers({0, 1, 2})).index, 3);
  }
}

TEST_F(RequestPolicyTest, APlanNeverNamesAnUnreachableServer) {
  const std::string session = SessionOf(2);
  RequestPolicy policy;
  PlanOf(policy, session, {}, Servers({2}));
  const RouteChoice planned = policy.Reported();
  EXPECT_EQ(planned.reason, RouteReason::kBackup);
  EXPECT_EQ(planned.index, BackupOf(session, Servers({0, 1, 3})));
  EXPECT_EQ(Next(policy, session, {}, Servers({2})).index, planned.index);

  // A planned server that the try cannot reach is not the try's.
  RequestPolicy unplanned;
  PlanOf(unplanned, session);
  ASSERT_EQ(unplanned.Reported().index, 2);
  const RouteChoice first = Next(unplanned, session, {}, Servers({2}));
  EXPECT_EQ(first.index, planned.index);
  EXPECT_EQ(first.reason, RouteReason::kBackup);
}

TEST_F(RequestPolicyTest, AFailedServerThatCameUpSinceIsNoLongerHeldOut) {
  // Server 3 came up at kNowUnixMs - 10 s.
  EXPECT_FALSE(StaysHeldOut(*balancer_, 3, kNowUnixMs - 20'000));  // failed before
  EXPECT_TRUE(StaysHeldOut(*balancer_, 3, kNowUnixMs - 10'000));
  EXPECT_TRUE(StaysHeldOut(*balancer_, 3, kNowUnixMs - 5'000));  // failed since
  // No up period known (no up_since, not in the view): the web server's word stands.
  EXPECT_TRUE(StaysHeldOut(*balancer_, 0, kNowUnixMs - 20'000));
  EXPECT_TRUE(StaysHeldOut(*balancer_, 40, kNowUnixMs - 20'000));
}

TEST_F(RequestPolicyTest, APlannedChoiceIsTheFirstTry) {
  const std::string session = SessionOf(2);
  RequestPolicy policy;
  EXPECT_FALSE(policy.decided());
  EXPECT_EQ(policy.Reported().index, -1);
  PlanOf(policy, session, Servers({2}));
  EXPECT_EQ(held_out_calls_, 1);
  EXPECT_TRUE(policy.decided());
  const RouteChoice planned = policy.Reported();
  EXPECT_EQ(planned.index, BackupOf(session, Servers({0, 1, 3})));
  EXPECT_EQ(planned.reason, RouteReason::kBackup);

  // The first try goes there, without asking for held-out servers again.
  const RouteChoice first = Next(policy, session);
  EXPECT_EQ(first.index, planned.index);
  EXPECT_EQ(first.reason, planned.reason);
  EXPECT_EQ(held_out_calls_, 1);
  policy.StartTry(first);
  EXPECT_EQ(policy.latest().index, planned.index);

  // A retry is the view's choice: server 2 is no longer held out.
  const RouteChoice retry = Next(policy, session);
  EXPECT_EQ(retry.index, 2);
  EXPECT_EQ(retry.reason, RouteReason::kSticky);
  EXPECT_EQ(held_out_calls_, 2);
  policy.StartTry(retry);
  EXPECT_EQ(policy.Reported().index, 2);
}

TEST_F(RequestPolicyTest, APlanThatFoundNoServerLeavesTheFirstTryToTheView) {
  writer_.reset();  // the sidecar stops: no usable view
  ASSERT_FALSE(balancer_->Refresh(ViewTracker::kDefaultRecheckMs));
  RequestPolicy policy;
  PlanOf(policy, SessionOf(1));
  EXPECT_TRUE(policy.decided());
  EXPECT_EQ(policy.Reported().index, -1);
  EXPECT_EQ(Next(policy, SessionOf(1)).index, -1);
  EXPECT_EQ(held_out_calls_, 2);

  // A try whose server the web server cannot name decides nothing either.
  RequestPolicy unnamed;
  unnamed.StartTry({-1, RouteReason::kNoServer});
  EXPECT_FALSE(unnamed.decided());
  EXPECT_EQ(unnamed.Reported().index, -1);
}

TEST_F(RequestPolicyTest, AFreshConnectionRetryIsTakenOnceAndLeavesTheServerUntried) {
  const std::string session = SessionOf(1);
  RequestPolicy policy;
  policy.StartTry(Next(policy, session));
  ASSERT_EQ(policy.tried(), Servers({1}));

  EXPECT_TRUE(policy.TakeFreshConnectionRetry());
  EXPECT_TRUE(policy.tried().empty());
  // Untried again, the session's server is the view's choice again.
  const RouteChoice fresh = Next(policy, session);
  EXPECT_EQ(fresh.index, 1);
  EXPECT_EQ(fresh.reason, RouteReason::kSticky);
  policy.StartTry(fresh);

  // Once per request: the next failure counts, and the server stays tried.
  EXPECT_FALSE(policy.TakeFreshConnectionRetry());
  EXPECT_EQ(policy.tried(), Servers({1}));
  EXPECT_EQ(Next(policy, session).reason, RouteReason::kBackup);

  // A planned first try is repeated as planned, for a new session too.
  RequestPolicy planned;
  PlanOf(planned, "");
  const RouteChoice first = Next(planned, "");
  ASSERT_EQ(first.reason, RouteReason::kBalanced);
  planned.StartTry(first);
  EXPECT_TRUE(planned.TakeFreshConnectionRetry());
  const int held_out_calls = held_out_calls_;
  for (int i = 0; i < 20; ++i) EXPECT_EQ(Next(planned, "").index, first.index);
  EXPECT_EQ(held_out_calls_, held_out_calls);  // the view is not asked
}

TEST_F(RequestPolicyTest, WithoutAServerTheWebServerBalancesUnlessAllWereTried) {
  const std::string session = SessionOf(1);
  RequestPolicy policy;
  // Before any try (e.g. nothing eligible): the web server's own balancing, with
  // the session's own server line first.
  EXPECT_EQ(policy.WhenNoServer(*balancer_), NoServerAction::kOwnBalancing);
  EXPECT_EQ(policy.OwnServerWithoutView(session), 1);
  EXPECT_EQ(policy.OwnServerWithoutView(""), -1);
  EXPECT_EQ(policy.OwnServerWithoutView("~not-a-route"), -1);

  policy.StartTry(Next(policy, session));
  EXPECT_EQ(policy.WhenNoServer(*balancer_), NoServerAction::kGiveUp);
  EXPECT_EQ(policy.OwnServerWithoutView(session), -1);  // only the first try

  // The sidecar stops during the request: the view is unusable, the web server
  // balances over the servers not tried.
  writer_.reset();
  ASSERT_FALSE(balancer_->Refresh(ViewTracker::kDefaultRecheckMs));
  EXPECT_EQ(policy.WhenNoServer(*balancer_), NoServerAction::kOwnBalancingUntried);
}

TEST_F(RequestPolicyTest, WithAUsableViewEachServerItOffersIsTriedOnce) {
  RequestPolicy policy;
  policy.StartTries(*balancer_);
  EXPECT_FALSE(policy.own_balancing());
  EXPECT_EQ(policy.MaxTries(*balancer_, {}), 4);
  const std::string session = SessionOf(2);
  for (int tries = 0; tries < policy.MaxTries(*balancer_, {}); ++tries) {
    const RouteChoice choice = Next(policy, session);
    ASSERT_GE(choice.index, 0);
    policy.StartTry(choice);
    EXPECT_FALSE(policy.own_balancing());
  }
  EXPECT_EQ(policy.tried(), Servers({0, 1, 2, 3}));
  EXPECT_EQ(Next(policy, session).index, -1);  // every try is used up
}

TEST_F(RequestPolicyTest, WithoutAViewAtTheStartTheWebServerBalancesEveryTry) {
  writer_.reset();  // the sidecar stops: no usable view
  ASSERT_FALSE(balancer_->Refresh(ViewTracker::kDefaultRecheckMs));
  RequestPolicy policy;
  policy.StartTries(*balancer_);
  EXPECT_TRUE(policy.own_balancing());
  EXPECT_EQ(policy.MaxTries(*balancer_, {}), 0);  // the web server's own limit
  EXPECT_EQ(policy.OwnServerWithoutView(SessionOf(1)), 1);

  // The view is back during the request: the web server keeps balancing it.
  StartWriterWith(FourUp());
  ASSERT_TRUE(balancer_->Refresh(2 * ViewTracker::kDefaultRecheckMs));
  policy.StartTry({1, RouteReason::kNoServer});
  EXPECT_TRUE(policy.own_balancing());
  EXPECT_EQ(policy.MaxTries(*balancer_, {}), 0);
  EXPECT_EQ(policy.OwnServerWithoutView(SessionOf(1)), -1);  // only the first try
}

TEST_F(RequestPolicyTest, OnceTheWebServerBalancedATryItBalancesTheRest) {
  RequestPolicy policy;
  policy.StartTries(*balancer_);
  policy.StartTry(Next(policy, SessionOf(1)));
  EXPECT_FALSE(policy.own_balancing());

  // The view became unusable during the request; the web server chose a line.
  writer_.reset();
  ASSERT_FALSE(balancer_->Refresh(ViewTracker::kDefaultRecheckMs));
  ASSERT_EQ(policy.WhenNoServer(*balancer_), NoServerAction::kOwnBalancingUntried);
  policy.StartTry({0, RouteReason::kNoServer});
  EXPECT_TRUE(policy.own_balancing());
  EXPECT_EQ(policy.tried(), Servers({0, 1}));
  EXPECT_EQ(policy.Reported().reason, RouteReason::kNoServer);

  // Also when the web server cannot tell which line it chose.
  RequestPolicy unnamed;
  unnamed.StartTry({-1, RouteReason::kNoServer});
  EXPECT_TRUE(unnamed.own_balancing());
  EXPECT_TRUE(unnamed.tried().empty());
}

TEST_F(RequestPolicyTest, TheInsertCookiePinsTheLatestTriedServer) {
  BalancerOptions options;
  options.view_path = path_;
  options.mode = StickyMode::kInsert;
  Balancer insert(options, Configured(4), 7);
  Balancer twin(options, Configured(4), 7);  // the same cookie tokens
  ASSERT_TRUE(insert.Refresh(0));
  ASSERT_TRUE(twin.Refresh(0));

  // No try named a server: no cookie, whatever was planned.
  RequestPolicy policy;
  PlanOf(policy, "");
  EXPECT_EQ(policy.InsertCookie(insert, ""), "");
  policy.StartTry({-1, RouteReason::kNoServer});
  EXPECT_EQ(policy.InsertCookie(insert, ""), "");

  // The latest try's server gets the client, not the plan's nor the first try's.
  policy.StartTry({2, RouteReason::kNoServer});
  EXPECT_EQ(policy.InsertCookie(insert, ""), twin.InsertCookieFor("", 2));
  RequestPolicy retried;
  retried.StartTry({1, RouteReason::kBalanced});
  retried.StartTry({3, RouteReason::kBalanced});
  const std::string cookie = retried.InsertCookie(insert, "");
  EXPECT_EQ(cookie, twin.InsertCookieFor("", 3));
  EXPECT_EQ(cookie.rfind("CBROUTE=D", 0), 0u) << cookie;

  // A session pinned to the server that answered needs none; the route mode never.
  const std::string pinned = StickyCookieValue(3, 99);
  EXPECT_EQ(retried.InsertCookie(insert, pinned), "");
  EXPECT_EQ(retried.InsertCookie(*balancer_, ""), "");
}

TEST_F(RequestPolicyTest, ReportsTheLatestTryElseThePlan) {
  const std::string session = SessionOf(0);
  RequestPolicy policy;
  PlanOf(policy, session);
  EXPECT_EQ(policy.Reported().index, 0);
  EXPECT_EQ(policy.Reported().reason, RouteReason::kSticky);

  // The web server's own balancing chose a line it cannot name: the plan stays
  // what the request reports.
  policy.StartTry({-1, RouteReason::kNoServer});
  EXPECT_EQ(policy.Reported().index, 0);
  policy.StartTry({3, RouteReason::kNoServer});
  EXPECT_EQ(policy.Reported().index, 3);
  EXPECT_EQ(policy.Reported().reason, RouteReason::kNoServer);
  EXPECT_EQ(policy.latest().index, 3);
}

}  // namespace
}  // namespace cb
