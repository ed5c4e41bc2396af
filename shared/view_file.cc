#include "shared/view_file.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>

namespace cb {
namespace {

constexpr std::size_t kImageBytes = sizeof(ViewImage);
constexpr std::size_t kViewWords = sizeof(ClusterView) / sizeof(uint64_t);
static_assert(sizeof(ClusterView) % sizeof(uint64_t) == 0);
static_assert(offsetof(ViewImage, view) % sizeof(uint64_t) == 0);

// A writer's update is one 17 KB copy; this many tries spans it many times over.
constexpr int kReadAttempts = 256;

using ViewWords = std::array<uint64_t, kViewWords>;

// Numbers every view copy any reader in this process takes (see snapshot_id()).
std::atomic<uint64_t> next_snapshot_id{1};

// Tells the CPU we are spinning (cheaper for the sibling hyperthread, the writer).
inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// The mapped file seen as 64-bit words, the unit of the seqlock's atomic copies.
uint64_t* WordsAt(void* mapping, std::size_t byte_offset) {
  return reinterpret_cast<uint64_t*>(static_cast<char*>(mapping) + byte_offset);
}

std::atomic_ref<uint64_t> SequenceOf(void* mapping) {
  return std::atomic_ref<uint64_t>(*WordsAt(mapping, offsetof(ViewFileHeader, sequence)));
}

ViewFileHeader CurrentHeader() {
  ViewFileHeader header;
  header.header_bytes = sizeof(ViewFileHeader);
  header.file_bytes = kImageBytes;
  return header;
}

// Why `header` (read from a file of `file_size` bytes) is not one this build reads.
Status CheckHeader(const ViewFileHeader& header, off_t file_size, const std::string& path) {
  if (header.magic != kViewMagic) {
    return Status::InvalidArgument(path + ": not a cluster view file (bad magic)");
  }
  if (header.format_version != kViewFormatVersion) {
    return Status::Unsupported(path + ": view format version " +
                               std::to_string(header.format_version) + ", this build reads " +
                               std::to_string(kViewFormatVersion));
  }
  const ViewFileHeader expected = CurrentHeader();
  if (header.header_bytes != expected.header_bytes || header.file_bytes != expected.file_bytes ||
      header.server_capacity != expected.server_capacity) {
    return Status::InvalidArgument(path + ": view header sizes do not match format version " +
                                   std::to_string(kViewFormatVersion));
  }
  if (file_size < static_cast<off_t>(kImageBytes)) {
    return Status::InvalidArgument(path + ": truncated view file (" + std::to_string(file_size) +
                                   " of " + std::to_string(kImageBytes) + " bytes)");
  }
  return Status::Ok();
}

// Reads and checks the header of the open file `fd`.
Status CheckFile(int fd, const std::string& path) {
  struct stat info {};
  if (fstat(fd, &info) != 0) return Status::IoError(Errno(path));
  ViewFileHeader header;
  if (info.st_size < static_cast<off_t>(sizeof(header))) {
    return Status::InvalidArgument(path + ": truncated view file (" + std::to_string(info.st_size) +
                                   " bytes)");
  }
  if (pread(fd, &header, sizeof(header), 0) != static_cast<ssize_t>(sizeof(header))) {
    return Status::IoError(Errno(path + ": reading the view header"));
  }
  return CheckHeader(header, info.st_size, path);
}

// True when the open file `fd` is a view file of this format and of exactly its
// size, so that the writer may update it in place. Anything else is replaced.
bool IsReusableViewFile(int fd, const std::string& path) {
  struct stat info {};
  return CheckFile(fd, path).ok() && fstat(fd, &info) == 0 &&
         info.st_size == static_cast<off_t>(kImageBytes);
}

// Writes a new file holding an empty view next to `path` and renames it into place,
// so that no reader ever maps a half-created file.
Status CreateEmptyViewFile(const std::string& path) {
  const std::string temporary = path + ".tmp." + std::to_string(getpid());
  // O_EXCL | O_NOFOLLOW: never write through a planted link or over another file.
  unlink(temporary.c_str());  // a leftover of a writer of ours that died here
  const int fd =
      open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IoError(Errno("creating " + temporary));
  if (fchmod(fd, 0644) != 0) {
    const Status status = Status::IoError(Errno("setting the mode of " + temporary));
    close(fd);
    unlink(temporary.c_str());
    return status;
  }
  auto image = std::make_unique<ViewImage>();
  image->header = CurrentHeader();
  image->header.sequence = 2;  // even: stable; above 0 so a first read always copies
  const bool written = pwrite(fd, image.get(), kImageBytes, 0) == static_cast<ssize_t>(kImageBytes);
  const int saved_errno = errno;
  close(fd);
  if (!written) {
    unlink(temporary.c_str());
    errno = saved_errno;
    return Status::IoError(Errno("writing " + temporary));
  }
  if (rename(temporary.c_str(), path.c_str()) != 0) {
    const Status status = Status::IoError(Errno("renaming " + temporary + " to " + path));
    unlink(temporary.c_str());
    return status;
  }
  return Status::Ok();
}

}  // namespace

// ---------------------------------------------------------------------------------
// ViewWriter

Result<std::unique_ptr<ViewWriter>> ViewWriter::Open(const std::string& path) {
  // The lock is taken on a file of its own, before the view file is inspected or
  // replaced, so that two writers can never both own the path: not when both start
  // with no file, and not when one would replace the file the other publishes to.
  const std::string lock_path = path + ".lock";
  // Readable by all: web server workers test the lock (PublisherIsRunning) to tell a
  // view whose sidecar is gone from a live one.
  const int lock_fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (lock_fd < 0) return Status::IoError(Errno("opening " + lock_path));
  // An open-file-description lock (not flock): readers can test it with F_OFD_GETLK
  // without taking it, so a reader can never make a starting sidecar fail here.
  struct flock exclusive {};
  exclusive.l_type = F_WRLCK;
  exclusive.l_whence = SEEK_SET;
  if (fchmod(lock_fd, 0644) != 0 || fcntl(lock_fd, F_OFD_SETLK, &exclusive) != 0) {
    const Status status =
        errno == EAGAIN || errno == EACCES
            ? Status::IoError(path + ": another process is already publishing this view file")
            : Status::IoError(Errno("locking " + lock_path));
    close(lock_fd);
    return status;
  }
  Result<int> view_fd = OpenForPublishing(path);
  if (!view_fd.ok()) {
    close(lock_fd);
    return view_fd.status();
  }
  const int fd = *view_fd;
  void* mapping = mmap(nullptr, kImageBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mapping == MAP_FAILED) {
    const Status status = Status::IoError(Errno("mapping " + path));
    close(fd);
    close(lock_fd);
    return status;
  }
  return std::unique_ptr<ViewWriter>(new ViewWriter(path, lock_fd, fd, mapping));
}

// Precondition: the caller holds the lock.
Result<int> ViewWriter::OpenForPublishing(const std::string& path) {
  int fd = open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0 && !IsReusableViewFile(fd, path)) {
    close(fd);
    fd = -1;
  }
  if (fd < 0) {
    if (Status created = CreateEmptyViewFile(path); !created.ok()) return created;
    fd = open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return Status::IoError(Errno("opening " + path));
  }
  return fd;
}

