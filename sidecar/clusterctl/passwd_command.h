// `clusterctl passwd USER`: prints the admin users-file line for USER
// ("USER:$argon2id$..."), to be appended to the file named by node.admin_users.
// The password is read twice from the terminal without echo, or once (one line)
// from standard input with --password-stdin, for scripts. Only the hash is
// printed: the password never reaches a file, the command line or a log.
#ifndef CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_PASSWD_COMMAND_H_
#define CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_PASSWD_COMMAND_H_

#include <iosfwd>
#include <string>

namespace CLI {
class App;
}  // namespace CLI

namespace cb {

struct PasswdArguments {
  std::string user;
  bool password_stdin = false;
};

// Registers the subcommand on `app`, filling `arguments` when it is parsed.
CLI::App* AddPasswdSubcommand(CLI::App& app, PasswdArguments& arguments);

// Reads the password from `in` (the terminal, unless `password_stdin`), writes the
// line to `out` and prompts and errors to `err`. Returns the exit status: 0, or 1
// (with a message) for a bad user name, an empty password, two different entries,
// or no terminal to ask on without --password-stdin.
int RunPasswd(const std::string& user, bool password_stdin, std::istream& in, std::ostream& out,
              std::ostream& err);

}  // namespace cb

#endif  // CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_PASSWD_COMMAND_H_
