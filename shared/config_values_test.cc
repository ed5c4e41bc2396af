#include "shared/config_values.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace cb {
namespace {

using std::chrono::milliseconds;

constexpr std::string_view kDurationHint =
    " is not a whole number with a unit ms, s, m or h (e.g. \"3s\")";
constexpr std::string_view kSizeHint =
    " is not a whole number of bytes with an optional unit B, KiB, MiB or GiB (e.g. \"1MiB\")";
constexpr std::string_view kAddressHint =
    " (expected host:port, e.g. \"10.0.0.10:6800\" or \"[::1]:6800\")";

milliseconds DurationOk(std::string_view text) {
  Result<milliseconds> result = ParseDuration(text);
  EXPECT_TRUE(result.ok()) << text << ": " << result.status().ToString();
  return result.ok() ? *result : milliseconds(-1);
}

uint64_t SizeOk(std::string_view text) {
  Result<uint64_t> result = ParseByteSize(text);
  EXPECT_TRUE(result.ok()) << text << ": " << result.status().ToString();
  return result.ok() ? *result : 0;
}

HostPort AddressOk(std::string_view text) {
  Result<HostPort> result = ParseHostPort(text);
  EXPECT_TRUE(result.ok()) << text << ": " << result.status().ToString();
  return result.ok() ? *result : HostPort{};
}

// The error message, or "<parsed>" when the text was (wrongly) accepted.
template <typename T>
std::string ErrorOf(const Result<T>& result) {
  if (result.ok()) return "<parsed>";
  EXPECT_EQ(result.status().code(), Status::Code::kInvalidArgument);
  return result.status().message();
}

std::string DurationError(std::string_view text) {
  return "duration \"" + std::string(text) + "\"" + std::string(kDurationHint);
}

std::string SizeError(std::string_view text) {
  return "size \"" + std::string(text) + "\"" + std::string(kSizeHint);
}

std::string AddressError(std::string_view text, std::string_view why) {
  return "address \"" + std::string(text) + "\" " + std::string(why) + std::string(kAddressHint);
}

// --- Durations --------------------------------------------------------------

TEST(ParseDurationTest, EachUnit) {
  EXPECT_EQ(DurationOk("250ms"), milliseconds(250));
  EXPECT_EQ(DurationOk("3s"), milliseconds(3000));
  EXPECT_EQ(DurationOk("15m"), milliseconds(15 * 60 * 1000));
  EXPECT_EQ(DurationOk("2h"), milliseconds(2 * 60 * 60 * 1000));
  EXPECT_EQ(DurationOk("1ms"), milliseconds(1));
  EXPECT_EQ(DurationOk("90s"), milliseconds(90'000));
  EXPECT_EQ(DurationOk("1500ms"), milliseconds(1500));
}

TEST(ParseDurationTest, ZeroInEveryUnit) {
  for (std::string_view text : {"0ms", "0s", "0m", "0h"}) {
    EXPECT_EQ(DurationOk(text), milliseconds(0)) << text;
  }
}

TEST(ParseDurationTest, LeadingZerosAreTheSameNumber) {
  EXPECT_EQ(DurationOk("007s"), milliseconds(7000));
}

TEST(ParseDurationTest, BareNumberIsRefused) {
  // Is "3" seconds or milliseconds? The parser refuses to guess.
  EXPECT_EQ(ErrorOf(ParseDuration("3")), DurationError("3"));
  EXPECT_EQ(ErrorOf(ParseDuration("0")), DurationError("0"));
}

TEST(ParseDurationTest, UnknownOrMisspelledUnitIsRefused) {
  for (std::string_view text :
       {"3sec", "3S", "3MS", "3H", "3d", "3us", "3ns", "3min", "3ms5", "3s3", "3.5s", "1e3ms"}) {
    EXPECT_EQ(ErrorOf(ParseDuration(text)), DurationError(text)) << text;
  }
}

TEST(ParseDurationTest, MissingNumberIsRefused) {
  for (std::string_view text : {"", "s", "ms", "h", "-", "abc"}) {
    EXPECT_EQ(ErrorOf(ParseDuration(text)), DurationError(text)) << text;
  }
}

TEST(ParseDurationTest, NegativeAndSignedAreRefused) {
  for (std::string_view text : {"-1s", "-0s", "+1s", "-250ms"}) {
    EXPECT_EQ(ErrorOf(ParseDuration(text)), DurationError(text)) << text;
  }
}

TEST(ParseDurationTest, WhiteSpaceIsRefused) {
  for (std::string_view text : {" 3s", "3s ", "3 s", "\t3s", "3s\n", "3 ms"}) {
    EXPECT_EQ(ErrorOf(ParseDuration(text)), DurationError(text)) << "[" << text << "]";
  }
}

TEST(ParseDurationTest, LongestAcceptedIsTenYearsInEveryUnit) {
  EXPECT_EQ(kMaxDuration, milliseconds(int64_t{87600} * 3'600'000));
  EXPECT_EQ(DurationOk("87600h"), kMaxDuration);
  EXPECT_EQ(DurationOk("5256000m"), kMaxDuration);
  EXPECT_EQ(DurationOk("315360000s"), kMaxDuration);
  EXPECT_EQ(DurationOk("315360000000ms"), kMaxDuration);
}

TEST(ParseDurationTest, LongerOrOverflowingIsRefused) {
  for (std::string_view text : {
           "87601h", "5256001m", "315360001s", "315360000001ms",
           "9223372036854775808ms",   // INT64_MAX + 1
           "18446744073709551615ms",  // UINT64_MAX
           "2562047788016h",          // would overflow milliseconds
       }) {
    EXPECT_EQ(ErrorOf(ParseDuration(text)),
              "duration \"" + std::string(text) + "\" is over the limit of 87600h (10 years)")
        << text;
  }
  // Not even a 64-bit number: not a duration at all.
  for (std::string_view text : {"18446744073709551616ms", "99999999999999999999999h"}) {
    EXPECT_EQ(ErrorOf(ParseDuration(text)), DurationError(text)) << text;
  }
}

// --- FormatDuration ---------------------------------------------------------

TEST(FormatDurationTest, ShortestExactSpelling) {
  EXPECT_EQ(FormatDuration(milliseconds(0)), "0s");
  EXPECT_EQ(FormatDuration(milliseconds(1)), "1ms");
  EXPECT_EQ(FormatDuration(milliseconds(250)), "250ms");
  EXPECT_EQ(FormatDuration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(FormatDuration(milliseconds(1000)), "1s");
  EXPECT_EQ(FormatDuration(milliseconds(3000)), "3s");
  EXPECT_EQ(FormatDuration(milliseconds(90'000)), "90s");
  EXPECT_EQ(FormatDuration(milliseconds(60'000)), "1m");
  EXPECT_EQ(FormatDuration(milliseconds(15 * 60'000)), "15m");
  EXPECT_EQ(FormatDuration(milliseconds(90 * 60'000)), "90m");
  EXPECT_EQ(FormatDuration(milliseconds(3'600'000)), "1h");
  EXPECT_EQ(FormatDuration(milliseconds(24 * 3'600'000)), "24h");
}

TEST(FormatDurationTest, RoundTripsThroughParseDuration) {
  for (int64_t ms :
       {int64_t{0}, int64_t{1}, int64_t{10}, int64_t{999}, int64_t{1000}, int64_t{1001},
        int64_t{59'999}, int64_t{60'000}, int64_t{61'000}, int64_t{3'599'999}, int64_t{3'600'000},
        int64_t{3'660'000}, int64_t{86'400'000}, int64_t{123'456'789}, kMaxDuration.count()}) {
    const std::string text = FormatDuration(milliseconds(ms));
    Result<milliseconds> parsed = ParseDuration(text);
    ASSERT_TRUE(parsed.ok()) << ms << " -> " << text << ": " << parsed.status().ToString();
    EXPECT_EQ(parsed->count(), ms) << text;
  }
}

TEST(FormatDurationTest, ParsedTextFormatsToItsShortestSpelling) {
  EXPECT_EQ(FormatDuration(DurationOk("60s")), "1m");
  EXPECT_EQ(FormatDuration(DurationOk("3600000ms")), "1h");
  EXPECT_EQ(FormatDuration(DurationOk("120m")), "2h");
  EXPECT_EQ(FormatDuration(DurationOk("0h")), "0s");
}

// --- Byte sizes -------------------------------------------------------------

TEST(ParseByteSizeTest, PlainNumberIsBytes) {
  EXPECT_EQ(SizeOk("0"), 0u);
  EXPECT_EQ(SizeOk("1"), 1u);
  EXPECT_EQ(SizeOk("512"), 512u);
  EXPECT_EQ(SizeOk("18446744073709551615"), UINT64_MAX);
}

TEST(ParseByteSizeTest, EachUnit) {
  EXPECT_EQ(SizeOk("512B"), 512u);
  EXPECT_EQ(SizeOk("0B"), 0u);
  EXPECT_EQ(SizeOk("1KiB"), 1024u);
  EXPECT_EQ(SizeOk("64KiB"), 64u * 1024);
  EXPECT_EQ(SizeOk("1MiB"), 1024u * 1024);
  EXPECT_EQ(SizeOk("16MiB"), 16u * 1024 * 1024);
  EXPECT_EQ(SizeOk("1GiB"), uint64_t{1} << 30);
  EXPECT_EQ(SizeOk("1024KiB"), SizeOk("1MiB"));
}

TEST(ParseByteSizeTest, LargestValuePerUnit) {
  EXPECT_EQ(SizeOk("17179869183GiB"), uint64_t{17179869183} << 30);
  EXPECT_EQ(SizeOk("17592186044415MiB"), uint64_t{17592186044415} << 20);
  EXPECT_EQ(SizeOk("18014398509481983KiB"), uint64_t{18014398509481983} << 10);
}

TEST(ParseByteSizeTest, OverflowIsRefused) {
  for (std::string_view text :
       {"18446744073709551616", "18446744073709551616B", "17179869184GiB", "17592186044416MiB",
        "18014398509481984KiB", "99999999999999999999999GiB"}) {
    EXPECT_EQ(ErrorOf(ParseByteSize(text)), SizeError(text)) << text;
  }
}

TEST(ParseByteSizeTest, JunkIsRefused) {
  for (std::string_view text :
       {"",      "KiB", "1K", "1KB", "1kib",  "1MB",   "1mb",  "1G",  "1TiB", "1.5MiB", "-1",
        "-1KiB", "+1",  " 1", "1 ",  "1 KiB", "1KiB ", "0x10", "1e6", "MiB1", "1MiBs"}) {
    EXPECT_EQ(ErrorOf(ParseByteSize(text)), SizeError(text)) << "[" << text << "]";
  }
}

// --- Addresses --------------------------------------------------------------

TEST(ParseHostPortTest, Ipv4) {
  EXPECT_EQ(AddressOk("10.0.0.10:6800"), (HostPort{"10.0.0.10", 6800}));
  EXPECT_EQ(AddressOk("127.0.0.1:1"), (HostPort{"127.0.0.1", 1}));
  EXPECT_EQ(AddressOk("0.0.0.0:65535"), (HostPort{"0.0.0.0", 65535}));
}

TEST(ParseHostPortTest, HostName) {
  EXPECT_EQ(AddressOk("app-a.internal:6800"), (HostPort{"app-a.internal", 6800}));
  EXPECT_EQ(AddressOk("localhost:80"), (HostPort{"localhost", 80}));
  EXPECT_EQ(AddressOk("My_Host-1:8080"), (HostPort{"My_Host-1", 8080}));
}

TEST(ParseHostPortTest, BracketedIpv6) {
  EXPECT_EQ(AddressOk("[::1]:6800"), (HostPort{"::1", 6800}));
  EXPECT_EQ(AddressOk("[fd00::11]:443"), (HostPort{"fd00::11", 443}));
  EXPECT_EQ(AddressOk("[2001:DB8::A]:1"), (HostPort{"2001:DB8::A", 1}));
  EXPECT_EQ(AddressOk("[::ffff:10.0.0.1]:80"), (HostPort{"::ffff:10.0.0.1", 80}));
}

TEST(ParseHostPortTest, ToStringRoundTrips) {
  EXPECT_EQ((HostPort{"10.0.0.10", 6800}).ToString(), "10.0.0.10:6800");
  EXPECT_EQ((HostPort{"::1", 6800}).ToString(), "[::1]:6800");
  for (std::string_view text :
       {"10.0.0.10:6800", "app-a.internal:1", "[::1]:65535", "[fd00::11]:6800"}) {
    EXPECT_EQ(AddressOk(text).ToString(), text);
  }
}

TEST(ParseHostPortTest, LeadingZerosInThePortAreTheSamePort) {
  EXPECT_EQ(AddressOk("h:0080"), (HostPort{"h", 80}));
}

TEST(ParseHostPortTest, MissingPort) {
  for (std::string_view text : {"10.0.0.10", "localhost", "", "[::1]", "[fd00::11]"}) {
    EXPECT_EQ(ErrorOf(ParseHostPort(text)), AddressError(text, "has no port")) << text;
  }
  // A colon with nothing after it is a port that is not in range.
  EXPECT_EQ(ErrorOf(ParseHostPort("10.0.0.10:")),
            AddressError("10.0.0.10:", "has a port outside 1..65535"));
}

TEST(ParseHostPortTest, PortOutOfRangeOrNotANumber) {
  for (std::string_view text :
       {"h:0", "h:65536", "h:99999", "h:abc", "h:80a", "h:-1", "h:+80", "h:8 0", "h:80 ",
        "h:18446744073709551617", "[::1]:0", "[::1]:65536", "h:1.5"}) {
    EXPECT_EQ(ErrorOf(ParseHostPort(text)), AddressError(text, "has a port outside 1..65535"))
        << text;
  }
}

TEST(ParseHostPortTest, EmptyHost) {
  EXPECT_EQ(ErrorOf(ParseHostPort(":6800")), AddressError(":6800", "has no host"));
  EXPECT_EQ(ErrorOf(ParseHostPort(":")), AddressError(":", "has no host"));
}

TEST(ParseHostPortTest, UnbalancedBracket) {
  for (std::string_view text : {"[::1:6800", "[:6800", "[]:6800", "[::1]6800", "[[::1]]x:80"}) {
    EXPECT_EQ(ErrorOf(ParseHostPort(text)), AddressError(text, "has an unbalanced '['")) << text;
  }
}

TEST(ParseHostPortTest, MalformedIpv6Literal) {
  for (std::string_view text : {"[::g]:80", "[fd00::1%eth0]:80", "[host]:80",
                                // Brackets without a ':' inside are not IPv6.
                                "[10.0.0.1]:80", "[.]:80", "[1]:80"}) {
    EXPECT_EQ(ErrorOf(ParseHostPort(text)), AddressError(text, "has a malformed IPv6 literal"))
        << text;
  }
}

TEST(ParseHostPortTest, UnbracketedIpv6IsRefused) {
  // "::1:6800" is ambiguous: the host would be "::1" which is not a host name.
  EXPECT_EQ(ErrorOf(ParseHostPort("::1:6800")),
            AddressError("::1:6800", "has a character not allowed in a host name"));
}

TEST(ParseHostPortTest, SpacesAndOtherCharactersInTheHost) {
  for (std::string_view text : {" 10.0.0.1:80", "10.0.0.1 :80", "app a:80", "\thost:80",
                                "host/x:80", "h@st:80", "host]:80", "ho$t:80"}) {
    EXPECT_EQ(ErrorOf(ParseHostPort(text)),
              AddressError(text, "has a character not allowed in a host name"))
        << "[" << text << "]";
  }
  EXPECT_EQ(ErrorOf(ParseHostPort("host: 80")),
            AddressError("host: 80", "has a port outside 1..65535"));
}

}  // namespace
}  // namespace cb
