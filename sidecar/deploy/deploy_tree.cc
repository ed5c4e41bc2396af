#include "sidecar/deploy/deploy_tree.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <utility>

namespace cb::deploy {
namespace {

// Linux's limits: a longer name or path could not be checked out anyway.
constexpr size_t kMaxComponent = 255;
constexpr size_t kMaxPath = 4095;
// As the kernel's ELOOP: a chain of symlinks longer than this is refused.
constexpr int kMaxSymlinkHops = 40;
constexpr size_t kReadChunk = 64 * 1024;

// ---------------------------------------------------------------------------
// Names

// The length of the UTF-8 sequence at text[i] and its code point; 0 when the
// bytes there are not valid UTF-8 (overlong forms and surrogates included).
size_t DecodeUtf8(std::string_view text, size_t i, char32_t* code_point) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) {
    *code_point = lead;
    return 1;
  }
  size_t length;
  char32_t value;
  char32_t minimum;
  if ((lead & 0xE0) == 0xC0) {
    length = 2, value = lead & 0x1F, minimum = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, value = lead & 0x0F, minimum = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, value = lead & 0x07, minimum = 0x10000;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    value = (value << 6) | (byte(i + k) & 0x3F);
  }
  if (value < minimum || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return 0;
  *code_point = value;
  return length;
}

bool IsControl(char32_t c) { return c < 0x20 || (c >= 0x7F && c <= 0x9F); }

// Why `text` cannot be a name: empty when it can.
std::string Utf8Problem(std::string_view text, std::string_view what) {
  for (size_t i = 0; i < text.size();) {
    char32_t c;
    const size_t length = DecodeUtf8(text, i, &c);
    if (length == 0) return std::string(what) + " is not valid UTF-8";
    if (IsControl(c)) return "control character in " + std::string(what);
    i += length;
  }
  return "";
}

// `text` fit for a message: bytes that are not printable UTF-8 become \xNN.
std::string Printable(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    char32_t c;
    const size_t length = DecodeUtf8(text, i, &c);
    if (length == 0 || IsControl(c)) {
      char escaped[5];
      std::snprintf(escaped, sizeof(escaped), "\\x%02X", static_cast<unsigned char>(text[i]));
      out += escaped;
      i += 1;
    } else {
      out.append(text.substr(i, length));
      i += length;
    }
  }
  return out;
}

// Zip archives come from Windows too, where '\' separates as '/' does.
std::vector<std::string> SplitPath(std::string_view path, bool windows) {
  std::vector<std::string> parts;
  std::string part;
  for (char c : path) {
    if (c == '/' || (windows && c == '\\')) {
      parts.push_back(std::move(part));
      part.clear();
    } else {
      part += c;
    }
  }
  parts.push_back(std::move(part));
  return parts;
}

std::string JoinPath(const std::vector<std::string>& parts) {
  std::string path;
  for (const std::string& part : parts) {
    if (!path.empty()) path += '/';
    path += part;
  }
  return path;
}

bool HasDriveLetter(std::string_view name) {
  return name.size() >= 2 && name[1] == ':' &&
         ((name[0] >= 'A' && name[0] <= 'Z') || (name[0] >= 'a' && name[0] <= 'z'));
}

bool IsDotGit(std::string_view part) {
  if (part.size() != 4 || part[0] != '.') return false;
  for (size_t i = 1; i < 4; ++i) {
    if ((part[i] | 0x20) != "git"[i - 1]) return false;
  }
  return true;
}

