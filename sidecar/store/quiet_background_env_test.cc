#include "sidecar/store/quiet_background_env.h"

#include <gtest/gtest.h>
#include <leveldb/db.h>
#include <leveldb/options.h>
#include <sys/resource.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>

#include "sidecar/testing/temp_dir.h"

namespace cb::store {
namespace {

class QuietBackgroundEnvTest : public ::testing::Test {
 protected:
  static std::string ReadAll(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
  }

  testing_support::TempDir dir_{"quiet_env"};
  const std::filesystem::path root_{dir_.path()};
};

std::string RandomBytes(std::size_t size, unsigned seed) {
  std::mt19937 random(seed);
  std::string bytes(size, '\0');
  for (char& c : bytes) c = static_cast<char>(random());
  return bytes;
}

TEST_F(QuietBackgroundEnvTest, TableFileHoldsEveryByteAppendedAcrossSteps) {
  QuietBackgroundEnv env(leveldb::Env::Default(), {.writeback_step_bytes = 4096});
  const std::string path = (root_ / "000005.ldb").string();
  leveldb::WritableFile* raw = nullptr;
  ASSERT_TRUE(env.NewWritableFile(path, &raw).ok());
  std::unique_ptr<leveldb::WritableFile> file(raw);
  // Pieces smaller than, equal to and many times one step, unaligned.
  std::string expected;
  unsigned seed = 1;
  for (std::size_t size : {1u, 4095u, 4096u, 10000u, 70000u, 3u, 300000u}) {
    const std::string piece = RandomBytes(size, seed++);
    ASSERT_TRUE(file->Append(piece).ok());
    expected += piece;
  }
  ASSERT_TRUE(file->Flush().ok());
  ASSERT_TRUE(file->Sync().ok());
  ASSERT_TRUE(file->Close().ok());
  EXPECT_EQ(ReadAll(path), expected);
}

TEST_F(QuietBackgroundEnvTest, BytesBufferedAtDestructionAreWritten) {
  QuietBackgroundEnv env(leveldb::Env::Default(), {});
  const std::string path = (root_ / "000007.ldb").string();
  leveldb::WritableFile* raw = nullptr;
  ASSERT_TRUE(env.NewWritableFile(path, &raw).ok());
  ASSERT_TRUE(raw->Append("abc").ok());
  delete raw;
  EXPECT_EQ(ReadAll(path), "abc");
}

TEST_F(QuietBackgroundEnvTest, OtherFilesGoToTheWrappedEnv) {
  QuietBackgroundEnv env(leveldb::Env::Default(), {});
  const std::string path = (root_ / "000003.log").string();
  leveldb::WritableFile* raw = nullptr;
  ASSERT_TRUE(env.NewWritableFile(path, &raw).ok());
  std::unique_ptr<leveldb::WritableFile> file(raw);
  ASSERT_TRUE(file->Append("log record").ok());
  ASSERT_TRUE(file->Close().ok());
  EXPECT_EQ(ReadAll(path), "log record");
}

TEST_F(QuietBackgroundEnvTest, TableFileThatCannotBeCreatedIsAnErrorNamingIt) {
  QuietBackgroundEnv env(leveldb::Env::Default(), {});
  const std::string path = (root_ / "missing-dir" / "000009.ldb").string();
  leveldb::WritableFile* raw = reinterpret_cast<leveldb::WritableFile*>(&env);
  const leveldb::Status status = env.NewWritableFile(path, &raw);
  EXPECT_TRUE(status.IsIOError());
  EXPECT_NE(status.ToString().find(path), std::string::npos) << status.ToString();
  EXPECT_EQ(raw, nullptr);
}

TEST_F(QuietBackgroundEnvTest, ScheduledWorkRunsAtTheBackgroundNiceValue) {
  // Env::Default runs scheduled work on its one background thread; the wrapper
  // sets the nice value on that thread before the work runs.
  QuietBackgroundEnv env(leveldb::Env::Default(), {.background_nice = 7});
  struct Seen {
    std::mutex mutex;
    std::condition_variable changed;
    bool ran = false;
    int nice = -100;
  } seen;
  errno = 0;
  const int caller_nice = ::getpriority(PRIO_PROCESS, 0);
  if (caller_nice > 7) GTEST_SKIP() << "this test runs at nice " << caller_nice;
  env.Schedule(
      [](void* arg) {
        auto* out = static_cast<Seen*>(arg);
        const int nice = ::getpriority(PRIO_PROCESS, 0);
        std::lock_guard lock(out->mutex);
        out->nice = nice;
        out->ran = true;
        out->changed.notify_all();
      },
      &seen);
  std::unique_lock lock(seen.mutex);
  ASSERT_TRUE(seen.changed.wait_for(lock, std::chrono::seconds(10), [&] { return seen.ran; }));
  // Lowering a priority is always allowed; the caller keeps its own.
  EXPECT_EQ(seen.nice, 7);
  EXPECT_EQ(::getpriority(PRIO_PROCESS, 0), caller_nice);
}

TEST_F(QuietBackgroundEnvTest, DatabaseThroughItSurvivesFlushesCompactionsAndReopen) {
  QuietBackgroundEnv env(leveldb::Env::Default(), {.writeback_step_bytes = 16 * 1024});
  leveldb::Options options;
  options.create_if_missing = true;
  options.env = &env;
  options.write_buffer_size = 64 * 1024;  // many flushes and compactions
  const std::string dir = (root_ / "db").string();
  constexpr int kRecords = 3000;
  {
    leveldb::DB* raw = nullptr;
    ASSERT_TRUE(leveldb::DB::Open(options, dir, &raw).ok());
    std::unique_ptr<leveldb::DB> db(raw);
    for (int i = 0; i < kRecords; ++i) {
      ASSERT_TRUE(db->Put({}, "key" + std::to_string(i * 7919 % kRecords),
                          RandomBytes(1000, static_cast<unsigned>(i)))
                      .ok());
    }
    db->CompactRange(nullptr, nullptr);
  }
  leveldb::DB* raw = nullptr;
  ASSERT_TRUE(leveldb::DB::Open(options, dir, &raw).ok());
  std::unique_ptr<leveldb::DB> db(raw);
  std::size_t tables = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    tables += entry.path().extension() == ".ldb";
  }
  EXPECT_GT(tables, 0u);
  for (int i = 0; i < kRecords; ++i) {
    std::string value;
    const int key = i * 7919 % kRecords;
    ASSERT_TRUE(db->Get({}, "key" + std::to_string(key), &value).ok()) << key;
    EXPECT_EQ(value, RandomBytes(1000, static_cast<unsigned>(i))) << key;
  }
}

}  // namespace
}  // namespace cb::store
