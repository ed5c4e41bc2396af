#include "sidecar/store/quiet_background_env.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

namespace cb::store {
namespace {

constexpr std::size_t kBufferBytes = 64 * 1024;  // as LevelDB's own writable file

leveldb::Status PosixError(const std::string& name, int error) {
  return leveldb::Status::IOError(name, std::strerror(error));
}

bool IsTableFile(std::string_view name) { return name.ends_with(".ldb") || name.ends_with(".sst"); }

// A table file written through a buffer of at most one step, which has the
// kernel write back every step it is given and waits for it.
class SteppedWritebackFile final : public leveldb::WritableFile {
 public:
  SteppedWritebackFile(std::string name, int fd, std::size_t step_bytes)
      : name_(std::move(name)),
        fd_(fd),
        step_bytes_(step_bytes),
        buffer_(std::min(kBufferBytes, step_bytes)) {}

  SteppedWritebackFile(const SteppedWritebackFile&) = delete;
  SteppedWritebackFile& operator=(const SteppedWritebackFile&) = delete;

  ~SteppedWritebackFile() override {
    if (fd_ >= 0) (void)Close();  // LevelDB closes first; an error here has no one to go to
  }

  leveldb::Status Append(const leveldb::Slice& data) override {
    const char* bytes = data.data();
    std::size_t left = data.size();
    while (left > 0) {
      const std::size_t taken = std::min(left, buffer_.size() - buffered_);
      std::memcpy(buffer_.data() + buffered_, bytes, taken);
      buffered_ += taken;
      bytes += taken;
      left -= taken;
      if (buffered_ == buffer_.size()) {
        if (leveldb::Status written = WriteBuffer(); !written.ok()) return written;
      }
    }
    return leveldb::Status::OK();
  }

  leveldb::Status Close() override {
    leveldb::Status status = WriteBuffer();
    if (::close(fd_) != 0 && status.ok()) status = PosixError(name_, errno);
    fd_ = -1;
    return status;
  }

  leveldb::Status Flush() override { return WriteBuffer(); }

  leveldb::Status Sync() override {
    if (leveldb::Status written = WriteBuffer(); !written.ok()) return written;
    if (::fdatasync(fd_) != 0) return PosixError(name_, errno);
    return leveldb::Status::OK();
  }

 private:
  leveldb::Status WriteBuffer() {
    const char* bytes = buffer_.data();
    std::size_t left = buffered_;
    while (left > 0) {
      const ssize_t written = ::write(fd_, bytes, left);
      if (written < 0) {
        if (errno == EINTR) continue;
        return PosixError(name_, errno);
      }
      bytes += written;
      left -= static_cast<std::size_t>(written);
    }
    handed_over_ += buffered_;
    buffered_ = 0;
    if (handed_over_ - written_back_ < step_bytes_) return leveldb::Status::OK();
    // Wait for what is in flight, start the step, wait for it: the disk's queue
    // never holds more than one step of this file.
    constexpr unsigned kFlags =
        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER;
    if (::sync_file_range(fd_, static_cast<off64_t>(written_back_),
                          static_cast<off64_t>(handed_over_ - written_back_), kFlags) != 0) {
      return PosixError(name_, errno);
    }
    written_back_ = handed_over_;
    return leveldb::Status::OK();
  }

  const std::string name_;
  int fd_;
  const std::size_t step_bytes_;
  std::vector<char> buffer_;
  std::size_t buffered_ = 0;
  uint64_t handed_over_ = 0;   // bytes written to the kernel
  uint64_t written_back_ = 0;  // of those, written back to the disk and waited for
};

struct ScheduledWork {
  void (*function)(void*);
  void* arg;
  int nice;
};

void RunAtBackgroundPriority(void* raw) {
  const ScheduledWork work = *static_cast<ScheduledWork*>(raw);
  delete static_cast<ScheduledWork*>(raw);
  thread_local int applied_nice = 0;
  if (work.nice != applied_nice) {
    // Linux: PRIO_PROCESS with 0 is the calling thread. A failure (a sandbox that
    // forbids it) leaves the thread as it was: slower answers, nothing lost.
    if (::setpriority(PRIO_PROCESS, 0, work.nice) == 0) applied_nice = work.nice;
  }
  work.function(work.arg);
}

}  // namespace

QuietBackgroundEnv::QuietBackgroundEnv(leveldb::Env* base, const QuietBackgroundOptions& options)
    : leveldb::EnvWrapper(base),
      options_{std::max<std::size_t>(options.writeback_step_bytes, 4096),
               std::clamp(options.background_nice, 0, 19)} {}

leveldb::Env* QuietBackgroundEnv::Shared() {
  static QuietBackgroundEnv* const env =
      new QuietBackgroundEnv(leveldb::Env::Default(), QuietBackgroundOptions{});
  return env;
}

leveldb::Status QuietBackgroundEnv::NewWritableFile(const std::string& name,
                                                    leveldb::WritableFile** result) {
  if (!IsTableFile(name)) return target()->NewWritableFile(name, result);
  const int fd = ::open(name.c_str(), O_TRUNC | O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    *result = nullptr;
    return PosixError(name, errno);
  }
  *result = new SteppedWritebackFile(name, fd, options_.writeback_step_bytes);
  return leveldb::Status::OK();
}

void QuietBackgroundEnv::Schedule(void (*function)(void*), void* arg) {
  target()->Schedule(RunAtBackgroundPriority,
                     new ScheduledWork{function, arg, options_.background_nice});
}

}  // namespace cb::store
