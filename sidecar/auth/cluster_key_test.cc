#include "sidecar/auth/cluster_key.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

namespace cb::auth {
namespace {

::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" lacks \"" << part << "\"";
}

constexpr char kKey[] = "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seQ==";  // 36 bytes

// A fresh temporary directory, removed with everything in it at the end.
class ClusterKeyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "cluster-key-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << pattern << ": " << std::strerror(errno);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes `contents` to `name` in the directory with `mode`; returns its path.
  std::string Write(const std::string& name, const std::string& contents, mode_t mode = 0600) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << contents;
    EXPECT_EQ(::chmod(path.c_str(), mode), 0) << path << ": " << std::strerror(errno);
    return path;
  }

  std::filesystem::path dir_;
};

TEST_F(ClusterKeyTest, LoadsKeyAndTrimsTrailingWhiteSpace) {
  for (const char* suffix : {"", "\n", "\r\n", " \t\n\n"}) {
    const Result<ClusterKey> key = LoadClusterKey(Write("key", std::string(kKey) + suffix));
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    EXPECT_EQ(key->material(), kKey);
  }
}

TEST_F(ClusterKeyTest, KeepsLeadingWhiteSpaceAndBinaryBytes) {
  const std::string binary(
      "\n \0\x01\xff"
      "0123456789abcdef",
      21);
  const Result<ClusterKey> key = LoadClusterKey(Write("key", binary + "\n"));
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(key->material(), binary);
}

TEST_F(ClusterKeyTest, OwnerAndGroupModesAreAccepted) {
  for (mode_t mode : {0400, 0600, 0640, 0440}) {
    EXPECT_TRUE(LoadClusterKey(Write("key", kKey, mode)).ok()) << std::oct << mode;
  }
}

TEST_F(ClusterKeyTest, MissingFile) {
  const std::string path = (dir_ / "absent.key").string();
  const Result<ClusterKey> key = LoadClusterKey(path);
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.status().code(), Status::Code::kNotFound);
  EXPECT_EQ(key.status().message(), "key file " + path + ": does not exist");
}

TEST_F(ClusterKeyTest, NotARegularFile) {
  const Result<ClusterKey> key = LoadClusterKey(dir_.string());
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(key.status().message(), "key file " + dir_.string() + ": is not a regular file");

  const std::string fifo = (dir_ / "fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  const Result<ClusterKey> from_fifo = LoadClusterKey(fifo);  // must not block
  ASSERT_FALSE(from_fifo.ok());
  EXPECT_TRUE(Contains(from_fifo.status().message(), "is not a regular file"));
}

TEST_F(ClusterKeyTest, AccessibleByOtherUsers) {
  struct Case {
    mode_t mode;
    const char* cause;
  };
  for (const Case& c : {Case{0644, "mode 0644 is readable by other users"},
                        Case{0604, "mode 0604 is readable by other users"},
                        Case{0666, "mode 0666 is readable by other users"},
                        Case{0602, "mode 0602 is writable by other users"},
                        Case{0601, "mode 0601 is accessible by other users"}}) {
    const std::string path = Write("key", kKey, c.mode);
    const Result<ClusterKey> key = LoadClusterKey(path);
    ASSERT_FALSE(key.ok()) << std::oct << c.mode;
    EXPECT_EQ(key.status().code(), Status::Code::kInvalidArgument);
    EXPECT_TRUE(Contains(key.status().message(), "key file " + path + ": " + c.cause));
    EXPECT_TRUE(Contains(key.status().message(), "; chmod 600 or 640"));
    EXPECT_FALSE(Contains(key.status().message(), kKey));
  }
}

TEST_F(ClusterKeyTest, TooShortAfterTrimming) {
  for (const std::string& contents : {std::string(), std::string("\n"),
                                      std::string("0123456789abcde"),  // 15 bytes
                                      std::string("0123456789abcde   \n\n")}) {
    const std::string path = Write("key", contents);
    const Result<ClusterKey> key = LoadClusterKey(path);
    ASSERT_FALSE(key.ok()) << contents;
    EXPECT_EQ(key.status().code(), Status::Code::kInvalidArgument);
    EXPECT_TRUE(Contains(key.status().message(), "key file " + path + ": holds "));
    EXPECT_TRUE(Contains(key.status().message(), "at least 16 are needed"));
    if (!contents.empty() && contents != "\n") {
      EXPECT_FALSE(Contains(key.status().message(), "0123456789"));
    }
  }
  EXPECT_TRUE(LoadClusterKey(Write("key", "0123456789abcdef\n")).ok());  // exactly 16
}

TEST_F(ClusterKeyTest, TooLarge) {
  const std::string path = Write("key", std::string(kMaxClusterKeyFileBytes + 1, 'k'));
  const Result<ClusterKey> key = LoadClusterKey(path);
  ASSERT_FALSE(key.ok());
  EXPECT_TRUE(Contains(key.status().message(), "key file " + path + ": is larger than 65536"));
  EXPECT_TRUE(LoadClusterKey(Write("key", std::string(kMaxClusterKeyFileBytes, 'k'))).ok());
}

TEST_F(ClusterKeyTest, UnopenablePath) {
  // A path through a regular file fails to open whoever runs the test.
  const std::string through_file = Write("key", kKey) + "/more";
  const Result<ClusterKey> key = LoadClusterKey(through_file);
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.status().code(), Status::Code::kIoError);
  EXPECT_EQ(key.status().message(),
            "key file " + through_file + ": cannot be opened: " + std::strerror(ENOTDIR));
}

TEST_F(ClusterKeyTest, PermissionDenied) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads a file of mode 0000";
  const std::string path = Write("key", kKey, 0000);
  const Result<ClusterKey> denied = LoadClusterKey(path);
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.status().code(), Status::Code::kIoError);
  EXPECT_EQ(denied.status().message(),
            "key file " + path + ": cannot be opened: " + std::strerror(EACCES));
}

TEST(ClusterKeyValueTest, CopiesAndMovesKeepTheMaterial) {
  ClusterKey key("0123456789abcdef0123");
  ClusterKey copy = key;
  EXPECT_EQ(copy.material(), key.material());
  ClusterKey moved = std::move(copy);
  EXPECT_EQ(moved.material(), "0123456789abcdef0123");
}

}  // namespace
}  // namespace cb::auth
