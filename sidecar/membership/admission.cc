#include "sidecar/membership/admission.h"

#include <algorithm>

#include "shared/server_set.h"

namespace cb::membership {

int FirstDynamicIndex(int static_count) { return std::max(kTriadSize, static_count); }

int AdmitterOf(int index, int static_count) { return index % std::min(kTriadSize, static_count); }

Status CheckJoinRequest(const protocol::JoinRequest& request, const ClusterConfig& config) {
  if (!IsValidServerId(request.server_id)) {
    return Status::InvalidArgument(
        "server id must be 1.." + std::to_string(kMaxIdLength) +
        " letters, digits, '.', '-', '_', starting with a letter or digit");
  }
  if (config.FindServer(request.server_id) != nullptr) {
    return Status::InvalidArgument("\"" + request.server_id +
                                   "\" is a static server of the cluster file; start it with "
                                   "--server, not --join");
  }
  for (const auto& [field, text] : {std::pair{"cluster address", &request.cluster_address},
                                    std::pair{"http address", &request.http_address}}) {
    Result<HostPort> address = ParseHostPort(*text);
    if (!address.ok() || text->size() > kMaxAddressLength) {
      return Status::InvalidArgument(std::string(field) + " \"" + text->substr(0, 80) +
                                     "\" is not host:port of at most " +
                                     std::to_string(kMaxAddressLength) + " characters");
    }
    for (const ServerConfig& server : config.servers) {
      if (*address == server.cluster_address || *address == server.http_address) {
        return Status::InvalidArgument(std::string(field) + " " + *text + " is already used by \"" +
                                       server.id + "\" in the cluster file");
      }
    }
  }
  if (request.weight > kMaxWeight) {
    return Status::InvalidArgument("weight " + std::to_string(request.weight) + " is over " +
                                   std::to_string(kMaxWeight));
  }
  return Status::Ok();
}

protocol::JoinRequest MakeJoinRequest(const ServerConfig& self, int previous_index) {
  protocol::JoinRequest request;
  request.server_id = self.id;
  request.cluster_address = self.cluster_address.ToString();
  request.http_address = self.http_address.ToString();
  request.weight = self.weight;
  request.previous_index = previous_index;
  return request;
}

}  // namespace cb::membership
