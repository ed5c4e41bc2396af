// Who may use the admin endpoint (issue 13, item 5): users with passwords kept
// only as argon2id hashes (libsodium's crypto_pwhash_str), HTTP Basic
// credentials, and a per-client limit on failed attempts.
//
// The users file has one "user:hash" line per user, as `clusterctl passwd` writes
// them ("shop-deployer:$argon2id$v=19$m=...,t=...,p=1$..."); blank lines and lines
// starting with '#' are ignored. User names are 1..64 of [A-Za-z0-9._@-].
//
// Rate limit: a client address with kFreeFailures failed attempts in a row is
// refused (kRateLimited, without checking the password) for a delay that doubles
// with every further failure, from 1 s up to 5 minutes; a success clears it. The
// table of clients is bounded (the oldest entries are dropped).
//
// Thread-compatible. Check() costs one argon2id verification (tens of ms) unless
// the same credentials were verified recently (kept as a keyed hash, never as
// text, for at most a minute), so the admin server may call it on its thread.
#ifndef CLUSTER_BALANCE_SIDECAR_ADMIN_ADMIN_AUTH_H_
#define CLUSTER_BALANCE_SIDECAR_ADMIN_ADMIN_AUTH_H_

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "shared/status.h"

namespace cb::admin {

// Failed attempts in a row a client may make before it is rate-limited.
inline constexpr int kFreeFailures = 5;

struct AuthDecision {
  enum class Kind { kAllowed, kUnauthorized, kRateLimited };
  Kind kind = Kind::kUnauthorized;
  std::string user;  // the user named in the credentials, when any (for the log line)
  std::string why;   // for the log: "no credentials", "unknown user", "wrong password", ...
  std::chrono::seconds retry_after{0};  // kRateLimited: for the Retry-After header
};

class Authenticator {
 public:
  using Clock = std::chrono::steady_clock;

  // Reads the users file; an error naming the file and line of a malformed one.
  static Result<std::unique_ptr<Authenticator>> FromUsersFile(const std::string& path);
  static Result<std::unique_ptr<Authenticator>> FromText(std::string_view text,
                                                         std::string_view source_name);

  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;
  ~Authenticator();

  // `authorization`: the request's Authorization header value ("" when absent).
  AuthDecision Check(std::string_view client_address, std::string_view authorization,
                     Clock::time_point now);

 private:
  struct State;
  explicit Authenticator(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// The users-file line for `user` with `password` hashed by argon2id (libsodium's
// interactive limits), or InvalidArgument for a bad user name or empty password.
Result<std::string> HashPasswordLine(std::string_view user, std::string_view password);

}  // namespace cb::admin

#endif  // CLUSTER_BALANCE_SIDECAR_ADMIN_ADMIN_AUTH_H_