// Checks an entry's name and sets *path to its normalised form: no leading
// "./", no trailing '/' on a directory. Returns why the name is refused, or
// empty. An empty *path with no refusal is the root directory itself ("./").
std::string NormaliseName(std::string_view name, bool windows, bool is_directory,
                          std::string* path) {
  if (name.empty()) return "empty name";
  if (std::string problem = Utf8Problem(name, "name"); !problem.empty()) return problem;
  if (windows && HasDriveLetter(name)) return "drive letter in a zip name";
  if (name[0] == '/' || (windows && name[0] == '\\')) return "absolute path";
  std::vector<std::string> parts = SplitPath(name, windows);
  if (is_directory && parts.size() > 1 && parts.back().empty()) parts.pop_back();
  size_t first = 0;
  while (first < parts.size() && parts[first] == ".") ++first;
  // "./" alone: after the "." comes the empty part of its trailing '/'.
  if (first > 0 && first + 1 == parts.size() && parts[first].empty()) ++first;
  parts.erase(parts.begin(), parts.begin() + static_cast<std::ptrdiff_t>(first));
  if (parts.empty()) {
    if (!is_directory) return "not a file name";
    path->clear();
    return "";
  }
  for (const std::string& part : parts) {
    if (part == "..") return "'..' component";
    if (part == ".") return "'.' component";
    if (part.empty()) return "empty component";
    if (IsDotGit(part)) return "'.git' component (reserved by Git)";
    if (part.size() > kMaxComponent) return "component longer than 255 bytes";
  }
  if (windows && name.find('\\') != std::string_view::npos) return "backslash in a zip name";
  *path = JoinPath(parts);
  if (path->size() > kMaxPath) return "path longer than 4095 bytes";
  return "";
}

// Why a symlink at `path` with `target` is refused on its own: empty when it
// is not. Resolved lexically; chains through other symlinks are for Finish().
std::string SymlinkProblem(const std::string& path, std::string_view target, bool windows) {
  if (target.empty()) return "empty symlink target";
  if (target.size() > kMaxPath) return "symlink target longer than 4095 bytes";
  if (std::string problem = Utf8Problem(target, "symlink target"); !problem.empty()) {
    return problem;
  }
  const std::string quoted = "'" + std::string(target) + "'";
  if (target[0] == '/' || (windows && (target[0] == '\\' || HasDriveLetter(target)))) {
    return "symlink to an absolute path " + quoted;
  }
  std::vector<std::string> at = SplitPath(path, false);
  at.pop_back();  // the link's own directory
  for (const std::string& part : SplitPath(target, windows)) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (at.empty()) return "symlink " + quoted + " points outside the tree";
      at.pop_back();
    } else {
      at.push_back(part);
    }
  }
  if (windows && target.find('\\') != std::string_view::npos) {
    return "backslash in a zip symlink target";
  }
  return "";
}

// ---------------------------------------------------------------------------
// The checks shared by archives and directories, entry by entry.

struct Candidate {
  std::string name;          // as it came, for messages
  unsigned file_type = 0;    // AE_IF* (the S_IF* values on Linux)
  unsigned permissions = 0;  // mode & 07777
  bool hard_link = false;
  std::string symlink_target;
};

class TreeChecker {
 public:
  TreeChecker(const TreeLimits& limits, bool windows) : limits_(limits), windows_(windows) {}
  TreeChecker(const TreeChecker&) = delete;
  TreeChecker& operator=(const TreeChecker&) = delete;

  void set_windows(bool windows) { windows_ = windows; }

