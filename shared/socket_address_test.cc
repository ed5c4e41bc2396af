#include "shared/socket_address.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>
#include <string>
#include <string_view>

namespace cb {
namespace {

SocketAddress AddressOk(std::string_view text) {
  Result<SocketAddress> result = ParseNumericSocketAddress(text);
  EXPECT_TRUE(result.ok()) << text << ": " << result.status().ToString();
  return result.ok() ? *result : SocketAddress{};
}

// The error message, or "<parsed>" when the text was (wrongly) accepted.
std::string ErrorOf(std::string_view text) {
  Result<SocketAddress> result = ParseNumericSocketAddress(text);
  if (result.ok()) return "<parsed>";
  EXPECT_EQ(result.status().code(), Status::Code::kInvalidArgument) << text;
  return result.status().message();
}

bool Same(const SocketAddress& a, const SocketAddress& b) {
  return SameSocketAddress(a.get(), a.length, b.get(), b.length);
}

TEST(SocketAddressTest, ParsesIpv4) {
  const SocketAddress address = AddressOk("10.0.0.7:8080");
  ASSERT_EQ(address.length, sizeof(sockaddr_in));
  EXPECT_EQ(address.get()->sa_family, AF_INET);
  const auto* v4 = reinterpret_cast<const sockaddr_in*>(address.get());
  EXPECT_EQ(ntohs(v4->sin_port), 8080);
  EXPECT_EQ(ntohl(v4->sin_addr.s_addr), (10u << 24) | 7u);
  EXPECT_EQ(address.text, "10.0.0.7:8080");
}

TEST(SocketAddressTest, ParsesIpv4PortLimits) {
  const SocketAddress low = AddressOk("127.0.0.1:1");
  EXPECT_EQ(ntohs(reinterpret_cast<const sockaddr_in*>(low.get())->sin_port), 1);
  const SocketAddress high = AddressOk("255.255.255.255:65535");
  const auto* v4 = reinterpret_cast<const sockaddr_in*>(high.get());
  EXPECT_EQ(ntohs(v4->sin_port), 65535);
  EXPECT_EQ(v4->sin_addr.s_addr, 0xffffffffu);
  EXPECT_EQ(high.text, "255.255.255.255:65535");
}

TEST(SocketAddressTest, ParsesBracketedIpv6) {
  const SocketAddress address = AddressOk("[fd00::7]:8080");
  ASSERT_EQ(address.length, sizeof(sockaddr_in6));
  EXPECT_EQ(address.get()->sa_family, AF_INET6);
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address.get());
  EXPECT_EQ(ntohs(v6->sin6_port), 8080);
  in6_addr expected{};
  ASSERT_EQ(inet_pton(AF_INET6, "fd00::7", &expected), 1);
  EXPECT_EQ(std::memcmp(&v6->sin6_addr, &expected, sizeof(in6_addr)), 0);
  EXPECT_EQ(address.text, "[fd00::7]:8080");
}

TEST(SocketAddressTest, ParsesIpv6Loopback) {
  const SocketAddress address = AddressOk("[::1]:80");
  ASSERT_EQ(address.length, sizeof(sockaddr_in6));
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address.get());
  EXPECT_EQ(ntohs(v6->sin6_port), 80);
  EXPECT_TRUE(IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr));
  EXPECT_EQ(address.text, "[::1]:80");
}

TEST(SocketAddressTest, RefusesHostNamesSayingNumeric) {
  for (std::string_view text : {"localhost:80", "app-a.internal:8080", "example.com:443"}) {
    const std::string error = ErrorOf(text);
    EXPECT_NE(error.find("numeric"), std::string::npos) << text << ": " << error;
    EXPECT_NE(error.find(std::string(text)), std::string::npos) << text << ": " << error;
  }
}

TEST(SocketAddressTest, RefusesIncompleteIpv4AsNotNumeric) {
  // Host-name characters only, but not a dotted quad: inet_pton takes no shorthand.
  for (std::string_view text : {"10.0.7:80", "10.0.0.256:80", "1:80"}) {
    const std::string error = ErrorOf(text);
    EXPECT_NE(error.find("numeric"), std::string::npos) << text << ": " << error;
  }
}

