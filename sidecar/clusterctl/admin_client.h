// clusterctl's HTTP client for a sidecar's admin endpoint (Boost.Beast, blocking,
// with a timeout), over plain HTTP or TLS, optionally with HTTP Basic credentials.
// One request per call; not thread-safe to share.
#ifndef CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_ADMIN_CLIENT_H_
#define CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_ADMIN_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "shared/config_values.h"
#include "shared/status.h"

namespace cb {

struct AdminReply {
  unsigned status = 0;
  std::string body;
  std::string retry_after;  // the Retry-After header, when the sidecar sent one
};

// A sidecar's admin endpoint as the operator names it.
struct AdminEndpoint {
  HostPort address;
  bool tls = false;

  // "https://host:port" for TLS, else "host:port" (as the operator wrote it).
  std::string ToString() const;
};

// "host:port" or "http://host:port" (plain HTTP), "https://host:port" (TLS); one
// trailing '/' is allowed. The error names what is wrong with `text`.
Result<AdminEndpoint> ParseAdminEndpoint(std::string_view text);

struct AdminCallOptions {
  std::chrono::milliseconds timeout{5000};  // connect, send and receive together
  // TLS only: a PEM file of the certificate authorities to trust; empty = the
  // system's store. The server's certificate must also name the endpoint's host.
  std::string ca_file;
  // HTTP Basic credentials, sent when `user` is not empty.
  std::string user;
  std::string password;
  // The request body (the caller keeps it alive for the call); sent with
  // `content_type` when not empty.
  std::string_view body;
  std::string content_type = "application/octet-stream";
  // Called after each chunk (about 64 KiB) of the body is written, with the bytes
  // written so far and the body's size; the last call has sent == total.
  std::function<void(uint64_t sent, uint64_t total)> on_body_progress;
};

// Sends `method` `target` to `endpoint`. An error when the sidecar cannot be
// reached, the TLS handshake or certificate check fails, or no answer comes within
// the timeout (the message names the endpoint); any HTTP status is a reply.
//
// A POST first asks GET /csrf-token (with the same credentials and timeout, no
// body) and sends the token as X-CSRF-Token, as the sidecar requires; a sidecar
// that answers 404 there predates the token and gets the POST without it. A 401
// or 429 there is returned as the reply; a 200 without a token is an
// InvalidArgument error. Each POST asks anew: the token
// changes when the sidecar restarts.
Result<AdminReply> CallAdmin(const AdminEndpoint& endpoint, const std::string& method,
                             const std::string& target, const AdminCallOptions& options);

// Plain HTTP without credentials or body (the older call sites).
Result<AdminReply> CallAdmin(const HostPort& address, const std::string& method,
                             const std::string& target,
                             std::chrono::milliseconds timeout = std::chrono::seconds(5));

// What a reply other than 200 means for the operator, naming the endpoint:
// 401 "<admin>: authentication required (--user)", 429 "<admin>: too many failed
// attempts, retry after N s", else the sidecar's {"error": ...} or the HTTP status.
Status AdminReplyError(const AdminEndpoint& endpoint, const std::string& method,
                       const std::string& target, const AdminReply& reply);

// `text` percent-encoded for a query string value (unreserved characters kept).
std::string PercentEncode(std::string_view text);

// RFC 4648 base64 with padding (for the Basic header).
std::string Base64Encode(std::string_view bytes);

}  // namespace cb

#endif  // CLUSTER_BALANCE_SIDECAR_CLUSTERCTL_ADMIN_CLIENT_H_
