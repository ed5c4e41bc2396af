#include "sidecar/clusterctl/deploy_command.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "sidecar/clusterctl/deploy_progress.h"

namespace cb {
namespace {

using nlohmann::json;

int Fail(std::ostream& err, const Status& status) {
  err << "clusterctl: " << status.message() << "\n";
  return 1;
}

}  // namespace

Result<std::string> LoadDeploySource(const std::string& source, const deploy::TreeLimits& limits) {
  std::error_code error;
  const auto status = std::filesystem::status(source, error);
  if (error) return Status::InvalidArgument(source + ": " + error.message());
  if (std::filesystem::is_directory(status)) {
    Result<deploy::DeployTree> tree = deploy::ReadDirectory(source, limits);
    if (!tree.ok()) return Status::InvalidArgument(source + ": " + tree.status().message());
    Result<std::string> archive = deploy::WriteTarGz(*tree);
    if (!archive.ok()) return Status::IoError(source + ": " + archive.status().message());
    return archive;
  }
  std::ifstream in(source, std::ios::binary);
  if (!in) return Status::InvalidArgument(source + ": " + std::strerror(errno));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return Status::IoError(source + ": read failed");
  // Checked here as the sidecar will check it again: a refusal costs no upload.
  Result<deploy::DeployTree> tree = deploy::ReadArchive(bytes, limits);
  if (!tree.ok()) return Status::InvalidArgument(source + ": " + tree.status().message());
  return bytes;
}

int RunDeploy(const AdminAccess& access, const DeployArguments& arguments, std::ostream& out,
              std::ostream& err) {
  Result<std::string> upload = LoadDeploySource(arguments.source, arguments.limits);
  if (!upload.ok()) return Fail(err, upload.status());

  std::string target = "/deploy";
  AddQuery(target, "webapp", arguments.webapp);
  AddQuery(target, "stage", arguments.stage);
  AddQuery(target, "host", arguments.host);
  AddQuery(target, "version", arguments.version);
  AddQuery(target, "message", arguments.message);
  AddQuery(target, "author", arguments.author);

  const auto errors_before = ErrorsBefore(access, arguments.webapp);
  AdminCallOptions options = access.Options(arguments.follow.timeout);
  options.body = *upload;
  options.content_type = "application/octet-stream";
  if (arguments.follow.live) {
    options.on_body_progress = [&out](uint64_t sent, uint64_t total) {
      out << "\r" << RenderUploadLine(sent, total) << "\x1b[K" << std::flush;
    };
  }
  Result<AdminReply> reply = CallAdmin(access.endpoint, "POST", target, options);
  if (arguments.follow.live && !upload->empty()) out << "\n";
  Result<json> stored = StoredReply(access, "POST", "/deploy", reply);
  if (!stored.ok()) return Fail(err, stored.status());
  if (arguments.follow.live) {
    out << RenderStoredLine(*stored, arguments.webapp) << "\n";
  } else {
    out << UploadedEvent(upload->size()) << StoredEvent(*stored) << std::flush;
  }
  return FollowCommit(access, (*stored)["deployment"].get<std::string>(),
                      (*stored)["commit"].get<std::string>(), errors_before, arguments.follow, out,
                      err);
}

}  // namespace cb