  // Checks `entry`. Sets *path to its normalised path, or to empty when it is
  // a directory (implied by its files, nothing to keep).
  Status Check(const Candidate& entry, std::string* path) {
    const bool is_directory = entry.file_type == AE_IFDIR;
    if (std::string problem = NormaliseName(entry.name, windows_, is_directory, path);
        !problem.empty()) {
      return Refuse(entry.name, problem);
    }
    if (entry.hard_link) return Refuse(entry.name, "hard link");
    switch (entry.file_type) {
      case AE_IFREG:
      case AE_IFDIR:
      case AE_IFLNK:
        break;
      case AE_IFCHR:
      case AE_IFBLK:
        return Refuse(entry.name, "device file");
      case AE_IFIFO:
        return Refuse(entry.name, "FIFO");
      case AE_IFSOCK:
        return Refuse(entry.name, "socket");
      default:
        return Refuse(entry.name, "unknown file type");
    }
    // Git keeps no symlink modes; a link's bits mean nothing on Linux.
    if (entry.file_type != AE_IFLNK) {
      if ((entry.permissions & 04000) != 0) return Refuse(entry.name, "setuid bit");
      if ((entry.permissions & 02000) != 0) return Refuse(entry.name, "setgid bit");
      if ((entry.permissions & 01000) != 0) return Refuse(entry.name, "sticky bit");
    }
    if (path->empty()) return Status::Ok();  // the root directory
    if (Status status = CheckPlace(entry.name, *path, entry.file_type); !status.ok()) return status;
    if (is_directory) {
      directories_.insert(*path);
      path->clear();
      return Status::Ok();
    }
    if (entry.file_type == AE_IFLNK) {
      if (std::string problem = SymlinkProblem(*path, entry.symlink_target, windows_);
          !problem.empty()) {
        return Refuse(entry.name, problem);
      }
    }
    if (files_ >= limits_.max_files) {
      return Status::TooLarge(Printable(entry.name) + ": more than " +
                              std::to_string(limits_.max_files) + " files in the tree");
    }
    ++files_;
    return Status::Ok();
  }

  // How many more bytes the tree may take.
  uint64_t remaining_bytes() const {
    return limits_.max_bytes > total_bytes_ ? limits_.max_bytes - total_bytes_ : 0;
  }

  Status TooManyBytes(std::string_view name) const {
    return Status::TooLarge(Printable(name) + ": more than " + std::to_string(limits_.max_bytes) +
                            " bytes in the tree");
  }

  // Keeps an entry that passed Check().
  Status Add(std::string_view name, std::string path, EntryKind kind, std::string bytes) {
    if (bytes.size() > remaining_bytes()) return TooManyBytes(name);
    total_bytes_ += bytes.size();
    if (kind == EntryKind::kSymlink) symlinks_.emplace(path, bytes);
    order_.push_back(std::string(name));
    entries_.push_back(TreeEntry{std::move(path), kind, std::move(bytes)});
    return Status::Ok();
  }

  // The complete tree, once no symlink reaches outside it through another.
  Result<DeployTree> Finish() {
    for (size_t i = 0; i < entries_.size(); ++i) {
      if (entries_[i].kind != EntryKind::kSymlink) continue;
      if (std::string problem = ResolveSymlink(entries_[i]); !problem.empty()) {
        return Refuse(order_[i], problem);
      }
    }
    DeployTree tree;
    tree.entries = std::move(entries_);
    tree.total_bytes = total_bytes_;
    std::sort(tree.entries.begin(), tree.entries.end(),
              [](const TreeEntry& a, const TreeEntry& b) { return a.path < b.path; });
    return tree;
  }

 private:
  static Status Refuse(std::string_view name, const std::string& why) {
    return Status::InvalidArgument(Printable(name) + ": " + why);
  }

  // No entry may sit at or under an earlier file or symlink, nor may a file or
  // symlink replace a directory that earlier entries made.
  Status CheckPlace(std::string_view name, const std::string& path, unsigned file_type) {
    for (size_t slash = path.find('/'); slash != std::string::npos;
         slash = path.find('/', slash + 1)) {
      const std::string parent = path.substr(0, slash);
      if (auto it = leaves_.find(parent); it != leaves_.end()) {
        return Refuse(name, std::string("under ") + (it->second ? "symlink '" : "file '") +
                                Printable(parent) + "' of an earlier entry");
      }
      directories_.insert(parent);
    }
    if (leaves_.count(path) != 0) return Refuse(name, "duplicate entry");
    if (file_type == AE_IFDIR) return Status::Ok();
    if (directories_.count(path) != 0) {
      return Refuse(name, "duplicate entry (a directory of earlier entries)");
    }
    leaves_.emplace(path, file_type == AE_IFLNK);
    return Status::Ok();
  }

