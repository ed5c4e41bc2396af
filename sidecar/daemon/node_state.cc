#include "sidecar/daemon/node_state.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

namespace cb::daemon {
namespace {

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// Writes `text` to `path` so that a crash leaves either the old or the new content.
Status WriteDurably(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp";
  const int fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return Status::IoError(Errno("creating " + temporary));
  const bool written =
      write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && fsync(fd) == 0;
  const int saved_errno = errno;
  close(fd);
  if (!written) {
    errno = saved_errno;
    return Status::IoError(Errno("writing " + temporary));
  }
  if (rename(temporary.c_str(), path.c_str()) != 0) {
    return Status::IoError(Errno("renaming " + temporary));
  }
  return Status::Ok();
}

}  // namespace

Status PrepareDataDir(const std::string& path) {
  if (mkdir(path.c_str(), 0750) != 0 && errno != EEXIST) {
    return Status::IoError(Errno("data dir " + path));
  }
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) return Status::IoError(Errno("data dir " + path));
  if (!S_ISDIR(info.st_mode)) return Status::IoError("data dir " + path + ": not a directory");
  const std::string probe = path + "/.write-probe";
  const int fd = open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IoError(Errno("data dir " + path + " is not writable"));
  close(fd);
  unlink(probe.c_str());
  return Status::Ok();
}

Result<uint64_t> NextIncarnation(const std::string& data_dir, int64_t now_unix_ms) {
  const std::string path = data_dir + "/incarnation";
  uint64_t stored = 0;
  std::ifstream file(path);
  if (file) {
    std::ostringstream text;
    text << file.rdbuf();
    std::string value = text.str();
    while (!value.empty() && (value.back() == '\n' || value.back() == ' ')) value.pop_back();
    const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), stored);
    if (error != std::errc() || end != value.data() + value.size() || value.empty()) {
      return Status::InvalidArgument(path + ": not a number (\"" + value.substr(0, 40) +
                                     "\"); remove it to start over");
    }
  }
  const uint64_t next = std::max<uint64_t>(stored + 1, static_cast<uint64_t>(now_unix_ms));
  if (Status written = WriteDurably(path, std::to_string(next) + "\n"); !written.ok()) {
    return written;
  }
  return next;
}

}  // namespace cb::daemon
