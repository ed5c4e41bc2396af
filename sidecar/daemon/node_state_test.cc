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

TEST_F(NodeStateTest, AJoinedIndexIsKeptForItsServerOnly) {
  Result<int> none = LoadJoinedIndex(dir_, "shop", "web-7");
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ(*none, -1);
  ASSERT_TRUE(SaveJoinedIndex(dir_, "shop", "web-7", 11).ok());
  Result<int> kept = LoadJoinedIndex(dir_, "shop", "web-7");
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_EQ(*kept, 11);

  for (const auto& [cluster, id] : {std::pair{"shop", "web-8"}, std::pair{"other", "web-7"}}) {
    Result<int> foreign = LoadJoinedIndex(dir_, cluster, id);
    ASSERT_FALSE(foreign.ok());
    EXPECT_NE(foreign.status().message().find("belongs to server \"web-7\" of cluster \"shop\""),
              std::string::npos)
        << foreign.status().message();
  }
}

TEST_F(NodeStateTest, AMalformedJoinedIndexIsAnErrorNotAReset) {
  for (const char* text : {"", "{", "[]", "{\"cluster\": \"shop\", \"id\": \"web-7\"}",
                           "{\"cluster\": \"shop\", \"id\": \"web-7\", \"index\": 64}",
                           "{\"cluster\": \"shop\", \"id\": \"web-7\", \"index\": \"3\"}"}) {
    std::ofstream(dir_ + "/dynamic-index") << text;
    Result<int> loaded = LoadJoinedIndex(dir_, "shop", "web-7");
    ASSERT_FALSE(loaded.ok()) << text;
    EXPECT_NE(loaded.status().message().find("remove it to start over"), std::string::npos)
        << loaded.status().message();
  }
}

TEST_F(NodeStateTest, DynamicIdentitiesRoundTrip) {
  Result<std::vector<protocol::ServerRecord>> none = LoadDynamicIdentities(dir_);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  protocol::ServerRecord web;
  web.index = 6;
  web.id = "web-7";
  web.cluster_address = "10.0.0.7:6800";
  web.http_address = "10.0.0.7:8080";
  web.weight = 50;
  web.admission = 3;
  web.admin_version = 2;
  web.draining = true;
  protocol::ServerRecord tombstone;
  tombstone.index = 9;
  tombstone.admission = 4;
  ASSERT_TRUE(SaveDynamicIdentities(dir_, {web, tombstone}).ok());

  Result<std::vector<protocol::ServerRecord>> loaded = LoadDynamicIdentities(dir_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_EQ(loaded->size(), 2u);
  const protocol::ServerRecord& back = (*loaded)[0];
  EXPECT_EQ(back.index, 6);
  EXPECT_EQ(back.id, "web-7");
  EXPECT_EQ(back.cluster_address, "10.0.0.7:6800");
  EXPECT_EQ(back.http_address, "10.0.0.7:8080");
  EXPECT_EQ(back.weight, 50u);
  EXPECT_EQ(back.admission, 3u);
  EXPECT_EQ(back.admin_version, 2u);
  EXPECT_TRUE(back.draining);
  EXPECT_TRUE(back.dynamic);
  EXPECT_EQ((*loaded)[1].index, 9);
  EXPECT_TRUE((*loaded)[1].id.empty());
  EXPECT_EQ((*loaded)[1].admission, 4u);

  std::ofstream(dir_ + "/dynamic-servers") << "[{\"index\": 6}]";
  Result<std::vector<protocol::ServerRecord>> broken = LoadDynamicIdentities(dir_);
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("dynamic-servers"), std::string::npos);
}

}  // namespace
}  // namespace cb::daemon