  // Follows `link` as the kernel would, through the tree's other symlinks, so
  // that "up -> .." and "x -> up/.." cannot leave the tree between them.
  std::string ResolveSymlink(const TreeEntry& link) const {
    std::vector<std::string> at = SplitPath(link.path, false);
    at.pop_back();
    std::vector<std::string> first = SplitPath(link.bytes, windows_);
    std::deque<std::string> todo(first.begin(), first.end());
    int hops = 0;
    while (!todo.empty()) {
      std::string part = std::move(todo.front());
      todo.pop_front();
      if (part.empty() || part == ".") continue;
      if (part == "..") {
        if (at.empty()) {
          return "symlink '" + Printable(link.bytes) + "' points outside the tree through " +
                 "other symlinks";
        }
        at.pop_back();
        continue;
      }
      at.push_back(std::move(part));
      auto it = symlinks_.find(JoinPath(at));
      if (it == symlinks_.end()) continue;
      if (++hops > kMaxSymlinkHops) return "symlink '" + Printable(link.bytes) + "' loops";
      at.pop_back();
      std::vector<std::string> next = SplitPath(it->second, windows_);
      todo.insert(todo.begin(), next.begin(), next.end());
    }
    return "";
  }

  const TreeLimits limits_;
  bool windows_;
  uint64_t files_ = 0;
  uint64_t total_bytes_ = 0;
  std::vector<TreeEntry> entries_;
  std::vector<std::string> order_;               // entries_' names as they came
  std::map<std::string, bool> leaves_;           // files and symlinks (true)
  std::set<std::string> directories_;            // named or implied
  std::map<std::string, std::string> symlinks_;  // path -> target
};

EntryKind FileKind(unsigned permissions) {
  return (permissions & 0111) != 0 ? EntryKind::kExecutable : EntryKind::kFile;
}

// ---------------------------------------------------------------------------
// Archives

struct ArchiveReadDeleter {
  void operator()(struct archive* a) const { archive_read_free(a); }
};
struct ArchiveWriteDeleter {
  void operator()(struct archive* a) const { archive_write_free(a); }
};
struct ArchiveEntryDeleter {
  void operator()(struct archive_entry* e) const { archive_entry_free(e); }
};

std::string ArchiveError(struct archive* a) {
  const char* text = archive_error_string(a);
  return text != nullptr ? Printable(text) : "unknown libarchive error";
}

// Reads the current entry's data, stopping as soon as it passes `limit`:
// header sizes are not trusted, a compression bomb ends here.
Status ReadData(struct archive* a, std::string_view name, const TreeChecker& checker,
                std::string* bytes) {
  const uint64_t limit = checker.remaining_bytes();
  std::unique_ptr<char[]> buffer(new char[kReadChunk]);
  for (;;) {
    const la_ssize_t n = archive_read_data(a, buffer.get(), kReadChunk);
    if (n == 0) return Status::Ok();
    if (n < 0) {
      return Status::InvalidArgument(Printable(name) +
                                     ": truncated or corrupt archive: " + ArchiveError(a));
    }
    if (bytes->size() + static_cast<uint64_t>(n) > limit) return checker.TooManyBytes(name);
    bytes->append(buffer.get(), static_cast<size_t>(n));
  }
}

