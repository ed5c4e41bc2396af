#include "sidecar/clusterctl/admin_commands.h"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "sidecar/clusterctl/deploy_progress.h"

namespace cb {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr int kBadInput = 1;
constexpr int kNotConverged = 2;
constexpr milliseconds kPollInterval{200};
constexpr milliseconds kCallTimeout{5000};

int Fail(std::ostream& err, const Status& status) {
  err << "clusterctl: " << status.message() << "\n";
  return kBadInput;
}

// A password typed on the controlling terminal with echo off.
Result<std::string> AskPassword(const std::string& prompt) {
  const int tty = open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (tty < 0) {
    return Status::InvalidArgument(
        "--user needs a password: set CLUSTERCTL_PASSWORD (no terminal to ask on)");
  }
  (void)!write(tty, prompt.data(), prompt.size());
  termios saved{};
  const bool can_hide = tcgetattr(tty, &saved) == 0;
  if (can_hide) {
    termios hidden = saved;
    hidden.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(tty, TCSAFLUSH, &hidden);
  }
  std::string password;
  char c;
  while (read(tty, &c, 1) == 1 && c != '\n' && c != '\r') password += c;
  if (can_hide) tcsetattr(tty, TCSAFLUSH, &saved);
  (void)!write(tty, "\n", 1);
  close(tty);
  return password;
}

}  // namespace

void AddQuery(std::string& target, const char* name, const std::string& value) {
  if (value.empty()) return;
  target += target.find('?') == std::string::npos ? '?' : '&';
  target += name;
  target += '=';
  target += PercentEncode(value);
}

int FollowCommit(const AdminAccess& access, const std::string& deployment,
                 const std::string& commit, const std::map<std::string, std::string>& errors_before,
                 const FollowOptions& options, std::ostream& out, std::ostream& err) {
  const auto deadline = steady_clock::now() + options.timeout;
  Convergence last;
  bool seen = false;
  bool timed_out = false;
  std::string last_failure;
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now());
    Result<AdminReply> reply =
        CallAdmin(access.endpoint, "GET", "/status",
                  access.Options(std::clamp(left, milliseconds(100), kCallTimeout)));
    json status;
    if (reply.ok() && reply->status == 200) {
      status = json::parse(reply->body, nullptr, false);
    }
    if (!status.is_discarded() && status.is_object()) {
      const Convergence now = ReadConvergence(status, deployment, commit, errors_before);
      if (options.live) {
        out << "\r" << RenderConvergenceLine(now) << "\x1b[K" << std::flush;
      } else {
        for (const ServerProgress& server : ChangedServers(last, now)) out << ServerEvent(server);
        out << std::flush;
      }
      last = now;
      seen = true;
      if (now.settled()) break;
    } else {
      // A sidecar restarting mid-deploy is no reason to give up: say it once and
      // keep asking until the timeout.
      const std::string failure =
          !reply.ok() ? reply.status().message()
                      : AdminReplyError(access.endpoint, "GET", "/status", *reply).message();
      if (failure != last_failure) {
        if (options.live) out << "\n";
        err << "clusterctl: " << failure << "\n";
        last_failure = failure;
      }
    }
    if (steady_clock::now() + kPollInterval >= deadline) {
      timed_out = true;
      break;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  if (options.live) {
    out << "\n" << RenderConvergenceSummary(last, timed_out);
  } else {
    out << DoneEvent(last, timed_out);
  }
  if (!seen) return Fail(err, Status::IoError(access.endpoint.ToString() + ": no status"));
  return last.ok() ? 0 : kNotConverged;
}

Result<json> StoredReply(const AdminAccess& access, const std::string& method,
                         const std::string& target, const Result<AdminReply>& reply) {
  if (!reply.ok()) return reply.status();
  if (reply->status != 200) return AdminReplyError(access.endpoint, method, target, *reply);
  json stored = json::parse(reply->body, nullptr, false);
  if (!stored.is_object() || !stored.contains("deployment") || !stored["deployment"].is_string() ||
      !stored.contains("commit") || !stored["commit"].is_string()) {
    return Status::IoError(access.endpoint.ToString() + ": " + method + " " + target +
                           ": an answer without deployment and commit");
  }
  return stored;
}

