// clusterctl's commands on a sidecar's admin endpoint that follow a deployment:
// the access (endpoint, TLS trust, credentials), the wait for a commit to reach
// every server, `rollback` and `deployments`. `deploy` (deploy_command.h) adds the
// tree checks and the upload. Not thread-safe: one command per process.
//
// Exit status: 0 every up or draining server runs the new commit; 1 bad input, an
// unreachable sidecar or an error answer; 2 stored, but some servers failed or did
// not converge in time (named).
#ifndef CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_ADMIN_COMMANDS_H_
#define CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_ADMIN_COMMANDS_H_

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "shared/status.h"
#include "sidecar/clusterctl/admin_client.h"

namespace cb {

// An admin endpoint and how to talk to it, as the command line says.
struct AdminAccess {
  AdminEndpoint endpoint;
  std::string ca_file;
  std::string user;  // empty: no credentials
  std::string password;

  AdminCallOptions Options(std::chrono::milliseconds timeout) const;
};

// --admin, --ca-file and --user made into an AdminAccess. With a user, the
// password comes from $CLUSTERCTL_PASSWORD, else it is asked for on the terminal
// (without echo); an error when there is no terminal to ask on.
Result<AdminAccess> MakeAdminAccess(const std::string& admin, const std::string& ca_file,
                                    const std::string& user);

// "$USER@hostname" (the author of a deploy unless --author says otherwise).
std::string DefaultAuthor();

// How a command follows a commit spreading over the cluster.
struct FollowOptions {
  std::chrono::milliseconds timeout{120'000};
  // A person watching: a live line rewritten in place, then a summary table.
  // Otherwise one JSON event per line (--json, or output that is not a terminal).
  bool live = false;
};

// Follows `commit` of `deployment` (as POST /deploy or /rollback answered) until
// every up or draining server runs it or reported a failure, or the timeout,
// polling GET /status; prints as `options` say. `errors_before` are the errors
// servers reported before the change (see ErrorsBefore). The exit status.
int FollowCommit(const AdminAccess& access, const std::string& deployment,
                 const std::string& commit, const std::map<std::string, std::string>& errors_before,
                 const FollowOptions& options, std::ostream& out, std::ostream& err);

// The errors servers report for any deployment of `webapp` now, by server id
// (none when the status cannot be had).
std::map<std::string, std::string> ErrorsBefore(const AdminAccess& access,
                                                const std::string& webapp);

// A 200 answer of POST /deploy or /rollback, parsed; an error naming the endpoint
// for anything else (401 and 429 as AdminReplyError says).
Result<nlohmann::json> StoredReply(const AdminAccess& access, const std::string& method,
                                   const std::string& target, const Result<AdminReply>& reply);

// Appends "?name=value" or "&name=value", percent-encoded; nothing when `value`
// is empty.
void AddQuery(std::string& target, const char* name, const std::string& value);

struct RollbackArguments {
  std::string webapp;
  std::string to;  // a version ("1.2") or a commit (full or abbreviated)
  std::string stage;
  std::string host;
  std::string author;
  FollowOptions follow;
};

int RunRollback(const AdminAccess& access, const RollbackArguments& arguments, std::ostream& out,
                std::ostream& err);

// `clusterctl deployments`: the table, or with `json` the sidecar's answer as is.
int ShowDeployments(const AdminAccess& access, const std::string& webapp, bool json,
                    std::ostream& out, std::ostream& err);

}  // namespace cb

#endif  // CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_ADMIN_COMMANDS_H_
