// A directory of its own for a test's files (stores, views), removed with it.
#ifndef CLUSTER_BALANCE_SIDECAR_TESTING_TEMP_DIR_H_
#define CLUSTER_BALANCE_SIDECAR_TESTING_TEMP_DIR_H_

#include <string>
#include <string_view>

namespace cb::testing_support {

class TempDir {
 public:
  // Creates <temp>/<prefix>_XXXXXX; a failure fails the calling test.
  explicit TempDir(std::string_view prefix);
  // Removes the directory and everything in it: close what uses it first.
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace cb::testing_support

#endif  // CLUSTER_BALANCE_SIDECAR_TESTING_TEMP_DIR_H_
