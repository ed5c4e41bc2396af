#include "shared/balancer_options.h"

#include <gtest/gtest.h>

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shared/cluster_view.h"
#include "shared/route_codec.h"
#include "shared/sticky_cookie.h"

namespace cb {
namespace {

constexpr std::string_view kViewPath = "/run/cluster-balance/view";

using Words = std::vector<std::string_view>;

Status Parse(const Words& words, BalancerOptions& options) {
  return ParseBalancerWords(std::span<const std::string_view>(words), options);
}

BalancerOptions ParsedOk(const Words& words) {
  BalancerOptions options;
  const Status status = Parse(words, options);
  EXPECT_TRUE(status.ok()) << status.ToString();
  return options;
}

// The error message, or "<parsed>" when the words were (wrongly) accepted.
std::string ErrorOf(const Words& words) {
  BalancerOptions options;
  const Status status = Parse(words, options);
  if (status.ok()) return "<parsed>";
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument);
  return status.message();
}

Status ParseCookie(const Words& words, StickyCookie& cookie) {
  return ParseStickyCookieWords(std::span<const std::string_view>(words), cookie);
}

// --- cluster_balance ------------------------------------------------------------

TEST(BalancerOptionsTest, Defaults) {
  const BalancerOptions defaults;
  EXPECT_EQ(defaults.view_path, "");
  EXPECT_EQ(defaults.mode, StickyMode::kRoute);
  EXPECT_EQ(defaults.session_cookie, "JSESSIONID");
  EXPECT_EQ(defaults.path_parameter, "jsessionid");
  EXPECT_EQ(defaults.insert_cookie.name, StickyCookie().name);

  const BalancerOptions options = ParsedOk({kViewPath});
  EXPECT_EQ(options.view_path, kViewPath);
  EXPECT_EQ(options.mode, StickyMode::kRoute);
  EXPECT_EQ(options.session_cookie, kDefaultSessionCookie);
  EXPECT_EQ(options.path_parameter, kDefaultPathParameter);
}

TEST(BalancerOptionsTest, PathComesFirst) {
  const std::string first = ErrorOf({"mode=route", kViewPath});
  EXPECT_NE(first.find("first argument is the view file"), std::string::npos) << first;
  EXPECT_NE(ErrorOf({}).find("first argument is the view file"), std::string::npos);
  EXPECT_NE(ErrorOf({""}).find("first argument is the view file"), std::string::npos);
  EXPECT_NE(ErrorOf({"/run/a=b"}).find("first argument is the view file"), std::string::npos);
  // A relative path is a path: the glue resolves it.
  EXPECT_EQ(ParsedOk({"view"}).view_path, "view");
}

TEST(BalancerOptionsTest, Mode) {
  EXPECT_EQ(ParsedOk({kViewPath, "mode=route"}).mode, StickyMode::kRoute);
  EXPECT_EQ(ParsedOk({kViewPath, "mode=insert"}).mode, StickyMode::kInsert);
  const std::string learn = ErrorOf({kViewPath, "mode=learn"});
  EXPECT_NE(learn.find("not implemented"), std::string::npos) << learn;
  EXPECT_NE(learn.find("mode=learn"), std::string::npos) << learn;
  EXPECT_NE(learn.find("mode=route"), std::string::npos) << learn;
  EXPECT_NE(learn.find("mode=insert"), std::string::npos) << learn;
  for (std::string_view bad : {"mode=", "mode=Route", "mode=sticky"}) {
    const std::string error = ErrorOf({kViewPath, bad});
    EXPECT_NE(error.find("expected mode=route or mode=insert"), std::string::npos) << error;
    EXPECT_NE(error.find(std::string(bad)), std::string::npos) << error;
  }
}

TEST(BalancerOptionsTest, SessionCookie) {
  EXPECT_EQ(ParsedOk({kViewPath, "cookie=SID"}).session_cookie, "SID");
  EXPECT_EQ(ParsedOk({kViewPath, "cookie=PHPSESSID"}).session_cookie, "PHPSESSID");
  for (std::string_view bad : {"cookie=", "cookie=a;b", "cookie=a b", "cookie=a=b"}) {
    const std::string error = ErrorOf({kViewPath, bad});
    EXPECT_NE(error.find("not a valid cookie name"), std::string::npos) << bad << ": " << error;
  }
}

TEST(BalancerOptionsTest, PathParameter) {
  EXPECT_EQ(ParsedOk({kViewPath, "path_parameter=sid"}).path_parameter, "sid");
  EXPECT_EQ(ParsedOk({kViewPath, "path_parameter=off"}).path_parameter, "");
  for (std::string_view bad : {"path_parameter=", "path_parameter=a;b", "path_parameter=a/b"}) {
    const std::string error = ErrorOf({kViewPath, bad});
    EXPECT_NE(error.find("not a valid parameter name (or off)"), std::string::npos)
        << bad << ": " << error;
  }
}

TEST(BalancerOptionsTest, AllWordsTogetherInAnyOrder) {
  const BalancerOptions options =
      ParsedOk({kViewPath, "path_parameter=off", "cookie=SID", "mode=insert"});
  EXPECT_EQ(options.view_path, kViewPath);
  EXPECT_EQ(options.mode, StickyMode::kInsert);
  EXPECT_EQ(options.session_cookie, "SID");
  EXPECT_EQ(options.path_parameter, "");
}

TEST(BalancerOptionsTest, RepeatedWordIsRefused) {
  const std::vector<Words> cases = {
      {kViewPath, "mode=route", "mode=route"},
      {kViewPath, "mode=route", "cookie=A", "mode=insert"},
      {kViewPath, "cookie=A", "cookie=B"},
      {kViewPath, "path_parameter=off", "path_parameter=sid"},
  };
  for (const Words& words : cases) {
    const std::string error = ErrorOf(words);
    EXPECT_NE(error.find("given twice"), std::string::npos) << error;
  }
}

TEST(BalancerOptionsTest, UnknownWordIsRefused) {
  const std::string unknown = ErrorOf({kViewPath, "backup=on"});
  EXPECT_NE(unknown.find("\"backup=on\""), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("unknown"), std::string::npos) << unknown;
  const std::string bare = ErrorOf({kViewPath, "insert"});
  EXPECT_NE(bare.find("\"insert\""), std::string::npos) << bare;
  EXPECT_NE(bare.find("expected mode=, cookie=, path_parameter=, slow_start=, "
                      "current_version_only= or webapp="),
            std::string::npos)
      << bare;
  // Keys compare exactly.
  EXPECT_NE(ErrorOf({kViewPath, "Mode=route"}).find("unknown"), std::string::npos);
  EXPECT_NE(ErrorOf({kViewPath, "=route"}).find("unknown"), std::string::npos);
  // A second path is a word without '='.
  EXPECT_NE(ErrorOf({kViewPath, "/other/view"}).find("\"/other/view\""), std::string::npos);
}

// --- cluster_balance_cookie --------------------------------------------------------

TEST(BalancerOptionsTest, StickyCookieWords) {
  StickyCookie cookie;
  const Status status =
      ParseCookie({"name=SRV", "path=/shop", "max_age=2h", "secure", "samesite=none"}, cookie);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(cookie.name, "SRV");
  EXPECT_EQ(cookie.path, "/shop");
  EXPECT_EQ(cookie.max_age_s, 7200);
  EXPECT_TRUE(cookie.secure);
  EXPECT_EQ(cookie.same_site, SameSite::kNone);
  EXPECT_TRUE(cookie.http_only);  // untouched
}

TEST(BalancerOptionsTest, StickyCookieWordsNone) {
  StickyCookie cookie;
  EXPECT_TRUE(ParseCookie({}, cookie).ok());
  EXPECT_EQ(SetCookieHeader(cookie, "v"), SetCookieHeader(StickyCookie(), "v"));
}

TEST(BalancerOptionsTest, StickyCookieWordsStopAtTheFirstBadWord) {
  StickyCookie cookie;
  const Status status = ParseCookie({"name=SRV", "path=shop", "domain=example.com"}, cookie);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(status.message().find("path=shop"), std::string::npos) << status.message();
  EXPECT_EQ(cookie.domain, "");  // not reached

  const Status unknown = ParseCookie({"colour=blue"}, cookie);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.message().find("unknown"), std::string::npos) << unknown.message();
}

