// The cookie of the `insert` sticky mode: the web server module sets it itself, so
// applications that know nothing of route characters still get sticky sessions.
//
// Its value is the route character of the server that answered followed by a
// random token ("C" + 11 base64url characters). The token keeps clients of one
// server apart: when that server fails, each client's backup is the rendezvous
// choice for its own value, so the failed server's clients spread over the others
// instead of all landing on one. When another server answered (a failover), the
// module re-pins the cookie: same token, the new server's route character.
//
// All functions are pure and thread-safe.
#ifndef CLUSTER_BALANCE_SHARED_STICKY_COOKIE_H_
#define CLUSTER_BALANCE_SHARED_STICKY_COOKIE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "shared/status.h"

namespace cb {

enum class SameSite { kOff, kStrict, kLax, kNone };

struct StickyCookie {
  std::string name = "CBROUTE";
  std::string path = "/";
  std::string domain;      // empty: no Domain attribute (the host only)
  int64_t max_age_s = -1;  // -1: a session cookie (no Max-Age)
  bool secure = false;
  bool http_only = true;
  SameSite same_site = SameSite::kLax;
};

// Applies one option as written in a configuration: "name=X", "path=/p",
// "domain=example.com", "max_age=1h" (a duration: s, m, h; "off" = a session
// cookie), "secure", "httponly=on|off", "samesite=strict|lax|none|off".
// InvalidArgument names the option and what is wrong.
Status ApplyStickyCookieOption(std::string_view option, StickyCookie& cookie);

// The whole cookie is consistent: a token name, attribute values without ';',
// control characters or white space, and SameSite=None only with Secure (browsers
// drop it otherwise).
Status ValidateStickyCookie(const StickyCookie& cookie);

// The value for server `index` (0..63): its route character and a token made of
// `random`; with `previous` a value of this form (from the request's cookie), its
// token is kept and only the route character changes.
std::string StickyCookieValue(int index, uint64_t random, std::string_view previous = {});

// True when `value` has the form StickyCookieValue() makes.
bool IsStickyCookieValue(std::string_view value);

// The Set-Cookie header value: "CBROUTE=Cxxxx; Path=/; Max-Age=3600; Secure; HttpOnly;
// SameSite=Lax".
std::string SetCookieHeader(const StickyCookie& cookie, std::string_view value);

}  // namespace cb

#endif  // CLUSTER_BALANCE_SHARED_STICKY_COOKIE_H_
