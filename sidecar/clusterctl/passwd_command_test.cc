#include "sidecar/clusterctl/passwd_command.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <sstream>
#include <string>

#include "sidecar/admin/admin_auth.h"

namespace cb {
namespace {

struct PasswdRun {
  int status;
  std::string out;
  std::string err;
};

PasswdRun Passwd(const std::string& user, const std::string& input) {
  std::istringstream in(input);
  std::ostringstream out;
  std::ostringstream err;
  const int status = RunPasswd(user, true, in, out, err);
  return PasswdRun{status, out.str(), err.str()};
}

std::string Base64(const std::string& text) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string encoded;
  for (std::size_t i = 0; i < text.size(); i += 3) {
    uint32_t group = static_cast<unsigned char>(text[i]) << 16;
    if (i + 1 < text.size()) group |= static_cast<unsigned char>(text[i + 1]) << 8;
    if (i + 2 < text.size()) group |= static_cast<unsigned char>(text[i + 2]);
    encoded += kAlphabet[(group >> 18) & 63];
    encoded += kAlphabet[(group >> 12) & 63];
    encoded += i + 1 < text.size() ? kAlphabet[(group >> 6) & 63] : '=';
    encoded += i + 2 < text.size() ? kAlphabet[group & 63] : '=';
  }
  return encoded;
}

TEST(PasswdCommandTest, PrintsALineTheAdminAccepts) {
  const PasswdRun run = Passwd("shop-deployer", "s3cret pass\n");
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(run.err, "");
  EXPECT_EQ(run.out.rfind("shop-deployer:$argon2id$", 0), 0u) << run.out;
  ASSERT_EQ(run.out.back(), '\n');
  EXPECT_EQ(run.out.find('\n'), run.out.size() - 1);
  EXPECT_EQ(run.out.find("s3cret"), std::string::npos);

  Result<std::unique_ptr<admin::Authenticator>> authenticator =
      admin::Authenticator::FromText(run.out, "users");
  ASSERT_TRUE(authenticator.ok()) << authenticator.status().ToString();
  const auto now = admin::Authenticator::Clock::now();
  EXPECT_EQ((*authenticator)->Check("a", "Basic " + Base64("shop-deployer:s3cret pass"), now).kind,
            admin::AuthDecision::Kind::kAllowed);
  EXPECT_EQ(
      (*authenticator)->Check("a", "Basic " + Base64("shop-deployer:s3cret pass\n"), now).kind,
      admin::AuthDecision::Kind::kUnauthorized);
}

TEST(PasswdCommandTest, OnlyTheFirstLineIsThePasswordAndCarriageReturnsAreDropped) {
  const PasswdRun run = Passwd("ops", "pw\r\nignored\n");
  ASSERT_EQ(run.status, 0) << run.err;
  Result<std::unique_ptr<admin::Authenticator>> authenticator =
      admin::Authenticator::FromText(run.out, "users");
  ASSERT_TRUE(authenticator.ok());
  EXPECT_EQ((*authenticator)
                ->Check("a", "Basic " + Base64("ops:pw"), admin::Authenticator::Clock::now())
                .kind,
            admin::AuthDecision::Kind::kAllowed);
  // Without a final newline too.
  EXPECT_EQ(Passwd("ops", "pw").status, 0);
}

TEST(PasswdCommandTest, RefusalsPrintNothingOnStandardOutput) {
  const PasswdRun empty_input = Passwd("ops", "");
  EXPECT_EQ(empty_input.status, 1);
  EXPECT_EQ(empty_input.out, "");
  EXPECT_EQ(empty_input.err, "clusterctl passwd: no password on standard input\n");

  const PasswdRun empty_password = Passwd("ops", "\n");
  EXPECT_EQ(empty_password.status, 1);
  EXPECT_EQ(empty_password.out, "");
  EXPECT_EQ(empty_password.err, "clusterctl passwd: the password is empty\n");

  const PasswdRun bad_user = Passwd("ops:root", "pw\n");
  EXPECT_EQ(bad_user.status, 1);
  EXPECT_EQ(bad_user.out, "");
  EXPECT_EQ(bad_user.err,
            "clusterctl passwd: user name \"ops:root\" is not 1..64 letters, digits, '.', '_', "
            "'@' or '-'\n");
}

TEST(PasswdCommandTest, WithoutPasswordStdinNeedsATerminal) {
  if (isatty(STDIN_FILENO) != 0) GTEST_SKIP() << "standard input is a terminal";
  std::istringstream in("pw\npw\n");
  std::ostringstream out;
  std::ostringstream err;
  EXPECT_EQ(RunPasswd("ops", false, in, out, err), 1);
  EXPECT_EQ(out.str(), "");
  EXPECT_EQ(err.str(),
            "clusterctl passwd: standard input is not a terminal: use --password-stdin\n");
}

}  // namespace
}  // namespace cb
