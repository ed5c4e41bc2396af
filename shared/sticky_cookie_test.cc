#include "shared/sticky_cookie.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "shared/route_codec.h"

namespace cb {
namespace {

StickyCookie Applied(std::string_view option, StickyCookie cookie = {}) {
  const Status status = ApplyStickyCookieOption(option, cookie);
  EXPECT_TRUE(status.ok()) << option << ": " << status.ToString();
  return cookie;
}

// The error message, or "<applied>" when the option was (wrongly) accepted. A
// refused option leaves the cookie as it was.
std::string ErrorOf(std::string_view option) {
  StickyCookie cookie;
  cookie.name = "KEEP";
  const Status status = ApplyStickyCookieOption(option, cookie);
  if (status.ok()) return "<applied>";
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument) << option;
  EXPECT_EQ(cookie.name, "KEEP") << option;
  EXPECT_NE(status.message().find(std::string(option)), std::string::npos)
      << option << ": " << status.message();
  return status.message();
}

bool OnlyRouteChars(std::string_view text) {
  for (char c : text) {
    if (IndexForRouteChar(c) < 0) return false;
  }
  return true;
}

// --- Defaults and options -----------------------------------------------------

TEST(StickyCookieTest, Defaults) {
  const StickyCookie cookie;
  EXPECT_EQ(cookie.name, "CBROUTE");
  EXPECT_EQ(cookie.path, "/");
  EXPECT_EQ(cookie.domain, "");
  EXPECT_EQ(cookie.max_age_s, -1);
  EXPECT_FALSE(cookie.secure);
  EXPECT_TRUE(cookie.http_only);
  EXPECT_EQ(cookie.same_site, SameSite::kLax);
  EXPECT_TRUE(ValidateStickyCookie(cookie).ok());
}

TEST(StickyCookieTest, NameOption) {
  EXPECT_EQ(Applied("name=SRV").name, "SRV");
  EXPECT_EQ(Applied("name=my_route-1").name, "my_route-1");
  EXPECT_NE(ErrorOf("name=").find("cookie name"), std::string::npos);
  EXPECT_NE(ErrorOf("name=a;b").find("cookie name"), std::string::npos);
  EXPECT_NE(ErrorOf("name=a b").find("cookie name"), std::string::npos);
  EXPECT_NE(ErrorOf("name=a=b").find("cookie name"), std::string::npos);
  EXPECT_NE(ErrorOf("name=" + std::string(65, 'x')).find("cookie name"), std::string::npos);
  EXPECT_EQ(Applied("name=" + std::string(64, 'x')).name, std::string(64, 'x'));
}

TEST(StickyCookieTest, PathOption) {
  EXPECT_EQ(Applied("path=/shop").path, "/shop");
  EXPECT_EQ(Applied("path=/").path, "/");
  for (std::string_view bad : {"path=", "path=shop", "path=/a;b", "path=/a b", "path=/a\tb"}) {
    EXPECT_NE(ErrorOf(bad).find("starts with '/'"), std::string::npos) << bad;
  }
}

TEST(StickyCookieTest, DomainOption) {
  EXPECT_EQ(Applied("domain=example.com").domain, "example.com");
  EXPECT_EQ(Applied("domain=").domain, "");  // back to the host only
  for (std::string_view bad : {"domain=example.com;x", "domain=a b", "domain=a\x7f"}) {
    EXPECT_NE(ErrorOf(bad).find("domain has no ';'"), std::string::npos) << bad;
  }
}

TEST(StickyCookieTest, MaxAgeOption) {
  EXPECT_EQ(Applied("max_age=1h").max_age_s, 3600);
  EXPECT_EQ(Applied("max_age=30m").max_age_s, 1800);
  EXPECT_EQ(Applied("max_age=45s").max_age_s, 45);
  StickyCookie lasting;
  lasting.max_age_s = 600;
  EXPECT_EQ(Applied("max_age=off", lasting).max_age_s, -1);
  for (std::string_view bad : {"max_age=", "max_age=10", "max_age=1d", "max_age=-1s"}) {
    EXPECT_NE(ErrorOf(bad).find("unit"), std::string::npos) << bad;
  }
  // 0 would delete the cookie at once; Max-Age has no fractions of a second.
  for (std::string_view bad : {"max_age=0s", "max_age=1500ms", "max_age=500ms"}) {
    EXPECT_NE(ErrorOf(bad).find("whole number of seconds"), std::string::npos) << bad;
  }
}

TEST(StickyCookieTest, SecureOption) {
  EXPECT_TRUE(Applied("secure").secure);
  // A bare flag: "secure=on" is not its spelling.
  EXPECT_NE(ErrorOf("secure=on").find("unknown"), std::string::npos);
}

TEST(StickyCookieTest, HttpOnlyOption) {
  EXPECT_FALSE(Applied("httponly=off").http_only);
  StickyCookie off;
  off.http_only = false;
  EXPECT_TRUE(Applied("httponly=on", off).http_only);
  EXPECT_NE(ErrorOf("httponly=yes").find("expected on or off"), std::string::npos);
  EXPECT_NE(ErrorOf("httponly").find("unknown"), std::string::npos);
}

TEST(StickyCookieTest, SameSiteOption) {
  EXPECT_EQ(Applied("samesite=strict").same_site, SameSite::kStrict);
  EXPECT_EQ(Applied("samesite=lax").same_site, SameSite::kLax);
  EXPECT_EQ(Applied("samesite=none").same_site, SameSite::kNone);
  EXPECT_EQ(Applied("samesite=off").same_site, SameSite::kOff);
  for (std::string_view bad : {"samesite=Strict", "samesite=", "samesite=yes"}) {
    EXPECT_NE(ErrorOf(bad).find("expected strict, lax, none or off"), std::string::npos) << bad;
  }
}

TEST(StickyCookieTest, UnknownOptionIsRefused) {
  for (std::string_view bad : {"expires=1h", "Path=/", "", "=x", "max-age=1h", "name"}) {
    EXPECT_NE(ErrorOf(bad).find("unknown"), std::string::npos) << bad;
  }
}

TEST(StickyCookieTest, OptionsChangeOnlyTheirOwnField) {
  StickyCookie cookie;
  ASSERT_TRUE(ApplyStickyCookieOption("path=/app", cookie).ok());
  ASSERT_TRUE(ApplyStickyCookieOption("secure", cookie).ok());
  EXPECT_EQ(cookie.name, "CBROUTE");
  EXPECT_EQ(cookie.path, "/app");
  EXPECT_TRUE(cookie.secure);
  EXPECT_TRUE(cookie.http_only);
  EXPECT_EQ(cookie.same_site, SameSite::kLax);
  EXPECT_EQ(cookie.max_age_s, -1);
}

// --- Validation -----------------------------------------------------------------

TEST(StickyCookieTest, SameSiteNoneNeedsSecure) {
  StickyCookie cookie;
  cookie.same_site = SameSite::kNone;
  const Status refused = ValidateStickyCookie(cookie);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(refused.message().find("samesite=none"), std::string::npos) << refused.message();
  EXPECT_NE(refused.message().find("secure"), std::string::npos) << refused.message();
  cookie.secure = true;
  EXPECT_TRUE(ValidateStickyCookie(cookie).ok());
}

TEST(StickyCookieTest, OtherSameSiteValuesNeedNoSecure) {
  for (SameSite same_site : {SameSite::kOff, SameSite::kStrict, SameSite::kLax}) {
    StickyCookie cookie;
    cookie.same_site = same_site;
    EXPECT_TRUE(ValidateStickyCookie(cookie).ok());
  }
}

TEST(StickyCookieTest, ValidationRefusesAMalformedNamePathOrDomain) {
  const auto refused = [](void (*spoil)(StickyCookie&)) {
    StickyCookie cookie;
    spoil(cookie);
    return !ValidateStickyCookie(cookie).ok();
  };
  EXPECT_TRUE(refused([](StickyCookie& c) { c.name = "a b"; }));
  EXPECT_TRUE(refused([](StickyCookie& c) { c.name.clear(); }));
  EXPECT_TRUE(refused([](StickyCookie& c) { c.path = "shop"; }));
  EXPECT_TRUE(refused([](StickyCookie& c) { c.path.clear(); }));
  EXPECT_TRUE(refused([](StickyCookie& c) { c.path = "/a;b"; }));
  EXPECT_TRUE(refused([](StickyCookie& c) { c.domain = "example.com; Secure"; }));
  EXPECT_FALSE(refused([](StickyCookie& c) { c.domain = "example.com"; }));
}

// --- Values ---------------------------------------------------------------------

TEST(StickyCookieTest, ValueStartsWithTheRouteCharacter) {
  for (int index : {0, 1, 2, 25, 26, 51, 52, 61, 62, 63}) {
    const std::string value = StickyCookieValue(index, 0x0123456789abcdefULL);
    ASSERT_EQ(value.size(), 12u) << index;
    EXPECT_EQ(value.front(), RouteCharForIndex(index));
    EXPECT_EQ(RouteIndexOfSession(value), index);
    EXPECT_TRUE(OnlyRouteChars(value)) << value;
    EXPECT_TRUE(IsStickyCookieValue(value)) << value;
    EXPECT_TRUE(IsValidSessionId(value)) << value;
  }
}

TEST(StickyCookieTest, TokenComesFromTheRandomNumber) {
  // Six bits per character, lowest first.
  EXPECT_EQ(StickyCookieValue(0, 0), "AAAAAAAAAAAA");
  EXPECT_EQ(StickyCookieValue(2, 1), "CBAAAAAAAAAA");
  EXPECT_EQ(StickyCookieValue(2, 63 | (62u << 6)), "C_-AAAAAAAAA");
  EXPECT_EQ(StickyCookieValue(1, ~uint64_t{0}), "B__________P");  // 64 bits: 10 x 6 + 4
  const std::string a = StickyCookieValue(2, 12345);
  EXPECT_EQ(a, StickyCookieValue(2, 12345));
  EXPECT_NE(a, StickyCookieValue(2, 12346));
  EXPECT_EQ(a.substr(1), StickyCookieValue(7, 12345).substr(1));
}

TEST(StickyCookieTest, DifferentRandomNumbersGiveDifferentTokens) {
  std::set<std::string> tokens;
  uint64_t x = 1;
  for (int i = 0; i < 1000; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    const std::string value = StickyCookieValue(3, x);
    EXPECT_TRUE(IsStickyCookieValue(value)) << value;
    tokens.insert(value.substr(1));
  }
  EXPECT_EQ(tokens.size(), 1000u);
}

TEST(StickyCookieTest, KeepsTheTokenOfAPreviousValue) {
  const std::string previous = StickyCookieValue(2, 0xfeedfacecafebeefULL);
  const std::string repinned = StickyCookieValue(5, 42, previous);
  EXPECT_EQ(repinned.front(), RouteCharForIndex(5));
  EXPECT_EQ(repinned.substr(1), previous.substr(1));
  EXPECT_EQ(StickyCookieValue(2, 42, previous), previous);
  // A previous value written by hand, of the right form, keeps its token too.
  EXPECT_EQ(StickyCookieValue(0, 42, "Zabc-_012345"), "Aabc-_012345");
}

TEST(StickyCookieTest, IgnoresAnInvalidPreviousValue) {
  const std::string fresh = StickyCookieValue(4, 99);
  for (std::string_view previous : {"", "C", "Cabc", "Cabcdefghijkl", "Cabc.efghijk",
                                    "Cabc=efghijk", "Cabc efghijk", "Cabcdefghij\x80"}) {
    EXPECT_EQ(StickyCookieValue(4, 99, previous), fresh) << previous;
  }
}

TEST(StickyCookieTest, IsStickyCookieValue) {
  EXPECT_TRUE(IsStickyCookieValue("CAAAAAAAAAAA"));
  EXPECT_TRUE(IsStickyCookieValue("_-_-_-_-_-_-"));
  EXPECT_TRUE(IsStickyCookieValue("Az09azAZ-_xy"));
  EXPECT_FALSE(IsStickyCookieValue(""));
  EXPECT_FALSE(IsStickyCookieValue("CAAAAAAAAAA"));    // 11
  EXPECT_FALSE(IsStickyCookieValue("CAAAAAAAAAAAA"));  // 13
  EXPECT_FALSE(IsStickyCookieValue("CAAAAAAAAAA="));
  EXPECT_FALSE(IsStickyCookieValue("CAAAAAAAAAA+"));
  EXPECT_FALSE(IsStickyCookieValue("CAAAAAAAAAA/"));
  EXPECT_FALSE(IsStickyCookieValue(".AAAAAAAAAAA"));
  EXPECT_FALSE(IsStickyCookieValue(std::string_view("CAAAAA\0AAAAA", 12)));
  EXPECT_FALSE(IsStickyCookieValue("ABCDEF1234567890"));  // a Resin session id
}

// --- Set-Cookie -------------------------------------------------------------------

TEST(StickyCookieTest, SetCookieHeaderWithDefaults) {
  EXPECT_EQ(SetCookieHeader(StickyCookie(), "CAAAAAAAAAAA"),
            "CBROUTE=CAAAAAAAAAAA; Path=/; HttpOnly; SameSite=Lax");
}

TEST(StickyCookieTest, SetCookieHeaderWithAllAttributes) {
  StickyCookie cookie;
  for (std::string_view option : {"name=SRV", "path=/shop", "domain=example.com", "max_age=1h",
                                  "secure", "httponly=on", "samesite=strict"}) {
    ASSERT_TRUE(ApplyStickyCookieOption(option, cookie).ok()) << option;
  }
  EXPECT_EQ(SetCookieHeader(cookie, "Babcdefghijk"),
            "SRV=Babcdefghijk; Path=/shop; Domain=example.com; Max-Age=3600; Secure; HttpOnly; "
            "SameSite=Strict");
}

TEST(StickyCookieTest, SetCookieHeaderSameSiteAndFlags) {
  StickyCookie cookie;
  cookie.http_only = false;
  cookie.same_site = SameSite::kOff;
  EXPECT_EQ(SetCookieHeader(cookie, "v"), "CBROUTE=v; Path=/");
  cookie.same_site = SameSite::kNone;
  cookie.secure = true;
  EXPECT_EQ(SetCookieHeader(cookie, "v"), "CBROUTE=v; Path=/; Secure; SameSite=None");
  cookie.same_site = SameSite::kLax;
  cookie.max_age_s = 0;
  EXPECT_EQ(SetCookieHeader(cookie, "v"), "CBROUTE=v; Path=/; Max-Age=0; Secure; SameSite=Lax");
}

}  // namespace
}  // namespace cb
