#include "sidecar/deploy/live_tree.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "sidecar/testing/temp_dir.h"

namespace cb::deploy {
namespace {

using cb::testing_support::TempDir;
using namespace std::chrono_literals;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

std::string ReadLink(const std::string& path) {
  std::error_code error;
  const std::filesystem::path target = std::filesystem::read_symlink(path, error);
  return error ? "" : target.string();
}

std::vector<std::string> Names(const std::string& directory) {
  std::vector<std::string> names;
  for (const auto& item : std::filesystem::directory_iterator(directory)) {
    names.push_back(item.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

void SetMtime(const std::string& path, time_t seconds) {
  const timespec times[2] = {{seconds, 0}, {seconds, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
}

// Whether process `pid` is gone or a zombie within `deadline`: a SIGKILL is
// delivered when the process next runs, which may be a moment after kill(2).
bool ProcessEnds(const std::string& pid, std::chrono::steady_clock::duration deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (true) {
    const std::string stat = ReadFile("/proc/" + pid + "/stat");
    const size_t paren = stat.rfind(')');
    if (stat.empty() || paren == std::string::npos || paren + 2 >= stat.size()) return true;
    if (stat[paren + 2] == 'Z' || stat[paren + 2] == 'X') return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(1ms);
  }
}

// A store with `count` versions of a one-page webapp; index.html says "version <i>".
class LiveTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<GitStore>> store = GitStore::Open(dir_.path() + "/repo");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store.value());
    CommitId parent;
    for (int i = 0; i < 5; ++i) {
      DeployTree tree;
      tree.entries = {{"bin/run", EntryKind::kExecutable, "#!/bin/sh\n"},
                      {"index.html", EntryKind::kFile, "version " + std::to_string(i)}};
      Result<CommitResult> commit = store_->Commit(tree, parent, "Ann", "ann@example.com", "v");
      ASSERT_TRUE(commit.ok()) << commit.status().ToString();
      parent = commit->commit;
      commits_.push_back(parent);
    }
  }

  LiveTree OpenLive() {
    Result<LiveTree> live = LiveTree::Open(webapp_dir());
    EXPECT_TRUE(live.ok()) << live.status().ToString();
    return std::move(live.value());
  }

  std::string webapp_dir() const { return dir_.path() + "/deploy/shop"; }

  TempDir dir_{"live_tree"};
  std::unique_ptr<GitStore> store_;
  std::vector<CommitId> commits_;
};

TEST_F(LiveTreeTest, OpenCreatesTheDirectoryWithNothingLive) {
  LiveTree live = OpenLive();
  EXPECT_EQ(live.directory(), webapp_dir());
  EXPECT_TRUE(std::filesystem::is_directory(webapp_dir() + "/versions"));
  EXPECT_FALSE(live.Current().has_value());
  EXPECT_EQ(live.current_link(), webapp_dir() + "/current");
  EXPECT_EQ(live.VersionDirectory(commits_[0]), webapp_dir() + "/versions/" + commits_[0]);
}

TEST_F(LiveTreeTest, PrepareThenSwitchMovesCurrent) {
  LiveTree live = OpenLive();
  ASSERT_TRUE(live.Prepare(*store_, commits_[0]).ok());
  ASSERT_TRUE(live.Prepare(*store_, commits_[1]).ok());
  EXPECT_EQ(ReadFile(live.VersionDirectory(commits_[1]) + "/index.html"), "version 1");
  EXPECT_FALSE(live.Current().has_value()) << "Prepare does not switch";

  ASSERT_TRUE(live.Switch(commits_[0]).ok());
  EXPECT_EQ(ReadLink(live.current_link()), "versions/" + commits_[0]);
  EXPECT_EQ(live.Current(), commits_[0]);
  EXPECT_EQ(ReadFile(live.current_link() + "/index.html"), "version 0");

  ASSERT_TRUE(live.Switch(commits_[1]).ok());
  EXPECT_EQ(ReadLink(live.current_link()), "versions/" + commits_[1]);
  EXPECT_EQ(live.Current(), commits_[1]);
  EXPECT_EQ(ReadFile(live.current_link() + "/index.html"), "version 1");
  EXPECT_EQ(Names(webapp_dir()), (std::vector<std::string>{"current", "versions"}));
  EXPECT_EQ(Names(webapp_dir() + "/versions"),
            (std::vector<std::string>{std::min(commits_[0], commits_[1]),
                                      std::max(commits_[0], commits_[1])}));
}

TEST_F(LiveTreeTest, PrepareKeepsAVersionThatIsThere) {
  LiveTree live = OpenLive();
  ASSERT_TRUE(live.Prepare(*store_, commits_[2]).ok());
  std::ofstream(live.VersionDirectory(commits_[2]) + "/marker") << "kept";
  ASSERT_TRUE(live.Prepare(*store_, commits_[2]).ok());
  EXPECT_EQ(ReadFile(live.VersionDirectory(commits_[2]) + "/marker"), "kept");
}

TEST_F(LiveTreeTest, BadCommitsAreRefusedAndLeaveNothing) {
  LiveTree live = OpenLive();
  const Status malformed = live.Prepare(*store_, "../../etc");
  EXPECT_EQ(malformed.code(), Status::Code::kInvalidArgument) << malformed.ToString();
  const Status unknown = live.Prepare(*store_, std::string(40, 'a'));
  EXPECT_EQ(unknown.code(), Status::Code::kNotFound) << unknown.ToString();
  EXPECT_TRUE(Names(webapp_dir() + "/versions").empty());

  ASSERT_TRUE(live.Prepare(*store_, commits_[0]).ok());
  ASSERT_TRUE(live.Switch(commits_[0]).ok());
  const Status unprepared = live.Switch(commits_[1]);
  EXPECT_EQ(unprepared.code(), Status::Code::kNotFound) << unprepared.ToString();
  EXPECT_NE(unprepared.message().find(commits_[1]), std::string::npos);
  EXPECT_EQ(live.Switch("current").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(live.Current(), commits_[0]);
  EXPECT_EQ(Names(webapp_dir()), (std::vector<std::string>{"current", "versions"}));
}

TEST_F(LiveTreeTest, CurrentAlwaysNamesAWholeVersionWhileSwitching) {
  LiveTree live = OpenLive();
  ASSERT_TRUE(live.Prepare(*store_, commits_[0]).ok());
  ASSERT_TRUE(live.Prepare(*store_, commits_[1]).ok());
  ASSERT_TRUE(live.Switch(commits_[0]).ok());
  std::atomic<bool> done{false};
  std::atomic<int> reads{0}, bad{0};
  std::thread reader([&] {
    const std::string index = live.current_link() + "/index.html";
    while (!done.load()) {
      const std::string content = ReadFile(index);
      if (content != "version 0" && content != "version 1") ++bad;
      ++reads;
    }
  });
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(live.Switch(commits_[i % 2]).ok());
  }
  done = true;
  reader.join();
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(bad.load(), 0) << "a reader found no whole version behind current";
  EXPECT_EQ(live.Current(), commits_[1]);
}

TEST_F(LiveTreeTest, OpenRemovesTheLeftoversOfAKilledSidecar) {
  {
    LiveTree live = OpenLive();
    ASSERT_TRUE(live.Prepare(*store_, commits_[0]).ok());
    ASSERT_TRUE(live.Switch(commits_[0]).ok());
  }
  const std::string versions = webapp_dir() + "/versions";
  const std::string half = versions + "/." + commits_[1] + ".tmp-1234abcd";
  std::filesystem::create_directories(half + "/sub");
  std::ofstream(half + "/sub/partial") << "half";
  std::filesystem::create_directory_symlink("versions/" + commits_[1],
                                            webapp_dir() + "/current.tmp-99ff");
  std::ofstream(versions + "/.keep-me") << "not ours";

  LiveTree live = OpenLive();
  EXPECT_EQ(Names(webapp_dir()), (std::vector<std::string>{"current", "versions"}));
  EXPECT_EQ(Names(versions), (std::vector<std::string>{".keep-me", commits_[0]}));
  EXPECT_EQ(live.Current(), commits_[0]);
}

TEST_F(LiveTreeTest, CurrentIsNoneWhenItsLinkIsBroken) {
  LiveTree live = OpenLive();
  std::filesystem::create_directory_symlink("versions/" + commits_[3], live.current_link());
  EXPECT_FALSE(live.Current().has_value());
  std::filesystem::remove(live.current_link());
  std::filesystem::create_directory_symlink("/etc", live.current_link());
  EXPECT_FALSE(live.Current().has_value());
}

TEST_F(LiveTreeTest, PruneKeepsTheLiveOneAndTheMostRecentlyUsed) {
  LiveTree live = OpenLive();
  for (const CommitId& commit : commits_) ASSERT_TRUE(live.Prepare(*store_, commit).ok());
  ASSERT_TRUE(live.Switch(commits_[0]).ok());
  // Used in the order 0 (oldest, but live), 1, 2, 3, 4 (newest).
  for (size_t i = 0; i < commits_.size(); ++i) {
    SetMtime(live.VersionDirectory(commits_[i]), 1'700'000'000 + static_cast<time_t>(i) * 60);
  }
  live.Prune(2);
  std::vector<std::string> expected = {commits_[0], commits_[3], commits_[4]};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(Names(webapp_dir() + "/versions"), expected);
  EXPECT_EQ(live.Current(), commits_[0]);

  live.Prune(0);
  EXPECT_EQ(Names(webapp_dir() + "/versions"), (std::vector<std::string>{commits_[0]}));
  EXPECT_EQ(ReadFile(live.current_link() + "/index.html"), "version 0");
}

TEST_F(LiveTreeTest, SwitchMarksAVersionRecentlyUsed) {
  LiveTree live = OpenLive();
  for (size_t i = 0; i < 3; ++i) ASSERT_TRUE(live.Prepare(*store_, commits_[i]).ok());
  for (size_t i = 0; i < 3; ++i) {
    SetMtime(live.VersionDirectory(commits_[i]), 1'700'000'000 + static_cast<time_t>(i) * 60);
  }
  ASSERT_TRUE(live.Switch(commits_[2]).ok());
  ASSERT_TRUE(live.Switch(commits_[0]).ok());  // a rollback: 0 is now the newest
  live.Prune(1);
  std::vector<std::string> expected = {commits_[0], commits_[2]};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(Names(webapp_dir() + "/versions"), expected);
}

TEST(RunActivationTest, RunsInTheDirectoryWithTheWebappAndCommit) {
  TempDir dir("activation");
  const CommitId commit(40, '7');
  const Status s = RunActivation(
      "printf '%s %s' \"$CLUSTER_WEBAPP\" \"$CLUSTER_COMMIT\" > env.out; pwd -P > pwd.out; "
      "echo noise; echo more noise >&2",
      dir.path(), "shop", commit, 10s);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(ReadFile(dir.path() + "/env.out"), "shop " + commit);
  EXPECT_EQ(ReadFile(dir.path() + "/pwd.out"),
            std::filesystem::canonical(dir.path()).string() + "\n");
}

TEST(RunActivationTest, StdinIsEmpty) {
  TempDir dir("activation");
  const Status s = RunActivation("cat > in.out", dir.path(), "shop", std::string(40, '1'), 10s);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(ReadFile(dir.path() + "/in.out"), "");
}

TEST(RunActivationTest, ANonZeroExitIsAnErrorWithItsOutput) {
  TempDir dir("activation");
  const Status s = RunActivation("echo starting; echo 'port 8080 in use' >&2; exit 3", dir.path(),
                                 "shop", std::string(40, '1'), 10s);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("exited with status 3"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("starting\nport 8080 in use"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("shop"), std::string::npos) << s.ToString();
}

TEST(RunActivationTest, ASignalIsNamed) {
  TempDir dir("activation");
  const Status s = RunActivation("kill -TERM $$", dir.path(), "shop", std::string(40, '1'), 10s);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("killed by signal 15"), std::string::npos) << s.ToString();
}

TEST(RunActivationTest, OnlyTheEndOfALongOutputIsKept) {
  TempDir dir("activation");
  const Status s = RunActivation(
      "i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done; "
      "echo the real reason; exit 1",
      dir.path(), "shop", std::string(40, '1'), 30s);
  ASSERT_FALSE(s.ok());
  EXPECT_LT(s.message().size(), 2300u) << s.message().size();
  EXPECT_NE(s.message().find("line 2999\nthe real reason"), std::string::npos) << s.ToString();
  EXPECT_EQ(s.message().find("line 1\n"), std::string::npos);
}

TEST(RunActivationTest, ATimeoutKillsTheWholeProcessGroup) {
  TempDir dir("activation");
  const auto start = std::chrono::steady_clock::now();
  const Status s = RunActivation("sleep 30 & echo $! > sleep.pid; echo waiting; wait", dir.path(),
                                 "shop", std::string(40, '1'), 500ms);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("timed out after 500 ms"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("waiting"), std::string::npos) << s.ToString();
  EXPECT_GE(elapsed, 500ms);
  EXPECT_LT(elapsed, 5s);

  // The background sleep got the SIGKILL too: gone, or a zombie until its new
  // parent reaps it.
  const std::string pid = ReadFile(dir.path() + "/sleep.pid");
  ASSERT_FALSE(pid.empty());
  EXPECT_TRUE(ProcessEnds(pid.substr(0, pid.find('\n')), 5s)) << "sleep " << pid << " lives on";
}

TEST(RunActivationTest, ABackgroundChildHoldingTheOutputIsNotWaitedFor) {
  TempDir dir("activation");
  const auto start = std::chrono::steady_clock::now();
  const Status s = RunActivation("sleep 30 & echo $! > sleep.pid; exit 0", dir.path(), "shop",
                                 std::string(40, '1'), 20s);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  const std::string pid = ReadFile(dir.path() + "/sleep.pid");
  if (!pid.empty()) ::kill(std::stoi(pid), SIGKILL);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_LT(elapsed, 5s);
}

TEST(RunActivationTest, AMissingDirectoryIsNamed) {
  TempDir dir("activation");
  const Status s =
      RunActivation("true", dir.path() + "/nowhere", "shop", std::string(40, '1'), 10s);
  EXPECT_EQ(s.code(), Status::Code::kNotFound) << s.ToString();
  EXPECT_NE(s.message().find(dir.path() + "/nowhere"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace cb::deploy