TEST(BalancerOptionsTest, StickyCookieWordsAreValidatedAsAWhole) {
  // Each word is fine; together they make a cookie browsers drop.
  StickyCookie cookie;
  const Status status = ParseCookie({"samesite=none"}, cookie);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("samesite=none needs secure"), std::string::npos)
      << status.message();
  StickyCookie order_does_not_matter;
  EXPECT_TRUE(ParseCookie({"samesite=none", "secure"}, order_does_not_matter).ok());
}

TEST(BalancerOptionsTest, SlowStartOverridesTheViewsOrKeepsIt) {
  EXPECT_FALSE(ParsedOk({kViewPath}).slow_start.has_value());
  EXPECT_FALSE(ParsedOk({kViewPath, "slow_start=view"}).slow_start.has_value());
  EXPECT_EQ(ParsedOk({kViewPath, "slow_start=30s"}).slow_start, std::chrono::seconds(30));
  EXPECT_EQ(ParsedOk({kViewPath, "slow_start=0s"}).slow_start, std::chrono::milliseconds(0));
  EXPECT_EQ(ParsedOk({kViewPath, "slow_start=24h"}).slow_start, std::chrono::hours(24));
  for (std::string_view bad :
       {"slow_start=", "slow_start=30", "slow_start=25h", "slow_start=-1s", "slow_start=fast"}) {
    const std::string error = ErrorOf({kViewPath, bad});
    EXPECT_NE(error.find(bad), std::string::npos) << error;
  }
  EXPECT_NE(ErrorOf({kViewPath, "slow_start=1s", "slow_start=2s"}).find("given twice"),
            std::string::npos);
}

