#include "sidecar/daemon/node_state.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace cb::daemon {
namespace {

class NodeStateTest : public testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/node_state_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    chmod(dir_.c_str(), 0700);
    std::filesystem::remove_all(dir_);
  }
  std::string dir_;
};

TEST_F(NodeStateTest, CreatesAMissingDataDir) {
  const std::string data = dir_ + "/data";
  ASSERT_TRUE(PrepareDataDir(data).ok());
  EXPECT_TRUE(std::filesystem::is_directory(data));
  EXPECT_TRUE(std::filesystem::is_empty(data));  // the probe is gone
}

TEST_F(NodeStateTest, RefusesAFileAndAnUnwritableDir) {
  const std::string file = dir_ + "/file";
  std::ofstream(file) << "x";
  const Status not_dir = PrepareDataDir(file);
  EXPECT_NE(not_dir.message().find("not a directory"), std::string::npos) << not_dir.message();
  if (geteuid() != 0) {  // root writes anywhere
    const std::string locked = dir_ + "/locked";
    ASSERT_EQ(mkdir(locked.c_str(), 0500), 0);
    const Status status = PrepareDataDir(locked);
    EXPECT_NE(status.message().find("not writable"), std::string::npos) << status.message();
  }
  const Status missing_parent = PrepareDataDir(dir_ + "/no/such/dir");
  EXPECT_FALSE(missing_parent.ok());
  EXPECT_NE(missing_parent.message().find(dir_ + "/no/such/dir"), std::string::npos);
}

TEST_F(NodeStateTest, IncarnationGrowsWithEveryStartAndNeverFallsBelowTheClock) {
  Result<uint64_t> first = NextIncarnation(dir_, 1000);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, 1000u);
  Result<uint64_t> second = NextIncarnation(dir_, 1000);  // same clock reading
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, 1001u);
  Result<uint64_t> third = NextIncarnation(dir_, 5000);  // the clock moved on
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(*third, 5000u);
  Result<uint64_t> clock_back = NextIncarnation(dir_, 10);
  ASSERT_TRUE(clock_back.ok());
  EXPECT_EQ(*clock_back, 5001u);
}

TEST_F(NodeStateTest, CorruptIncarnationFileIsAnErrorNotAReset) {
  std::ofstream(dir_ + "/incarnation") << "twelve\n";
  Result<uint64_t> next = NextIncarnation(dir_, 1000);
  ASSERT_FALSE(next.ok());
  EXPECT_NE(next.status().message().find("not a number"), std::string::npos);
  EXPECT_NE(next.status().message().find(dir_ + "/incarnation"), std::string::npos);
}

}  // namespace
}  // namespace cb::daemon