TEST(SocketAddressTest, RefusesBadPorts) {
  for (std::string_view text : {"10.0.0.7:0", "10.0.0.7:65536", "10.0.0.7:", "10.0.0.7:http",
                                "10.0.0.7:-1", "10.0.0.7:80x", "[::1]:0", "[::1]:99999"}) {
    const std::string error = ErrorOf(text);
    EXPECT_NE(error.find("port"), std::string::npos) << text << ": " << error;
  }
}

TEST(SocketAddressTest, RefusesMissingPortAndMalformedText) {
  EXPECT_NE(ErrorOf("10.0.0.7").find("no port"), std::string::npos);
  EXPECT_NE(ErrorOf("[::1]").find("no port"), std::string::npos);
  EXPECT_NE(ErrorOf("").find("no port"), std::string::npos);
  EXPECT_NE(ErrorOf(":80").find("no host"), std::string::npos);
  EXPECT_NE(ErrorOf("[10.0.0.7]:80").find("IPv6"), std::string::npos);
  EXPECT_NE(ErrorOf("[::1:80").find("'['"), std::string::npos);
  EXPECT_EQ(ErrorOf("[fd00::zz]:80").find("<parsed>"), std::string::npos);
  EXPECT_EQ(ErrorOf("[:::]:80").find("<parsed>"), std::string::npos);
  EXPECT_EQ(ErrorOf(" 10.0.0.7:80").find("<parsed>"), std::string::npos);
}

TEST(SocketAddressTest, SameSocketAddressComparesFamilyAddressAndPort) {
  const SocketAddress a = AddressOk("10.0.0.7:8080");
  EXPECT_TRUE(Same(a, AddressOk("10.0.0.7:8080")));
  EXPECT_TRUE(Same(a, a));
  EXPECT_FALSE(Same(a, AddressOk("10.0.0.7:8081")));
  EXPECT_FALSE(Same(a, AddressOk("10.0.0.8:8080")));

  const SocketAddress b = AddressOk("[fd00::7]:8080");
  EXPECT_TRUE(Same(b, AddressOk("[fd00:0:0::7]:8080")));  // another spelling, same address
  EXPECT_FALSE(Same(b, AddressOk("[fd00::7]:8081")));
  EXPECT_FALSE(Same(b, AddressOk("[fd00::8]:8080")));

  // Another family never matches, not even the IPv4-mapped form of the same address.
  EXPECT_FALSE(Same(a, AddressOk("[::ffff:10.0.0.7]:8080")));
  EXPECT_FALSE(Same(AddressOk("[::ffff:10.0.0.7]:8080"), a));
}

TEST(SocketAddressTest, SameSocketAddressIgnoresBytesOutsideAddressAndPort) {
  SocketAddress a = AddressOk("10.0.0.7:8080");
  SocketAddress b = a;
  reinterpret_cast<sockaddr_in*>(&b.storage)->sin_zero[0] = 1;
  EXPECT_TRUE(Same(a, b));
  SocketAddress c = AddressOk("[fd00::7]:8080");
  SocketAddress d = c;
  reinterpret_cast<sockaddr_in6*>(&d.storage)->sin6_flowinfo = htonl(5);
  EXPECT_TRUE(Same(c, d));
}

TEST(SocketAddressTest, SameSocketAddressRefusesShortLengths) {
  const SocketAddress a = AddressOk("10.0.0.7:8080");
  // Too short to hold an IPv4 address: compared as raw bytes of unequal length.
  EXPECT_FALSE(SameSocketAddress(a.get(), a.length, a.get(), 2));
}

TEST(SocketAddressTest, SameSocketAddressComparesOtherFamiliesByBytes) {
  sockaddr_un x{};
  x.sun_family = AF_UNIX;
  std::strcpy(x.sun_path, "/run/a.sock");
  sockaddr_un y = x;
  const auto length = static_cast<socklen_t>(sizeof(sockaddr_un));
  EXPECT_TRUE(SameSocketAddress(reinterpret_cast<const sockaddr*>(&x), length,
                                reinterpret_cast<const sockaddr*>(&y), length));
  y.sun_path[5] = 'b';
  EXPECT_FALSE(SameSocketAddress(reinterpret_cast<const sockaddr*>(&x), length,
                                 reinterpret_cast<const sockaddr*>(&y), length));
}

}  // namespace
}  // namespace cb
