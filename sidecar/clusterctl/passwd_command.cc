#include "sidecar/clusterctl/passwd_command.h"

#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <istream>
#include <optional>
#include <ostream>

#include "sidecar/admin/admin_auth.h"

namespace cb {
namespace {

constexpr int kBadInput = 1;

// Turns the terminal's echo off for its lifetime.
class NoEcho {
 public:
  NoEcho() {
    if (tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios quiet = saved_;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;  // the user still sees that Enter was taken
    active_ = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
  }
  ~NoEcho() {
    if (active_) tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_);
  }
  NoEcho(const NoEcho&) = delete;
  NoEcho& operator=(const NoEcho&) = delete;

 private:
  termios saved_{};
  bool active_ = false;
};

std::optional<std::string> ReadLine(std::istream& in) {
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

int Fail(std::ostream& err, const std::string& message) {
  err << "clusterctl passwd: " << message << "\n";
  return kBadInput;
}

}  // namespace

CLI::App* AddPasswdSubcommand(CLI::App& app, PasswdArguments& arguments) {
  CLI::App* passwd = app.add_subcommand(
      "passwd", "Print the admin users-file line for a user (the password hashed with argon2id)");
  passwd->add_option("user", arguments.user, "the user name: 1..64 of A-Z a-z 0-9 . _ @ -")
      ->required();
  passwd->add_flag("--password-stdin", arguments.password_stdin,
                   "read the password (one line) from standard input instead of the terminal");
  return passwd;
}

int RunPasswd(const std::string& user, bool password_stdin, std::istream& in, std::ostream& out,
              std::ostream& err) {
  std::optional<std::string> password;
  if (password_stdin) {
    password = ReadLine(in);
    if (!password) return Fail(err, "no password on standard input");
  } else {
    if (isatty(STDIN_FILENO) == 0) {
      return Fail(err, "standard input is not a terminal: use --password-stdin");
    }
    std::optional<std::string> again;
    {
      NoEcho no_echo;
      err << "Password for " << user << ": " << std::flush;
      password = ReadLine(in);
      err << "Again: " << std::flush;
      again = ReadLine(in);
    }
    if (!password || !again) return Fail(err, "no password entered");
    if (*password != *again) return Fail(err, "the two passwords differ; nothing was printed");
  }
  Result<std::string> line = admin::HashPasswordLine(user, *password);
  if (!line.ok()) return Fail(err, line.status().message());
  out << *line << "\n";
  return 0;
}

}  // namespace cb
