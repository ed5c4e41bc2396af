#include "sidecar/deploy/live_tree.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <system_error>
#include <utility>
#include <vector>

extern char** environ;

namespace cb::deploy {

namespace {

constexpr std::string_view kVersions = "versions";
constexpr std::string_view kCurrent = "current";
constexpr std::string_view kTemporary = ".tmp-";
// What an activation's error quotes of its output: the end, where the reason usually is.
constexpr size_t kOutputTail = 2048;

bool IsCommitId(std::string_view id) {
  return id.size() == 40 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

Status CheckCommitId(const CommitId& commit) {
  if (IsCommitId(commit)) return Status::Ok();
  return Status::InvalidArgument("not a commit id (40 lower-case hex digits): \"" + commit + "\"");
}

std::string RandomSuffix() {
  std::random_device device;
  const uint64_t value = (static_cast<uint64_t>(device()) << 32) | device();
  char buffer[17];
  std::snprintf(buffer, sizeof buffer, "%016llx", static_cast<unsigned long long>(value));
  return buffer;
}

Status Errno(const std::string& what) {
  return Status::IoError(what + ": " + std::strerror(errno));
}

Status SyncDirectory(const std::string& directory) {
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno(directory);
  Status s;
  if (::fsync(fd) != 0) s = Errno(directory + ": fsync");
  ::close(fd);
  return s;
}

bool IsRealDirectory(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

Result<LiveTree> LiveTree::Open(const std::string& directory) {
  LiveTree tree(directory);
  const std::string versions = directory + "/" + std::string(kVersions);
  std::error_code error;
  std::filesystem::create_directories(versions, error);
  if (error) return Status::IoError(versions + ": " + error.message());
  // A sidecar killed in Prepare or Switch leaves these; none is ever live.
  const std::pair<std::string, std::string> leftovers[] = {
      {versions, "."},
      {directory, std::string(kCurrent) + std::string(kTemporary)},
  };
  for (const auto& [where, prefix] : leftovers) {
    for (std::filesystem::directory_iterator it(where, error), end; !error && it != end;
         it.increment(error)) {
      const std::string name = it->path().filename().string();
      if (name.rfind(prefix, 0) != 0 || name.find(kTemporary) == std::string::npos) continue;
      std::filesystem::remove_all(it->path(), error);
      if (error) return Status::IoError(it->path().string() + ": " + error.message());
    }
    if (error) return Status::IoError(where + ": " + error.message());
  }
  return tree;
}

std::string LiveTree::VersionDirectory(const CommitId& commit) const {
  return directory_ + "/" + std::string(kVersions) + "/" + commit;
}

std::optional<CommitId> LiveTree::Current() const {
  char target[256];
  const ssize_t n = ::readlink(current_link().c_str(), target, sizeof target);
  if (n <= 0 || static_cast<size_t>(n) >= sizeof target) return std::nullopt;
  const std::string_view link(target, static_cast<size_t>(n));
  const std::string prefix = std::string(kVersions) + "/";
  if (link.substr(0, prefix.size()) != prefix) return std::nullopt;
  const std::string commit(link.substr(prefix.size()));
  if (!IsCommitId(commit) || !IsRealDirectory(VersionDirectory(commit))) return std::nullopt;
  return commit;
}

Status LiveTree::Prepare(const GitStore& store, const CommitId& commit) {
  if (Status s = CheckCommitId(commit); !s.ok()) return s;
  const std::string final_path = VersionDirectory(commit);
  if (IsRealDirectory(final_path)) return Status::Ok();
  // Checked out beside its place and renamed when whole: a directory named by a
  // commit is always complete.
  const std::string versions = directory_ + "/" + std::string(kVersions);
  const std::string temporary = versions + "/." + commit + std::string(kTemporary) + RandomSuffix();
  if (Status s = store.CheckoutTo(commit, temporary); !s.ok()) return s;
  if (::rename(temporary.c_str(), final_path.c_str()) != 0) {
    const Status s = Errno("rename to " + final_path);
    std::error_code ignored;
    std::filesystem::remove_all(temporary, ignored);
    return s;
  }
  return SyncDirectory(versions);
}

Status LiveTree::Switch(const CommitId& commit) {
  if (Status s = CheckCommitId(commit); !s.ok()) return s;
  const std::string version = VersionDirectory(commit);
  if (!IsRealDirectory(version)) {
    return Status::NotFound(version + ": not prepared (no such directory)");
  }
  // Now the most recently used: Prune keeps it over versions long unused.
  ::utimensat(AT_FDCWD, version.c_str(), nullptr, AT_SYMLINK_NOFOLLOW);
  const std::string temporary =
      directory_ + "/" + std::string(kCurrent) + std::string(kTemporary) + RandomSuffix();
  const std::string target = std::string(kVersions) + "/" + commit;  // relative: movable
  if (::symlink(target.c_str(), temporary.c_str()) != 0) return Errno("symlink " + temporary);
  // rename(2) over the old link: "current" never goes missing, not even briefly.
  if (::rename(temporary.c_str(), current_link().c_str()) != 0) {
    const Status s = Errno("rename to " + current_link());
    ::unlink(temporary.c_str());
    return s;
  }
  return SyncDirectory(directory_);
}

void LiveTree::Prune(size_t keep) {
  const std::optional<CommitId> live = Current();
  struct Version {
    int64_t mtime_ns;
    std::string name;
  };
  std::vector<Version> versions;
  const std::string versions_path = directory_ + "/" + std::string(kVersions);
  std::error_code error;
  for (std::filesystem::directory_iterator it(versions_path, error), end; !error && it != end;
       it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (!IsCommitId(name) || (live && *live == name)) continue;
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    versions.push_back({int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec, name});
  }
  if (versions.size() <= keep) return;
  std::sort(versions.begin(), versions.end(), [](const Version& a, const Version& b) {
    return a.mtime_ns != b.mtime_ns ? a.mtime_ns > b.mtime_ns : a.name > b.name;
  });
  for (size_t i = keep; i < versions.size(); ++i) {
    // Best effort: what stays is retried at the next prune.
    std::filesystem::remove_all(versions_path + "/" + versions[i].name, error);
  }
}

namespace {

// The calling process's environment with CLUSTER_WEBAPP and CLUSTER_COMMIT
// replaced; built before fork, since the child may only call async-signal-safe
// functions.
std::vector<std::string> ActivationEnvironment(const std::string& webapp, const CommitId& commit) {
  std::vector<std::string> environment;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view variable(*entry);
    if (variable.rfind("CLUSTER_WEBAPP=", 0) == 0 || variable.rfind("CLUSTER_COMMIT=", 0) == 0) {
      continue;
    }
    environment.emplace_back(variable);
  }
  environment.push_back("CLUSTER_WEBAPP=" + webapp);
  environment.push_back("CLUSTER_COMMIT=" + commit);
  return environment;
}

void WriteMessage(int fd, const char* message) {
  const ssize_t ignored = ::write(fd, message, std::strlen(message));
  (void)ignored;
}

[[noreturn]] void RunChild(int output, const char* directory, char* const argv[],
                           char* const envp[]) {
  ::setpgid(0, 0);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // Ignored signals stay ignored across exec: a daemon ignoring SIGPIPE must not
  // pass that on.
  for (int signal_number : {SIGPIPE, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGCHLD}) {
    ::signal(signal_number, SIG_DFL);
  }
  const int null_input = ::open("/dev/null", O_RDONLY);
  if (null_input >= 0) ::dup2(null_input, 0);
  if (::dup2(output, 1) < 0 || ::dup2(output, 2) < 0) ::_exit(127);
  // The sidecar's sockets and files are none of the command's business.
  ::close_range(3, ~0U, 0);
  if (::chdir(directory) != 0) {
    WriteMessage(2, "cluster-sidecar: cannot enter the activation directory\n");
    ::_exit(126);
  }
  ::execve("/bin/sh", argv, envp);
  WriteMessage(2, "cluster-sidecar: cannot run /bin/sh\n");
  ::_exit(127);
}

void KeepTail(std::string* output, const char* data, size_t size) {
  output->append(data, size);
  if (output->size() > 2 * kOutputTail) output->erase(0, output->size() - kOutputTail);
}

std::string DescribeOutput(std::string output) {
  const bool cut = output.size() > kOutputTail;
  if (cut) output.erase(0, output.size() - kOutputTail);
  while (!output.empty() && (output.back() == '\n' || output.back() == ' ')) output.pop_back();
  if (output.empty()) return "no output";
  return std::string("output: ") + (cut ? "..." : "") + output;
}

}  // namespace

Status RunActivation(const std::string& command, const std::string& directory,
                     const std::string& webapp, const CommitId& commit,
                     std::chrono::milliseconds timeout) {
  if (!IsRealDirectory(directory)) {
    return Status::NotFound("activation directory " + directory + ": no such directory");
  }
  const std::string what = "activation `" + command + "` for " + webapp;
  std::vector<std::string> environment = ActivationEnvironment(webapp, commit);
  std::vector<char*> envp;
  for (std::string& variable : environment) envp.push_back(variable.data());
  envp.push_back(nullptr);
  std::string shell = "sh", dash_c = "-c", script = command;
  char* argv[] = {shell.data(), dash_c.data(), script.data(), nullptr};

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return Errno(what + ": pipe");
  const pid_t pid = ::fork();
  if (pid < 0) {
    const Status s = Errno(what + ": fork");
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    return s;
  }
  if (pid == 0) RunChild(pipe_fds[1], directory.c_str(), argv, envp.data());
  // Both sides set the group, so a kill can never miss it, whichever runs first.
  ::setpgid(pid, pid);
  ::close(pipe_fds[1]);
  const int output_fd = pipe_fds[0];
  ::fcntl(output_fd, F_SETFL, ::fcntl(output_fd, F_GETFL) | O_NONBLOCK);

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string output;
  bool output_closed = false, exited = false, timed_out = false;
  int wait_status = 0;
  char buffer[4096];
  const auto drain = [&] {
    while (true) {
      const ssize_t n = ::read(output_fd, buffer, sizeof buffer);
      if (n > 0) {
        KeepTail(&output, buffer, static_cast<size_t>(n));
      } else if (n == 0) {
        output_closed = true;
        return;
      } else if (errno != EINTR) {
        return;  // EAGAIN: nothing more for now
      }
    }
  };
  while (true) {
    if (!exited) {
      const pid_t r = ::waitpid(pid, &wait_status, WNOHANG);
      if (r == pid) exited = true;
    }
    if (exited) {
      // What it wrote before exiting is in the pipe; a background child that
      // keeps the pipe open is not waited for.
      drain();
      break;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      timed_out = true;
      ::kill(-pid, SIGKILL);
      while (::waitpid(pid, &wait_status, 0) < 0 && errno == EINTR) {
      }
      drain();
      break;
    }
    // Output wakes us at once; the exit, which has no descriptor here, is
    // polled for every few milliseconds once the output is closed.
    const auto remaining =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1;
    const int wait_ms = static_cast<int>(std::min<int64_t>(remaining, output_closed ? 5 : 100));
    pollfd poll_fd{output_fd, POLLIN, 0};
    const int ready = ::poll(&poll_fd, output_closed ? 0 : 1, wait_ms);
    if (ready > 0) drain();
  }
  ::close(output_fd);

  if (timed_out) {
    return Status::IoError(what + ": timed out after " + std::to_string(timeout.count()) +
                           " ms (its process group was killed); " + DescribeOutput(output));
  }
  if (WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0) return Status::Ok();
  const std::string how = WIFEXITED(wait_status)
                              ? "exited with status " + std::to_string(WEXITSTATUS(wait_status))
                              : "killed by signal " + std::to_string(WTERMSIG(wait_status));
  return Status::IoError(what + ": " + how + "; " + DescribeOutput(output));
}

}  // namespace cb::deploy