ViewWriter::ViewWriter(std::string path, int lock_fd, int fd, void* mapping)
    : path_(std::move(path)), lock_fd_(lock_fd), fd_(fd), mapping_(mapping) {}

ViewWriter::~ViewWriter() {
  munmap(mapping_, kImageBytes);
  close(fd_);
  close(lock_fd_);  // releases the lock
}

Status ViewWriter::Publish(const ClusterView& view) {
  if (Status valid = view.Validate(); !valid.ok()) return valid;
  ViewWords words;
  std::memcpy(words.data(), &view, sizeof(ClusterView));

  std::atomic_ref<uint64_t> sequence = SequenceOf(mapping_);
  // Odd while updating. A writer that died mid-update left it odd already, and no
  // reader ever keeps a copy taken under an odd sequence.
  const uint64_t start = sequence.load(std::memory_order_relaxed) | 1;
  sequence.store(start, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  uint64_t* target = WordsAt(mapping_, offsetof(ViewImage, view));
  for (std::size_t i = 0; i < kViewWords; ++i) {
    std::atomic_ref<uint64_t>(target[i]).store(words[i], std::memory_order_relaxed);
  }
  sequence.store(start + 1, std::memory_order_release);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------
// ViewReader

Result<std::unique_ptr<ViewReader>> ViewReader::Open(const std::string& path) {
  // O_NONBLOCK: a FIFO at the path must not hang a web server worker in open(2).
  const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    return errno == ENOENT ? Status::NotFound(path + ": no view file (is the sidecar running?)")
                           : Status::IoError(Errno("opening " + path));
  }
  struct stat info {};
  Status status;
  if (fstat(fd, &info) != 0) {
    status = Status::IoError(Errno(path));
  } else if (!S_ISREG(info.st_mode)) {
    status = Status::InvalidArgument(path + ": not a regular file");
  } else {
    status = CheckFile(fd, path);
  }
  void* mapping = MAP_FAILED;
  if (status.ok()) {
    mapping = mmap(nullptr, kImageBytes, PROT_READ, MAP_SHARED, fd, 0);
    if (mapping == MAP_FAILED) status = Status::IoError(Errno("mapping " + path));
  }
  close(fd);  // the mapping outlives the descriptor
  if (!status.ok()) return status;
  return std::unique_ptr<ViewReader>(new ViewReader(path, mapping, info.st_dev, info.st_ino));
}

ViewReader::ViewReader(std::string path, const void* mapping, dev_t device, ino_t inode)
    : path_(std::move(path)),
      mapping_(mapping),
      device_(device),
      inode_(inode),
      snapshot_(std::make_unique<ClusterView>()) {}

ViewReader::~ViewReader() { munmap(const_cast<void*>(mapping_), kImageBytes); }

std::optional<Result<const ClusterView*>> ViewReader::TryCopy(uint64_t* scratch) {
  // The mapping is read-only; atomic_ref needs a non-const object but only loads here.
  void* mapping = const_cast<void*>(mapping_);
  std::atomic_ref<uint64_t> sequence = SequenceOf(mapping);
  const uint64_t* source = WordsAt(mapping, offsetof(ViewImage, view));

  const uint64_t before = sequence.load(std::memory_order_acquire);
  if (have_snapshot_ && before == snapshot_sequence_) return snapshot_.get();
  if (!refused_.ok() && before == refused_sequence_) return refused_;
  if (before % 2 != 0) return std::nullopt;
  for (std::size_t i = 0; i < kViewWords; ++i) {
    scratch[i] =
        std::atomic_ref<uint64_t>(const_cast<uint64_t&>(source[i])).load(std::memory_order_relaxed);
  }
  std::atomic_thread_fence(std::memory_order_acquire);
  if (sequence.load(std::memory_order_relaxed) != before) return std::nullopt;

  auto candidate = std::make_unique<ClusterView>();
  std::memcpy(static_cast<void*>(candidate.get()), scratch, sizeof(ClusterView));
  if (Status valid = candidate->Validate(); !valid.ok()) {
    // Refused until the writer publishes again, at the cost of one load per call.
    refused_ = Status::InvalidArgument(path_ + ": " + valid.message());
    refused_sequence_ = before;
    return refused_;
  }
  snapshot_ = std::move(candidate);
  snapshot_sequence_ = before;
  snapshot_id_ = next_snapshot_id.fetch_add(1, std::memory_order_relaxed);
  have_snapshot_ = true;
  return snapshot_.get();
}

Result<const ClusterView*> ViewReader::Current() {
  ViewWords words;
  for (int attempt = 0; attempt < kReadAttempts; ++attempt) {
    if (std::optional<Result<const ClusterView*>> copy = TryCopy(words.data())) {
      return *std::move(copy);
    }
    CpuRelax();
  }
  if (have_snapshot_) return snapshot_.get();
  // No copy yet: the writer is in the middle of an update, perhaps preempted on a
  // busy machine. Give it the CPU for a moment rather than leave the caller with
  // no view at all.
  const auto deadline = std::chrono::steady_clock::now() + kFirstCopyPatience;
  while (std::chrono::steady_clock::now() < deadline) {
    sched_yield();
    if (std::optional<Result<const ClusterView*>> copy = TryCopy(words.data())) {
      return *std::move(copy);
    }
  }
  return Status::IoError(path_ + ": the view is being rewritten continuously; no stable copy");
}

bool ViewReader::PublisherIsRunning() const {
  const std::string lock_path = path_ + ".lock";
  const int fd = open(lock_path.c_str(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno != ENOENT;  // unreadable: cannot tell, so trust the view
  struct flock probe {};
  probe.l_type = F_RDLCK;
  probe.l_whence = SEEK_SET;
  const bool tested = fcntl(fd, F_OFD_GETLK, &probe) == 0;
  close(fd);
  return !tested || probe.l_type != F_UNLCK;
}

bool ViewReader::MappingIsStale() const {
  struct stat info {};
  if (stat(path_.c_str(), &info) != 0) return true;
  // A file cut short under the mapping would fault (SIGBUS) on the next read.
  return info.st_dev != device_ || info.st_ino != inode_ ||
         info.st_size < static_cast<off_t>(kImageBytes);
}

}  // namespace cb
