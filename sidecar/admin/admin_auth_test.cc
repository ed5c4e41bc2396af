#include "sidecar/admin/admin_auth.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <chrono>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "sidecar/testing/temp_dir.h"

namespace cb::admin {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Kind = AuthDecision::Kind;

constexpr std::string_view kUser = "shop-deployer";
constexpr std::string_view kPassword = "correct horse battery staple";

std::string Base64(std::string_view text) {
  std::string encoded(sodium_base64_ENCODED_LEN(text.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(encoded.data(), encoded.size(),
                    reinterpret_cast<const unsigned char*>(text.data()), text.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  encoded.resize(encoded.size() - 1);  // the terminating NUL
  return encoded;
}

std::string Basic(std::string_view user, std::string_view password) {
  return "Basic " + Base64(std::string(user) + ":" + std::string(password));
}

// One hash for the whole suite: argon2id is slow on purpose.
const std::string& UserLine() {
  static const std::string line = [] {
    Result<std::string> hashed = HashPasswordLine(kUser, kPassword);
    EXPECT_TRUE(hashed.ok()) << hashed.status().ToString();
    return hashed.ok() ? *hashed : std::string();
  }();
  return line;
}

std::unique_ptr<Authenticator> MakeAuthenticator() {
  Result<std::unique_ptr<Authenticator>> made =
      Authenticator::FromText("# admins\n" + UserLine() + "\n", "users");
  EXPECT_TRUE(made.ok()) << made.status().ToString();
  if (!made.ok()) return nullptr;
  return std::move(made).value();
}

std::string FromTextError(std::string_view text) {
  Result<std::unique_ptr<Authenticator>> made = Authenticator::FromText(text, "users");
  if (made.ok()) return "<ok>";
  EXPECT_EQ(made.status().code(), Status::Code::kInvalidArgument);
  return made.status().message();
}

const Authenticator::Clock::time_point kStart{seconds(1000)};

TEST(HashPasswordLineTest, LineRoundTripsThroughTheAuthenticator) {
  const std::string& line = UserLine();
  EXPECT_EQ(line.rfind("shop-deployer:$argon2id$v=19$", 0), 0u) << line;
  EXPECT_EQ(line.find('\n'), std::string::npos);
  // A fresh salt every time: the same password never gives the same line.
  Result<std::string> again = HashPasswordLine(kUser, kPassword);
  ASSERT_TRUE(again.ok());
  EXPECT_NE(*again, line);

  auto authenticator = MakeAuthenticator();
  ASSERT_NE(authenticator, nullptr);
  const AuthDecision decision = authenticator->Check("10.0.0.1", Basic(kUser, kPassword), kStart);
  EXPECT_EQ(decision.kind, Kind::kAllowed);
  EXPECT_EQ(decision.user, kUser);
  EXPECT_EQ(decision.why, "");
  // The other line of the same password verifies too.
  Result<std::unique_ptr<Authenticator>> other = Authenticator::FromText(*again, "users");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ((*other)->Check("10.0.0.1", Basic(kUser, kPassword), kStart).kind, Kind::kAllowed);
}

TEST(HashPasswordLineTest, RefusesBadUserNamesAndEmptyPasswords) {
  for (const char* user : {"", "a:b", "with space", "caf\xc3\xa9", "x\n"}) {
    SCOPED_TRACE(user);
    Result<std::string> hashed = HashPasswordLine(user, "pw");
    ASSERT_FALSE(hashed.ok());
    EXPECT_EQ(hashed.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(hashed.status().message().find("user name"), std::string::npos);
  }
  EXPECT_FALSE(HashPasswordLine(std::string(65, 'a'), "pw").ok());
  Result<std::string> empty = HashPasswordLine("ok", "");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().message(), "the password is empty");
}

TEST(AuthenticatorTest, WrongPasswordAndUnknownUser) {
  auto authenticator = MakeAuthenticator();
  ASSERT_NE(authenticator, nullptr);
  AuthDecision wrong = authenticator->Check("10.0.0.1", Basic(kUser, "guess"), kStart);
  EXPECT_EQ(wrong.kind, Kind::kUnauthorized);
  EXPECT_EQ(wrong.user, kUser);
  EXPECT_EQ(wrong.why, "wrong password");

  AuthDecision unknown = authenticator->Check("10.0.0.1", Basic("intruder", kPassword), kStart);
  EXPECT_EQ(unknown.kind, Kind::kUnauthorized);
  EXPECT_EQ(unknown.user, "intruder");
  EXPECT_EQ(unknown.why, "unknown user");

  // A password that differs in its last byte, or only by a NUL appended.
  EXPECT_EQ(
      authenticator->Check("10.0.0.1", Basic(kUser, "correct horse battery staplE"), kStart).why,
      "wrong password");
  EXPECT_EQ(
      authenticator
          ->Check("10.0.0.2", Basic(kUser, std::string(kPassword) + std::string(1, '\0')), kStart)
          .why,
      "wrong password");
}

TEST(AuthenticatorTest, RecentlyVerifiedCredentialsStillNeedTheirOwnPassword) {
  auto authenticator = MakeAuthenticator();
  ASSERT_NE(authenticator, nullptr);
  EXPECT_EQ(authenticator->Check("a", Basic(kUser, kPassword), kStart).kind, Kind::kAllowed);
  EXPECT_EQ(authenticator->Check("a", Basic(kUser, kPassword), kStart + seconds(1)).kind,
            Kind::kAllowed);
  EXPECT_EQ(authenticator->Check("a", Basic(kUser, "x"), kStart + seconds(2)).why,
            "wrong password");
  // Long after the cache forgot them, the credentials are verified again.
  EXPECT_EQ(authenticator->Check("a", Basic(kUser, kPassword), kStart + seconds(3600)).kind,
            Kind::kAllowed);
}

TEST(AuthenticatorTest, MalformedAuthorizationHeaders) {
  auto authenticator = MakeAuthenticator();
  ASSERT_NE(authenticator, nullptr);
  struct Case {
    std::string header;
    const char* why;
  };
  const Case cases[] = {
      {"", "no credentials"},
      {"Bearer abc", "not Basic credentials"},
      {"Basic", "not Basic credentials"},
      {Base64("shop-deployer:pw"), "not Basic credentials"},
      {"Basic ", "empty Basic credentials"},
      {"Basic    ", "empty Basic credentials"},
      {"Basic !!!!", "Basic credentials are not valid base64"},
      {"Basic " + Base64("shop-deployer:pw") + "x", "Basic credentials are not valid base64"},
      {"Basic c2hvcA", "Basic credentials are not valid base64"},  // unpadded "shop"
      {"Basic " + Base64("no colon here"), "Basic credentials without ':'"},
      {"Basic " + Base64(""), "empty Basic credentials"},
      {Basic("", kPassword), "invalid user name"},
      {Basic("bad user\r\nX-Injected: 1", kPassword), "invalid user name"},
      {"Basic " + std::string(5000, 'A'), "credentials too long"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.header);
    // Each from its own client, so that the rate limit stays out of the way.
    const AuthDecision decision = authenticator->Check(c.header, c.header, kStart);
    EXPECT_EQ(decision.kind, Kind::kUnauthorized);
    EXPECT_EQ(decision.why, c.why);
    EXPECT_EQ(decision.user, "");  // nothing of a malformed header reaches the log
  }
  // The scheme is case-insensitive and may be followed by several spaces.
  EXPECT_EQ(authenticator
                ->Check("c", "basic " + Base64("shop-deployer:" + std::string(kPassword)), kStart)
                .kind,
            Kind::kAllowed);
  EXPECT_EQ(authenticator
                ->Check("c", "BASIC   " + Base64("shop-deployer:" + std::string(kPassword)), kStart)
                .kind,
            Kind::kAllowed);
  // Only the first ':' separates: passwords may contain more.
  Result<std::string> colon_line = HashPasswordLine("u", "a:b");
  ASSERT_TRUE(colon_line.ok());
  Result<std::unique_ptr<Authenticator>> colon = Authenticator::FromText(*colon_line, "users");
  ASSERT_TRUE(colon.ok());
  EXPECT_EQ((*colon)->Check("d", Basic("u", "a:b"), kStart).kind, Kind::kAllowed);
}

TEST(AuthenticatorTest, UsersFileLinesAndComments) {
  Result<std::string> second = HashPasswordLine("ops@example.com", "other");
  ASSERT_TRUE(second.ok());
  const std::string text = "\n# who may deploy\n   \n" + UserLine() + "\r\n\t# ops\n" + *second;
  Result<std::unique_ptr<Authenticator>> made = Authenticator::FromText(text, "users");
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  EXPECT_EQ((*made)->Check("a", Basic(kUser, kPassword), kStart).kind, Kind::kAllowed);
  EXPECT_EQ((*made)->Check("a", Basic("ops@example.com", "other"), kStart).kind, Kind::kAllowed);
}

TEST(AuthenticatorTest, MalformedUsersFileNamesTheLine) {
  const std::string good = UserLine() + "\n";
  const std::string hash = UserLine().substr(kUser.size() + 1);
  EXPECT_EQ(FromTextError(good + "# comment\nalice\n"),
            "users:3: expected user:hash, as `clusterctl passwd` prints it");
  EXPECT_EQ(FromTextError(good + "bad user:" + hash + "\n"),
            "users:2: user name \"bad user\" is not 1..64 letters, digits, '.', '_', '@' or '-'");
  EXPECT_EQ(FromTextError(":" + hash + "\n"),
            "users:1: user name \"\" is not 1..64 letters, digits, '.', '_', '@' or '-'");
  const std::string not_a_hash =
      "\" is not an argon2id hash (\"$argon2id$...\", as `clusterctl passwd` prints it)";
  EXPECT_EQ(FromTextError(good + "alice:secret\n"),
            "users:2: the password of \"alice" + not_a_hash);
  EXPECT_EQ(FromTextError(good + "alice:\n"), "users:2: the password of \"alice" + not_a_hash);
  // argon2i, or an argon2id hash cut short, is no argon2id hash.
  std::string argon2i = hash;
  argon2i.replace(0, std::string("$argon2id$").size(), "$argon2i$");
  EXPECT_EQ(FromTextError("alice:" + argon2i + "\n"),
            "users:1: the password of \"alice" + not_a_hash);
  EXPECT_EQ(FromTextError("alice:" + hash.substr(0, hash.size() - 10) + "\n"),
            "users:1: the password of \"alice" + not_a_hash);
  EXPECT_EQ(FromTextError(good + "\n" + good),
            "users:3: user \"shop-deployer\" again (first at line 1)");
  EXPECT_EQ(FromTextError(""), "users: no users (add the lines `clusterctl passwd USER` prints)");
  EXPECT_EQ(FromTextError("# nobody yet\n\n"),
            "users: no users (add the lines `clusterctl passwd USER` prints)");
}

TEST(AuthenticatorTest, FromUsersFile) {
  testing_support::TempDir dir("admin_auth");
  const std::string path = dir.path() + "/admin-users";
  std::ofstream(path) << UserLine() << "\nbroken\n";
  Result<std::unique_ptr<Authenticator>> broken = Authenticator::FromUsersFile(path);
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.status().message(),
            path + ":2: expected user:hash, as `clusterctl passwd` prints it");

  std::ofstream(path) << UserLine() << "\n";
  Result<std::unique_ptr<Authenticator>> made = Authenticator::FromUsersFile(path);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  EXPECT_EQ((*made)->Check("a", Basic(kUser, kPassword), kStart).kind, Kind::kAllowed);

  Result<std::unique_ptr<Authenticator>> missing =
      Authenticator::FromUsersFile(dir.path() + "/missing");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Status::Code::kNotFound);
  EXPECT_EQ(missing.status().message(), dir.path() + "/missing: cannot open the admin users file");
}

TEST(AuthenticatorTest, FailuresInARowAreRateLimitedWithADoublingDelay) {
  auto authenticator = MakeAuthenticator();
  ASSERT_NE(authenticator, nullptr);
  const std::string right = Basic(kUser, kPassword);
  const std::string wrong = Basic(kUser, "guess");
  for (int i = 0; i < kFreeFailures; ++i) {
    EXPECT_EQ(authenticator->Check("10.0.0.9", wrong, kStart).kind, Kind::kUnauthorized) << i;
  }
  // Refused without looking at the password, even the right one.
  AuthDecision limited = authenticator->Check("10.0.0.9", right, kStart);
  EXPECT_EQ(limited.kind, Kind::kRateLimited);
  EXPECT_EQ(limited.retry_after, seconds(1));
  EXPECT_EQ(limited.why, "too many failed attempts");
  EXPECT_EQ(authenticator->Check("10.0.0.9", "", kStart + milliseconds(999)).kind,
            Kind::kRateLimited);
  // Another client is not affected.
  EXPECT_EQ(authenticator->Check("10.0.0.10", right, kStart).kind, Kind::kAllowed);

  // Each further failure doubles the delay.
  auto now = kStart + seconds(1);
  EXPECT_EQ(authenticator->Check("10.0.0.9", wrong, now).kind, Kind::kUnauthorized);
  limited = authenticator->Check("10.0.0.9", right, now);
  EXPECT_EQ(limited.kind, Kind::kRateLimited);
  EXPECT_EQ(limited.retry_after, seconds(2));
  // Rounded up: a client that waits Retry-After seconds is let through.
  EXPECT_EQ(authenticator->Check("10.0.0.9", right, now + milliseconds(1500)).retry_after,
            seconds(1));
  now += seconds(2);
  EXPECT_EQ(authenticator->Check("10.0.0.9", wrong, now).kind, Kind::kUnauthorized);
  EXPECT_EQ(authenticator->Check("10.0.0.9", right, now).retry_after, seconds(4));

  // A success clears the count: kFreeFailures more before the next limit.
  now += seconds(4);
  EXPECT_EQ(authenticator->Check("10.0.0.9", right, now).kind, Kind::kAllowed);
  for (int i = 0; i < kFreeFailures - 1; ++i) {
    EXPECT_EQ(authenticator->Check("10.0.0.9", "Basic !", now).kind, Kind::kUnauthorized) << i;
  }
  EXPECT_EQ(authenticator->Check("10.0.0.9", right, now).kind, Kind::kAllowed);
}

TEST(AuthenticatorTest, DelayStopsDoublingAtFiveMinutes) {
  auto authenticator = MakeAuthenticator();
  ASSERT_NE(authenticator, nullptr);
  // Malformed credentials count as failures (and cost no argon2id).
  auto now = kStart;
  std::vector<int64_t> delays;
  for (int i = 0; i < 60; ++i) {
    const AuthDecision decision = authenticator->Check("10.0.0.9", "Basic !", now);
    if (decision.kind == Kind::kRateLimited) {
      delays.push_back(decision.retry_after.count());
      now += decision.retry_after;
    }
  }
  const std::vector<int64_t> expected{1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300};
  ASSERT_GE(delays.size(), expected.size());
  delays.resize(expected.size());
  EXPECT_EQ(delays, expected);
}

TEST(AuthenticatorTest, RequestsWithoutCredentialsAreNotFailures) {
  auto authenticator = MakeAuthenticator();
  ASSERT_NE(authenticator, nullptr);
  for (int i = 0; i < 3 * kFreeFailures; ++i) {
    EXPECT_EQ(authenticator->Check("10.0.0.9", "", kStart).why, "no credentials");
  }
  EXPECT_EQ(authenticator->Check("10.0.0.9", Basic(kUser, kPassword), kStart).kind, Kind::kAllowed);
}

TEST(AuthenticatorTest, ManyClientsAreForgottenOldestFirst) {
  // The table of clients is bounded: a flood of addresses cannot grow it without
  // end, and the oldest (here: the limited client) is dropped first.
  auto authenticator = MakeAuthenticator();
  ASSERT_NE(authenticator, nullptr);
  for (int i = 0; i < kFreeFailures; ++i) authenticator->Check("victim", "Basic !", kStart);
  ASSERT_EQ(authenticator->Check("victim", "", kStart).kind, Kind::kRateLimited);
  for (int i = 0; i < 10'000; ++i) {
    authenticator->Check("10.1." + std::to_string(i), "Basic !", kStart + milliseconds(1));
  }
  EXPECT_EQ(authenticator->Check("victim", "", kStart + milliseconds(2)).why, "no credentials");
}

}  // namespace
}  // namespace cb::admin