std::map<std::string, std::string> ErrorsBefore(const AdminAccess& access,
                                                const std::string& webapp) {
  Result<AdminReply> reply =
      CallAdmin(access.endpoint, "GET", "/status", access.Options(kCallTimeout));
  if (!reply.ok() || reply->status != 200) return {};
  const json status = json::parse(reply->body, nullptr, false);
  std::map<std::string, std::string> errors;
  // The deployment's full name is known only from the answer to come: keep the
  // errors of every deployment of this webapp.
  if (!status.is_object() || !status.contains("servers") || !status["servers"].is_array()) {
    return errors;
  }
  for (const json& row : status["servers"]) {
    if (!row.is_object() || !row.contains("deployed") || !row["deployed"].is_object()) continue;
    for (const auto& [name, entry] : row["deployed"].items()) {
      if (name.ends_with("/" + webapp)) {
        for (const auto& [id, error] : ReadDeployErrors(status, name)) errors[id] = error;
      }
    }
  }
  return errors;
}

AdminCallOptions AdminAccess::Options(milliseconds timeout) const {
  AdminCallOptions options;
  options.timeout = timeout;
  options.ca_file = ca_file;
  options.user = user;
  options.password = password;
  return options;
}

Result<AdminAccess> MakeAdminAccess(const std::string& admin, const std::string& ca_file,
                                    const std::string& user) {
  Result<AdminEndpoint> endpoint = ParseAdminEndpoint(admin);
  if (!endpoint.ok()) return Status::InvalidArgument("--admin: " + endpoint.status().message());
  AdminAccess access;
  access.endpoint = std::move(endpoint).value();
  access.ca_file = ca_file;
  access.user = user;
  if (!user.empty()) {
    if (const char* password = std::getenv("CLUSTERCTL_PASSWORD"); password != nullptr) {
      access.password = password;
    } else {
      Result<std::string> typed =
          AskPassword("password for " + user + " at " + access.endpoint.ToString() + ": ");
      if (!typed.ok()) return typed.status();
      access.password = std::move(typed).value();
    }
  }
  return access;
}

std::string DefaultAuthor() {
  const char* user = std::getenv("USER");
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) std::strcpy(host, "localhost");
  return std::string(user != nullptr && *user != '\0' ? user : "unknown") + "@" + host;
}

int RunRollback(const AdminAccess& access, const RollbackArguments& arguments, std::ostream& out,
                std::ostream& err) {
  std::string target = "/rollback";
  AddQuery(target, "webapp", arguments.webapp);
  AddQuery(target, "to", arguments.to);
  AddQuery(target, "stage", arguments.stage);
  AddQuery(target, "host", arguments.host);
  AddQuery(target, "author", arguments.author);
  const auto errors_before = ErrorsBefore(access, arguments.webapp);
  Result<AdminReply> reply =
      CallAdmin(access.endpoint, "POST", target, access.Options(arguments.follow.timeout));
  Result<json> stored = StoredReply(access, "POST", "/rollback", reply);
  if (!stored.ok()) return Fail(err, stored.status());
  if (arguments.follow.live) {
    out << RenderStoredLine(*stored, arguments.webapp) << "\n";
  } else {
    out << StoredEvent(*stored) << std::flush;
  }
  return FollowCommit(access, (*stored)["deployment"].get<std::string>(),
                      (*stored)["commit"].get<std::string>(), errors_before, arguments.follow, out,
                      err);
}

int ShowDeployments(const AdminAccess& access, const std::string& webapp, bool json_output,
                    std::ostream& out, std::ostream& err) {
  std::string target = "/deployments";
  AddQuery(target, "webapp", webapp);
  Result<AdminReply> reply =
      CallAdmin(access.endpoint, "GET", target, access.Options(kCallTimeout));
  if (!reply.ok()) return Fail(err, reply.status());
  if (reply->status != 200) {
    return Fail(err, AdminReplyError(access.endpoint, "GET", target, *reply));
  }
  const json deployments = json::parse(reply->body, nullptr, false);
  if (deployments.is_discarded()) {
    return Fail(err, Status::IoError(access.endpoint.ToString() + ": GET " + target +
                                     ": the answer is not JSON"));
  }
  if (json_output) {
    out << deployments.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
  } else {
    out << RenderDeploymentsTable(deployments);
  }
  return 0;
}

}  // namespace cb
