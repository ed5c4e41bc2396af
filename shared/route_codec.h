// Route characters and session-id extraction: the first step of every request.
//
// A server's index 0..63 is written as one character of the base64url alphabet
// (A-Z a-z 0-9 - _), so a session id created by server 2 starts with 'C' (Resin's
// convention). Session ids are found in a named cookie or in a ";jsessionid=" path
// parameter.
//
// Contract: every function here is total. Malformed input (no such cookie, an empty,
// overlong or badly quoted value, bytes outside RFC 6265's cookie-octet set, NUL)
// yields an empty string_view, which callers treat as "no session". Nothing reads
// outside the given input. All functions are pure and thread-safe.
#ifndef CLUSTER_BALANCE_SHARED_ROUTE_CODEC_H_
#define CLUSTER_BALANCE_SHARED_ROUTE_CODEC_H_

#include <cstddef>
#include <string_view>

namespace cb {

// One triad domain holds at most this many servers: one per route character.
inline constexpr int kMaxServers = 64;

// The route characters in index order: server i's is kRouteAlphabet[i]. The one
// definition in C++ (modules, sidecar, tools, benchmarks); the Python and shell
// scripts (bench/, demo/, scripts/demo, the integration tests) keep their own copy.
inline constexpr std::string_view kRouteAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static_assert(kRouteAlphabet.size() == kMaxServers);

// Session ids longer than this are treated as no session: no application issues
// them, and a 10 KB cookie must not cost more than a scan.
inline constexpr std::size_t kMaxSessionIdLength = 256;

inline constexpr std::string_view kDefaultSessionCookie = "JSESSIONID";
inline constexpr std::string_view kDefaultPathParameter = "jsessionid";

// The route character of `index`; '\0' when index is outside 0..63.
char RouteCharForIndex(int index);

// The same character as a one-character view into kRouteAlphabet (static storage,
// so that a web server variable can point into it); empty outside 0..63.
std::string_view RouteCharTextForIndex(int index);

// The index whose route character is `c`; -1 for any other byte.
int IndexForRouteChar(char c);

// The value of the first usable `cookie_name` cookie in one Cookie header
// ("a=1; JSESSIONID=Cxyz; b=2"). Names compare case-sensitively; optional white
// space around names and values is ignored; a value in double quotes is unquoted.
// A repeated name yields its first non-empty, well-formed value.
std::string_view SessionIdFromCookieHeader(std::string_view cookie_header,
                                           std::string_view cookie_name);

// The value of a path parameter such as ";jsessionid=Cxyz" in a request path
// ("/cart;jsessionid=Cxyz?x=1"). Only the path is searched (up to '?' or '#');
// the value ends at ';', '/', '?', '#' or the end.
std::string_view SessionIdFromPath(std::string_view path,
                                   std::string_view parameter = kDefaultPathParameter);

// True when `value` is a usable session id: 1..kMaxSessionIdLength bytes, each a
// cookie-octet (visible ASCII except space, '"', ',', ';' and '\\').
bool IsValidSessionId(std::string_view value);

// True when `name` can name a cookie (an RFC 6265 cookie-name, i.e. an RFC 2616
// token: visible ASCII except separators) of at most 64 bytes. Also the rule for
// the name of a path parameter.
bool IsCookieName(std::string_view name);

// The index named by the session id's first character; -1 when the id is empty or
// starts with a byte that is not a route character.
int RouteIndexOfSession(std::string_view session_id);

}  // namespace cb

#endif  // CLUSTER_BALANCE_SHARED_ROUTE_CODEC_H_