// A zip's names as stored, from its central directory: libarchive turns '\' into
// '/' in the names of archives made on Windows before we see them, and an upload
// with Windows separators is refused, not reinterpreted. The first name with a
// '\' in it, if any (nothing when the directory cannot be found: libarchive then
// reports the archive as it finds it).
std::optional<std::string> FirstZipNameWithBackslash(std::string_view bytes) {
  const auto u16 = [&](size_t at) {
    return static_cast<uint32_t>(static_cast<unsigned char>(bytes[at])) |
           static_cast<uint32_t>(static_cast<unsigned char>(bytes[at + 1])) << 8;
  };
  const auto u32 = [&](size_t at) { return u16(at) | u16(at + 2) << 16; };
  constexpr size_t kEndSize = 22;
  if (bytes.size() < kEndSize) return std::nullopt;
  size_t end = bytes.size() - kEndSize;
  const size_t lowest = bytes.size() > kEndSize + 0xffff ? bytes.size() - kEndSize - 0xffff : 0;
  while (u32(end) != 0x06054b50) {
    if (end == lowest) return std::nullopt;
    --end;
  }
  const uint32_t count = u16(end + 10);
  size_t at = u32(end + 16);
  for (uint32_t i = 0; i < count; ++i) {
    if (at + 46 > bytes.size() || u32(at) != 0x02014b50) return std::nullopt;
    const size_t name_length = u16(at + 28);
    if (at + 46 + name_length > bytes.size()) return std::nullopt;
    const std::string_view name = bytes.substr(at + 46, name_length);
    if (name.find('\\') != std::string_view::npos) return std::string(name);
    at += 46 + name_length + u16(at + 30) + u16(at + 32);
  }
  return std::nullopt;
}

}  // namespace

Result<DeployTree> ReadArchive(std::string_view bytes, const TreeLimits& limits) {
  if (bytes.empty()) return Status::InvalidArgument("empty upload: not an archive");
  if (bytes.starts_with("PK")) {
    if (std::optional<std::string> name = FirstZipNameWithBackslash(bytes)) {
      return Status::InvalidArgument(*name + ": '\\' in a zip name (a Windows separator)");
    }
  }
  std::unique_ptr<struct archive, ArchiveReadDeleter> owner(archive_read_new());
  struct archive* a = owner.get();
  if (a == nullptr) return Status::IoError("libarchive: out of memory");
  // Named filters and formats only: "all" would add filters that run external
  // programs on the upload, and formats (mtree) that read files of this host.
  archive_read_support_filter_gzip(a);
  archive_read_support_filter_bzip2(a);
  archive_read_support_filter_xz(a);
  archive_read_support_filter_lzma(a);
  archive_read_support_filter_zstd(a);
  archive_read_support_format_tar(a);
  archive_read_support_format_zip(a);
  if (archive_read_open_memory(a, bytes.data(), bytes.size()) != ARCHIVE_OK) {
    return Status::InvalidArgument("not a tar or zip archive: " + ArchiveError(a));
  }

  TreeChecker checker(limits, false);
  bool first = true;
  for (;;) {
    struct archive_entry* header;
    const int r = archive_read_next_header(a, &header);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) {
      if (first) return Status::InvalidArgument("not a tar or zip archive: " + ArchiveError(a));
      return Status::InvalidArgument("truncated or corrupt archive: " + ArchiveError(a));
    }
    if (first) {
      checker.set_windows((archive_format(a) & ARCHIVE_FORMAT_BASE_MASK) == ARCHIVE_FORMAT_ZIP);
      first = false;
    }
    const char* name = archive_entry_pathname(header);
    const char* link = archive_entry_symlink(header);
    const Candidate entry{
        .name = name != nullptr ? name : "",
        .file_type = static_cast<unsigned>(archive_entry_filetype(header)),
        .permissions = static_cast<unsigned>(archive_entry_perm(header)),
        .hard_link = archive_entry_hardlink(header) != nullptr,
        .symlink_target = link != nullptr ? link : "",
    };
    std::string path;
    if (Status status = checker.Check(entry, &path); !status.ok()) return status;
    if (path.empty()) continue;
    if (entry.file_type == AE_IFLNK) {
      if (Status status =
              checker.Add(entry.name, std::move(path), EntryKind::kSymlink, entry.symlink_target);
          !status.ok()) {
        return status;
      }
      continue;
    }
    std::string data;
    if (Status status = ReadData(a, entry.name, checker, &data); !status.ok()) return status;
    if (Status status =
            checker.Add(entry.name, std::move(path), FileKind(entry.permissions), std::move(data));
        !status.ok()) {
      return status;
    }
  }
  return checker.Finish();
}

