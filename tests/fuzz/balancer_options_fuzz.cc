// libFuzzer target: the configuration words of the nginx directives
// (shared/balancer_options.h) and the insert mode's cookie handling
// (shared/sticky_cookie.h), which read operator input and client cookies.
//
// Input: words separated by spaces. The first half of the words is given to
// ParseBalancerWords, the rest to ParseStickyCookieWords; the whole input is then
// used as a client's cookie value for re-pinning.
//
// Invariants (a violation traps): accepted options name a view path and valid
// cookie names; an accepted cookie passes ValidateStickyCookie and its Set-Cookie
// header is one line with no control characters; a pinned value always has the
// module's form and starts with the answering server's route character.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shared/balancer_options.h"
#include "shared/route_codec.h"
#include "shared/sticky_cookie.h"

namespace {

#define FUZZ_CHECK(condition)           \
  do {                                  \
    if (!(condition)) __builtin_trap(); \
  } while (0)

std::vector<std::string_view> Words(std::string_view text) {
  std::vector<std::string_view> words;
  while (!text.empty()) {
    const std::size_t space = text.find(' ');
    words.push_back(text.substr(0, space));
    text = space == std::string_view::npos ? std::string_view{} : text.substr(space + 1);
  }
  return words;
}

bool IsOneLine(std::string_view header) {
  for (char c : header) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::vector<std::string_view> words = Words(input);
  const std::size_t half = words.size() / 2;

  cb::BalancerOptions options;
  if (cb::ParseBalancerWords(std::span(words).first(half), options).ok()) {
    FUZZ_CHECK(!options.view_path.empty());
    FUZZ_CHECK(cb::IsCookieName(options.session_cookie));
    FUZZ_CHECK(options.path_parameter.empty() || cb::IsCookieName(options.path_parameter));
  }
  cb::StickyCookie cookie;
  if (cb::ParseStickyCookieWords(std::span(words).subspan(half), cookie).ok()) {
    FUZZ_CHECK(cb::ValidateStickyCookie(cookie).ok());
    FUZZ_CHECK(IsOneLine(cb::SetCookieHeader(cookie, cb::StickyCookieValue(5, size))));
  }

  const int answered = size % cb::kMaxServers;
  const std::string pinned = cb::StickyCookieValue(answered, size * 0x9e3779b97f4a7c15ULL, input);
  FUZZ_CHECK(cb::IsStickyCookieValue(pinned));
  FUZZ_CHECK(cb::RouteIndexOfSession(pinned) == answered);
  if (cb::IsStickyCookieValue(input)) FUZZ_CHECK(pinned.substr(1) == input.substr(1));
  return 0;
}
