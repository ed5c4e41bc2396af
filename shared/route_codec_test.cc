#include "shared/route_codec.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <limits>
#include <string>
#include <string_view>

namespace cb {
namespace {

using namespace std::string_view_literals;

// The base64url alphabet (RFC 4648, section 5) in its own order, built from its
// ranges: what kRouteAlphabet must be (Resin's route characters).
std::string Base64UrlAlphabet() {
  std::string alphabet;
  for (char c = 'A'; c <= 'Z'; ++c) alphabet += c;
  for (char c = 'a'; c <= 'z'; ++c) alphabet += c;
  for (char c = '0'; c <= '9'; ++c) alphabet += c;
  return alphabet + "-_";
}

// The session id of the JSESSIONID cookie, for brevity.
std::string_view FromCookie(std::string_view header) {
  return SessionIdFromCookieHeader(header, kDefaultSessionCookie);
}

// True when `part` is a view into `whole` (not a copy).
bool PointsInside(std::string_view part, std::string_view whole) {
  return !part.empty() && part.data() >= whole.data() &&
         part.data() + part.size() <= whole.data() + whole.size();
}

TEST(RouteCodecTest, AlphabetIsBase64UrlInIndexOrder) {
  EXPECT_EQ(kRouteAlphabet, Base64UrlAlphabet());
  ASSERT_EQ(kRouteAlphabet.size(), static_cast<std::size_t>(kMaxServers));
  for (int i = 0; i < kMaxServers; ++i) {
    EXPECT_EQ(RouteCharForIndex(i), kRouteAlphabet[static_cast<std::size_t>(i)]) << "index " << i;
  }
  // Resin's convention: server 2 creates session ids starting with 'C'.
  EXPECT_EQ(RouteCharForIndex(0), 'A');
  EXPECT_EQ(RouteCharForIndex(2), 'C');
  EXPECT_EQ(RouteCharForIndex(25), 'Z');
  EXPECT_EQ(RouteCharForIndex(26), 'a');
  EXPECT_EQ(RouteCharForIndex(52), '0');
  EXPECT_EQ(RouteCharForIndex(62), '-');
  EXPECT_EQ(RouteCharForIndex(63), '_');
}

TEST(RouteCodecTest, IndexCharRoundTripForAll64) {
  for (int i = 0; i < kMaxServers; ++i) {
    const char c = RouteCharForIndex(i);
    ASSERT_NE(c, '\0') << "index " << i;
    EXPECT_EQ(IndexForRouteChar(c), i) << "index " << i;
  }
}

TEST(RouteCodecTest, EveryByteOutsideTheAlphabetMapsToMinusOne) {
  int valid = 0;
  for (int byte = 0; byte < 256; ++byte) {
    const char c = static_cast<char>(static_cast<unsigned char>(byte));
    const std::size_t position = kRouteAlphabet.find(c);
    if (position == std::string_view::npos) {
      EXPECT_EQ(IndexForRouteChar(c), -1) << "byte " << byte;
    } else {
      EXPECT_EQ(IndexForRouteChar(c), static_cast<int>(position)) << "byte " << byte;
      EXPECT_EQ(RouteCharForIndex(IndexForRouteChar(c)), c) << "byte " << byte;
      ++valid;
    }
  }
  EXPECT_EQ(valid, kMaxServers);
  // A few that are easy to get wrong: base64's '+' and '/', padding, NUL, high bytes.
  EXPECT_EQ(IndexForRouteChar('+'), -1);
  EXPECT_EQ(IndexForRouteChar('/'), -1);
  EXPECT_EQ(IndexForRouteChar('='), -1);
  EXPECT_EQ(IndexForRouteChar('\0'), -1);
  EXPECT_EQ(IndexForRouteChar(static_cast<char>(0x80)), -1);
  EXPECT_EQ(IndexForRouteChar(static_cast<char>(0xff)), -1);
  EXPECT_EQ(IndexForRouteChar(static_cast<char>(0xc1)), -1);  // 'A' | 0x80
}

TEST(RouteCodecTest, OutOfRangeIndexGivesNul) {
  EXPECT_EQ(RouteCharForIndex(-1), '\0');
  EXPECT_EQ(RouteCharForIndex(64), '\0');
  EXPECT_EQ(RouteCharForIndex(65), '\0');
  EXPECT_EQ(RouteCharForIndex(255), '\0');
  EXPECT_EQ(RouteCharForIndex(1000), '\0');
  EXPECT_EQ(RouteCharForIndex(-64), '\0');
  EXPECT_EQ(RouteCharForIndex(std::numeric_limits<int>::min()), '\0');
  EXPECT_EQ(RouteCharForIndex(std::numeric_limits<int>::max()), '\0');
}

TEST(RouteCodecTest, RouteCharTextPointsIntoTheAlphabet) {
  for (int i = 0; i < kMaxServers; ++i) {
    const std::string_view text = RouteCharTextForIndex(i);
    ASSERT_EQ(text.size(), 1u) << "index " << i;
    EXPECT_EQ(text.front(), RouteCharForIndex(i)) << "index " << i;
    // Static storage: a web server variable may keep pointing at it.
    EXPECT_TRUE(PointsInside(text, kRouteAlphabet)) << "index " << i;
  }
  EXPECT_EQ(RouteCharTextForIndex(-1), "");
  EXPECT_EQ(RouteCharTextForIndex(64), "");
  EXPECT_EQ(RouteCharTextForIndex(std::numeric_limits<int>::min()), "");
  EXPECT_EQ(RouteCharTextForIndex(std::numeric_limits<int>::max()), "");
}

TEST(RouteCodecTest, RouteIndexOfSession) {
  EXPECT_EQ(RouteIndexOfSession("Cxyz"), 2);
  EXPECT_EQ(RouteIndexOfSession("A"), 0);
  EXPECT_EQ(RouteIndexOfSession("_abc"), 63);
  EXPECT_EQ(RouteIndexOfSession("9abc"), 61);
  EXPECT_EQ(RouteIndexOfSession(""), -1);
  EXPECT_EQ(RouteIndexOfSession("!abc"), -1);
  EXPECT_EQ(RouteIndexOfSession("+abc"), -1);
  EXPECT_EQ(RouteIndexOfSession("\0C"sv), -1);
  // Only the first character counts.
  EXPECT_EQ(RouteIndexOfSession("!C"), -1);
  EXPECT_EQ(RouteIndexOfSession("bZZZ"), 27);
}

TEST(RouteCodecTest, IsValidSessionId) {
  EXPECT_TRUE(IsValidSessionId("C"));
  EXPECT_TRUE(IsValidSessionId("Cabc123-_.~!#$%&'()*+/:<=>?@[]^`{|}"));
  EXPECT_FALSE(IsValidSessionId(""));
  EXPECT_FALSE(IsValidSessionId("a b"));
  EXPECT_FALSE(IsValidSessionId("a\"b"));
  EXPECT_FALSE(IsValidSessionId("a,b"));
  EXPECT_FALSE(IsValidSessionId("a;b"));
  EXPECT_FALSE(IsValidSessionId("a\\b"));
  EXPECT_FALSE(IsValidSessionId("a\tb"));
  EXPECT_FALSE(
      IsValidSessionId("a\x7f"
                       "b"));
  EXPECT_FALSE(
      IsValidSessionId("a\x80"
                       "b"));
  EXPECT_FALSE(IsValidSessionId("a\0b"sv));
  EXPECT_FALSE(IsValidSessionId("\0"sv));
  EXPECT_TRUE(IsValidSessionId(std::string(kMaxSessionIdLength, 'C')));
  EXPECT_FALSE(IsValidSessionId(std::string(kMaxSessionIdLength + 1, 'C')));
  // Every byte: exactly the RFC 6265 cookie-octets are accepted.
  for (int byte = 0; byte < 256; ++byte) {
    const char c = static_cast<char>(static_cast<unsigned char>(byte));
    const bool octet =
        byte >= 0x21 && byte <= 0x7e && byte != '"' && byte != ',' && byte != ';' && byte != '\\';
    EXPECT_EQ(IsValidSessionId(std::string_view(&c, 1)), octet) << "byte " << byte;
  }
}

// --- Cookie header -------------------------------------------------------------------------

TEST(RouteCodecCookieTest, SingleCookie) {
  EXPECT_EQ(FromCookie("JSESSIONID=Cxyz"), "Cxyz");
  EXPECT_EQ(FromCookie("JSESSIONID=Cxyz;"), "Cxyz");
}

TEST(RouteCodecCookieTest, NamedCookieAmongSeveral) {
  EXPECT_EQ(FromCookie("a=1; JSESSIONID=Cxyz; b=2"), "Cxyz");
  EXPECT_EQ(FromCookie("a=1; b=2; JSESSIONID=Dlast"), "Dlast");
  EXPECT_EQ(FromCookie("JSESSIONID=Efirst; a=1; b=2"), "Efirst");
  EXPECT_EQ(FromCookie("a=1;b=2;JSESSIONID=Fnospace;c=3"), "Fnospace");
  EXPECT_EQ(FromCookie("a=1; b=2"), "");
}

TEST(RouteCodecCookieTest, ReturnsViewIntoInput) {
  const std::string header = "a=1; JSESSIONID=Cxyz; b=2";
  const std::string_view id = FromCookie(header);
  ASSERT_EQ(id, "Cxyz");
  EXPECT_TRUE(PointsInside(id, header));
  EXPECT_EQ(id.data(), header.data() + header.find("Cxyz"));

  const std::string quoted = "a=1; JSESSIONID=\"Cq\"";
  const std::string_view unquoted = FromCookie(quoted);
  ASSERT_EQ(unquoted, "Cq");
  EXPECT_EQ(unquoted.data(), quoted.data() + quoted.find("Cq"));
}

TEST(RouteCodecCookieTest, CustomCookieName) {
  EXPECT_EQ(SessionIdFromCookieHeader("JSESSIONID=Cx; SID=Dy", "SID"), "Dy");
  EXPECT_EQ(SessionIdFromCookieHeader("JSESSIONID=Cx", "SID"), "");
}

TEST(RouteCodecCookieTest, QuotedValueIsUnquoted) {
  EXPECT_EQ(FromCookie("JSESSIONID=\"Cxyz\""), "Cxyz");
  EXPECT_EQ(FromCookie("a=1; JSESSIONID=\"Cxyz\"; b=2"), "Cxyz");
  EXPECT_EQ(FromCookie("JSESSIONID= \"Cxyz\" "), "Cxyz");
  // Quotes around nothing: an empty value.
  EXPECT_EQ(FromCookie("JSESSIONID=\"\""), "");
  // White space is allowed around the quotes, not inside them.
  EXPECT_EQ(FromCookie("JSESSIONID=\" Cxyz\""), "");
  EXPECT_EQ(FromCookie("JSESSIONID=\"Cxyz \""), "");
}

TEST(RouteCodecCookieTest, OddWhiteSpace) {
  EXPECT_EQ(FromCookie("  JSESSIONID=Cxyz  "), "Cxyz");
  EXPECT_EQ(FromCookie("JSESSIONID = Cxyz"), "Cxyz");
  EXPECT_EQ(FromCookie("\tJSESSIONID\t=\tCxyz\t"), "Cxyz");
  EXPECT_EQ(FromCookie("a=1;\t \tJSESSIONID \t= \t Cxyz \t ;b=2"), "Cxyz");
  EXPECT_EQ(FromCookie("a=1;JSESSIONID=Cxyz   "), "Cxyz");
  // White space inside a value makes it unusable.
  EXPECT_EQ(FromCookie("JSESSIONID=Cx yz"), "");
  EXPECT_EQ(FromCookie("JSESSIONID=Cx\tyz"), "");
  // White space inside the name: not the name.
  EXPECT_EQ(FromCookie("JSESSION ID=Cxyz"), "");
}

TEST(RouteCodecCookieTest, RepeatedNameFirstUsableWins) {
  EXPECT_EQ(FromCookie("JSESSIONID=Cfirst; JSESSIONID=Dsecond"), "Cfirst");
  EXPECT_EQ(FromCookie("JSESSIONID=; JSESSIONID=Dsecond"), "Dsecond");
  EXPECT_EQ(FromCookie("JSESSIONID=  ; JSESSIONID=Dsecond"), "Dsecond");
  EXPECT_EQ(FromCookie("JSESSIONID=\"\"; JSESSIONID=Dsecond"), "Dsecond");
  EXPECT_EQ(FromCookie("JSESSIONID=\"Cbad; JSESSIONID=Dsecond"), "Dsecond");
  EXPECT_EQ(FromCookie("JSESSIONID=C,bad; a=1; JSESSIONID=Dthird"), "Dthird");
  EXPECT_EQ(FromCookie("JSESSIONID=; JSESSIONID=; JSESSIONID=Ethird; JSESSIONID=Ffourth"),
            "Ethird");
  EXPECT_EQ(
      FromCookie("JSESSIONID=" + std::string(kMaxSessionIdLength + 1, 'C') + "; JSESSIONID=Dshort"),
      "Dshort");
}

TEST(RouteCodecCookieTest, EmptyValue) {
  EXPECT_EQ(FromCookie("JSESSIONID="), "");
  EXPECT_EQ(FromCookie("JSESSIONID=;"), "");
  EXPECT_EQ(FromCookie("a=1; JSESSIONID=; b=2"), "");
  EXPECT_EQ(FromCookie("JSESSIONID=   "), "");
}

TEST(RouteCodecCookieTest, NamesThatArePrefixesOrSuffixesDoNotMatch) {
  EXPECT_EQ(FromCookie("XJSESSIONID=Cxyz"), "");
  EXPECT_EQ(FromCookie("JSESSIONIDX=Cxyz"), "");
  EXPECT_EQ(FromCookie("JSESSION=Cxyz"), "");
  EXPECT_EQ(FromCookie("SESSIONID=Cxyz"), "");
  EXPECT_EQ(FromCookie("XJSESSIONID=Cx; JSESSIONIDX=Dx; JSESSIONID=Ereal"), "Ereal");
  // Names are case-sensitive.
  EXPECT_EQ(FromCookie("jsessionid=Cxyz"), "");
  EXPECT_EQ(FromCookie("JSessionId=Cxyz"), "");
  // The name only matches a name, never a value.
  EXPECT_EQ(FromCookie("a=JSESSIONID=Cxyz"), "");
}

TEST(RouteCodecCookieTest, PairsWithoutEqualsAreSkipped) {
  EXPECT_EQ(FromCookie("JSESSIONID"), "");
  EXPECT_EQ(FromCookie("JSESSIONID; JSESSIONID=Cxyz"), "Cxyz");
  EXPECT_EQ(FromCookie("foo; JSESSIONID=Cxyz; bar"), "Cxyz");
  EXPECT_EQ(FromCookie("Cxyz"), "");
}

TEST(RouteCodecCookieTest, ValueMayContainEquals) {
  EXPECT_EQ(FromCookie("JSESSIONID=Cab=="), "Cab==");
}

TEST(RouteCodecCookieTest, UnbalancedQuotes) {
  EXPECT_EQ(FromCookie("JSESSIONID=\"Cxyz"), "");
  EXPECT_EQ(FromCookie("JSESSIONID=Cxyz\""), "");
  EXPECT_EQ(FromCookie("JSESSIONID=\""), "");
  EXPECT_EQ(FromCookie("JSESSIONID=\"\"\""), "");
  EXPECT_EQ(FromCookie("JSESSIONID=\"Cx\"yz\""), "");
  EXPECT_EQ(FromCookie("JSESSIONID=Cx\"yz"), "");
}

TEST(RouteCodecCookieTest, ForbiddenBytesInValue) {
  EXPECT_EQ(FromCookie("JSESSIONID=Cx yz"), "");
  EXPECT_EQ(FromCookie("JSESSIONID=Cx,yz"), "");
  EXPECT_EQ(FromCookie("JSESSIONID=Cx\\yz"), "");
  EXPECT_EQ(FromCookie("JSESSIONID=Cx\x7fyz"), "");
  EXPECT_EQ(FromCookie("JSESSIONID=Cx\x80yz"), "");
  EXPECT_EQ(FromCookie("JSESSIONID=\"Cx yz\""), "");
  EXPECT_EQ(FromCookie("JSESSIONID=\"Cx\\yz\""), "");
  // NUL inside a header given with an explicit length.
  constexpr std::string_view kWithNul("JSESSIONID=Cx\0yz", 16);
  ASSERT_EQ(kWithNul.size(), 16u);
  EXPECT_EQ(FromCookie(kWithNul), "");
  constexpr std::string_view kTrailingNul("JSESSIONID=Cxyz\0", 16);
  EXPECT_EQ(FromCookie(kTrailingNul), "");
  constexpr std::string_view kLeadingNul("JSESSIONID=\0Cxyz", 16);
  EXPECT_EQ(FromCookie(kLeadingNul), "");
  // A NUL in another cookie does not hide a good one.
  constexpr std::string_view kNulElsewhere("a=\0; JSESSIONID=Cxyz", 20);
  EXPECT_EQ(FromCookie(kNulElsewhere), "Cxyz");
}

TEST(RouteCodecCookieTest, Overlong) {
  const std::string exact(kMaxSessionIdLength, 'C');
  const std::string over(kMaxSessionIdLength + 1, 'C');
  EXPECT_EQ(FromCookie("JSESSIONID=" + exact), exact);
  EXPECT_EQ(FromCookie("JSESSIONID=" + over), "");
  EXPECT_EQ(FromCookie("JSESSIONID=\"" + exact + "\""), exact);
  EXPECT_EQ(FromCookie("JSESSIONID=\"" + over + "\""), "");
  const std::string huge(10000, 'C');
  EXPECT_EQ(FromCookie("a=1; JSESSIONID=" + huge + "; b=2"), "");
}

TEST(RouteCodecCookieTest, EmptyAndDegenerateHeaders) {
  EXPECT_EQ(FromCookie(""), "");
  EXPECT_EQ(FromCookie(";;;"), "");
  EXPECT_EQ(FromCookie(";"), "");
  EXPECT_EQ(FromCookie("   "), "");
  EXPECT_EQ(FromCookie("="), "");
  EXPECT_EQ(FromCookie("=Cxyz"), "");
  EXPECT_EQ(FromCookie(";;;JSESSIONID=Cxyz;;;"), "Cxyz");
  EXPECT_EQ(FromCookie(std::string_view()), "");
}

// --- Path parameter ------------------------------------------------------------------------

TEST(RouteCodecPathTest, PlainParameter) {
  EXPECT_EQ(SessionIdFromPath("/a;jsessionid=Cxyz"), "Cxyz");
  EXPECT_EQ(SessionIdFromPath(";jsessionid=Cxyz"), "Cxyz");
  EXPECT_EQ(SessionIdFromPath("/shop/cart.jsp;jsessionid=Dabc123"), "Dabc123");
}

TEST(RouteCodecPathTest, ReturnsViewIntoInput) {
  const std::string path = "/cart;jsessionid=Cxyz?x=1";
  const std::string_view id = SessionIdFromPath(path);
  ASSERT_EQ(id, "Cxyz");
  EXPECT_TRUE(PointsInside(id, path));
  EXPECT_EQ(id.data(), path.data() + path.find("Cxyz"));
}

TEST(RouteCodecPathTest, ValueEndsAtDelimiters) {
  EXPECT_EQ(SessionIdFromPath("/a;jsessionid=Cxyz?x=1"), "Cxyz");
  EXPECT_EQ(SessionIdFromPath("/a;jsessionid=Cxyz#frag"), "Cxyz");
  EXPECT_EQ(SessionIdFromPath("/a;jsessionid=Cxyz;other=1"), "Cxyz");
  EXPECT_EQ(SessionIdFromPath("/a;jsessionid=Cxyz/b/c"), "Cxyz");
  EXPECT_EQ(SessionIdFromPath("/a;jsessionid=Cxyz?y=2#f"), "Cxyz");
}

TEST(RouteCodecPathTest, QueryAndFragmentAreNotSearched) {
  EXPECT_EQ(SessionIdFromPath("/a?;jsessionid=Cxyz"), "");
  EXPECT_EQ(SessionIdFromPath("/a?x=1;jsessionid=Cxyz"), "");
  EXPECT_EQ(SessionIdFromPath("/a?jsessionid=Cxyz"), "");
  EXPECT_EQ(SessionIdFromPath("/a#;jsessionid=Cxyz"), "");
  EXPECT_EQ(SessionIdFromPath("/a#x;jsessionid=Cxyz?q"), "");
}

TEST(RouteCodecPathTest, ParameterNameMustMatchExactly) {
  EXPECT_EQ(SessionIdFromPath("/a;jsessionidx=Cxyz"), "");
  EXPECT_EQ(SessionIdFromPath("/a;xjsessionid=Cxyz"), "");
  EXPECT_EQ(SessionIdFromPath("/a;jsession=Cxyz"), "");
  EXPECT_EQ(SessionIdFromPath("/a;JSESSIONID=Cxyz"), "");
  EXPECT_EQ(SessionIdFromPath("/a;jsessionid"), "");
  EXPECT_EQ(SessionIdFromPath("/a;jsessionid;x=1"), "");
  // Without the ';' it is not a path parameter.
  EXPECT_EQ(SessionIdFromPath("/a/jsessionid=Cxyz"), "");
  EXPECT_EQ(SessionIdFromPath("jsessionid=Cxyz"), "");
  // A mismatching one does not hide a later exact one.
  EXPECT_EQ(SessionIdFromPath("/a;jsessionidx=Cbad;jsessionid=Dgood"), "Dgood");
}

TEST(RouteCodecPathTest, EmptyValue) {
  EXPECT_EQ(SessionIdFromPath("/a;jsessionid="), "");
  EXPECT_EQ(SessionIdFromPath("/a;jsessionid=?x=Cxyz"), "");
  EXPECT_EQ(SessionIdFromPath("/a;jsessionid=/b"), "");
  EXPECT_EQ(SessionIdFromPath("/a;jsessionid=#Cxyz"), "");
}

TEST(RouteCodecPathTest, MultipleParameters) {
  EXPECT_EQ(SessionIdFromPath("/a;foo=1;jsessionid=Cxyz;bar=2"), "Cxyz");
  EXPECT_EQ(SessionIdFromPath("/a;foo=1;bar=2;jsessionid=Cxyz"), "Cxyz");
  EXPECT_EQ(SessionIdFromPath("/a;jsessionid=Cxyz;foo=1;bar=2"), "Cxyz");
  EXPECT_EQ(SessionIdFromPath("/a;foo;bar=;jsessionid=Cxyz"), "Cxyz");
  EXPECT_EQ(SessionIdFromPath("/a;foo=jsessionid=Cxyz"), "");
  EXPECT_EQ(SessionIdFromPath("/a;foo=1;bar=2"), "");
  EXPECT_EQ(SessionIdFromPath("/a;b;c;d"), "");
}

TEST(RouteCodecPathTest, ForbiddenAndOverlongValues) {
  EXPECT_EQ(SessionIdFromPath("/a;jsessionid=Cx yz"), "");
  EXPECT_EQ(SessionIdFromPath("/a;jsessionid=Cx,yz"), "");
  EXPECT_EQ(SessionIdFromPath("/a;jsessionid=Cx\\yz"), "");
  EXPECT_EQ(SessionIdFromPath("/a;jsessionid=Cx\"yz"), "");
  constexpr std::string_view kWithNul("/a;jsessionid=C\0x", 17);
  EXPECT_EQ(SessionIdFromPath(kWithNul), "");
  const std::string exact(kMaxSessionIdLength, 'C');
  const std::string over(kMaxSessionIdLength + 1, 'C');
  EXPECT_EQ(SessionIdFromPath("/a;jsessionid=" + exact + "?q"), exact);
  EXPECT_EQ(SessionIdFromPath("/a;jsessionid=" + over + "?q"), "");
}

TEST(RouteCodecPathTest, EmptyAndDegeneratePaths) {
  EXPECT_EQ(SessionIdFromPath(""), "");
  EXPECT_EQ(SessionIdFromPath("/"), "");
  EXPECT_EQ(SessionIdFromPath(";"), "");
  EXPECT_EQ(SessionIdFromPath(";;;"), "");
  EXPECT_EQ(SessionIdFromPath("?"), "");
  EXPECT_EQ(SessionIdFromPath(std::string_view()), "");
}

TEST(RouteCodecPathTest, CustomParameterName) {
  EXPECT_EQ(SessionIdFromPath("/a;sid=Cxyz", "sid"), "Cxyz");
  EXPECT_EQ(SessionIdFromPath("/a;jsessionid=Cxyz", "sid"), "");
  EXPECT_EQ(SessionIdFromPath("/a;sidx=Cxyz", "sid"), "");
}

}  // namespace
}  // namespace cb