namespace {

// ---------------------------------------------------------------------------
// Directories

class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() { ::close(fd_); }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;

 private:
  int fd_;
};

std::string Errno(const std::string& path, const char* what) {
  return path + ": cannot " + what + ": " + std::strerror(errno);
}

// The names in `directory`, sorted so that the first bad entry is always the same.
Result<std::vector<std::string>> ListDirectory(const std::string& directory) {
  DIR* dir = ::opendir(directory.c_str());
  if (dir == nullptr) return Status::IoError(Errno(directory, "open directory"));
  std::vector<std::string> names;
  errno = 0;
  while (const struct dirent* item = ::readdir(dir)) {
    const std::string name = item->d_name;
    if (name != "." && name != "..") names.push_back(name);
    errno = 0;
  }
  const int error = errno;
  ::closedir(dir);
  if (error != 0) {
    errno = error;
    return Status::IoError(Errno(directory, "read directory"));
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Reads a regular file found by lstat() as `seen`, refusing one replaced since.
Status ReadRegularFile(const std::string& file, const struct stat& seen, std::string_view name,
                       const TreeChecker& checker, std::string* bytes) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return Status::IoError(Errno(file, "open"));
  FdCloser closer(fd);
  struct stat now;
  if (::fstat(fd, &now) != 0) return Status::IoError(Errno(file, "examine"));
  if (!S_ISREG(now.st_mode) || now.st_ino != seen.st_ino || now.st_dev != seen.st_dev) {
    return Status::IoError(file + ": changed while being read");
  }
  const uint64_t limit = checker.remaining_bytes();
  std::unique_ptr<char[]> buffer(new char[kReadChunk]);
  for (;;) {
    const ssize_t n = ::read(fd, buffer.get(), kReadChunk);
    if (n == 0) return Status::Ok();
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IoError(Errno(file, "read"));
    }
    if (bytes->size() + static_cast<uint64_t>(n) > limit) return checker.TooManyBytes(name);
    bytes->append(buffer.get(), static_cast<size_t>(n));
  }
}

}  // namespace

Result<DeployTree> ReadDirectory(const std::string& directory, const TreeLimits& limits) {
  // The directory itself may be reached through a symlink ("current"); nothing under it.
  struct stat root;
  if (::stat(directory.c_str(), &root) != 0) return Status::IoError(Errno(directory, "examine"));
  if (!S_ISDIR(root.st_mode)) return Status::InvalidArgument(directory + ": not a directory");

  TreeChecker checker(limits, false);
  // Relative paths of directories still to walk; a stack, not recursion, so
  // that a deep tree cannot exhaust the call stack.
  std::vector<std::string> pending{""};
  while (!pending.empty()) {
    const std::string relative = std::move(pending.back());
    pending.pop_back();
    const std::string here = relative.empty() ? directory : directory + "/" + relative;
    Result<std::vector<std::string>> names = ListDirectory(here);
    if (!names.ok()) return names.status();
    std::vector<std::string> subdirectories;
    for (const std::string& base : *names) {
      const std::string name = relative.empty() ? base : relative + "/" + base;
      const std::string file = directory + "/" + name;
      struct stat info;
      if (::lstat(file.c_str(), &info) != 0) return Status::IoError(Errno(file, "examine"));
      Candidate entry{
          .name = name,
          .file_type = static_cast<unsigned>(info.st_mode & S_IFMT),
          .permissions = static_cast<unsigned>(info.st_mode & 07777),
          .hard_link = false,
          .symlink_target = "",
      };
      if (S_ISLNK(info.st_mode)) {
        std::string target(kMaxPath + 1, '\0');
        const ssize_t n = ::readlink(file.c_str(), target.data(), target.size());
        if (n < 0) return Status::IoError(Errno(file, "read symlink"));
        target.resize(static_cast<size_t>(n));
        entry.symlink_target = std::move(target);
      }
      std::string path;
      if (Status status = checker.Check(entry, &path); !status.ok()) return status;
      if (S_ISDIR(info.st_mode)) {
        subdirectories.push_back(name);
      } else if (S_ISLNK(info.st_mode)) {
        if (Status status = checker.Add(name, std::move(path), EntryKind::kSymlink,
                                        std::move(entry.symlink_target));
            !status.ok()) {
          return status;
        }
      } else {
        std::string data;
        if (Status status = ReadRegularFile(file, info, name, checker, &data); !status.ok()) {
          return status;
        }
        if (Status status =
                checker.Add(name, std::move(path), FileKind(entry.permissions), std::move(data));
            !status.ok()) {
          return status;
        }
      }
    }
    // Walked in name order: the last pushed is walked first.
    pending.insert(pending.end(), subdirectories.rbegin(), subdirectories.rend());
  }
  return checker.Finish();
}

