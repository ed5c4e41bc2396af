// clusterctl's deployment commands: `deploy` (check a directory or archive, upload
// it, follow the new commit until every server runs it), and its follow-up
// (admin_commands.h).
// The checks and the rendering live elsewhere (deploy_tree, deploy_progress); this
// is the I/O around them. Not thread-safe: one command per process.
//
// Exit status: 0 every up or draining server runs the new commit; 1 bad input, a
// refused tree or archive (nothing uploaded), an unreachable sidecar or an error
// answer; 2 stored, but some servers failed or did not converge in time (named).
#ifndef CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_DEPLOY_COMMAND_H_
#define CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_DEPLOY_COMMAND_H_

#include <ostream>
#include <string>

#include "shared/status.h"
#include "sidecar/clusterctl/admin_commands.h"
#include "sidecar/deploy/deploy_tree.h"

namespace cb {

struct DeployArguments {
  std::string source;  // a directory, or a .tar(.gz|.tgz), .zip, .war or .jar file
  std::string webapp;
  std::string stage;  // empty: the sidecar's default
  std::string host;   // empty: the sidecar's default
  std::string version;
  std::string message;
  std::string author;
  deploy::TreeLimits limits;
  FollowOptions follow;
};

// What is uploaded for `source`: a directory as a gzip-compressed tar of its
// checked tree, a file as its own bytes once they pass the same checks. The error
// names the source and the first bad entry.
Result<std::string> LoadDeploySource(const std::string& source, const deploy::TreeLimits& limits);

int RunDeploy(const AdminAccess& access, const DeployArguments& arguments, std::ostream& out,
              std::ostream& err);

}  // namespace cb

#endif  // CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_DEPLOY_COMMAND_H_
