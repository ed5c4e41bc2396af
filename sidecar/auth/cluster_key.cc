#include "sidecar/auth/cluster_key.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace cb::auth {
namespace {

// Closes a file descriptor on scope exit.
class FileCloser {
 public:
  explicit FileCloser(int fd) : fd_(fd) {}
  ~FileCloser() { ::close(fd_); }
  FileCloser(const FileCloser&) = delete;
  FileCloser& operator=(const FileCloser&) = delete;

 private:
  int fd_;
};

// Wipes a buffer that held key bytes on scope exit.
class Wiper {
 public:
  explicit Wiper(std::string& buffer) : buffer_(buffer) {}
  ~Wiper() { OPENSSL_cleanse(buffer_.data(), buffer_.size()); }
  Wiper(const Wiper&) = delete;
  Wiper& operator=(const Wiper&) = delete;

 private:
  std::string& buffer_;
};

std::string Prefix(const std::string& path) { return "key file " + path + ": "; }

std::string OctalMode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof(text), "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// Why other users may touch a file of `mode`; empty when they may not.
std::string OtherAccess(mode_t mode) {
  if ((mode & S_IROTH) != 0) return "is readable by other users";
  if ((mode & S_IWOTH) != 0) return "is writable by other users";
  if ((mode & S_IXOTH) != 0) return "is accessible by other users (execute bit)";
  return "";
}

bool IsTrailingSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

}  // namespace

ClusterKey::~ClusterKey() {
  if (!material_.empty()) OPENSSL_cleanse(material_.data(), material_.size());
}

Result<ClusterKey> LoadClusterKey(const std::string& path) {
  // O_NONBLOCK: opening a FIFO must not hang startup; it is refused below anyway.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    const int error = errno;
    if (error == ENOENT) return Status::NotFound(Prefix(path) + "does not exist");
    return Status::IoError(Prefix(path) + "cannot be opened: " + std::strerror(error));
  }
  FileCloser closer(fd);

  struct stat info;
  if (::fstat(fd, &info) != 0) {
    return Status::IoError(Prefix(path) + "cannot be examined: " + std::strerror(errno));
  }
  if (!S_ISREG(info.st_mode))
    return Status::InvalidArgument(Prefix(path) + "is not a regular file");
  if (const std::string access = OtherAccess(info.st_mode); !access.empty()) {
    return Status::InvalidArgument(Prefix(path) + "mode " + OctalMode(info.st_mode) + " " + access +
                                   "; chmod 600 or 640");
  }
  // Read one byte past the limit to notice a file that grew since fstat.
  std::string buffer(kMaxClusterKeyFileBytes + 1, '\0');
  Wiper wiper(buffer);
  std::size_t size = 0;
  while (size < buffer.size()) {
    const ssize_t got = ::read(fd, buffer.data() + size, buffer.size() - size);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return Status::IoError(Prefix(path) + "cannot be read: " + std::strerror(errno));
    if (got == 0) break;
    size += static_cast<std::size_t>(got);
  }
  if (size > kMaxClusterKeyFileBytes) {
    return Status::InvalidArgument(Prefix(path) + "is larger than " +
                                   std::to_string(kMaxClusterKeyFileBytes) +
                                   " bytes; is it really the key file?");
  }
  while (size > 0 && IsTrailingSpace(buffer[size - 1])) --size;
  if (size < kMinClusterKeyBytes) {
    return Status::InvalidArgument(Prefix(path) + "holds " + std::to_string(size) +
                                   " bytes of key material, at least " +
                                   std::to_string(kMinClusterKeyBytes) +
                                   " are needed (e.g. head -c 32 /dev/urandom | base64)");
  }
  return ClusterKey(std::string(buffer.data(), size));
}

}  // namespace cb::auth