namespace {

la_ssize_t AppendToString(struct archive*, void* client, const void* data, size_t size) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(data), size);
  return static_cast<la_ssize_t>(size);
}

}  // namespace

Result<std::string> WriteTarGz(const DeployTree& tree) {
  std::string out;
  std::unique_ptr<struct archive, ArchiveWriteDeleter> owner(archive_write_new());
  struct archive* a = owner.get();
  if (a == nullptr) return Status::IoError("libarchive: out of memory");
  const auto failed = [&](const std::string& what) {
    return Status::IoError("writing the tar.gz: " + what + ": " + ArchiveError(a));
  };
  // The same tree gives the same bytes: no times, owners or gzip timestamp.
  if (archive_write_add_filter_gzip(a) != ARCHIVE_OK) return failed("gzip");
  archive_write_set_filter_option(a, "gzip", "timestamp", nullptr);
  if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK) return failed("pax format");
  archive_write_set_bytes_in_last_block(a, 1);
  if (archive_write_open2(a, &out, nullptr, AppendToString, nullptr, nullptr) != ARCHIVE_OK) {
    return failed("open");
  }
  std::unique_ptr<struct archive_entry, ArchiveEntryDeleter> entry(archive_entry_new());
  for (const TreeEntry& item : tree.entries) {
    archive_entry_clear(entry.get());
    archive_entry_set_pathname(entry.get(), item.path.c_str());
    switch (item.kind) {
      case EntryKind::kFile:
        archive_entry_set_filetype(entry.get(), AE_IFREG);
        archive_entry_set_perm(entry.get(), 0644);
        archive_entry_set_size(entry.get(), static_cast<la_int64_t>(item.bytes.size()));
        break;
      case EntryKind::kExecutable:
        archive_entry_set_filetype(entry.get(), AE_IFREG);
        archive_entry_set_perm(entry.get(), 0755);
        archive_entry_set_size(entry.get(), static_cast<la_int64_t>(item.bytes.size()));
        break;
      case EntryKind::kSymlink:
        archive_entry_set_filetype(entry.get(), AE_IFLNK);
        archive_entry_set_perm(entry.get(), 0777);
        archive_entry_set_symlink(entry.get(), item.bytes.c_str());
        break;
    }
    if (archive_write_header(a, entry.get()) < ARCHIVE_WARN) return failed(item.path);
    if (item.kind != EntryKind::kSymlink && !item.bytes.empty() &&
        archive_write_data(a, item.bytes.data(), item.bytes.size()) !=
            static_cast<la_ssize_t>(item.bytes.size())) {
      return failed(item.path);
    }
  }
  if (archive_write_close(a) != ARCHIVE_OK) return failed("close");
  return out;
}

}  // namespace cb::deploy