TEST(BalancerOptionsTest, CurrentVersionOnlyIsOffByDefault) {
  const BalancerOptions options = ParsedOk({kViewPath});
  EXPECT_FALSE(options.current_version_only);
  EXPECT_EQ(options.webapp, "");
  EXPECT_FALSE(ParsedOk({kViewPath, "current_version_only=off"}).current_version_only);
}

TEST(BalancerOptionsTest, CurrentVersionOnlyWithOrWithoutAWebapp) {
  const BalancerOptions only = ParsedOk({kViewPath, "current_version_only=on"});
  EXPECT_TRUE(only.current_version_only);
  EXPECT_EQ(only.webapp, "");
  const BalancerOptions named =
      ParsedOk({kViewPath, "webapp=shop", "mode=insert", "current_version_only=on"});
  EXPECT_TRUE(named.current_version_only);
  EXPECT_EQ(named.webapp, "shop");
  EXPECT_EQ(named.mode, StickyMode::kInsert);
  EXPECT_EQ(
      ParsedOk({kViewPath, "current_version_only=on", "webapp=production/webapp/default/shop"})
          .webapp,
      "production/webapp/default/shop");
}

TEST(BalancerOptionsTest, BadCurrentVersionWordsAreNamed) {
  for (std::string_view bad : {"current_version_only=", "current_version_only=yes",
                               "current_version_only=ON", "current_version_only=1"}) {
    const std::string error = ErrorOf({kViewPath, bad});
    EXPECT_NE(error.find("\"" + std::string(bad) + "\""), std::string::npos) << error;
    EXPECT_NE(error.find("current_version_only=on or current_version_only=off"), std::string::npos)
        << error;
  }
  const std::string too_long = "webapp=" + std::string(kViewDeploymentNameCapacity, 'w');
  for (std::string_view bad :
       {std::string_view("webapp="), std::string_view("webapp=my shop"),
        std::string_view("webapp=caf\xc3\xa9"), std::string_view(too_long)}) {
    const std::string error = ErrorOf({kViewPath, "current_version_only=on", bad});
    EXPECT_NE(error.find("\"" + std::string(bad) + "\""), std::string::npos) << error;
    EXPECT_NE(error.find("deployed webapp"), std::string::npos) << error;
  }
  // The longest name the view holds is accepted.
  const std::string longest(kViewDeploymentNameCapacity - 1, 'w');
  EXPECT_EQ(ParsedOk({kViewPath, "current_version_only=on", "webapp=" + longest}).webapp, longest);
  EXPECT_NE(ErrorOf({kViewPath, "current_version_only=on", "current_version_only=off"})
                .find("given twice"),
            std::string::npos);
}

TEST(BalancerOptionsTest, WebappWithoutCurrentVersionOnlyIsAMistake) {
  for (const Words& words : {Words{kViewPath, "webapp=shop"},
                             Words{kViewPath, "webapp=shop", "current_version_only=off"}}) {
    const std::string error = ErrorOf(words);
    EXPECT_NE(error.find("\"webapp=shop\""), std::string::npos) << error;
    EXPECT_NE(error.find("only used with current_version_only=on"), std::string::npos) << error;
  }
}

}  // namespace
}  // namespace cb
